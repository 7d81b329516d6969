"""UDP (RFC 768, RFC 1122 section 4.1) and datagram sockets.

Received datagrams stay in their packet buffers: a socket's queue links the buffers (no copy
until recv), bounded by UDP_RX_QUEUE datagrams, by the socket's SO_RCVBUF bytes (each datagram
charged its whole buffers, as Linux charges truesize) and by the share of the pool that all
socket queues together may hold (SOCK_QUEUE_PBUFS); each overflow has its own counter. A
reassembled datagram is copied out of its reassembly slot into a chain of pool buffers
(Pool.chain_in), so an unread socket never holds a slot that reassembly needs.
Demultiplexing prefers the most specific socket (connected, then bound address, then
wildcard); broadcasts reach every matching socket. A datagram to a port nobody listens on gets ICMP port unreachable.
"""
from ustack.core.compat import const
from ustack.core.compat import (
    EADDRINUSE, EADDRNOTAVAIL, EACCES, EDESTADDRREQ, EINVAL, EMSGSIZE, EOPNOTSUPP, EPIPE,
    ENOTCONN,
    ENETUNREACH, ENOBUFS, ECONNREFUSED, EHOSTUNREACH, oserror)
from ustack.core import checksum as ck  # ck.csum: compiled, checksum_c.pxd's inline sum
from ustack.core.stats import Counters
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire import fields
from ustack.core import socket as so
from ustack.core.net.ip import addr_eq, is_any, is_multicast, PROTO_UDP
from ustack.core.net.errors import ERR_PORT_UNREACH, is_unreachable
from ustack.core.portalloc import Ephemeral

UDP_COUNTERS = (
    "rx_datagrams", "rx_too_short", "rx_bad_len", "rx_bad_csum", "rx_no_port",
    "rx_queue_full", "rx_delivered", "tx_datagrams", "tx_errors", "icmp_errors",
    "rx_rcvbuf", "rx_pool_share", "rx_no_buffer",
)

# A receive queue's answer to one more datagram (admit(), shared with core/raw.py)
Q_OK = const(0)
Q_FULL = const(1)     # UDP_RX_QUEUE datagrams queued already
Q_RCVBUF = const(2)   # over the socket's SO_RCVBUF
Q_SHARE = const(3)    # the socket queues' share of the pool (SOCK_QUEUE_PBUFS) is taken
Q_NOBUF = const(4)    # a copy would take the pool's transmit reserve


def rcvbuf_value(stack, v):
    """SO_RCVBUF as Linux sets it (socket(7)): the value doubled for bookkeeping, at least one
    packet buffer, at most what all socket queues together may hold (our rmem_max)."""
    lo = stack.pool.size
    hi = stack.pool.queue_cap * lo
    if v < 0 or v > hi // 2:
        return hi
    v *= 2
    return v if v > lo else lo


def count_drop(st, q):
    """Count why a queue refused a datagram in the counters st (UDP's or raw's)."""
    if q == Q_FULL:
        st.rx_queue_full += 1
    elif q == Q_RCVBUF:
        st.rx_rcvbuf += 1
    elif q == Q_SHARE:
        st.rx_pool_share += 1
    else:
        st.rx_no_buffer += 1


def admit(s, k, copy):
    """May socket s (UDP or raw) queue one more datagram of k pool buffers? Q_OK - and the
    buffers are charged to the queues' share of the pool - or why not. copy: the buffers are
    still to be taken from the pool (receive's part of it, never the transmit reserve)."""
    if s.qlen >= s.qmax:
        return Q_FULL
    pool = s.stack.pool
    # as Linux does, an empty queue takes one datagram whatever its size; after that the
    # queue's buffers must stay within SO_RCVBUF
    if s.qbufs and (s.qbufs + k) * pool.size > s.rcvbuf:
        return Q_RCVBUF
    if copy and not pool.rx_room(k):
        return Q_NOBUF
    if not pool.queue_take(k):
        return Q_SHARE
    return Q_OK


def link(s, pb):
    """Append the admitted datagram (a chain of pb.nbufs buffers) to s's queue."""
    s.qbufs += pb.nbufs
    if s.qtail is None:
        s.qhead = pb
    else:
        s.qtail.next = pb
    while pb.next is not None:
        pb = pb.next
    s.qtail = pb
    s.qlen += 1
    s._event()


