"""ICMPv4 (RFC 792, RFC 1122 section 3.2.2).

Echo requests are answered in place: the received frame becomes the reply (addresses swapped,
type changed, checksum updated incrementally per RFC 1624) and goes straight back out.
Errors we send are rate-limited by a token bucket (RFC 1812 4.3.2.8) and never sent about
ICMP errors, broadcasts, non-initial fragments or odd sources (RFC 1122 3.2.2).
Errors we receive are handed to the transport that owns the quoted datagram. A forwarding
stack sends host Redirects (RFC 1812 5.2.7.2) within the same token bucket.
"""
from ustack.core.checksum import update16
from ustack.core import checksum as CS   # CS.csum (compiled: checksum_c.pxd's)
from ustack.core.stats import Counters
from ustack.core.wire import icmp4 as w
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire.fields import copy
from ustack.core.net.pmtu import plateau_below
from ustack.core.net.errors import (
    ERR_NET_UNREACH, ERR_HOST_UNREACH, ERR_PROTO_UNREACH, ERR_PORT_UNREACH, ERR_PKT_TOO_BIG,
    ERR_ADMIN_PROHIBITED, ERR_TIME_EXCEEDED, ERR_REASS_TIMEOUT, ERR_PARAM_PROBLEM,
    ERR_SOURCE_QUENCH)

ICMP_COUNTERS = (
    "rx_packets", "rx_too_short", "rx_bad_csum", "rx_echo_requests", "rx_echo_replies",
    "rx_dest_unreach", "rx_time_exceeded", "rx_other", "rx_errors_bad_quote",
    "tx_echo_replies", "tx_echo_requests", "tx_errors", "tx_rate_limited", "tx_suppressed",
    "tx_no_buffer", "echo_bcast_ignored", "rx_redirects_ignored", "rx_errors_not_ours",
    "rx_errors_to_bcast", "rx_frag_needed", "rx_frag_needed_no_mtu", "tx_redirects",
)

ERR_QUOTE = 28  # quoted bytes beyond the header: RFC 792 asks for header + 64 bits; we send more
NET_ADMIN_PROHIBITED = 9   # RFC 1122 3.2.2.1: communication with the network prohibited
HOST_ADMIN_PROHIBITED = 10  # ... with the host prohibited (13, RFC 1812: by filtering)
REDIRECT_HOST = 1          # RFC 792: redirect datagrams for the host (RFC 1812 5.2.7.2: the
                           # only code a router sends; network redirects are not)


def echo_rewrite(b, off, ihl, tot, bcast, ip, ttl):
    """The echo request whose IPv4 header is at b[off] (ihl bytes, tot in all) becomes its
    reply in place; its new total length. Byte work only (C integers when compiled:
    icmp.pxd, issue 13)."""
    o = off + ihl
    # ICMP: type 8 -> 0; the checksum follows the type/code word's change (RFC 1624)
    b[o] = w.ECHO_REPLY
    c = update16((b[o + 2] << 8) | b[o + 3], (w.ECHO_REQUEST << 8) | b[o + 1],
                 (w.ECHO_REPLY << 8) | b[o + 1])
    if c == 0:
        c = 0xFFFF  # an all-zero reply sums to +0: only 0xFFFF verifies (RFC 1071)
    b[o + 2] = c >> 8
    b[o + 3] = c & 0xFF
    # IP: swap addresses (the reply's source is the address the request was sent to,
    # RFC 1122 3.2.2.6, unless that was a broadcast: then our own), fresh TTL, drop options.
    # Written out byte by byte, no loop: interpreted (MicroPython, the pure core) a loop's
    # index arithmetic and tests were most of a ping's rewrite; compiled, the same C stores
    a = off + 12
    if bcast:
        b[a + 4] = ip[0]
        b[a + 5] = ip[1]
        b[a + 6] = ip[2]
        b[a + 7] = ip[3]
    t = b[a]
    b[a] = b[a + 4]
    b[a + 4] = t
    t = b[a + 1]
    b[a + 1] = b[a + 5]
    b[a + 5] = t
    t = b[a + 2]
    b[a + 2] = b[a + 6]
    b[a + 6] = t
    t = b[a + 3]
    b[a + 3] = b[a + 7]
    b[a + 7] = t
    if ihl > 20:
        # options are not echoed: move the ICMP message up against a 20-byte header
        copy(b, off + 20, b, o, tot - ihl)   # downwards: a forward copy is safe
        tot = tot - ihl + 20
        b[off] = 0x45
        b[off + 2] = tot >> 8
        b[off + 3] = tot & 0xFF
    b[off + 8] = ttl
    b[off + 6] = 0   # not fragmented any more (a reassembled request may have been)
    b[off + 7] = 0
    b[off + 10] = 0
    b[off + 11] = 0
    # the header checksum (RFC 1071): its ten 16-bit words summed in one expression, no call
    # and no loop (the fragment word is 0 and the checksum's own, the TTL byte is ttl)
    s = ((b[off] + b[off + 2] + b[off + 4] + ttl + b[a] + b[a + 2] + b[a + 4] + b[a + 6])
         << 8) + b[off + 1] + b[off + 3] + b[off + 5] + b[off + 9] + b[a + 1] + b[a + 3] + \
        b[a + 5] + b[a + 7]
    s = (s & 0xFFFF) + (s >> 16)   # under 2**20: two folds carry every bit back
    s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    b[off + 10] = s >> 8
    b[off + 11] = s & 0xFF
    return tot


