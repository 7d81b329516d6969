"""Raw IPv4 sockets (SOCK_RAW): receive copies of whole datagrams of one protocol (header
included, as BSD does) and send payloads the stack wraps in an IP header, or full headers with
IP_HDRINCL. Raw IPv6 sockets (RFC 3542 3): ICMPv6 only; a received message comes without the
IPv6 header, the stack fills the ICMPv6 checksum of what is sent (RFC 3542 3.1), and
ICMP6_FILTER (3.2: Linux's sense, a set bit blocks that type) picks the types delivered.

A received datagram is copied into as many pool buffers as it needs (a reassembled one can be
larger than a buffer; Linux hands raw sockets the whole datagram) and queued as a chain
(Pool.chain_in: the first buffer's `nbufs` says how many buffers the datagram has). The queue
is bounded like a UDP socket's (udp.admit): UDP_RX_QUEUE datagrams, SO_RCVBUF bytes charged
whole buffers, and the share of the pool all socket queues may hold; the copies come from
receive's part of the pool, never its transmit reserve. Each refusal is counted (raw.*). API
errors are the ones CPython's socket module gives for a raw socket on Linux."""
from ustack.core.compat import (
    EADDRNOTAVAIL, EDESTADDRREQ, EINVAL, EMSGSIZE, ENETUNREACH, ENOBUFS, ENOTCONN, EOPNOTSUPP,
    oserror)
from ustack.core.stats import Counters
from ustack.core.wire import fields
from ustack.core import socket as so
from ustack.core.net.ip import is_any, is_multicast
from ustack.core.udp import Q_OK, rcvbuf_value, count_drop, admit, link, unlink
from ustack.core.udp import connect_source

RAW_COUNTERS = (
    "rx_delivered", "rx_queue_full", "rx_rcvbuf", "rx_pool_share", "rx_no_buffer",
    "rx_filtered",
)
ICMP6_FILTER = 1      # Linux's option number at level IPPROTO_ICMPV6 (RFC 3542 3.2)
ICMP6_CSUM = 2        # where the ICMPv6 checksum sits in the message

MAX_DATAGRAM = 65535  # RFC 791: the total length field's limit


def _addr(addr, fn, family):
    """An AF_INET address as CPython checks it: a (host, port) tuple, port an int in range
    (AF_INET6: (host, port[, flowinfo[, scope_id]]))."""
    if family == so.AF_INET6:
        return so.parse_addr(addr, fn, family)[0]
    if not isinstance(addr, tuple):
        raise TypeError("%s(): AF_INET address must be tuple, not %s" % (fn, type(addr).__name__))
    if len(addr) != 2:
        raise TypeError("AF_INET address must be a pair (host, port)")
    if not isinstance(addr[1], int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(addr[1]).__name__)
    ip, _ = so.parse_addr(addr, fn, family)
    return ip