def unlink(s):
    """Free the oldest datagram's buffers."""
    stack = s.stack
    pb = s.qhead
    k = pb.nbufs
    i = 0
    while i < k:
        nxt = pb.next
        stack.free(pb)
        pb = nxt
        i += 1
    s.qhead = pb
    if pb is None:
        s.qtail = None
    s.qlen -= 1
    s.qbufs -= k
    stack.pool.queue_give(k)

MAX_PAYLOAD = 65507  # 65535 - 20 (IPv4) - 8 (UDP)
MAX_PAYLOAD6 = 65527  # 65535 (RFC 8200 Payload Length) - 8 (UDP); no jumbograms



def connect_source(stack, ip):
    """connect() on a datagram socket bound to the wildcard, as Linux's ip4_datagram_connect
    (UDP and raw alike): the routed source becomes the socket's address, so getsockname()
    names it and only datagrams to it match (RFC 1122 4.1.3.4); no route: ENETUNREACH."""
    src = stack.source_for(ip)
    if src is None:
        raise oserror(ENETUNREACH)
    return src

class UdpSocket(so.Socket):
    __slots__ = ("qhead", "qtail", "qlen", "qmax", "qbufs", "connected", "shut_wr")

    def __init__(self, stack, family, type, proto):
        so.check_proto(type, proto, so.IPPROTO_UDP)
        so.Socket.__init__(self, stack, family, type, proto)
        self.qhead = None
        self.qtail = None
        self.qlen = 0
        self.qmax = stack.config["UDP_RX_QUEUE"]
        self.qbufs = 0  # pool buffers queued, charged against rcvbuf
        self.rcvbuf = stack.config["UDP_RCVBUF"]
        self.connected = False
        self.shut_wr = False

    def _set_rcvbuf(self, v):
        self.rcvbuf = rcvbuf_value(self.stack, v)

    # ---- binding --------------------------------------------------------------------------
    def bind(self, addr):
        self._check_open()
        if self.local_port:
            raise oserror(EINVAL)
        ip, port = so.parse_addr(addr, "bind", self.family)
        self.check_mapped(ip, EINVAL)
        self.stack.udp.bind(self, ip, port)

    def connect(self, addr):
        self._check_open()
        ip, port = so.parse_addr(addr, "connect", self.family)
        if port == 0:
            raise oserror(EINVAL)
        self.check_mapped(ip, ENETUNREACH)
        if is_any(ip):
            ip = so.loopback_addr(self.family if len(ip) == 16 else so.AF_INET)
        if (ip == ip4.BROADCAST or self.stack.is_broadcast(ip)) and not self.broadcast:
            raise oserror(EACCES)
        udp = self.stack.udp
        link = so.scope_iface(self.stack, addr, ip, True) if so.is_link_local6(ip) else None
        if not self.local_port:
            udp.bind(self, so.any_addr(self.family), 0)
        if link is not None and is_any(self.local_ip):
            # RFC 4007 6: the zone's link-local address, so replies and sends use that link
            self.local_ip = bytes(self.stack.source_for_iface(link, ip))
        elif is_any(self.local_ip):
            self.local_ip = connect_source(self.stack, ip)
        self.remote_ip = ip
        self.remote_port = port
        self.connected = True

    # ---- what datagram sockets cannot do (the errors Linux gives) ------------------------------
    def listen(self, backlog=0):
        self._check_open()
        raise oserror(EOPNOTSUPP)

    def accept(self):
        self._check_open()
        raise oserror(EOPNOTSUPP)

    def shutdown(self, how):
        """Linux: only a connected datagram socket shuts down; SHUT_WR makes send EPIPE."""
        self._check_open()
        so.check_int(how)
        if how != so.SHUT_RD and how != so.SHUT_WR and how != so.SHUT_RDWR:
            raise oserror(EINVAL)
        if not self.connected:
            raise oserror(ENOTCONN)
        if how != so.SHUT_RD:
            self.shut_wr = True

    # ---- sending --------------------------------------------------------------------------
    def send(self, data, flags=0):
        self._check_open()
        so.check_data(data)
        if self.shut_wr:
            raise oserror(EPIPE)
        if not self.connected:
            raise oserror(EDESTADDRREQ)
        self._take_error()
        return self._sendto(data, self.remote_ip, self.remote_port)

    def sendto(self, data, flags_or_addr, addr=None):
        self._check_open()
        if addr is None:
            addr = flags_or_addr
        so.check_data(data)
        # a connected socket may still name a destination (Linux sends there, as CPython shows)
        ip, port = so.parse_addr(addr, "sendto", self.family)
        self.check_mapped(ip, ENETUNREACH)
        if self.shut_wr:
            raise oserror(EPIPE)
        if port == 0:
            raise oserror(EINVAL)
        if (ip == ip4.BROADCAST or self.stack.is_broadcast(ip)) and not self.broadcast:
            raise oserror(EACCES)
        if so.is_link_local6(ip):
            link = so.scope_iface(self.stack, addr, ip, False)
            if link is not None and is_any(self.local_ip):
                # RFC 4007 6: leave by the zone's link, from its link-local address
                return self._sendto(data, ip, port,
                                    bytes(self.stack.source_for_iface(link, ip)))
        return self._sendto(data, ip, port)

    def sendall(self, data, flags=0):
        self.send(data, flags)

    def _sendto(self, data, ip, port, src=None):
        n = len(data)
        if n > (MAX_PAYLOAD6 if len(ip) == 16 else MAX_PAYLOAD):
            raise oserror(EMSGSIZE)
        stack = self.stack
        mtu = self.unfragmentable_mtu(ip)
        if mtu and n + 8 + (40 if len(ip) == 16 else 20) > mtu:
            raise oserror(EMSGSIZE)     # IP_PMTUDISC_DO / IPV6_DONTFRAG: never fragmented
        udp = stack.udp
        if not self.local_port:
            udp.bind(self, so.any_addr(self.family), 0)
        li = self.local_ip if src is None else src
        if len(li) != len(ip):
            li = ip4.ANY          # a dual :: socket to an IPv4 peer (check_mapped let it)
        if not is_any(li) and not is_multicast(li) and \
                stack.ip.local_iface(li, 0, len(li)) is None and not stack.is_broadcast(li):
            # the bound address left the interface (a DHCP lease ended): never send from an
            # address that is no longer ours - Linux's errno for it is ENETUNREACH
            raise oserror(ENETUNREACH)
        err = udp.output(li, self.local_port, ip, port, data, n, self.ttl, self.tos, None,
                         mtu != 0)
        if err:
            raise oserror(err)
        return n

    # ---- receiving ------------------------------------------------------------------------
    def readable(self):
        return self.qlen > 0 or self.so_error != 0

    def _wait_data(self, flags):
        while self.qlen == 0:
            self._take_error()
            self._block(self.readable, flags)
        self._take_error()

    def _dlen(self):
        """Payload bytes of the oldest datagram (in the first buffer from pb.off, then in
        each further buffer of its chain from 0)."""
        pb = self.qhead
        n = pb.n
        k = pb.nbufs
        while k > 1:
            pb = pb.next
            n += pb.n
            k -= 1
        return n

    def _copy_out(self, buf, n):
        """The oldest datagram's first n payload bytes into buf[0:n]."""
        pb = self.qhead
        m = pb.n if pb.n < n else n
        fields.copy(buf, 0, pb.buf, pb.off, m)
        pos = m
        while pos < n:
            pb = pb.next
            m = pb.n if pb.n < n - pos else n - pos
            fields.copy(buf, pos, pb.buf, 0, m)
            pos += m

    def recv_into(self, buf, nbytes=0, flags=0):
        self._check_open()
        cap = so.check_nbytes(buf, nbytes, "recv_into")
        self._wait_data(flags)
        n = self._dlen()
        if n > cap:
            n = cap  # the rest of the datagram is discarded, as with BSD sockets
        self._copy_out(buf, n)
        if not (flags & so.MSG_PEEK):
            unlink(self)
        return n

    def recvfrom_into(self, buf, nbytes=0, flags=0):
        self._check_open()
        so.check_nbytes(buf, nbytes, "recvfrom_into")
        self._wait_data(flags)
        pb = self.qhead
        addr = self._src(pb)
        return self.recv_into(buf, nbytes, flags), addr

    def recv(self, bufsize, flags=0):
        self._check_open()
        so.check_bufsize(bufsize, "recv")
        self._wait_data(flags)
        pb = self.qhead
        if pb.nbufs == 1:
            n = pb.n if pb.n < bufsize else bufsize
            data = bytes(pb.buf[pb.off:pb.off + n])
        else:
            n = self._dlen()
            out = bytearray(n if n < bufsize else bufsize)
            self._copy_out(out, len(out))
            data = bytes(out)
        if not (flags & so.MSG_PEEK):
            unlink(self)
        return data

    def recvfrom(self, bufsize, flags=0):
        self._check_open()
        so.check_bufsize(bufsize, "recvfrom")
        self._wait_data(flags)
        addr = self._src(self.qhead)
        return self.recv(bufsize, flags), addr

    def echo(self, reply=True):
        """RFC 862's answer to the oldest queued datagram: its payload back to where it came
        from, then the datagram leaves the queue (reply False: only that, RFC 863's discard).
        What recvfrom_into and sendto do together, without the source's address made into a
        string and parsed back: an IPv4 source is used from the packet as it is (the other
        families, chains and the cases sendto refuses or treats specially take those two
        calls). The payload's length, or -1 when nothing is queued. What sendto would raise is
        not raised: the request is answered or dropped, as a server's loop would."""
        pb = self.qhead
        if pb is None or self.closed:
            return -1
        if not reply:
            n = self._dlen()
            unlink(self)
            return n
        b = pb.buf
        t = pb.tag
        u = pb.off - 8
        port = (b[u] << 8) | b[u + 1]
        li = self.local_ip
        d = self.pmtudisc
        if pb.nbufs != 1 or pb.family != so.AF_INET or self.family != so.AF_INET or \
                port == 0 or self.shut_wr or len(li) != 4 or (li[0] | li[1] | li[2] | li[3]) or \
                (so.IP_PMTUDISC_DO <= d < so.IP_PMTUDISC_OMIT) or \
                (b[t] | b[t + 1] | b[t + 2] | b[t + 3]) == 0 or b[t] >= 224:
            return self._echo_slow()
        src = bytes(b[t:t + 4])
        if self.stack.is_broadcast(src):
            return self._echo_slow()
        n = pb.n
        udp = self.stack.udp
        # the payload straight from the request's buffer (doff): no copy of it made first
        udp.output(li, self.local_port, src, port, b, n, self.ttl, self.tos, None, False,
                   pb.off)
        unlink(self)
        return n

    def _echo_slow(self):
        src = self._src(self.qhead)
        buf = bytearray(self._dlen())
        n = self.recv_into(buf)
        try:
            self.sendto(buf, src)
        except OSError:
            pass
        return n

    def peek_source(self, addr):
        """The oldest queued datagram's source without allocating (for heap-locked apps):
        its address copied into addr (a bytearray as long as the family's addresses), its
        port returned. The datagram stays queued."""
        pb = self.qhead
        b = pb.buf
        fields.copy(addr, 0, b, pb.tag, len(addr))
        u = pb.off - 8
        return (b[u] << 8) | b[u + 1]

    def _src(self, pb):
        """The queued datagram's source: its address at pb.tag (as the network layer located
        it on input), its port in the UDP header in front of the payload."""
        b = pb.buf
        u = pb.off - 8
        t = so.fmt_addr_at(b, pb.tag, pb.family, (b[u] << 8) | b[u + 1], self.family)
        if pb.family == so.AF_INET6 and b[pb.tag] == 0xFE and (b[pb.tag + 1] & 0xC0) == 0x80:
            # a link-local source: the scope_id of the link it came by (its destination,
            # 16 bytes after the source, is one of that link's addresses or groups)
            sid = self._arrival_scope(b, pb.tag + 16)
            if sid:
                return (t[0], t[1], 0, sid)
        return t

    def _arrival_scope(self, b, d):
        stack = self.stack
        v6 = stack.ipv6
        i = v6.local_iface(b, d) if v6 is not None and b[d] != 0xFF else None
        if i is None:
            links = [x for x in stack.ifaces if x.nd is not None]
            if len(links) != 1:
                return 0
            i = links[0]
        return so.iface_index(stack, i)

    def close(self):
        if not self.closed:
            while self.qlen:
                unlink(self)
            so.Socket.close(self)


