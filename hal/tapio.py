"""The CPython port's system calls on its hot path (hal/tap.py, ports/cpython/runner.py): the
pure form, through the os, select and time modules. hal/tapio.pyx is the same compiled
(issue 13: every frame crossed os.readv/os.write, a list of buffers made per read and an
exception raised for EAGAIN; every wake-up made a list of tuples); the compiled module is
imported where it was built, this one under USTACK_PURE=1 or without Cython. CPython only.

read/readv/write/writev, one frame each, return what the system call did as a number: the
bytes read or written (the header included), 0 when nothing waits (EAGAIN, EINTR: no
exception), -errno on another error. poll_in is a look at one descriptor; Waiter the
runner's wait on every descriptor it drives (an epoll; poll() where there is none or it
refuses one, a regular file); monotonic_ns/monotonic_ms the clock (CLOCK_MONOTONIC,
time.monotonic's)."""
import errno
import os
import select
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


# time.monotonic_ns itself, not a function around it: the pure TAP path reads the clock for
# every steered round and every frame it sends (a Python call more each, issue 13)
monotonic_ns = time.monotonic_ns


def monotonic_ms():
    """The runner's clock: whole milliseconds of time.monotonic()."""
    return int(time.monotonic() * 1000)


_POLLS = {}   # poll_in's poll object for each descriptor number, made on its first look


def poll_in(fd):
    """True when fd is readable now (poll() with no wait). A select.poll names descriptors by
    number, so one kept per number looks at whatever that number is now: made once, not at
    every look (a poll object and its registration each time doubled the pure reader's cost
    of a request's frame, issue 13)."""
    p = _POLLS.get(fd)
    if p is None:
        p = select.poll()
        p.register(fd, select.POLLIN)
        _POLLS[fd] = p
    return bool(p.poll(0))


class Waiter:
    """One wait on many descriptors, registered once: wait(timeout_s, out) puts the readable
    ones in out[0:n] (a list of at least as many entries as descriptors) and returns n."""

    def __init__(self, fds):
        seen = []
        for fd in fds:
            if not isinstance(fd, int):
                fd = fd.fileno()   # a socket, a file: its descriptor, as select takes it
            if fd not in seen:
                seen.append(fd)
        self.nfds = len(seen)
        self.scale = 1000.0
        ep = getattr(select, "epoll", None)
        if ep is not None:
            p = ep()
            try:
                for fd in seen:
                    p.register(fd, select.EPOLLIN)
                self.p = p
                self.scale = 1.0
                return
            except OSError:
                p.close()
        self.p = select.poll()
        for fd in seen:
            self.p.register(fd, select.POLLIN)

    def is_epoll(self):
        return self.scale == 1.0

    def wait(self, timeout_s, out):
        if len(out) < self.nfds:
            raise ValueError("Waiter.wait: out holds %d, %d descriptors" % (len(out), self.nfds))
        k = 0
        for fd, _ in self.p.poll(timeout_s * self.scale):
            out[k] = fd
            k += 1
        return k

    def close(self):
        if self.scale == 1.0:
            self.p.close()