class RawSocket(so.Socket):
    def __init__(self, stack, family, type, proto):
        if not 0 <= proto <= 255:
            raise oserror(EINVAL)  # (before the common state stores it in a byte)
        so.Socket.__init__(self, stack, family, type, proto)
        self.hdrincl = proto == 255
        self.qhead = None
        self.qtail = None
        self.qlen = 0     # datagrams
        self.qbufs = 0    # pool buffers they take
        self.qmax = stack.config["UDP_RX_QUEUE"]
        self.rcvbuf = stack.config["UDP_RCVBUF"]
        self.connected = False
        self.icmp6_filter = None   # RFC 3542 3.2: 32 bytes, a set bit blocks that type
        if stack.raw_stats is None:
            stack.raw_stats = Counters(RAW_COUNTERS)
        stack.raw_sockets.append(self)

    def bind(self, addr):
        self._check_open()
        ip = _addr(addr, "bind", self.family)
        stack = self.stack
        if not is_any(ip) and stack.ip.local_iface(ip, 0, len(ip)) is None and \
                not is_multicast(ip) and not stack.is_broadcast(ip):
            raise oserror(EADDRNOTAVAIL)
        self.local_ip = ip

    def connect(self, addr):
        self._check_open()
        ip = _addr(addr, "connect", self.family)
        if is_any(self.local_ip):
            self.local_ip = connect_source(self.stack, ip)  # as UDP's (Linux shares it too)
        self.remote_ip = ip
        self.connected = True

    def getsockname(self):
        self._check_open()
        return so.fmt_addr(self.local_ip, self.proto)  # Linux: the protocol as the port

    def getpeername(self):
        self._check_open()
        raise oserror(ENOTCONN)  # Linux names no peer for a raw socket, connected or not

    def listen(self, backlog=0):
        raise oserror(EOPNOTSUPP)

    def accept(self):
        raise oserror(EOPNOTSUPP)

    def shutdown(self, how):
        self._check_open()
        if how not in (so.SHUT_RD, so.SHUT_WR, so.SHUT_RDWR):
            raise oserror(EINVAL)
        if not self.connected:
            raise oserror(ENOTCONN)

    def _setopt(self, level, opt, value):
        if level == so.IPPROTO_IP and opt == so.IP_HDRINCL and self.family == so.AF_INET:
            self.hdrincl = bool(value)
            return True
        if level == so.IPPROTO_ICMPV6 and opt == ICMP6_FILTER and \
                self.family == so.AF_INET6 and self.proto == so.IPPROTO_ICMPV6:
            if isinstance(value, int) or len(value) > 32:
                raise oserror(EINVAL)
            f = bytearray(32)       # shorter: the rest passes (Linux copies what it gets)
            fields.copy(f, 0, value, 0, len(value))
            self.icmp6_filter = f
            return True
        return False

    def _getopt(self, level, opt):
        if level == so.IPPROTO_ICMPV6 and opt == ICMP6_FILTER and self.family == so.AF_INET6:
            return bytes(self.icmp6_filter) if self.icmp6_filter is not None else bytes(32)
        return None

    def _set_rcvbuf(self, v):
        self.rcvbuf = rcvbuf_value(self.stack, v)

    # ---- receiving ------------------------------------------------------------------------
    def _deliver(self, pb, m):
        """Queue a copy of the datagram m describes (core/net/ip.py Meta), its IPv4 header
        included as BSD does; True when queued."""
        if m.family != self.family:
            return False
        stack = self.stack
        st = stack.raw_stats
        pool = stack.pool
        off = m.hdr
        f = self.icmp6_filter
        if f is not None:
            t = pb.buf[m.l4]
            if f[t >> 3] & (1 << (t & 7)):
                st.rx_filtered += 1
                return False
        tot = m.l4 - off + m.l4len
        q = admit(self, pool.chain_len(tot), True)
        if q != Q_OK:
            count_drop(st, q)
            if m.family == so.AF_INET:
                stack.ipv4.stats.rx_raw_dropped += 1  # IPv4's accounting of the same drop
            return False
        # cannot run out: admit() saw room for the chain beyond the transmit reserve
        c = pool.chain_in(pb.buf, off, tot)
        c.tag = m.src - off  # where recvfrom finds the source
        c.family = m.family
        if m.family == so.AF_INET6:
            c.off = m.l4 - off   # RFC 3542 3: no IPv6 header (nor extensions) delivered
        link(self, c)
        st.rx_delivered += 1
        return True

    def readable(self):
        return self.qlen > 0

    def recvfrom(self, bufsize, flags=0):
        self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        while self.qlen == 0:
            self._block(self.readable, flags)
        pb = self.qhead
        k = pb.nbufs
        addr = so.fmt_addr_at(pb.buf, pb.tag, pb.family, 0)
        skip = pb.off          # IPv6: the headers in front of the message
        if k == 1:
            n = pb.n - skip if pb.n - skip < bufsize else bufsize
            data = bytes(pb.buf[skip:skip + n])
        else:
            total = -skip
            c = pb
            i = 0
            while i < k:
                total += c.n
                c = c.next
                i += 1
            out = bytearray(total if total < bufsize else bufsize)
            pos = 0
            c = pb
            start = skip
            while pos < len(out):
                n = c.n - start
                if pos + n > len(out):
                    n = len(out) - pos
                fields.copy(out, pos, c.buf, start, n)
                pos += n
                start = 0
                c = c.next
            data = bytes(out)
        if not (flags & so.MSG_PEEK):
            unlink(self)  # the rest of a longer datagram is discarded, as with BSD
        return data, addr

    def recv(self, bufsize, flags=0):
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        return self.recvfrom(bufsize, flags)[0]

    def recvfrom_into(self, buf, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        if nbytes > len(buf):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, addr = self.recvfrom(nbytes or len(buf), flags)
        n = len(data)
        fields.copy(buf, 0, data, 0, n)
        return n, addr

    def recv_into(self, buf, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes > len(buf):
            raise ValueError("buffer too small for requested bytes")
        data = self.recvfrom(nbytes or len(buf), flags)[0]
        n = len(data)
        fields.copy(buf, 0, data, 0, n)
        return n

    # ---- sending --------------------------------------------------------------------------
    def sendto(self, data, flags_or_addr, addr=None):
        self._check_open()
        if addr is None:
            addr = flags_or_addr     # sendto(data, addr), or (data, flags, addr) as the facade
        dst = _addr(addr, "sendto", self.family)
        return self._send(data, dst)

    def send(self, data, flags=0):
        self._check_open()
        if not self.connected:
            raise oserror(EDESTADDRREQ)
        return self._send(data, self.remote_ip)

    def _send(self, data, dst):
        stack = self.stack
        if isinstance(data, str):
            raise TypeError("a bytes-like object is required, not 'str'")
        n = len(data)
        iph = 40 if len(dst) == 16 else 20
        # IPv4's Total Length counts its header (IP_HDRINCL: the data's); IPv6's does not
        if n > MAX_DATAGRAM - (0 if self.hdrincl or iph == 40 else iph):
            raise oserror(EMSGSIZE)
        mtu = 0 if self.hdrincl else self.unfragmentable_mtu(dst)
        if mtu and n + iph > mtu:
            raise oserror(EMSGSIZE)     # IP_PMTUDISC_DO / IPV6_DONTFRAG: never fragmented
        pb = stack.ip.alloc_tx(dst)
        if pb is None:
            raise oserror(ENOBUFS)
        if self.hdrincl:
            if n < 20 or n + 14 > pb.size:
                stack.free(pb)
                raise oserror(EMSGSIZE if n >= 20 else EINVAL)
            pb.off = 14
            fields.copy(pb.buf, 14, data, 0, n)
            pb.n = n
            out = stack.route_out(pb.buf, 14 + 16)  # to ourselves: "lo", never ARP
            if out is None:
                stack.free(pb)
                raise oserror(101)
            out.output(pb, stack.routes.nexthop)
            return n
        if pb.off + n > pb.size:
            stack.free(pb)
            raise oserror(EMSGSIZE)
        li = self.local_ip
        if len(li) == 4 and not is_any(li) and not is_multicast(li) and \
                stack.ip.local_iface(li, 0, len(li)) is None and not stack.is_broadcast(li):
            stack.free(pb)
            raise oserror(ENETUNREACH)  # the bound address left (a DHCP lease ended)
        fields.copy(pb.buf, pb.off, data, 0, n)
        pb.n = n
        # RFC 3542 3.1: the kernel computes an ICMPv6 raw socket's checksum
        ck = ICMP6_CSUM if len(dst) == 16 and self.proto == so.IPPROTO_ICMPV6 and n >= 4 else -1
        err = stack.ip.output(pb, self.proto, self.local_ip, dst, ck, self.ttl, 0, mtu != 0)
        if err:
            raise oserror(err)
        return n

    def close(self):
        while self.qlen:
            unlink(self)
        so.Socket.close(self)
