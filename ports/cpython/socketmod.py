"""`ustack.socket`: the stdlib `socket` module's surface over a ustack stack (CPython).

    import ustack
    ustack.patch(tap="ustack0", ip="192.0.2.2/24", host_ip="192.0.2.1/24")
    import socket, http.server         # unmodified code now talks through ustack

or without patching, `from ustack import socket` after `socket.use(host)` (a Host from
open_stack; `use(host, thread=True)` picks the stack for the calling thread only).

What it gives: the `socket` class (makefile, sendfile, recvfrom_into, recvmsg/recvmsg_into/
sendmsg without ancillary data, dup/detach/fromfd, family/type as the stdlib enums,
settimeout and the timeout errors exactly as the stdlib), create_connection, create_server,
getaddrinfo / gethostbyname through /etc/hosts, then the stack's DNS resolver (stack.dns,
core/dns.py), as glibc's "hosts: files dns"; connect()/bind() take names too (the first IPv4
address); gethostbyaddr names an address by itself: no PTR lookups), and every constant, exception
class and pure helper re-exported from the stdlib (so `except socket.timeout` catches ours). Each socket's fileno() is a real descriptor whose
readiness the runner keeps exact (see Runner._fileno), so select, selectors and asyncio's
loop work on it.

What stays with the host kernel, and why:
- AF_UNIX (and other non-IP families) sockets and socketpair(): a socket(AF_UNIX, ...) is
  the stdlib's, and socketpair() the host's AF_UNIX pair, so asyncio's self-pipe stays off the
  stack (a TCP pair over ustack's "lo" works too: connect to a listener on 127.0.0.1).
- AF_INET6 works when the stack carries IPv6 (config IPV6, on in `ustack up`/`run`); has_ipv6
  stays False (programs that probe it keep to IPv4; so does has_dualstack_ipv6, as CPython's
  follows it). IPV6_V6ONLY is 0 by default as on Linux (an AF_INET6 socket on :: serves IPv4
  peers as ::ffff:a.b.c.d), create_server sets it to 1 as the stdlib's does, and a %zone or
  scope_id names the stack's interface (scope_id: its position in the stack's interfaces,
  from 1).
- ssl.wrap_socket / SSLContext.wrap_socket need a kernel socket (OpenSSL reads the fd);
  patch() imports ssl first so its classes keep the stdlib base. asyncio's TLS runs over a
  memory BIO and needs no fd (not tested yet).
- Modules that ran `from socket import socket` before patch() keep the stdlib class.
- os.read/os.write/os.sendfile on fileno(): the descriptor signals readiness only.
- fork(): the stack stays in the parent. In the child every ustack socket (inherited or
  new) raises OSError(EBADF, "... a forked child cannot use ustack sockets ...") at once
  and close() only drops the child's copy; so socketserver's Forking* servers fail their
  requests instead of hanging. A child that exec()s is unaffected.
"""
import errno as _errno
import io as _io
import math as _math
import operator as _operator
import os as _os
import socket as _std
import threading as _threading
from socket import *  # noqa: F401,F403 - constants, exceptions, pure helpers
from socket import (AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC,  # noqa: F401
                    SOL_SOCKET, SO_REUSEADDR, AI_PASSIVE, AI_NUMERICHOST, AddressFamily,
                    SocketKind, gaierror, herror, timeout, error, getdefaulttimeout,
                    setdefaulttimeout, SocketIO)

# the stdlib originals, taken before anyone patches the module
_ORIG = dict((k, getattr(_std, k)) for k in (
    "socket", "SocketType", "create_connection", "create_server", "getaddrinfo", "gethostbyname",
    "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "fromfd", "has_ipv6",
    "has_dualstack_ipv6", "close"))