def mac_back(b, mac):
    """Ethernet: the frame at b[0] goes back to the MAC it came from, from ours."""
    b[0] = b[6]   # written out: no loop's index work interpreted (as echo_rewrite)
    b[1] = b[7]
    b[2] = b[8]
    b[3] = b[9]
    b[4] = b[10]
    b[5] = b[11]
    b[6] = mac[0]
    b[7] = mac[1]
    b[8] = mac[2]
    b[9] = mac[3]
    b[10] = mac[4]
    b[11] = mac[5]


try:
    import micropython  # noqa: F401
    try:
        # machine code where the port has the native emitter (core/checksum_viper.py)
        from ustack.core.checksum_viper import echo_rewrite, mac_back  # noqa: F811
    except (ImportError, SyntaxError):
        pass
except ImportError:
    pass


def kind_of(t, code):
    """The neutral error kind (core/net/errors.py) of an ICMPv4 error type/code, 0 for a
    message that is no error. Unreachable codes without a kind of their own (source route
    failed, unknown network or host, isolated, TOS, precedence: RFC 792, RFC 1122 3.2.2.1,
    RFC 1812 5.2.7.1) mean the host cannot be reached (Linux: EHOSTUNREACH and kin)."""
    if t == w.DEST_UNREACH:
        if code == w.NET_UNREACH:
            return ERR_NET_UNREACH
        if code == w.PROTO_UNREACH:
            return ERR_PROTO_UNREACH
        if code == w.PORT_UNREACH:
            return ERR_PORT_UNREACH
        if code == w.FRAG_NEEDED:
            return ERR_PKT_TOO_BIG
        if code == NET_ADMIN_PROHIBITED or code == HOST_ADMIN_PROHIBITED or \
                code == w.ADMIN_PROHIBITED:
            return ERR_ADMIN_PROHIBITED
        return ERR_HOST_UNREACH
    if t == w.TIME_EXCEEDED:
        return ERR_REASS_TIMEOUT if code == w.FRAG_REASS_EXCEEDED else ERR_TIME_EXCEEDED
    if t == w.PARAM_PROBLEM:
        return ERR_PARAM_PROBLEM
    if t == w.SOURCE_QUENCH:
        return ERR_SOURCE_QUENCH
    return 0


