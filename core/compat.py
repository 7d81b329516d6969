"""The few differences between MicroPython and CPython that the core needs to know about."""
try:
    from micropython import const  # noqa: F401
    MICROPYTHON = True
except ImportError:
    MICROPYTHON = False

    def const(x):
        return x

try:
    import errno as _errno
    EAGAIN = _errno.EAGAIN
except ImportError:  # pragma: no cover - every port has errno
    _errno = None
    EAGAIN = 11


def forget(name):
    """Drop the module `name` (code run once, at start or on a rare path) from sys.modules and
    from its package, so the collector takes its bytecode back: on the 32-bit port dhcp.py
    gives back 8.9 of the 10.2 KB importing it took (its names, qstrs, stay). MicroPython
    only: CPython keeps it (a compiled module cannot be loaded twice in a process)."""
    if not MICROPYTHON:
        return
    import sys
    sys.modules.pop(name, None)
    i = name.rfind(".")
    p = sys.modules.get(name[:i])
    if p is not None and hasattr(p, name[i + 1:]):
        delattr(p, name[i + 1:])


def urandom(n):
    """n bytes from the port's entropy source (os.urandom), or None where it has none."""
    try:
        import os
        return os.urandom(n)
    except (ImportError, AttributeError, NotImplementedError, OSError):
        return None


def xorshift32(x):
    """The next state of Marsaglia's xorshift32 (never 0 from a non-zero x): cheap, small-int
    safe numbers for port starts and IDs, not for secrets (those are keyed, RFC 6528)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


def _e(name, default):
    return getattr(_errno, name, default)


# BSD errno values as the host defines them (Linux numbers as fallback).
EPERM = _e("EPERM", 1)
EBADF = _e("EBADF", 9)
EACCES = _e("EACCES", 13)
EINVAL = _e("EINVAL", 22)
EPIPE = _e("EPIPE", 32)
EMSGSIZE = _e("EMSGSIZE", 90)
EPROTOTYPE = _e("EPROTOTYPE", 91)
ENOPROTOOPT = _e("ENOPROTOOPT", 92)
EPROTONOSUPPORT = _e("EPROTONOSUPPORT", 93)
EOPNOTSUPP = _e("EOPNOTSUPP", 95)
EAFNOSUPPORT = _e("EAFNOSUPPORT", 97)
EADDRINUSE = _e("EADDRINUSE", 98)
EADDRNOTAVAIL = _e("EADDRNOTAVAIL", 99)
ENETUNREACH = _e("ENETUNREACH", 101)
ECONNABORTED = _e("ECONNABORTED", 103)
ECONNRESET = _e("ECONNRESET", 104)
ENOBUFS = _e("ENOBUFS", 105)
EISCONN = _e("EISCONN", 106)
ENOTCONN = _e("ENOTCONN", 107)
ETIMEDOUT = _e("ETIMEDOUT", 110)
ECONNREFUSED = _e("ECONNREFUSED", 111)
EHOSTUNREACH = _e("EHOSTUNREACH", 113)
EALREADY = _e("EALREADY", 114)
EINPROGRESS = _e("EINPROGRESS", 115)
EDESTADDRREQ = _e("EDESTADDRREQ", 89)
ENOTSOCK = _e("ENOTSOCK", 88)
EWOULDBLOCK = EAGAIN
ESOCKTNOSUPPORT = _e("ESOCKTNOSUPPORT", 94)
EMFILE = _e("EMFILE", 24)


def oserror(code):
    return OSError(code, _strerror(code))


_STRERROR = {}  # errno -> its text, looked up once (EAGAIN is raised on every would-block)


def _strerror(code):
    t = _STRERROR.get(code)
    if t is None:
        try:
            import os
            t = os.strerror(code)
        except Exception:  # MicroPython has no os.strerror
            t = "errno %d" % code
        if len(_STRERROR) < 64:  # errno values are few; bounded all the same
            _STRERROR[code] = t
    return t


class Timeout(OSError):
    """Raised by a blocking call whose timeout ran out (socket.timeout on CPython)."""


try:
    import socket as _hostsock
    if hasattr(_hostsock, "timeout") and issubclass(_hostsock.timeout, OSError):
        Timeout = _hostsock.timeout  # noqa: F811 - CPython: TimeoutError, what callers catch
except ImportError:
    pass


def timeout_error():
    return Timeout(ETIMEDOUT, "timed out")