_StdSocket = _ORIG["socket"]
TCP_CONGESTION = getattr(_std, "TCP_CONGESTION", 13)  # Linux's value: a controller's name
# Linux's path MTU discovery options, which the stdlib does not name (core/socket.py)
IP_MTU_DISCOVER = getattr(_std, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE = 0, 1, 2, 3
IPV6_MTU_DISCOVER = getattr(_std, "IPV6_MTU_DISCOVER", 23)
_GLOBAL_DEFAULT_TIMEOUT = _std._GLOBAL_DEFAULT_TIMEOUT
socketpair = _std.socketpair  # the host's AF_UNIX pair (see the module doc)
has_ipv6 = False
_IP_FAMILIES = (AF_INET, AF_INET6)

_state = {"host": None}
_local = _threading.local()  # a per-thread stack, where one process drives several
_by_fd = {}             # descriptor -> _Shared: each registered fd holds one reference
_reg_lock = _threading.Lock()
_to_close = []          # sockets the garbage collector dropped: closed by the runner thread
_forked = [False]       # True in a child made by fork(): see _after_fork_in_child

FORKED = ("ustack.socket: a forked child cannot use ustack sockets (the stack and the thread "
          "that drives it stay in the parent process)")


def _after_fork_in_child():
    """fork() copies the stack but not the thread that drives it, and may copy its lock
    held by a thread the child does not have: waiting on either would hang the child (and a
    parent waiting for it, as socketserver's ForkingMixIn does). So in the child every ustack
    socket, old or new, fails at once with EBADF and FORKED; close() only marks it closed,
    leaving the parent's connection alone, as closing a copied kernel socket does."""
    global _reg_lock
    _forked[0] = True
    _reg_lock = _threading.Lock()
    del _to_close[:]


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)


def use(host, thread=False):
    """Make `host` (ustack.ports.cpython.host.Host) the stack new sockets are opened on: in
    every thread, or (thread=True) only in the calling one, ahead of the process-wide one."""
    if thread:
        _local.host = host
    else:
        _state["host"] = host
    if _reap not in host.runner.hooks:
        host.runner.hooks.append(_reap)
    return host


def default_host():
    if _forked[0]:
        raise OSError(_errno.EBADF, FORKED)
    h = getattr(_local, "host", None) or _state["host"]
    if h is None:
        raise OSError(_errno.ENETDOWN, "ustack.socket: no stack; call ustack.patch(...) or "
                                       "ustack.socket.use(host) first")
    return h


def _reap():
    """Runner hook (runner thread, under the lock): close what __del__ queued."""
    while _to_close:
        sh = _to_close.pop()
        if not sh.core.closed:
            sh.core.close()


class _Shared:
    """One ustack socket and the descriptors (dups) that refer to it."""

    def __init__(self, host, core):
        self.host = host
        self.core = core
        self.refs = 0
        self.timeout = -1.0  # what the core socket is set to now
        self.primary = core.fileno()

    def ref(self, fd):
        with _reg_lock:
            _by_fd[fd] = self
            self.refs += 1

    def unref(self, fd):
        with _reg_lock:
            if _by_fd.get(fd) is self:
                del _by_fd[fd]
            self.refs -= 1
            last = self.refs <= 0
        if fd != self.primary:
            _os.close(fd)
        if last:
            self.core.close()


def _check_timeout(value):
    if value is None:
        return None
    if not isinstance(value, (int, float)):
        value = _operator.index(value)
    value = float(value)
    if _math.isnan(value):
        raise ValueError("Invalid value NaN (not a number)")
    if value < 0:
        raise ValueError("Timeout value out of range")
    return value


def _host_port_checked(host, port):
    """The checks both families' addresses share, with the stdlib's errors: the port an int
    in 0..65535, the host a str (bytes decoded as IDNA). Returns the host as a str."""
    if not isinstance(port, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(port).__name__)
    if not 0 <= port <= 65535:
        raise OverflowError("bind(): port must be 0-65535.")
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("idna")
    if not isinstance(host, str):
        raise TypeError("str, bytes or bytearray expected, not %s" % type(host).__name__)
    return host


def _addr(address):
    """An (ip, port) the core takes: numeric hosts, 'localhost', '' and '<broadcast>'."""
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError("AF_INET address must be tuple, not %s" % type(address).__name__)
    host, port = address
    host = _host_port_checked(host, port)
    if host in ("", "<broadcast>"):
        return host, port
    return _numeric(host), port


def _addr6(address):
    """An AF_INET6 (host, port[, flowinfo[, scope_id]]) the core takes: a literal address
    (a %zone kept for the core), '' or 'localhost'; a name: its first AAAA address."""
    if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
        raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
    host, port = address[0], address[1]
    host = _host_port_checked(host, port)
    if host in ("", "localhost"):
        return host, port
    if _literal6(host):
        return (host, port) + tuple(address[2:])   # flowinfo, scope_id: the core's to read
    return _addresses(host, AF_INET6, 0)[0], port


