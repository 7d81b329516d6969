"""MicroPython's errno plus the Linux numbers it leaves out (the core's compat module falls
back to the same values), so tests can name errno.EMSGSIZE etc. under the unix port."""
import sys

_path = sys.path
sys.path = []
import errno as _e  # noqa: E402 - the built-in one
sys.path = _path

_LINUX = {
    "EPERM": 1, "ENOENT": 2, "EINTR": 4, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12,
    "EACCES": 13, "EEXIST": 17, "EINVAL": 22, "EMFILE": 24, "ENOSPC": 28, "EPIPE": 32,
    "EWOULDBLOCK": 11, "ENOTSOCK": 88, "EDESTADDRREQ": 89, "EMSGSIZE": 90, "EPROTOTYPE": 91,
    "ENOPROTOOPT": 92, "EPROTONOSUPPORT": 93, "ESOCKTNOSUPPORT": 94, "EOPNOTSUPP": 95,
    "EAFNOSUPPORT": 97, "EADDRINUSE": 98, "EADDRNOTAVAIL": 99, "ENETDOWN": 100,
    "ENETUNREACH": 101, "ECONNABORTED": 103, "ECONNRESET": 104, "ENOBUFS": 105,
    "EISCONN": 106, "ENOTCONN": 107, "ETIMEDOUT": 110, "ECONNREFUSED": 111,
    "EHOSTUNREACH": 113, "EALREADY": 114, "EINPROGRESS": 115,
}
errorcode = dict(getattr(_e, "errorcode", {}))
for _k in _LINUX:
    _v = getattr(_e, _k, _LINUX[_k])
    globals()[_k] = _v
    if _v not in errorcode:
        errorcode[_v] = _k
