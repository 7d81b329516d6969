"""A TAP queue's system calls, one frame each (hal/tap.py): the pure form, through the os
module. hal/tapio.pyx is the same four calls compiled (issue 13: every frame crossed
os.readv/os.write, a list of buffers made per read and an exception raised for EAGAIN); the
compiled module is imported where it was built, this one under USTACK_PURE=1 or without
Cython. CPython only.

Each returns what the system call did, as a number: the bytes read or written (the header
included), 0 when nothing waits (EAGAIN, EINTR: no exception), -errno on another error.
And the clock the port reads around every frame (CLOCK_MONOTONIC, time.monotonic's)."""
import errno
import os
import time

_QUIET = (errno.EAGAIN, errno.EINTR)


def read(fd, buf):
    """One frame into buf (a TAP without the virtio-net header)."""
    try:
        return os.readv(fd, [buf])
    except OSError as e:
        return 0 if e.errno in _QUIET else -e.errno


def readv(fd, hdr, buf, tail):
    """One frame's virtio-net header into hdr, the frame into buf and, when buf is full and
    tail is not None, the rest into tail (CAP_GRO's large buffer)."""
    try:
        return os.readv(fd, [hdr, buf] if tail is None else [hdr, buf, tail])
    except OSError as e:
        return 0 if e.errno in _QUIET else -e.errno


def write(fd, buf, n):
    """buf[:n], one frame."""
    if n < 0 or n > len(buf):
        raise ValueError("write: %d bytes of a buffer of %d" % (n, len(buf)))
    try:
        return os.write(fd, buf if n == len(buf) else memoryview(buf)[:n])
    except OSError as e:
        return -e.errno


def writev(fd, hdr, buf, n):
    """The header hdr, then buf[:n]: one frame."""
    if n < 0 or n > len(buf):
        raise ValueError("writev: %d bytes of a buffer of %d" % (n, len(buf)))
    try:
        return os.writev(fd, [hdr, buf if n == len(buf) else memoryview(buf)[:n]])
    except OSError as e:
        return -e.errno


def monotonic_ns():
    """time.monotonic_ns()."""
    return time.monotonic_ns()


def monotonic_ms():
    """The runner's clock: whole milliseconds of time.monotonic()."""
    return int(time.monotonic() * 1000)
