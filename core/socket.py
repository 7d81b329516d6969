"""BSD-style socket objects over the core, mirroring Python's `socket` module.

The core is non-blocking; a socket in blocking or timeout mode waits through `Stack.wait`,
which a port implements (drive the stack in this thread until ready, or wait on a condition
while another thread drives it). Errors are OSError with the errno a BSD socket gives.
"""
from ustack.core.compat import (
    EAGAIN, EBADF, EINVAL, ENOPROTOOPT, EAFNOSUPPORT, EPROTONOSUPPORT, ENOTCONN, ENETUNREACH,
    oserror, timeout_error)
from ustack.core.wire import ipv4 as ip4

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58
IPV6_V6ONLY = 26     # Linux's: the socket takes IPv6 only (no v4-mapped peers)
IPV6_MTU_DISCOVER = 23   # Linux's: IP_MTU_DISCOVER for IPv6 datagrams (same values)
IPV6_DONTFRAG = 62   # RFC 3542 11.2: a datagram over the path MTU fails (EMSGSIZE)
SOL_SOCKET = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_LINGER = 13
SO_REUSEPORT = 15
IP_TOS = 1
IP_TTL = 2
IP_HDRINCL = 3
IP_MTU_DISCOVER = 10     # Linux's: whether datagrams may be fragmented here (values below)
IP_PMTUDISC_DONT = 0     # fragment, never DF
IP_PMTUDISC_WANT = 1     # Linux's default
IP_PMTUDISC_DO = 2       # DF; a datagram over the path MTU fails with EMSGSIZE
IP_PMTUDISC_PROBE = 3    # DF; over the link's MTU fails
IP_PMTUDISC_INTERFACE = 4
IP_PMTUDISC_OMIT = 5
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_CONGESTION = 13  # Linux's: the congestion controller's name (core/tcp/cc.py NAMES)
ENOENT = 2  # errno (2 on every system): TCP_CONGESTION names no controller, as on Linux
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
MSG_PEEK = 2
MSG_DONTWAIT = 0x40

INADDR_ANY = ip4.ANY
# The address families sockets take. AF_INET6 joins with IPv6 (issue 9): parse_addr,
# fmt_addr, any_addr and loopback_addr are where its address forms go.
FAMILIES = (AF_INET, AF_INET6)
LOOPBACK4 = b"\x7f\x00\x00\x01"
ANY6 = b"\x00" * 16
LOOPBACK6 = b"\x00" * 15 + b"\x01"


def any_addr(family):
    """The family's unspecified address (a wildcard bind)."""
    if family == AF_INET:
        return ip4.ANY
    if family == AF_INET6:
        return ANY6
    raise oserror(EAFNOSUPPORT)


def loopback_addr(family):
    """Where connect() to the unspecified address goes (Linux: the loopback address)."""
    if family == AF_INET:
        return LOOPBACK4
    if family == AF_INET6:
        return LOOPBACK6
    raise oserror(EAFNOSUPPORT)


def parse_addr(addr, op="connect", family=AF_INET):
    """A socket address of family as Python's socket takes it -> (address bytes, port).
    AF_INET: ('192.0.2.1', 7) -> (4-byte address, port). '' and '<broadcast>' as Python
    does; a wrong shape or type raises what CPython's socket raises (TypeError,
    OverflowError naming op), an address that is no IPv4 address OSError. AF_INET6's
    (host, port[, flowinfo[, scope_id]]): (16 bytes, port); a '%zone' suffix or scope_id is
    read by scope_iface (a link-local address's link, RFC 4007 6). An IPv4-mapped
    ::ffff:a.b.c.d (RFC 4291 2.5.5.2) comes back as its 4 IPv4 bytes: the socket speaks
    IPv4 to it (RFC 3493 3.7), unless IPV6_V6ONLY forbids (Socket.check_mapped)."""
    if family == AF_INET6:
        return parse_addr6(addr, op)
    if family != AF_INET:
        raise oserror(EAFNOSUPPORT)
    if not isinstance(addr, tuple):
        raise TypeError("%s(): AF_INET address must be tuple, not %s" % (op, type(addr).__name__))
    if len(addr) != 2:
        raise TypeError("AF_INET address must be a pair (host, port)")
    host, port = addr
    port = check_int(port)
    if not 0 <= port <= 65535:
        raise OverflowError("%s(): port must be 0-65535." % op)
    if host == "" or host is None:
        return ip4.ANY, port
    if not isinstance(host, str):
        if not isinstance(host, bytes) and not isinstance(host, bytearray):
            raise TypeError("str, bytes or bytearray expected, not %s" % type(host).__name__)
        host = str(host, "ascii")
    if host == "<broadcast>":
        return ip4.BROADCAST, port
    if host == "localhost":
        return LOOPBACK4, port
    try:
        return ip4.aton(host), port
    except (ValueError, AttributeError):
        raise oserror(EAFNOSUPPORT if ":" in host else EINVAL)