class UDP:
    def __init__(self, stack):
        self.stack = stack
        self.stats = Counters(UDP_COUNTERS)
        self.sockets = []
        cfg = stack.config
        self.eph = Ephemeral(cfg["EPHEMERAL_LOW"], cfg["EPHEMERAL_HIGH"], stack.random16())

    def bind(self, s, ip, port):
        stack = self.stack
        if not is_any(ip) and stack.ip.local_iface(ip, 0, len(ip)) is None and \
                not is_multicast(ip) and not stack.is_broadcast(ip):
            raise oserror(EADDRNOTAVAIL)
        if port == 0:
            port = self._ephemeral()
        else:
            for o in self.sockets:
                if o.local_port == port and o is not s and so.binds_overlap(o, s, ip) and \
                        not (o.reuse_opts and s.reuse_opts):
                    raise oserror(EADDRINUSE)
        s.local_ip = ip
        s.local_port = port
        if s not in self.sockets:
            self.sockets.append(s)

    def _ephemeral(self):
        return self.eph.pick(self._port_used)

    def _port_used(self, p):
        for o in self.sockets:
            if o.local_port == p:
                return True
        return False

    def unbind(self, s):
        if s in self.sockets:
            self.sockets.remove(s)

    # ---- input ----------------------------------------------------------------------------
    def input(self, pb, m):
        """A datagram the network layer delivers: m is its metadata (core/net/ip.py Meta)."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        o = m.l4
        n = m.l4len
        bcast = m.bcast
        iface = m.iface
        st.rx_datagrams += 1
        if n < 8:
            st.rx_too_short += 1
            stack.free(pb)
            return
        ulen = (b[o + 4] << 8) | b[o + 5]
        if ulen < 8 or ulen > n:
            st.rx_bad_len += 1
            stack.free(pb)
            return
        if (b[o + 6] | b[o + 7]) != 0:  # zero = sender computed none (RFC 768)
            if not m.csum_ok and ck.csum(b, o, ulen, m.psum + ulen) != 0xFFFF:
                # RFC 768: with the pseudo-header (unless the driver vouched for it)
                st.rx_bad_csum += 1
                stack.free(pb)
                return
        dport = (b[o + 2] << 8) | b[o + 3]
        sport = (b[o] << 8) | b[o + 1]
        dh = stack.dhcp
        if dport == 68 and dh is not None and dh.iface is iface:
            # the DHCP client's port (RFC 2131 4.1), before any socket: it listens while
            # the interface has no address yet
            st.rx_delivered += 1
            dh.input(iface, b, o + 8, ulen - 8, sport)
            stack.free(pb)
            return
        rip = stack.rip
        if dport == 520 and rip is not None and m.alen == 4:
            # RIP's port (RFC 2453 3.6): the routing speaker's own, like DHCP's above
            st.rx_delivered += 1
            rip.input(iface, b, o + 8, ulen - 8, m, sport)
            stack.free(pb)
            return
        rip = stack.ripng
        if dport == 521 and rip is not None and m.alen == 16:
            # RIPng's port (RFC 2080 2.1)
            st.rx_delivered += 1
            rip.input(iface, b, o + 8, ulen - 8, m, sport)
            stack.free(pb)
            return
        best = None
        score = -1
        matched = 0
        alen = m.alen
        d = m.dst
        for s in self.sockets:
            if s.local_port != dport:
                continue
            sc = 0
            li = s.local_ip
            if len(li) != alen:
                # a socket of the other family; a dual :: one takes IPv4 (RFC 3493 3.7)
                if alen != 4 or s.v6only or s.connected or not is_any(li):
                    continue
                li = ip4.ANY
            # (IPv4's wildcard and address tests inlined: is_any and addr_eq without calls)
            if (li[0] | li[1] | li[2] | li[3]) if alen == 4 else not is_any(li):
                if not ((li[0] == b[d] and li[1] == b[d + 1] and li[2] == b[d + 2] and
                         li[3] == b[d + 3]) if alen == 4 else addr_eq(b, d, li, alen)):
                    # a broadcast too reaches only sockets bound to its own address or to
                    # ANY (as Linux: a socket bound to a unicast address never sees one)
                    continue
                sc += 1
            if s.connected:
                if s.remote_port != sport or not addr_eq(b, m.src, s.remote_ip, alen):
                    continue
                sc += 2
            matched += 1
            if bcast and matched > 1:
                # every matching socket gets its own copy of a broadcast
                self._deliver_copy(s, pb, m, ulen)
                continue
            if sc > score:
                best = s
                score = sc
        if best is None:
            st.rx_no_port += 1
            if not bcast:
                stack.ip.error(pb, m, ERR_PORT_UNREACH, 0)
            stack.free(pb)
            return
        off = m.hdr
        if pb.index < 0:
            # reassembled: copied into pool buffers, so that the slot serves reassembly again
            # at once instead of waiting for the application to read
            pool = stack.pool
            q = admit(best, pool.chain_len(o - off + ulen), True)
            if q != Q_OK:
                count_drop(st, q)
                stack.free(pb)
                return
            c = pool.chain_in(b, off, o - off + ulen)
            stack.free(pb)
            pb = c
            o -= off
            off = 0
        else:
            q = admit(best, 1, False)
            if q != Q_OK:
                count_drop(st, q)
                stack.free(pb)
                return
        pb.tag = m.src - m.hdr + off  # where recvfrom finds the source (_src)
        pb.family = m.family
        pb.off = o + 8
        if pb.nbufs == 1:
            pb.n = ulen - 8
        else:
            pb.n -= o + 8  # the payload's part in the first buffer of the chain
        st.rx_delivered += 1
        link(best, pb)

    def _deliver_copy(self, s, pb, m, ulen):
        pool = self.stack.pool
        off = m.hdr
        ihl = m.l4 - off
        need = ihl + ulen
        q = admit(s, pool.chain_len(need), True)
        if q != Q_OK:
            count_drop(self.stats, q)
            return
        c = pool.chain_in(pb.buf, off, need)
        c.tag = m.src - off
        c.family = m.family
        c.off = ihl + 8
        c.n -= ihl + 8
        self.stats.rx_delivered += 1
        link(s, c)

    def icmp_error(self, kind, arg, b, q):
        """An ICMP error (its neutral kind, core/net/errors.py; arg the MTU of a packet too
        big) quoting one of our datagrams, which q (core/net/ip.py Meta) locates in b."""
        self.stats.icmp_errors += 1
        if not is_unreachable(kind):
            return
        p = q.l4
        alen = q.alen
        sport = (b[p] << 8) | b[p + 1]
        dport = (b[p + 2] << 8) | b[p + 3]
        for s in self.sockets:
            if s.connected and s.local_port == sport and s.remote_port == dport and \
                    len(s.remote_ip) == alen and addr_eq(b, q.dst, s.remote_ip, alen):
                # RFC 1122 4.1.3.3: report to the application (BSD: connected sockets only)
                s.so_error = ECONNREFUSED if kind == ERR_PORT_UNREACH else EHOSTUNREACH
                s._event()

    # ---- output ---------------------------------------------------------------------------
    def output(self, src, sport, dst, dport, data, n, ttl=0, tos=0, iface=None, df=False,
               doff=0):
        """A datagram of data[doff:doff+n] from src:sport to dst:dport (iface: leave by it,
        as to a link's multicast group; None: by the route; df: IPv4's Don't Fragment).
        Returns 0 or an errno."""
        stack = self.stack
        pb = stack.ip.alloc_tx(dst)
        if pb is None:
            self.stats.tx_errors += 1
            return ENOBUFS
        if pb.off + 8 + n > pb.size:
            stack.free(pb)
            pb = stack.ip.alloc_big(dst, 8 + n)
            if pb is None:
                return EMSGSIZE
        b = pb.buf
        o = pb.off
        b[o] = sport >> 8
        b[o + 1] = sport & 0xFF
        b[o + 2] = dport >> 8
        b[o + 3] = dport & 0xFF
        ul = n + 8
        b[o + 4] = ul >> 8
        b[o + 5] = ul & 0xFF
        fields.copy(b, o + 8, data, doff, n)
        pb.n = ul
        self.stats.tx_datagrams += 1
        return stack.ip.output(pb, PROTO_UDP, src, dst, 6, ttl, tos, df, iface)