class Pinger:
    """Echo requests to one destination; replies matched by identifier and sequence."""

    def __init__(self, icmp, dst, ident, size=56, slots=64):
        self.icmp = icmp
        self.dst = ip4.aton(dst)
        self.ident = ident & 0xFFFF
        self.size = size
        self.slots = slots
        self.sent_at = [-1] * slots
        self.rtts = []
        self.sent = 0
        self.received = 0
        self.duplicates = 0

    def fill(self, pb, typ, seq, now):
        """Echo request seq at pb.off: type typ (ICMPv4's and ICMPv6's echo share the layout,
        RFC 792 / RFC 4443 4.1), our identifier, the byte pattern; its send time noted."""
        b = pb.buf
        o = pb.off
        b[o] = typ
        b[o + 1] = 0
        b[o + 4] = self.ident >> 8
        b[o + 5] = self.ident & 0xFF
        b[o + 6] = (seq >> 8) & 0xFF
        b[o + 7] = seq & 0xFF
        i = 0
        while i < self.size:
            b[o + 8 + i] = i & 0xFF
            i += 1
        pb.n = 8 + self.size
        self.sent_at[seq % self.slots] = now
        self.sent += 1

    def send(self, seq, now):
        """Send echo request number seq (its payload is the deterministic byte pattern)."""
        icmp = self.icmp
        stack = icmp.stack
        pb = stack.ipv4.alloc_tx()
        if pb is not None and pb.off + 8 + self.size > pb.size:
            stack.free(pb)
            pb = stack.ipv4.alloc_big(8 + self.size)  # sent as fragments
        if pb is None:
            icmp.stats.tx_no_buffer += 1
            return False
        self.fill(pb, w.ECHO_REQUEST, seq, now)
        icmp.stats.tx_echo_requests += 1
        err = stack.ipv4.output(pb, ip4.PROTO_ICMP, None, self.dst, csum_off=2)
        return err == 0

    def on_reply(self, seq, now):
        k = seq % self.slots
        t = self.sent_at[k]
        if t < 0:
            self.duplicates += 1
            return
        self.sent_at[k] = -1
        self.received += 1
        self.rtts.append(now - t)

    def close(self):
        self.icmp.pingers.remove(self)