def parse_addr6(addr, op):
    from ustack.core import addr6
    if not isinstance(addr, tuple):
        raise TypeError("%s(): AF_INET6 address must be tuple, not %s"
                        % (op, type(addr).__name__))
    if not 2 <= len(addr) <= 4:
        raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
    host = addr[0]
    port = check_int(addr[1])
    if not 0 <= port <= 65535:
        raise OverflowError("%s(): port must be 0-65535." % op)
    if host == "" or host is None:
        return ANY6, port
    if not isinstance(host, str):
        if not isinstance(host, bytes) and not isinstance(host, bytearray):
            raise TypeError("str, bytes or bytearray expected, not %s" % type(host).__name__)
        host = str(host, "ascii")
    if host == "localhost":
        return LOOPBACK6, port
    try:
        a = addr6.pton(addr6.split_zone(host)[0])
    except (ValueError, OSError):
        raise oserror(EAFNOSUPPORT if ":" not in host else EINVAL)
    if addr6.is_v4mapped(a, 0):
        return a[12:], port
    return a, port


def _zero(a):
    for x in a:
        if x:
            return False
    return True


def is_link_local6(a):
    return len(a) == 16 and a[0] == 0xFE and (a[1] & 0xC0) == 0x80


def scope_iface(stack, addr, ip, strict):
    """The interface a link-local ip (RFC 4007 6) of the AF_INET6 socket address addr
    leaves by: its '%zone' (an interface name) or its scope_id (the interface's position in
    stack.ifaces, from 1: what scope_id_of reports), else the only IPv6 link. An unknown
    zone: ENETUNREACH (Linux's for a scope_id no interface has). None without a zone on a
    stack of several links - strict (connect): EINVAL, as Linux refuses it."""
    zone = None
    h = addr[0]
    if isinstance(h, str) and "%" in h:
        zone = h[h.find("%") + 1:]
        if zone.isdigit():
            zone = int(zone)          # 'fe80::1%2': an index, as getaddrinfo reads it
    elif len(addr) == 4 and addr[3]:
        zone = check_int(addr[3])
    links = [i for i in stack.ifaces if i.nd is not None]
    if zone is None:
        if len(links) == 1:
            return links[0]
        if strict:
            raise oserror(EINVAL)
        return None
    for k in range(len(stack.ifaces)):
        i = stack.ifaces[k]
        if (i.name == zone or k + 1 == zone) and i.nd is not None:
            return i
    raise oserror(ENETUNREACH)


def scope_id_of(stack, a, local):
    """A link-local address's scope_id for socket names: the position (from 1) in
    stack.ifaces of the interface holding our address local; 0 for other addresses."""
    if not is_link_local6(a) or stack.ipv6 is None:
        return 0
    return iface_index(stack, stack.ipv6.local_iface(local, 0) if len(local) == 16 else None)


def iface_index(stack, iface):
    """iface's scope_id: its position in stack.ifaces from 1 (0: None or not there)."""
    k = 0
    while k < len(stack.ifaces):
        if stack.ifaces[k] is iface:
            return k + 1
        k += 1
    return 0


def binds_overlap(o, s, ip):
    """Would socket s bound to ip share socket o's address space on one port? The same
    family: either is the wildcard or both are the same address. IPv4 and IPv6: only when
    the IPv6 one is a dual :: (no IPV6_V6ONLY), which holds every IPv4 address too (Linux:
    EADDRINUSE for 0.0.0.0 and :: on one port unless the IPv6 socket is V6ONLY)."""
    a = o.local_ip
    if len(a) == len(ip):
        return _zero(a) or _zero(ip) or a == ip
    if len(a) == 16:
        return o.dual()
    return s.family == AF_INET6 and not s.v6only and _zero(ip)


def check_int(v):
    """v as an int, or CPython's TypeError for a non-integer (a str, a float)."""
    if not isinstance(v, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(v).__name__)
    return v