def _numeric(host):
    """A literal address (or 'localhost') as text; a name: the first IPv4 address that
    getaddrinfo gives, as CPython's connect()/bind() resolve one."""
    try:
        return _literal(host)
    except gaierror:
        return _addresses(host, AF_INET, 0)[0]


def _literal(host):
    """A dotted-quad literal (or 'localhost') as text, else gaierror: nothing resolved."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if host.count(".") == 3:
            return _std.inet_ntoa(_std.inet_aton(host))
    except OSError:
        pass
    raise gaierror(_std.EAI_NONAME, "Name or service not known")


HOSTS = "/etc/hosts"  # read first, as glibc's "hosts: files dns"


def _hosts_file(name):
    """The IPv4 addresses HOSTS gives name (any case), in file order; [] if none or no file."""
    want = name.lower()
    found = []
    try:
        with open(HOSTS) as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) < 2 or want not in (n.lower() for n in fields[1:]):
                    continue
                try:
                    a = _std.inet_ntoa(_std.inet_aton(fields[0]))
                except OSError:
                    continue  # an IPv6 line
                if fields[0].count(".") == 3 and a not in found:
                    found.append(a)
    except OSError:
        pass
    return found


def _timeout_error(e):
    """The core's timeout (errno ETIMEDOUT, 'timed out') as the stdlib raises it."""
    if isinstance(e, timeout) and e.args == (_errno.ETIMEDOUT, "timed out"):
        return timeout("timed out")
    return e


