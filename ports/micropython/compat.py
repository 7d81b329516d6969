"""The differences between MicroPython and CPython that the port (not the core) runs into:
ticks, const, errno, select/poll, AF_UNIX addresses, heap locking and memory figures.

Everything here works on both runtimes, so the MicroPython port's code (StreamLink, the app
loop, the asyncio facade) is also exercised under CPython by the host tests.
"""
import sys

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const  # noqa: F401
except ImportError:
    def const(x):
        return x

import time

if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    ticks_us = time.ticks_us
    ticks_add = time.ticks_add
    ticks_diff = time.ticks_diff
    sleep_ms = time.sleep_ms
else:
    _PERIOD = 1 << 29  # the wrap MicroPython uses on 32-bit ports

    def ticks_ms():
        return int(time.monotonic() * 1000) & (_PERIOD - 1)

    def ticks_us():
        return int(time.monotonic() * 1000000) & (_PERIOD - 1)

    def ticks_add(t, d):
        return (t + d) & (_PERIOD - 1)

    def ticks_diff(a, b):
        d = (a - b) & (_PERIOD - 1)
        return d - _PERIOD if d >= _PERIOD // 2 else d

    def sleep_ms(ms):
        time.sleep(ms / 1000.0)

try:
    import errno as _errno
except ImportError:  # pragma: no cover
    _errno = None


def _e(name, default):
    return getattr(_errno, name, default)


EAGAIN = _e("EAGAIN", 11)
EINTR = _e("EINTR", 4)
ECONNRESET = _e("ECONNRESET", 104)
ENOTCONN = _e("ENOTCONN", 107)
ETIMEDOUT = _e("ETIMEDOUT", 110)

import select

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLLERR = getattr(select, "POLLERR", 8)
POLLHUP = getattr(select, "POLLHUP", 16)


class Poller:
    """select.poll with one allocation-free wait on MicroPython.

    MicroPython's poll() allocates its result list; ipoll() allocates only on its first call,
    so wait() iterates ipoll (after warm-up it is free). CPython has no ipoll: poll() it is.
    wait(ms) returns the number of ready objects (ms < 0 waits forever).
    """

    def __init__(self):
        self.p = select.poll()
        self._ipoll = getattr(self.p, "ipoll", None)
        if self._ipoll is not None:
            self._ipoll(0)  # warm-up: the one allocation ipoll ever makes

    def register(self, obj, events=POLLIN):
        self.p.register(obj, events)

    def unregister(self, obj):
        self.p.unregister(obj)

    def wait(self, ms):
        if self._ipoll is not None:
            n = 0
            for _ in self._ipoll(ms):
                n += 1
            return n
        return len(self.p.poll(ms))


def native_socket():
    """The runtime's own socket module, also when ports/micropython/shadow puts ustack's
    facade (usock.py) in front of it as `socket`: MicroPython imports the built-in when no
    file on sys.path is called socket.py, so look with an empty path."""
    import socket
    if not getattr(socket, "USTACK_FACADE", False):
        return socket
    saved = sys.modules.pop("socket")
    path = list(sys.path)
    del sys.path[:]
    try:
        import socket as native
    finally:
        sys.path.extend(path)
        sys.modules["socket"] = saved
    return native


def unix_sockaddr(path):
    """The address connect()/bind() want for an AF_UNIX path: MicroPython takes the packed
    sockaddr_un (HAL-NOTES 1), CPython the path string."""
    if MICROPYTHON:
        import struct
        socket = native_socket()
        return struct.pack("H", socket.AF_UNIX) + path.encode() + b"\0"
    return path


try:
    import micropython as _mp
except ImportError:
    _mp = None


def heap_lock():
    """micropython.heap_lock(): from here on any allocation raises MemoryError (no-op on
    CPython)."""
    if _mp is not None:
        _mp.heap_lock()


def heap_unlock():
    """Returns the lock depth left (0 = unlocked); 0 on CPython."""
    if _mp is not None:
        return _mp.heap_unlock()
    return 0


def mem_info():
    """{'peak': bytes, 'current': bytes, 'free': bytes} where the runtime can tell."""
    out = {}
    if _mp is not None:
        if hasattr(_mp, "mem_peak"):
            out["peak"] = _mp.mem_peak()
        if hasattr(_mp, "mem_current"):
            out["current"] = _mp.mem_current()
    try:
        import gc
        if hasattr(gc, "mem_free"):
            out["free"] = gc.mem_free()
            out["alloc"] = gc.mem_alloc()
    except ImportError:
        pass
    return out


def print_exception(e, out=None):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e, out or sys.stderr)
    else:
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__, file=out or sys.stderr)