def check_bufsize(n, op):
    """recv/recvfrom's size: an int >= 0 (CPython's TypeError / ValueError)."""
    if not isinstance(n, int):
        check_int(n)
    if n < 0:
        raise ValueError("negative buffersize in " + op)
    return n


def check_nbytes(buf, nbytes, op):
    """recv_into/recvfrom_into's nbytes: 0 means len(buf); never more than the buffer holds
    (CPython raises rather than grow or overrun it). Returns the byte count to fill."""
    if not isinstance(nbytes, int):
        check_int(nbytes)
    if nbytes < 0:
        raise ValueError("negative buffersize in " + op)
    n = len(buf)
    if nbytes > n:
        raise ValueError("buffer too small for requested bytes" if op == "recv_into"
                         else "nbytes is greater than the length of the buffer")
    return nbytes or n


def check_data(data):
    """send's data must be bytes-like: a str is CPython's TypeError (checked without
    allocating: send runs with the heap locked on MicroPython)."""
    if isinstance(data, str):
        raise TypeError("a bytes-like object is required, not 'str'")


def fmt_addr(a, port, family=AF_INET):
    """An address (its length says the family) and port as a socket address tuple; an IPv4
    address on an AF_INET6 socket as the v4-mapped ::ffff:a.b.c.d (RFC 3493 3.7)."""
    if len(a) == 4:
        if family == AF_INET6:
            return ("::ffff:" + ip4.ntoa(a), port, 0, 0)
        return (ip4.ntoa(a), port)
    if len(a) == 16:
        from ustack.core import addr6
        return (addr6.ntop(a), port, 0, 0)
    raise oserror(EAFNOSUPPORT)


def fmt_addr_at(b, o, family, port, sock_family=AF_INET):
    """The address of family at b[o] and port as a socket address tuple (recvfrom's): on
    an AF_INET6 socket an IPv4 source is v4-mapped (RFC 3493 3.7)."""
    if family == AF_INET:
        if sock_family == AF_INET6:
            return ("::ffff:" + ip4.ntoa(b, o), port, 0, 0)
        return (ip4.ntoa(b, o), port)
    if family == AF_INET6:
        from ustack.core import addr6
        return (addr6.ntop(b, o), port, 0, 0)
    raise oserror(EAFNOSUPPORT)