class socket:
    """A ustack socket with the stdlib `socket.socket` interface."""

    def __new__(cls, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is not None and fileno not in _by_fd:
            return _StdSocket(family, type, proto, fileno)  # a kernel socket handed to us
        if fileno is None and family not in (-1,) + _IP_FAMILIES:
            return _StdSocket(family, type, proto)  # AF_UNIX and friends: the host's
        return object.__new__(cls)

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        self._io_refs = 0
        self._closed = False
        if fileno is not None:
            sh = _by_fd[fileno]  # takes over the reference this descriptor holds
            c = sh.core
            family = c.family if family == -1 else family
            type = c.type if type == -1 else type
            proto = c.proto if proto == -1 else proto
            self._fd = fileno
        else:
            family = AF_INET if family == -1 else family
            type = SOCK_STREAM if type == -1 else type
            proto = 0 if proto == -1 else proto
            host = default_host()
            c = host.runner.socket(family, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), proto)
            sh = _Shared(host, c)
            self._fd = sh.primary
            sh.ref(self._fd)
        self._sh = sh
        self._c = sh.core
        self._family = family
        self._type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        self._proto = proto
        self._timeout = 0.0 if type & SOCK_NONBLOCK else getdefaulttimeout()
        if fileno is None:
            self._fd_mode()

    @classmethod
    def _attach(cls, sh, fd):
        s = object.__new__(cls)
        s.__init__(fileno=fd)
        return s

    # ---- attributes ------------------------------------------------------------------------
    @property
    def family(self):
        return _enum(self._family, AddressFamily)

    @property
    def type(self):
        return _enum(self._type, SocketKind)

    @property
    def proto(self):
        return self._proto

    @property
    def timeout(self):
        return self._timeout

    def __repr__(self):
        s = "<%s.%s%s fd=%i, family=%s, type=%s, proto=%i" % (
            self.__class__.__module__, self.__class__.__qualname__,
            " [closed]" if self._closed else "", self.fileno(), self._family and self.family,
            self._type and self.type, self._proto)
        if not self._closed:
            try:
                s += ", laddr=%s" % (self.getsockname(),)
                s += ", raddr=%s" % (self.getpeername(),)
            except OSError:
                pass
        return s + ">"

    def __getstate__(self):
        raise TypeError("cannot pickle %r object" % self.__class__.__name__)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        if not self._closed:
            self.close()

    def __del__(self):
        try:
            self._collected()
        except Exception:  # interpreter shutdown: the module's globals may be gone
            pass

    def _collected(self):
        """Dropped without close(): as a kernel socket, it closes (from the runner thread)."""
        if _forked[0]:
            return  # the parent's socket: nothing of it is the child's to close
        if not getattr(self, "_closed", True) and getattr(self, "_fd", -1) >= 0:
            import warnings
            warnings.warn("unclosed %r" % self, ResourceWarning, source=self)
            sh = self._sh
            with _reg_lock:
                if _by_fd.get(self._fd) is sh:
                    del _by_fd[self._fd]
                sh.refs -= 1
                last = sh.refs <= 0
            if self._fd != sh.primary:
                try:
                    _os.close(self._fd)
                except OSError:
                    pass
            if last:  # not here: the collector may run inside the stack's poll
                _to_close.append(sh)
                sh.host.runner.wake()
            self._fd = -1

    # ---- descriptors ----------------------------------------------------------------------
    def fileno(self):
        return self._fd

    def _check(self):
        if _forked[0]:
            raise OSError(_errno.EBADF, FORKED)
        fd = self._fd
        if fd < 0 or _by_fd.get(fd) is not self._sh:  # closed, or socket.close(fd) ran
            raise OSError(_errno.EBADF, "Bad file descriptor")

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self):
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            if _forked[0]:
                return  # a forked child's copy (see _after_fork_in_child)
            if _by_fd.get(fd) is not self._sh:
                raise OSError(_errno.EBADF, "Bad file descriptor")  # socket.close(fd) ran
            self._sh.unref(fd)

    def _decref_socketios(self):
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def detach(self):
        """Give up the descriptor without closing it; socket(fileno=fd) takes it back."""
        fd = self._fd
        self._fd = -1
        self._closed = True
        return fd

    def dup(self):
        self._check()
        fd = _os.dup(self._fd)
        self._sh.ref(fd)
        s = self._attach(self._sh, fd)
        s.settimeout(self._timeout)
        return s

    def get_inheritable(self):
        return _os.get_inheritable(self._fd)

    def set_inheritable(self, inheritable):
        _os.set_inheritable(self._fd, inheritable)

    # ---- timeouts -------------------------------------------------------------------------
    def settimeout(self, value):
        self._timeout = _check_timeout(value)
        self._fd_mode()

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0
        self._fd_mode()

    def _fd_mode(self):
        """O_NONBLOCK on the descriptor as the stdlib leaves it: clear only when blocking."""
        self._check()
        _os.set_blocking(self._fd, self._timeout is None)

    def getblocking(self):
        return self._timeout != 0.0

    def _core(self, t=-1.0):
        """The core socket, set to this object's timeout (or t) for the next call."""
        self._check()
        if t == -1.0:
            t = self._timeout
        sh = self._sh
        if sh.timeout != t:
            self._c.settimeout(t)
            sh.timeout = t
        return self._c

    def _call(self, name, *args):
        c = self._core()
        try:
            return getattr(c, name)(*args)
        except timeout as e:
            raise _timeout_error(e) from None

    # ---- names and connections -------------------------------------------------------------
    def bind(self, address):
        self._call("bind", self._inet(address))

    def _inet(self, address):
        if self._family == AF_INET6:
            return _addr6(address)
        if self._family != AF_INET:
            raise OSError(_errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return _addr(address)

    def listen(self, backlog=None):
        if backlog is None:
            backlog = min(_std.SOMAXCONN, 128)
        backlog = _operator.index(backlog)
        if backlog > 0x7FFFFFFF:
            raise OverflowError("Python int too large to convert to C int")
        self._call("listen", max(backlog, 0))

    def _accept(self):
        """(descriptor, address) of the next connection, as _socket.socket._accept."""
        c = self._core()
        try:
            core, addr = c.accept()
        except timeout as e:
            raise _timeout_error(e) from None
        sh = _Shared(self._sh.host, core)
        sh.ref(sh.primary)
        return sh.primary, addr

    def accept(self):
        fd, addr = self._accept()
        s = self._attach(_by_fd[fd], fd)
        if getdefaulttimeout() is None and self.gettimeout():
            s.setblocking(True)
        return s, addr

    def connect(self, address):
        self._call("connect", self._inet(address))

    def connect_ex(self, address):
        try:
            return self._call("connect_ex", self._inet(address))
        except gaierror:
            raise
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno

    def getsockname(self):
        return self._call("getsockname")

    def getpeername(self):
        return self._call("getpeername")

    def shutdown(self, how):
        how = _operator.index(how)
        if not -0x80000000 <= how <= 0x7FFFFFFF:
            raise OverflowError("Python int too large to convert to C int")
        self._call("shutdown", how)

    def setsockopt(self, level, optname, value, optlen=None):
        if value is None:
            value = bytes(optlen or 0)
        elif isinstance(value, str):
            raise TypeError("a bytes-like object is required, not 'str'")  # as CPython
        self._call("setsockopt", level, optname, value)

    def getsockopt(self, level, optname, buflen=None):
        v = self._call("getsockopt", level, optname)
        if buflen is None:
            if isinstance(v, (bytes, bytearray)):
                return int.from_bytes(bytes(v[:4]), "little", signed=True)
            return int(v)
        if not 0 < buflen <= 1024:
            raise OSError(_errno.EINVAL, "getsockopt buflen out of range")
        b = bytes(v) if isinstance(v, (bytes, bytearray)) else int(v).to_bytes(4, "little", signed=True)
        return b[:buflen]

    # ---- receiving ------------------------------------------------------------------------
    def recv(self, bufsize, flags=0):
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        return self._call("recv", bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        mv, nbytes = _into(buffer, nbytes, "recv_into", "buffer too small for requested bytes")
        if nbytes == 0:
            return 0
        d = self._call("recv", nbytes, flags)
        mv[:len(d)] = d
        return len(d)

    def recvfrom(self, bufsize, flags=0):
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        if self._type == SOCK_STREAM:
            return self._call("recv", bufsize, flags), None
        return self._call("recvfrom", bufsize, flags)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        mv, nbytes = _into(buffer, nbytes, "recvfrom_into",
                           "nbytes is greater than the length of the buffer")
        d, addr = self.recvfrom(nbytes, flags)
        mv[:len(d)] = d
        return len(d), addr

    def recvmsg(self, bufsize, ancbufsize=0, flags=0):
        """No ancillary data: (data, [], msg_flags, address); MSG_TRUNC in msg_flags when a
        datagram was longer than bufsize, as Linux says."""
        bufsize = _operator.index(bufsize)
        if bufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        _msg_args(ancbufsize, flags, "recvmsg")
        return self._recvmsg(bufsize, flags)

    def _recvmsg(self, bufsize, flags):
        if self._type == SOCK_STREAM:
            d, addr = self.recvfrom(bufsize, flags)
            return d, [], 0, addr
        # the whole datagram (the core drops what a shorter read leaves): its length says
        # whether it was truncated
        d, addr = self.recvfrom(_MAX_DATAGRAM, flags)
        if len(d) > bufsize:
            return d[:bufsize], [], _std.MSG_TRUNC, addr
        return d, [], 0, addr

    def recvmsg_into(self, buffers, ancbufsize=0, flags=0):
        """Scatter one receive over buffers: (nbytes, [], msg_flags, address)."""
        try:
            views = [memoryview(b).cast("B") for b in buffers]
        except TypeError:
            raise TypeError("recvmsg_into() argument 1 must be an iterable of writable "
                            "bytes-like objects") from None
        for v in views:
            if v.readonly:
                raise TypeError("recvmsg_into() argument 1 must be an iterable of writable "
                                "bytes-like objects")
        _msg_args(ancbufsize, flags, "recvmsg_into")
        d, _, mflags, addr = self._recvmsg(sum(len(v) for v in views), flags)
        i = 0
        for v in views:
            k = min(len(v), len(d) - i)
            v[:k] = d[i:i + k]
            i += k
        return len(d), [], mflags, addr

    # ---- sending --------------------------------------------------------------------------
    def send(self, data, flags=0):
        flags = _operator.index(flags)
        blocking = self._timeout is None and not flags & _std.MSG_DONTWAIT
        if blocking and self._type == SOCK_STREAM:
            # as Linux: a blocking stream send() returns once all of it is queued (a short
            # count only with a timeout or non-blocking); programs such as uiperf3 rely on it
            self.sendall(data, flags)
            return memoryview(data).nbytes
        return self._call("send", _bytes_like(data), flags)

    def sendto(self, data, *args):
        if len(args) == 1:
            flags, addr = 0, args[0]
        elif len(args) == 2:
            flags, addr = args
        else:
            raise TypeError("sendto() takes 2 or 3 arguments (%d given)" % (len(args) + 1))
        data = _bytes_like(data)
        if not isinstance(flags, int):
            raise TypeError("'%s' object cannot be interpreted as an integer" % type(flags).__name__)
        if self._type == SOCK_STREAM:
            return self.send(data, flags)  # Linux ignores the address of a connected stream
        return self._call("sendto", data, flags, self._inet(addr))

    def sendall(self, data, flags=0):
        """As the stdlib: the timeout bounds the whole call, not each send."""
        if self._type != SOCK_STREAM:
            self.send(data, flags)
            return None
        mv = memoryview(_bytes_like(data)).cast("B")
        n = len(mv)
        i = 0
        t = self._timeout
        end = _monotonic() + t if t else None
        while i < n:
            if end is not None:
                rest = end - _monotonic()
                if rest <= 0:
                    raise timeout("timed out")
                c = self._core(rest)
            else:
                c = self._core()
            try:
                i += c.send(mv[i:], flags)
            except timeout as e:
                raise _timeout_error(e) from None
        return None

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        """Gather buffers into one send; arguments checked as the C implementation does.
        Ancillary data is refused (EOPNOTSUPP) once its items are well formed."""
        try:
            data = b"".join(memoryview(b).cast("B") for b in buffers)
        except TypeError:
            raise TypeError("sendmsg() argument 1 must be an iterable of bytes-like "
                            "objects") from None
        try:
            anc = list(ancdata)
        except TypeError:
            raise TypeError("sendmsg() argument 2 must be an iterable") from None
        for item in anc:
            if not isinstance(item, tuple) or len(item) != 3:
                raise TypeError("[sendmsg() ancillary data items]() argument must be "
                                "sequence of length 3")
            _operator.index(item[0])
            _operator.index(item[1])
            memoryview(item[2])
        flags = _operator.index(flags)
        if address is not None:
            self._inet(address)
        if anc:
            raise OSError(_errno.EOPNOTSUPP, "ustack: no ancillary data")
        if address is not None:
            return self.sendto(data, flags, address)
        return self.send(data, flags)

    def sendfile(self, file, offset=0, count=None):
        """file's bytes through send(), as the stdlib's fallback; returns bytes sent."""
        try:
            return self._sendfile_use_sendfile(file, offset, count)
        except _std._GiveupOnSendfile:
            return self._sendfile_use_send(file, offset, count)

    def _sendfile_use_sendfile(self, file, offset=0, count=None):
        """os.sendfile() needs a kernel socket: always the stdlib's signal to fall back."""
        try:
            fileno = file.fileno()
        except (AttributeError, _io.UnsupportedOperation) as err:
            raise _std._GiveupOnSendfile(err)
        try:
            _os.fstat(fileno)
        except OSError as err:
            raise _std._GiveupOnSendfile(err)
        raise _std._GiveupOnSendfile("ustack: os.sendfile() needs a kernel socket")

    def _check_sendfile_params(self, file, offset, count):
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not self._type & SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        if count is not None:
            if not isinstance(count, int):
                raise TypeError("count must be a positive integer (got {!r})".format(count))
            if count <= 0:
                raise ValueError("count must be a positive integer (got {!r})".format(count))

    def _sendfile_use_send(self, file, offset=0, count=None):
        self._check_sendfile_params(file, offset, count)
        if self.gettimeout() == 0:
            raise ValueError("non-blocking sockets are not supported")
        if offset:
            file.seek(offset)
        total = 0
        try:
            while True:
                n = 65536 if count is None else min(count - total, 65536)
                if n <= 0:
                    break
                d = file.read(n)
                if not d:
                    break
                self.sendall(d)
                total += len(d)
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)

    # ---- files ----------------------------------------------------------------------------
    def makefile(self, mode="r", buffering=None, *, encoding=None, errors=None, newline=None):
        """A file object over the socket, as the stdlib builds it (SocketIO + io buffers)."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError("invalid mode %r (only r, w, b allowed)" % (mode,))
        writing = "w" in mode
        reading = "r" in mode or not writing
        assert reading or writing
        binary = "b" in mode
        rawmode = ""
        if reading:
            rawmode += "r"
        if writing:
            rawmode += "w"
        raw = SocketIO(self, rawmode)
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = _io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer = _io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = _io.BufferedReader(raw, buffering)
        else:
            buffer = _io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        encoding = _io.text_encoding(encoding)
        text = _io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode
        return text


SocketType = socket


def _bytes_like(data):
    if isinstance(data, (bytes, bytearray)):
        return data
    try:
        memoryview(data)
    except TypeError:
        raise TypeError("a bytes-like object is required, not '%s'" % type(data).__name__) from None
    return data


def _into(buffer, nbytes, what, too_small):
    """recv_into's and recvfrom_into's byte view of buffer and byte count (0: all of it),
    refused with CPython's words."""
    if nbytes < 0:
        raise ValueError("negative buffersize in " + what)
    mv = memoryview(buffer).cast("B")
    if nbytes == 0:
        nbytes = len(mv)
    elif nbytes > len(mv):
        raise ValueError(too_small)
    return mv, nbytes


_MAX_DATAGRAM = 65535  # RFC 791: no datagram is longer


def _msg_args(ancbufsize, flags, what):
    """recvmsg's and recvmsg_into's ancbufsize and flags, checked as CPython checks them."""
    if _operator.index(ancbufsize) < 0:
        raise ValueError("negative buffer size in %s()" % what)
    _operator.index(flags)


def _enum(value, kind):
    try:
        return kind(value)
    except ValueError:
        return value


def close(fd):
    """socket.close(fd): a ustack descriptor drops its socket reference; others the kernel's."""
    if fd in _by_fd:
        if not _forked[0]:
            _by_fd[fd].unref(fd)
    else:
        _ORIG["close"](fd)


def _monotonic():
    import time
    return time.monotonic()


# ---- module-level helpers ---------------------------------------------------------------------
def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """Numeric hosts, 'localhost', and names through the stack's DNS resolver (core/dns.py:
    A records, or AAAA for family=AF_INET6; its failures as the stdlib's gaierror codes)."""
    if family not in (0, AF_INET, AF_INET6):
        raise gaierror(_std.EAI_FAMILY, "ai_family not supported")
    if host is None:
        if family == AF_INET6:
            raise gaierror(_std.EAI_FAMILY, "ai_family not supported")
        addrs = ["0.0.0.0" if flags & AI_PASSIVE else "127.0.0.1"]
    else:
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("idna")
        if family != AF_INET and isinstance(host, str) and _literal6(host):
            family = AF_INET6
            addrs = [host]
        else:
            addrs = _addresses(host, family, flags)
    if port is None:
        p = 0
    elif isinstance(port, int):
        p = port
    else:
        if isinstance(port, (bytes, bytearray)):
            port = bytes(port).decode()
        if port.isdigit():
            p = int(port)
        else:
            try:
                p = _std.getservbyname(port, "udp" if type == SOCK_DGRAM else "tcp")
            except OSError:
                raise gaierror(_std.EAI_SERVICE, "Servname not supported for ai_socktype")
    kinds = ((SOCK_STREAM, 6), (SOCK_DGRAM, 17), (_std.SOCK_RAW, 0))
    out = []
    for k, pr in kinds:
        if (type and k != type) or (proto and pr and pr != proto):
            continue
        if not type and k == _std.SOCK_RAW and proto:
            continue
        for addr in addrs:
            if family == AF_INET6:
                out.append((AddressFamily.AF_INET6, SocketKind(k), pr if not proto else proto, "",
                            (addr, p, 0, 0)))
            else:
                out.append((AddressFamily.AF_INET, SocketKind(k), pr if not proto else proto, "",
                            (addr, p)))
    if not out:
        raise gaierror(_std.EAI_SOCKTYPE, "ai_socktype not supported")
    return out


def _addresses(host, family, flags):
    """host's addresses as text: a literal, 'localhost', or the resolver's answer."""
    if family != AF_INET6:
        if host == "":
            return ["0.0.0.0"]
        try:
            return [_literal(host)]
        except gaierror:
            pass
    if flags & AI_NUMERICHOST or host == "" or ":" in host:
        raise gaierror(_std.EAI_NONAME, "Name or service not known")
    if family != AF_INET6:
        found = _hosts_file(host)
        if found:
            return found
    h = default_host()
    fam = 10 if family == AF_INET6 else 2  # core/dns.py's AF_INET6 / AF_INET
    try:
        found = h.runner.call(_resolve, h.stack, host, fam)
    except OSError as e:
        code = e.args[0] if e.args else 0
        if isinstance(code, int) and code < 0:  # a getaddrinfo code (core/dns.py)
            raise gaierror(_GAI.get(code, code), e.args[1]) from None
        raise
    if family == AF_INET6:
        return [_std.inet_ntop(AF_INET6, a) for a in found]
    return [_std.inet_ntoa(a) for a in found]


def _literal6(host):
    """Is host an IPv6 literal (a %zone allowed)?"""
    if ":" not in host:
        return False
    try:
        _std.inet_pton(AF_INET6, host.split("%", 1)[0])
        return True
    except OSError:
        return False


def _resolve(stack, host, fam):
    """Under the runner's lock: stack.dns is made at first use, once."""
    return stack.dns.resolve(host, fam)


# core/dns.py's codes (glibc's numbers) -> this platform's socket.EAI_*
_GAI = {-2: _std.EAI_NONAME, -3: _std.EAI_AGAIN, -4: _std.EAI_FAIL,
        -5: getattr(_std, "EAI_NODATA", _std.EAI_NONAME), -6: _std.EAI_FAMILY}


def gethostbyname(hostname):
    return getaddrinfo(hostname, 0, AF_INET, SOCK_STREAM)[0][4][0]


def gethostbyname_ex(hostname):
    addrs = [ai[4][0] for ai in getaddrinfo(hostname, 0, AF_INET, SOCK_STREAM)]
    return hostname, [], addrs


def gethostbyaddr(ip_address):
    """No resolver yet: an address names itself (so getfqdn() gives the address)."""
    a = gethostbyname(ip_address)
    if a == "127.0.0.1":
        return "localhost", [], [a]
    return a, [], [a]


def getnameinfo(sockaddr, flags):
    if not isinstance(sockaddr, tuple):
        del sockaddr  # the traceback keeps this frame: hold no reference to the argument
        raise TypeError("getnameinfo() argument 1 must be a tuple")
    host, port = sockaddr[0], sockaddr[1]
    return _literal(host), str(port)  # as CPython's: a numeric host only


def has_dualstack_ipv6():
    """False, as CPython's answer follows has_ipv6 (which stays False, see above); the
    stack's AF_INET6 sockets are dual (IPV6_V6ONLY 0) all the same."""
    return False


def _socket_class():
    """socket, or what replaced it in the patched stdlib module (a subclass, a test's mock):
    the stdlib helpers look the class up there at call time too."""
    c = _std.socket
    return c if c is not _StdSocket else socket


def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *,
                      all_errors=False):
    host, port = address
    errors = []
    for af, kind, proto, _cn, sa in getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = _socket_class()(af, kind, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
            return sock
        except error as e:
            errors.append(e)
            if sock is not None:
                sock.close()
    if all_errors:
        raise ExceptionGroup("create_connection failed", errors)  # noqa: F821 - 3.11+
    raise errors[0]


def create_server(address, *, family=AF_INET, backlog=None, reuse_port=False,
                  dualstack_ipv6=False):
    if reuse_port and not hasattr(_std, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        raise ValueError("dualstack_ipv6 not supported on this platform")
    sock = _socket_class()(family, SOCK_STREAM)
    try:
        sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(SOL_SOCKET, _std.SO_REUSEPORT, 1)
        if family == AF_INET6:   # as the stdlib's: V6ONLY unless dual-stack was asked for
            sock.setsockopt(_std.IPPROTO_IPV6, _std.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except error as e:
            raise error(e.errno, "%s (while attempting to bind on address %r)" % (
                e.strerror, address)) from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except error:
        sock.close()
        raise


def fromfd(fd, family, type, proto=0):
    """A new socket on a duplicate of fd (a ustack descriptor, or a kernel one)."""
    if fd in _by_fd:
        nfd = _os.dup(fd)
        sh = _by_fd[fd]
        sh.ref(nfd)
        cls = _socket_class()  # as the stdlib: an instance of what socket.socket is now
        try:
            ours = issubclass(cls, socket)
        except TypeError:  # a test's mock, not a class
            ours = False
        return (cls if ours else socket)._attach(sh, nfd)
    return _ORIG["fromfd"](fd, family, type, proto)


# ---- patching the stdlib module -------------------------------------------------------------
_PATCH = ("socket", "SocketType", "create_connection", "create_server", "getaddrinfo",
          "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "fromfd",
          "has_ipv6", "has_dualstack_ipv6", "close")


def patch(host=None, **open_stack_args):
    """Make the stdlib `socket` module (and so unmodified code) use ustack for this process.
    Takes a running Host, or open_stack's arguments to start one. Returns the Host."""
    if host is None:
        from ustack.ports.cpython.host import open_stack, LINGER_S
        import atexit
        host = open_stack(**open_stack_args)
        # the process's own stack: at its exit, the connections finish closing (a FIN lost
        # then is resent, Host.finish_closing) before the daemon thread driving it stops
        atexit.register(host.close, LINGER_S)
    use(host)
    try:
        import ssl  # noqa: F401 - binds ssl.SSLSocket to the stdlib class before we patch
    except ImportError:
        pass
    g = globals()
    for k in _PATCH:
        setattr(_std, k, g[k])
    return host


def unpatch():
    for k in _PATCH:
        setattr(_std, k, _ORIG[k])