class ICMP:
    def __init__(self, stack):
        self.stack = stack
        self.stats = Counters(ICMP_COUNTERS)
        cfg = stack.config
        self.rate_ms = cfg["ICMP_RATE_MS"]
        self.burst = cfg["ICMP_BURST"]
        self.tokens = self.burst
        self.last_refill = 0
        self.pingers = []
        self.echo_broadcast = False  # RFC 1122 3.2.2.6 lets hosts ignore broadcast pings
        self.echo_enabled = True
        self._ident = 0
        self.reply_src = bytearray(4)   # a routed echo reply's addresses (see _echo)
        self.reply_dst = bytearray(4)

    def pinger(self, dst, size=56, ident=None):
        if ident is None:
            self._ident = (self._ident + 0x1D3B) & 0xFFFF
            ident = self._ident
        p = Pinger(self, dst, ident, size)
        self.pingers.append(p)
        return p

    def input(self, pb, m):
        """An ICMP message IPv4 delivers: m is its metadata (core/net/ip.py Meta). ICMPv4
        belongs to IPv4 (its echo replies are rewritten in that header), so it reads the
        header it is handed."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        iface = m.iface
        bcast = m.bcast
        off = m.hdr
        o = m.l4
        n = m.l4len
        ihl = o - off
        tot = ihl + n
        st.rx_packets += 1
        if n < w.HDR_LEN:
            st.rx_too_short += 1
            stack.free(pb)
            return
        if CS.csum(b, o, n, 0) != 0xFFFF:
            st.rx_bad_csum += 1
            stack.free(pb)
            return
        t = b[o]
        if t == w.ECHO_REQUEST:
            st.rx_echo_requests += 1
            if bcast and not self.echo_broadcast:
                st.echo_bcast_ignored += 1
                stack.free(pb)
                return
            if not self.echo_enabled:
                stack.free(pb)
                return
            self._echo_reply(iface, pb, off, ihl, tot, bcast)
            return
        if t == w.ECHO_REPLY:
            st.rx_echo_replies += 1
            ident = (b[o + 4] << 8) | b[o + 5]
            seq = (b[o + 6] << 8) | b[o + 7]
            for p in self.pingers:
                if p.ident == ident and p.dst[0] == b[off + 12] and p.dst[1] == b[off + 13] and \
                        p.dst[2] == b[off + 14] and p.dst[3] == b[off + 15]:
                    p.on_reply(seq, stack.now)
            stack.free(pb)
            return
        if t == w.REDIRECT:
            # RFC 1122 3.2.2.2 lets a host act on a redirect from its first-hop gateway; we
            # keep no route cache, so none (from a gateway or anyone else) changes anything
            st.rx_redirects_ignored += 1
            stack.free(pb)
            return
        if t == w.DEST_UNREACH or t == w.TIME_EXCEEDED or t == w.PARAM_PROBLEM or t == w.SOURCE_QUENCH:
            if t == w.DEST_UNREACH:
                st.rx_dest_unreach += 1
            elif t == w.TIME_EXCEEDED:
                st.rx_time_exceeded += 1
            else:
                st.rx_other += 1
            if bcast:
                # RFC 1122 3.2.2: errors are never sent to a broadcast or multicast address
                st.rx_errors_to_bcast += 1
                stack.free(pb)
                return
            # the quoted datagram: its IP header plus at least 8 bytes
            q = o + 8
            qn = n - 8
            if qn < 28 or (b[q] >> 4) != 4:
                st.rx_errors_bad_quote += 1
                stack.free(pb)
                return
            qihl = (b[q] & 0x0F) << 2
            if qihl < 20 or qn < qihl + 8:
                st.rx_errors_bad_quote += 1
                stack.free(pb)
                return
            if stack.local_iface(b, q + 12) is None:
                # RFC 5927 4.1: an error must quote a datagram we sent (our source address)
                st.rx_errors_not_ours += 1
                stack.free(pb)
                return
            # the transports get the error's meaning and the quoted datagram's metadata
            proto = b[q + 9]
            # qn - qihl: what the quote holds of the transport message
            qm = stack.ipv4.quote(b, q, qihl, qn - qihl, iface)
            kind = kind_of(t, b[o + 1])
            arg = 0
            if kind == ERR_PKT_TOO_BIG:
                st.rx_frag_needed += 1
                arg = (b[o + 6] << 8) | b[o + 7]   # RFC 1191 4: the next-hop MTU
                if arg == 0:
                    # RFC 1191 7.1: an old router says nothing: the plateau below the
                    # quoted datagram's Total Length
                    st.rx_frag_needed_no_mtu += 1
                    arg = plateau_below((b[q + 2] << 8) | b[q + 3])
                if proto != ip4.PROTO_TCP or stack.tcp is None:
                    # TCP learns only once the quoted segment proves in flight (RFC 5927)
                    stack.ip.learn_pmtu(b, q + 16, 4, arg)
            if proto == ip4.PROTO_UDP:
                stack.udp.icmp_error(kind, arg, b, qm)
            elif proto == ip4.PROTO_TCP and stack.tcp is not None:
                stack.tcp.icmp_error(kind, arg, b, qm)
            stack.free(pb)
            return
        st.rx_other += 1
        stack.free(pb)

    def _echo_reply(self, iface, pb, off, ihl, tot, bcast):
        """Turn the request in pb into its reply and send it back the way it came."""
        b = pb.buf
        stack = self.stack
        v4 = stack.ipv4   # compiled: a C struct, its TTL and counters C fields
        tot = echo_rewrite(b, off, ihl, tot, bcast, iface.ip, v4.ttl)
        self.stats.tx_echo_replies += 1
        v4.stats.tx_packets += 1
        if off == iface.hlen and pb.index >= 0 and tot <= iface.mtu:
            # Ethernet: back to the MAC it came from (swap in place)
            if iface.hlen:
                mac_back(b, iface.mac)
            pb.off = 0
            pb.n = off + tot
            iface.transmit(pb)
            return
        # reassembled or tagged: route it like any datagram (fragmenting if needed)
        out = stack.alloc() if tot + 34 <= stack.pool.size else None
        if out is None:
            # too big for one buffer: the reply needs fragmenting from the slot
            pb.off = off + 20
            pb.n = tot - 20
            self._send_big(pb, tot)
            return
        # copied by index into preallocated addresses: no slice loads (allocation-free)
        copy(out.buf, 34, b, off + 20, tot - 20)
        src = self.reply_src
        dst = self.reply_dst
        copy(src, 0, b, off + 12, 4)
        copy(dst, 0, b, off + 16, 4)
        out.off = 34
        out.n = tot - 20
        stack.free(pb)
        stack.ipv4.output(out, ip4.PROTO_ICMP, src, dst, csum_off=-1)

    def _send_big(self, pb, tot):
        """Reply bigger than a packet buffer: fragment straight out of the reassembly slot."""
        stack = self.stack
        b = pb.buf
        off = pb.off - 20
        iface = stack.route_out(b, off + 16)  # to ourselves: "lo"
        if iface is None:
            stack.free(pb)
            return
        pb.off = off
        pb.n = tot
        stack.ipv4._fragment(iface, pb, stack.routes.nexthop)

    def error_kind(self, iface, pb, off, kind, arg):
        """Send the ICMP error that means kind (core/net/errors.py) about the datagram at
        pb.buf[off]: how the network layer's family-neutral IP.error reaches ICMPv4."""
        t = w.DEST_UNREACH
        code = w.HOST_UNREACH
        if kind == ERR_PORT_UNREACH:
            code = w.PORT_UNREACH
        elif kind == ERR_PROTO_UNREACH:
            code = w.PROTO_UNREACH
        elif kind == ERR_NET_UNREACH:
            code = w.NET_UNREACH
        elif kind == ERR_PKT_TOO_BIG:
            code = w.FRAG_NEEDED
        elif kind == ERR_ADMIN_PROHIBITED:
            code = w.ADMIN_PROHIBITED
        elif kind == ERR_TIME_EXCEEDED:
            t = w.TIME_EXCEEDED
            code = w.TTL_EXCEEDED
        elif kind == ERR_REASS_TIMEOUT:
            t = w.TIME_EXCEEDED
            code = w.FRAG_REASS_EXCEEDED
        elif kind == ERR_PARAM_PROBLEM:
            t = w.PARAM_PROBLEM
            code = 0
        self.error(iface, pb, off, t, code, arg)

    def redirect(self, iface, pb, off, gw):
        """RFC 1812 5.2.7.2 / RFC 792: the source of the datagram at pb.buf[off], on iface's
        network, is told that gw (4 bytes) is the better first hop for its destination: a
        host redirect from the address it sent to, rate-limited with the errors, counted
        (tx_redirects). pb is not consumed; the datagram is still forwarded."""
        self.error(iface, pb, off, w.REDIRECT, REDIRECT_HOST, 0, gw)

    def error(self, iface, pb, off, t, code, mtu, gw=None):
        """Send an ICMP error about the datagram at pb.buf[off] (pb is not consumed); gw: a
        Redirect's gateway (4 bytes)."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        # RFC 1122 3.2.2: never about ICMP errors, non-initial fragments, broadcast/multicast
        # destinations, or sources that do not name a single host.
        ihl = (b[off] & 0x0F) << 2
        if b[off + 9] == ip4.PROTO_ICMP:
            tot = (b[off + 2] << 8) | b[off + 3]
            if tot >= ihl + 1 and w.is_error(b[off + ihl]):
                st.tx_suppressed += 1
                return
        if ((b[off + 6] & 0x1F) | b[off + 7]) != 0 or b[off + 16] >= 224 or \
                b[off + 12] == 0 or b[off + 12] >= 224 or \
                (pb.index >= 0 and off >= 14 and b[0] & 1) or \
                stack.ipv4.is_broadcast(b, off + 16):  # subnet-directed too, when forwarding
            st.tx_suppressed += 1
            return
        now = stack.now
        if self.rate_ms:
            add = (now - self.last_refill) // self.rate_ms
            if add > 0:
                self.tokens = min(self.burst, self.tokens + add)
                self.last_refill = now
            if self.tokens <= 0:
                st.tx_rate_limited += 1
                return
            self.tokens -= 1
        out = stack.ipv4.alloc_tx()
        if out is None:
            st.tx_no_buffer += 1
            return
        tot = (b[off + 2] << 8) | b[off + 3]
        q = ihl + ERR_QUOTE
        if q > tot:
            q = tot
        ob = out.buf
        o = out.off
        ob[o] = t
        ob[o + 1] = code
        ob[o + 4] = 0
        ob[o + 5] = 0
        ob[o + 6] = (mtu >> 8) & 0xFF
        ob[o + 7] = mtu & 0xFF
        if t == w.PARAM_PROBLEM:
            ob[o + 4] = mtu & 0xFF  # RFC 792: the pointer to the bad octet, not an MTU
            ob[o + 6] = 0
            ob[o + 7] = 0
        elif gw is not None:
            copy(ob, o + 4, gw, 0, 4)   # RFC 792: the Gateway Internet Address
        ob[o + 8:o + 8 + q] = b[off:off + q]
        out.n = 8 + q
        if gw is not None:
            st.tx_redirects += 1
        else:
            st.tx_errors += 1
        # over "lo", from the address the datagram was sent to (route_out picks it)
        src = iface.ip if iface.ip[0] and iface.loop is None else None
        stack.ipv4.output(out, ip4.PROTO_ICMP, src, bytes(b[off + 12:off + 16]), csum_off=2)

    def tick(self, now):
        return 0