class Socket:
    """Common state and API of every socket kind; protocols subclass it."""
    # Fixed slots instead of a per-instance dict under CPython: a connection's socket is
    # the largest part of an idle connection (1.6 KB with a dict of 37 keys, beyond what
    # CPython shares between instances). Compiled, these are a C struct (socket.pxd); a
    # subclass that lets ports attach attributes names "__dict__" in its own slots (TCP's).
    # MicroPython ignores __slots__.
    __slots__ = ("stack", "family", "type", "proto", "local_ip", "local_port", "remote_ip",
                 "remote_port", "timeout", "so_error", "closed", "reuse_opts",
                 "broadcast", "ttl", "tos", "rcvbuf", "sndbuf", "v6only", "pmtudisc",
                 "pmtudisc6", "dontfrag6", "on_event", "__weakref__")

    def __init__(self, stack, family, type, proto):
        if family not in FAMILIES:
            raise oserror(EAFNOSUPPORT)
        self.stack = stack
        self.family = family
        self.type = type
        self.proto = proto
        self.local_ip = any_addr(family)
        self.local_port = 0
        self.remote_ip = self.local_ip
        self.remote_port = 0
        self.timeout = None  # None blocking, 0 non-blocking, >0 seconds
        self.so_error = 0
        self.closed = False
        # may the port be shared: SO_REUSEADDR or SO_REUSEPORT, which of the two were set
        # (1: ADDR, 2: PORT), as read back (no flag of its own beside it: the attribute
        # tables of MicroPython's sockets are near a size step)
        self.reuse_opts = 0
        self.broadcast = False
        self.ttl = 0
        self.tos = 0
        self.rcvbuf = 0
        self.sndbuf = 0
        self.v6only = False   # IPV6_V6ONLY: 0 by default, as Linux's bindv6only=0
        self.pmtudisc = IP_PMTUDISC_WANT    # IP_MTU_DISCOVER
        self.pmtudisc6 = IP_PMTUDISC_WANT   # IPV6_MTU_DISCOVER
        self.dontfrag6 = False              # IPV6_DONTFRAG
        self.on_event = None  # port hook: readiness changed

    # ---- blocking -------------------------------------------------------------------------
    def settimeout(self, t):
        self._check_open()
        if isinstance(t, (str, bytes)):
            check_int(t)
        if t is not None:
            t = float(t)
            if t < 0:
                raise ValueError("Timeout value out of range")
        self.timeout = t

    def gettimeout(self):
        return self.timeout

    def setblocking(self, flag):
        self._check_open()
        self.timeout = None if flag else 0.0

    def getblocking(self):
        return self.timeout != 0

    def _block(self, ready, flags=0):
        """Wait until ready() or the timeout; EAGAIN for non-blocking sockets."""
        if self.timeout == 0 or (flags & MSG_DONTWAIT):
            raise oserror(EAGAIN)
        if not self.stack.wait(ready, self.timeout):
            raise timeout_error()

    def _event(self):
        if self.on_event is not None:
            self.on_event(self)
        self.stack.notify()

    # ---- names and options ----------------------------------------------------------------
    def _check_open(self):
        if self.closed:
            raise oserror(EBADF)

    def getsockname(self):
        self._check_open()
        return self._name(self.local_ip, self.local_port)

    def getpeername(self):
        self._check_open()
        if self.remote_port == 0:
            raise oserror(ENOTCONN)
        return self._name(self.remote_ip, self.remote_port)

    def _name(self, a, port):
        """A socket address as Python gives it: v4-mapped on AF_INET6, and a link-local
        address with the scope_id of the interface the socket uses (RFC 4007 6)."""
        t = fmt_addr(a, port, self.family)
        if len(a) == 16 and a[0] == 0xFE:
            sid = scope_id_of(self.stack, a, self.local_ip)
            if sid:
                return (t[0], port, 0, sid)
        return t

    def check_mapped(self, ip, err):
        """An IPv4 address (v4-mapped, parse_addr6) given to an AF_INET6 socket: refused
        with err when the socket is IPV6_V6ONLY (Linux: EINVAL for bind, ENETUNREACH for
        connect and sendto), or when the socket is bound to an IPv6 address other than ::
        (it cannot be the source of an IPv4 datagram)."""
        if self.family == AF_INET6 and len(ip) == 4:
            li = self.local_ip
            if self.v6only or (len(li) == 16 and not _zero(li)):
                raise oserror(err)

    def dual(self):
        """An AF_INET6 socket bound to :: without IPV6_V6ONLY: IPv4 peers reach it too."""
        li = self.local_ip
        return not self.v6only and len(li) == 16 and _zero(li) and self.family == AF_INET6

    def setsockopt(self, level, opt, value):
        self._check_open()
        if isinstance(value, str):
            value = value.encode()  # a name (TCP_CONGESTION); CPython's facade wants bytes
        v = value if isinstance(value, int) else int.from_bytes(bytes(value[:4]), "little")
        if level == SOL_SOCKET:
            if opt == SO_REUSEADDR or opt == SO_REUSEPORT:
                bit = 1 if opt == SO_REUSEADDR else 2
                self.reuse_opts = (self.reuse_opts | bit) if v else (self.reuse_opts & ~bit)
            elif opt == SO_BROADCAST:
                self.broadcast = bool(v)
            elif opt == SO_RCVBUF:
                self._set_rcvbuf(v)
            elif opt == SO_SNDBUF:
                self.sndbuf = v
            elif not self._setopt(level, opt, value):
                raise oserror(ENOPROTOOPT)
        elif level == IPPROTO_IP:
            if opt == IP_TTL:
                if not 0 <= v <= 255:
                    raise oserror(EINVAL)
                self.ttl = v
                self._ip_opts_changed()
            elif opt == IP_TOS:
                self.tos = v & 0xFF
                self._ip_opts_changed()
            elif opt == IP_MTU_DISCOVER:
                if not IP_PMTUDISC_DONT <= v <= IP_PMTUDISC_OMIT:
                    raise oserror(EINVAL)
                self.pmtudisc = v
            elif not self._setopt(level, opt, value):
                raise oserror(ENOPROTOOPT)
        elif level == IPPROTO_IPV6 and opt == IPV6_V6ONLY and self.family == AF_INET6:
            if self.local_port and self.type != SOCK_RAW:
                raise oserror(EINVAL)    # Linux: only before the socket is bound
            self.v6only = v != 0
        elif level == IPPROTO_IPV6 and opt == IPV6_MTU_DISCOVER and self.family == AF_INET6:
            if not IP_PMTUDISC_DONT <= v <= IP_PMTUDISC_OMIT:
                raise oserror(EINVAL)
            self.pmtudisc6 = v
        elif level == IPPROTO_IPV6 and opt == IPV6_DONTFRAG and self.family == AF_INET6:
            self.dontfrag6 = v != 0
        elif not self._setopt(level, opt, value):
            raise oserror(ENOPROTOOPT)

    def _setopt(self, level, opt, value):
        return False

    def _ip_opts_changed(self):
        """IP_TTL/IP_TOS changed: a connection that copied them takes the new values."""

    def _set_rcvbuf(self, v):
        self.rcvbuf = v

    def getsockopt(self, level, opt, buflen=0):
        self._check_open()
        if level == SOL_SOCKET:
            if opt == SO_ERROR:
                e = self.so_error
                self.so_error = 0
                return e
            if opt == SO_TYPE:
                return self.type
            if opt == SO_REUSEADDR:
                return self.reuse_opts & 1
            if opt == SO_REUSEPORT:
                return self.reuse_opts >> 1
            if opt == SO_BROADCAST:
                return int(self.broadcast)
            if opt == SO_RCVBUF:
                return self.rcvbuf
            if opt == SO_SNDBUF:
                return self.sndbuf
        if level == IPPROTO_IPV6 and self.family == AF_INET6:
            if opt == IPV6_V6ONLY:
                return int(self.v6only)
            if opt == IPV6_MTU_DISCOVER:
                return self.pmtudisc6
            if opt == IPV6_DONTFRAG:
                return int(self.dontfrag6)
        if level == IPPROTO_IP:
            if opt == IP_TTL:
                return self.ttl or self.stack.ipv4.ttl
            if opt == IP_TOS:
                return self.tos
            if opt == IP_MTU_DISCOVER:
                return self.pmtudisc
        v = self._getopt(level, opt)
        if v is None:
            raise oserror(ENOPROTOOPT)
        return v

    def _getopt(self, level, opt):
        return None

    def unfragmentable_mtu(self, dst):
        """The MTU a datagram to dst (4 or 16 bytes) must fit, whole, or 0 when it may be
        fragmented: IP_MTU_DISCOVER DO and IPV6_DONTFRAG (RFC 3542 11.2) want the path MTU
        (RFC 1191, RFC 8201), PROBE and INTERFACE the link's; over it, EMSGSIZE as on
        Linux (ip_append_data). 0 too without a route: the send reports that."""
        if len(dst) == 16:
            d = self.pmtudisc6
            if self.dontfrag6 and (d < IP_PMTUDISC_DO or d == IP_PMTUDISC_OMIT):
                d = IP_PMTUDISC_DO
        else:
            d = self.pmtudisc
        if d < IP_PMTUDISC_DO or d == IP_PMTUDISC_OMIT:
            return 0
        ip = self.stack.ip
        alen = len(dst)
        iface = ip.route_out(dst, 0, alen)
        if iface is None:
            return 0
        m = iface.mtu6 if alen == 16 else iface.mtu
        return ip.path_mtu(dst, 0, alen, m) if d == IP_PMTUDISC_DO else m

    def _take_error(self):
        e = self.so_error
        if e:
            self.so_error = 0
            raise oserror(e)

    def fileno(self):
        return self.stack.fileno(self)

    def readable(self):
        return False

    def writable(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.stack._release_socket(self)

    def detach(self):
        raise oserror(EINVAL)


def check_proto(type, proto, want):
    if proto not in (0, want):
        raise oserror(EPROTONOSUPPORT)


def remove_newest(lst, x):
    """Take x out of lst (a table in creation order: every socket, bound or connection),
    looking at its newest and its oldest entries in turn, inwards: a short-lived connection
    among many long-lived ones is found after the few younger than it (issue 13: list.remove
    walked 5000 idle connections' entries four times a connection), and a stack closing
    everything in creation order finds each at once (from the newest end alone, closing
    100 000 was quadratic). False if x is not there."""
    i = len(lst) - 1
    j = 0
    while j <= i:
        if lst[i] is x:
            del lst[i]
            return True
        if lst[j] is x:
            del lst[j]
            return True
        i -= 1
        j += 1
    return False
