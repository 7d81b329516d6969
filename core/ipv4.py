"""IPv4 input, output, forwarding (RFC 791, RFC 1122 section 3, RFC 1812 section 5).

Input runs integrity checks (lengths, header checksum) before sanity checks (addresses,
options), each drop with its own counter, then delivers locally (unicast to any of our
addresses, limited and subnet-directed broadcast, all-hosts multicast), reassembles
fragments, or forwards when enabled. Output prepends a 20-byte header in front of the
transport header, fills the transport checksum over the pseudo-header, fragments when the
datagram exceeds the interface MTU, and hands it to the interface with its next hop.
"""
from ustack.core.compat import const, EMSGSIZE, ENETUNREACH, ENOBUFS
from ustack.core.checksum import update16
from ustack.core import checksum as ck  # ck.csum: compiled, checksum_c.pxd's inline sum
from ustack.core.stats import Counters
from ustack.core.wire import ipv4 as w
from ustack.core.wire.ipv4 import write_header as write_ip_header
from ustack.core.wire import icmp4
from ustack.core.reass import Reassembly
from ustack.core.wire.fields import copy
from ustack.core.net.ip import AF_INET, ALEN4, fill_csum, partial_csum, complete_csum, scratch, \
    addr_eq
from ustack.core.buf import OFL_CSUM, OFL_PARTIAL, OFL_GSO_SHIFT
from ustack.core.iface import CAP_CSUM_TX, CAP_TSO4, CAP_GSO_SOFT
from ustack.core.net.errors import ERR_PROTO_UNREACH, ERR_HOST_UNREACH

IP_COUNTERS = (
    "rx_packets", "rx_delivered", "rx_too_short", "rx_bad_version", "rx_bad_ihl", "rx_bad_len",
    "rx_bad_csum", "rx_bad_src", "rx_not_for_us", "rx_unknown_proto", "rx_fragments",
    "rx_reassembled", "rx_options", "rx_multicast_dropped", "rx_src_is_ours",
    "rx_link_bcast_unicast", "rx_raw_only", "rx_raw_dropped", "rx_unconfigured",
    "tx_packets", "tx_no_route", "tx_no_buffer", "tx_fragments", "tx_frag_needed", "tx_too_big",
    "fwd_packets", "fwd_ttl_exceeded", "fwd_no_route", "fwd_disabled", "fwd_directed_bcast",
    "fwd_martian", "fwd_source_route", "fwd_filtered", "rx_filtered", "tx_filtered",
    "fwd_link_local",
)

L2_RESERVE = const(14)  # Ethernet header room reserved in front of every TX datagram
IP_MAX = const(65535)   # RFC 791: the largest datagram
ID_BUCKETS = const(64)  # RFC 7739 5.3: per-destination Identification counters (hashed)
# RFC 3168 5: the ECN field, the low two bits of the TOS byte (b[off + 1]). Transports read
# it from the header they are handed (tcp.seg_ip), so nothing extra travels up.
ECN_MASK = const(3)
ECN_ECT1 = const(1)
ECN_ECT0 = const(2)
ECN_CE = const(3)


def _pseudo_sum(b, o, proto):
    """The pseudo-header's sum (RFC 768, RFC 9293 3.1) over the addresses of the IPv4 header
    at b[o] and proto, folded to 16 bits: csum(b, o + 12, 8, proto) by index, with no buffer
    view made per datagram (below 2**19 before the folds)."""
    s = proto + ((b[o + 12] + b[o + 14] + b[o + 16] + b[o + 18]) << 8) + \
        b[o + 13] + b[o + 15] + b[o + 17] + b[o + 19]
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def ident_hash(f, g, src, dst, proto):
    """next_ident's two keyed hashes over (src, dst, proto): F's low 16 bits, and above them
    the counter bucket G picks (below 2**22: a small int on 32-bit MicroPython; C integers
    under Cython, ipv4.pxd)."""
    i = 0
    while i < 9:
        x = proto if i == 8 else (src[i] if i < 4 else dst[i - 4])
        f = ((f ^ x) * 0x9E5) & 0x3FFFF
        f ^= f >> 7
        g = ((g ^ x) * 0x6B3) & 0x3FFFF
        g ^= g >> 9
        i += 1
    return (f & 0xFFFF) | (((g >> 4) & (ID_BUCKETS - 1)) << 16)


class IPv4:
    def __init__(self, stack):
        self.stack = stack
        self.stats = Counters(IP_COUNTERS)
        self.ttl = stack.config["IP_TTL"]
        self.forward = stack.config["IP_FORWARD"]
        self.forward_bcast = stack.config["IP_FORWARD_DIRECTED_BCAST"]
        self.id_count = [0] * ID_BUCKETS
        self.id_key1 = -1     # secrets, drawn on first use (after the port seeded the stack)
        self.id_key2 = 0
        self.reass = Reassembly(stack, stack.config)
        self.big = None
        self.meta = stack.ip.meta
        self.fwd_nh = bytearray(ALEN4)  # a forwarded datagram's next hop while a Redirect goes

    # ---- input ----------------------------------------------------------------------------
    def input(self, iface, pb, off, n):
        st = self.stats
        stack = self.stack
        b = pb.buf
        st.rx_packets += 1
        # the driver's word on the transport checksum (CAP_CSUM_RX) is for delivery here
        # only: the buffer may leave again (forwarded, answered in place) as a plain frame
        ofl = pb.offload
        pb.offload = 0
        # integrity
        if n < w.HDR_LEN:
            st.rx_too_short += 1
            stack.free(pb)
            return
        vi = b[off]
        if (vi >> 4) != 4:
            st.rx_bad_version += 1
            stack.free(pb)
            return
        ihl = (vi & 0x0F) << 2
        if ihl < w.HDR_LEN or ihl > n:
            st.rx_bad_ihl += 1
            stack.free(pb)
            return
        tot = (b[off + 2] << 8) | b[off + 3]
        if tot < ihl or tot > n:
            st.rx_bad_len += 1  # shorter than its header, or truncated
            stack.free(pb)
            return
        if ck.csum(b, off, ihl, 0) != 0xFFFF:
            st.rx_bad_csum += 1
            stack.free(pb)
            return
        # sanity: RFC 1122 3.2.1.3 - a source may not be broadcast, multicast, loopback or
        # {0, host}; {0, 0} only while a host learns its address, to a broadcast (DHCP)
        s0 = b[off + 12]
        d0 = b[off + 16]
        lo = iface.loop is not None  # "lo" carries only what we sent ourselves
        if not lo and (s0 >= 224 or s0 == 127 or self.is_broadcast(b, off + 12) or
                       (s0 == 0 and (b[off + 13] or b[off + 14] or b[off + 15] or
                                     not (d0 >= 224 or self.is_broadcast(b, off + 16))))):
            st.rx_bad_src += 1
            stack.free(pb)
            return
        # LAND: our own address as the source cannot come from the wire; answering it would
        # talk to ourselves
        if not lo and s0 != 0 and self._ours(b, off + 12):
            st.rx_src_is_ours += 1
            stack.free(pb)
            return
        if ihl > w.HDR_LEN:
            st.rx_options += 1  # options are skipped (RFC 1122 3.2.1.8 lets hosts ignore most)
        local = False
        bcast = False
        if d0 >= 224:
            if d0 == 255 and b[off + 17] == 255 and b[off + 18] == 255 and b[off + 19] == 255:
                local = True
                bcast = True
            elif d0 == 224 and b[off + 17] == 0 and b[off + 18] == 0 and b[off + 19] == 1:
                local = True  # all-hosts group
                bcast = True
            elif d0 < 240 and stack.multicast_member(b, off + 16):
                local = True
                bcast = True
            elif d0 >= 240:
                pass  # reserved (RFC 1112 4): not for us, never forwarded (_forward)
            else:
                st.rx_multicast_dropped += 1
                stack.free(pb)
                return
        elif lo or iface.is_local(b, off + 16):
            local = True  # lo: route_out sent only 127/8 and our own addresses there
        elif iface._is_bcast_at(b, off + 16):
            local = True
            bcast = True
        else:
            oi = stack.local_iface(b, off + 16)  # weak host model (RFC 1122 3.3.4.2)
            if oi is not None and d0 != 127:  # RFC 1122 3.2.1.3 (g): 127/8 not from a link
                local = True
        if not bcast and iface.hlen and (b[0] & 1):
            # RFC 1122 3.3.6: a unicast datagram in a link-layer broadcast/multicast is
            # silently discarded (and RFC 1812 5.3.4: never forwarded)
            st.rx_link_bcast_unicast += 1
            stack.free(pb)
            return
        if not local:
            if iface.ip[0] == 0 and d0 < 224 and d0 != 0 and d0 != 127:
                # Unconfigured interface (DHCP in progress): a server may unicast its OFFER/ACK
                # to the address it offers (RFC 2131 4.1), so UDP to us by MAC is taken. Nothing
                # else: an address still being probed (RFC 5227 2.1.1), or any other, must not
                # answer pings or TCP before it is ours.
                if b[off + 9] != w.PROTO_UDP:
                    st.rx_unconfigured += 1
                    stack.free(pb)
                    return
                local = True
            else:
                if ofl & OFL_PARTIAL:
                    # a local sender's partial checksum (virtio NEEDS_CSUM): whole before
                    # it goes on (a super-frame over the MTU is cut like any datagram)
                    complete_csum(b, off + ihl, tot - ihl, ck.csum(b, off + 12, 8, b[off + 9]),
                                  b[off + 9])
                self._forward(iface, pb, off, ihl, tot)
                return
        frag = (b[off + 6] << 8) | b[off + 7]
        if frag & (w.FLAG_MF | w.FRAG_OFF_MASK):
            st.rx_fragments += 1
            r = self.reass.input(iface, pb, off, ihl, tot)
            if r is None:
                return  # held (or dropped) by reassembly
            st.rx_reassembled += 1
            ofl = 0  # each fragment's word covered only itself
            pb = r
            off = 0
            ihl = (r.buf[0] & 0x0F) << 2
            tot = r.n
        pb.off = off
        if stack.filter_in is not None and not stack.filter_in(iface, pb.buf, off, tot):
            st.rx_filtered += 1  # core/filter.py counted why
            stack.free(pb)
            return
        st.rx_delivered += 1
        b = pb.buf
        proto = b[off + 9]
        # the metadata transports read instead of this header (core/net/ip.py)
        m = self.meta
        m.family = AF_INET
        m.hdr = off
        m.src = off + 12
        m.dst = off + 16
        m.alen = ALEN4
        m.l4 = off + ihl
        m.l4len = tot - ihl
        m.proto = proto
        m.psum = _pseudo_sum(b, off, proto)
        m.ecn = b[off + 1] & ECN_MASK
        m.iface = iface
        m.bcast = bcast
        m.csum_ok = (ofl & OFL_CSUM) != 0
        m.partial = (ofl & OFL_PARTIAL) != 0
        took = stack.raw_input(pb, m) if stack.raw_sockets else False
        if proto == w.PROTO_TCP and stack.tcp is not None:
            stack.tcp.input(pb, m)
        elif proto == w.PROTO_UDP:
            stack.udp.input(pb, m)
        elif proto == w.PROTO_ICMP:
            stack.icmp.input(pb, m)
        elif took:
            st.rx_raw_only += 1  # a protocol we do not implement, read by a raw socket
            stack.free(pb)
        else:
            st.rx_unknown_proto += 1
            if not bcast:
                stack.ip.error(pb, m, ERR_PROTO_UNREACH, 0)
            stack.free(pb)

    def host_unreachable(self, b, q):
        """The datagram at b[q] could not be delivered (its next hop never answered ARP):
        report it to its transport as an ICMP host unreachable would be (Linux's
        ip_link_failure), so a connect() in SYN-SENT fails with EHOSTUNREACH and a
        connected UDP socket gets it as SO_ERROR. True when a transport was told."""
        if (b[q] >> 4) != 4 or ((b[q + 6] & 0x1F) | b[q + 7]) != 0:
            return False  # a later fragment carries no ports
        ihl = (b[q] & 0x0F) << 2
        proto = b[q + 9]
        stack = self.stack
        qm = self.quote(b, q, ihl, ((b[q + 2] << 8) | b[q + 3]) - ihl, None)
        if proto == w.PROTO_UDP:
            stack.udp.icmp_error(ERR_HOST_UNREACH, 0, b, qm)
        elif proto == w.PROTO_TCP and stack.tcp is not None:
            stack.tcp.icmp_error(ERR_HOST_UNREACH, 0, b, qm)
        else:
            return False
        return True

    def quote(self, b, q, ihl, l4len, iface):
        """stack.ip.quote filled for the IPv4 datagram an error quotes at b[q] (header length
        ihl, l4len bytes of its transport message at hand): what transports' icmp_error read."""
        qm = self.stack.ip.quote
        qm.family = AF_INET
        qm.hdr = q
        qm.src = q + 12
        qm.dst = q + 16
        qm.alen = ALEN4
        qm.l4 = q + ihl
        qm.l4len = l4len
        qm.proto = b[q + 9]
        qm.iface = iface
        return qm

    def _ours(self, b, o):
        """The address at b[o] is one of our links' (Stack.local_iface for a source: its
        127/8, "lo"'s, was dropped before)."""
        for iface in self.stack.ifaces:
            if iface.is_local(b, o) and iface.ip[0]:
                return True
        return False

    def is_broadcast(self, b, o):
        """The address at b[o:o+4] is 255.255.255.255 or an attached subnet's broadcast."""
        if b[o] == 255 and b[o + 1] == 255 and b[o + 2] == 255 and b[o + 3] == 255:
            return True
        for iface in self.stack.ifaces:
            if iface._is_bcast_at(b, o):
                return True
        return False

    def _forward(self, iface, pb, off, ihl, tot):
        """RFC 1812 section 5.2: decrement TTL (incrementally fix the checksum), route, send."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        if not self.forward:
            # a host (RFC 1122 3.3.1.1) silently drops datagrams for other destinations
            st.fwd_disabled += 1
            stack.free(pb)
            return
        d0 = b[off + 16]
        if d0 == 0 or d0 == 127 or d0 >= 240:
            # RFC 1812 5.3.7: never forward to 0/8, 127/8 or the reserved 240/4 (source
            # martians were dropped on input); no ICMP error about them either
            st.fwd_martian += 1
            stack.free(pb)
            return
        if (b[off + 12] == 169 and b[off + 13] == 254) or (d0 == 169 and b[off + 17] == 254):
            # RFC 3927 7: a link-local source or destination is never forwarded (as IPv6's
            # fe80::/10, core/ipv6.py forward)
            st.fwd_link_local += 1
            stack.free(pb)
            return
        if b[off + 8] <= 1:
            st.fwd_ttl_exceeded += 1
            stack.icmp.error(iface, pb, off, icmp4.TIME_EXCEEDED, 0, 0)
            stack.free(pb)
            return
        if ihl > w.HDR_LEN and self._source_routed(b, off, ihl):
            # RFC 7126 4.3/4.4: routers SHOULD drop LSRR/SSRR datagrams by default (they
            # steer traffic around filters; Linux: accept_source_route=0). We implement no
            # source routing, so forwarding on while ignoring the route would be wrong too.
            st.fwd_source_route += 1
            stack.free(pb)
            return
        r = stack.routes.lookup(b, off + 16)
        if r < 0:
            st.fwd_no_route += 1
            stack.icmp.error(iface, pb, off, icmp4.DEST_UNREACH, icmp4.NET_UNREACH, 0)
            stack.free(pb)
            return
        out = stack.routes.iface[r]
        if not self.forward_bcast and out._is_bcast_at(b, off + 16):
            # RFC 2644: a router must not forward directed broadcasts by default (smurf)
            st.fwd_directed_bcast += 1
            stack.free(pb)
            return
        if stack.filter is not None and not stack.filter(iface, out, b, off, tot):
            st.fwd_filtered += 1
            stack.free(pb)
            return
        nh = stack.routes.nexthop
        if out is iface and iface.ip[0] and self._on_link(iface, b, off + 12) and \
                self._on_link(iface, nh, 0) and not addr_eq(b, off + 12, nh, ALEN4):
            # RFC 1812 5.2.7.2: back out of the link it came from, between neighbours on
            # that network: the source learns of the better first hop (a Redirect, RFC 792;
            # core/icmp.py rate-limits and counts it) and the datagram goes on all the same.
            # (Source-routed datagrams, which must not be redirected, were dropped above.)
            copy(self.fwd_nh, 0, nh, 0, ALEN4)   # the redirect's own output routes again
            nh = self.fwd_nh
            stack.icmp.redirect(iface, pb, off, nh)
        # TTL is the high byte of the 16-bit word at offset 8; the header checksum follows
        # that word's change incrementally (RFC 1624, RFC 1812 5.3.1)
        ttl = b[off + 8]
        b[off + 8] = ttl - 1
        c = update16((b[off + 10] << 8) | b[off + 11], (ttl << 8) | b[off + 9],
                     ((ttl - 1) << 8) | b[off + 9])
        b[off + 10] = c >> 8
        b[off + 11] = c & 0xFF
        st.fwd_packets += 1
        pb.off = off
        pb.n = tot
        # the datagram moves behind the outgoing link header below: it must fit the buffer
        # there too (a buffer smaller than that link's MTU allows)
        mtu = out.mtu
        if pb.size - out.hlen < mtu:
            mtu = pb.size - out.hlen
        if tot > mtu:
            if (b[off + 6] & 0x40):
                st.tx_frag_needed += 1
                stack.icmp.error(iface, pb, off, icmp4.DEST_UNREACH, icmp4.FRAG_NEEDED, mtu)
                stack.free(pb)
                return
            self._fragment(out, pb, nh)
            return
        # RX frames carry their link header in front: move the datagram to TX layout
        if out.hlen != off:
            copy(pb.buf, out.hlen, pb.buf, off, tot)   # a move (memmove), no slice load
            pb.off = out.hlen
        out.output(pb, nh)

    @staticmethod
    def _on_link(iface, b, o):
        """Is the address at b[o] on iface's network (RFC 1812 5.2.7.2's "same logical
        (sub)network")?"""
        m = iface.mask
        n = iface.net
        return (b[o] & m[0]) == n[0] and (b[o + 1] & m[1]) == n[1] and \
            (b[o + 2] & m[2]) == n[2] and (b[o + 3] & m[3]) == n[3]

    def _source_routed(self, b, off, ihl):
        """Does the option list carry a loose or strict source route (RFC 791 3.1)?"""
        i = off + w.HDR_LEN
        end = off + ihl
        while i < end:
            t = b[i]
            if t == w.OPT_EOL:
                return False
            if t == w.OPT_NOP:
                i += 1
                continue
            if t == w.OPT_LSRR or t == w.OPT_SSRR:
                return True
            if i + 1 >= end or b[i + 1] < 2:
                return False  # malformed: stop (the datagram is not source routed)
            i += b[i + 1]
        return False

    # ---- output ---------------------------------------------------------------------------
    def output(self, pb, proto, src, dst, csum_off=-1, ttl=0, tos=0, df=False, iface=None,
               rc=None):
        """Send the transport segment at pb.buf[pb.off:pb.off+pb.n] to dst (4 bytes): IPv4's
        half of the network layer's one output call (core/net/ip.py IP.output).

        src None/0.0.0.0 picks the outgoing interface's address. csum_off >= 0 names the
        transport checksum field (relative to pb.off) to fill over the pseudo-header. Takes
        ownership of pb. Returns 0 or an errno. rc (route.RouteCache): a connection's route
        and next hop from its last segment, used while the routing table is unchanged."""
        stack = self.stack
        st = self.stats
        if iface is None and rc is not None and rc.gen == stack.routes.gen:
            iface = rc.iface
            nh = rc.nexthop
        elif iface is None:
            iface = stack.route_out(dst, 0)  # 127/8 and our own addresses: "lo"
            if iface is None:
                if dst[0] == 255 and dst[1] == 255 and dst[2] == 255 and dst[3] == 255 and stack.ifaces:
                    iface = stack.ifaces[0]  # limited broadcast with no route: first interface
                    nh = dst
                else:
                    st.tx_no_route += 1
                    stack.free(pb)
                    return ENETUNREACH
            else:
                nh = stack.routes.nexthop
                if rc is not None:
                    rc.fill(stack.routes.gen, iface, nh, dst)
        else:
            nh = dst
            rc = None
        if src is None or (src[0] == 0 and src[1] == 0 and src[2] == 0 and src[3] == 0):
            src = stack.source_for_iface(iface, dst)
        l4 = pb.n
        if l4 + w.HDR_LEN > IP_MAX:
            st.tx_too_big += 1  # RFC 791: Total Length is 16 bits
            stack.free(pb)
            return EMSGSIZE
        off = pb.off - w.HDR_LEN
        pb.off = off
        tot = l4 + w.HDR_LEN
        pb.n = tot
        b = pb.buf
        ps = write_ip_header(b, off, tot, self.next_ident(src, dst, proto),
                             w.FLAG_DF if df else 0, ttl or self.ttl, proto, src, dst)
        if tos:
            # TOS/ECN byte (RFC 3168 5: ECT(0) on an ECN connection's data): the header
            # checksum follows incrementally (RFC 1624), no second pass over the header
            b[off + 1] = tos
            c = update16((b[off + 10] << 8) | b[off + 11], 0x4500, 0x4500 | tos)
            b[off + 10] = c >> 8
            b[off + 11] = c & 0xFF
        gso = pb.offload >> OFL_GSO_SHIFT
        if gso and not iface.caps & (CAP_TSO4 | CAP_GSO_SOFT):
            pb.offload = 0  # the route moved to a link without TSO: fragments, as any datagram
            gso = 0
        # under software GSO (no CAP_TSO4) each frame's checksum is taken as it is cut
        # (core/offload.py gso_send), not here
        if csum_off >= 0 and not (gso and not iface.caps & CAP_TSO4):
            # the transport's checksum, over IPv4's pseudo-header sum (RFC 768, RFC 9293
            # 3.1); ICMP has none (RFC 792)
            # (ps: the pseudo-header's sum over the addresses and protocol, write_header's)
            lo = off + w.HDR_LEN
            if proto != w.PROTO_ICMP and iface.caps & CAP_CSUM_TX and (tot <= iface.mtu or gso):
                # the driver completes it (not a datagram to fragment: only the first
                # fragment would carry the checksum field)
                partial_csum(pb, b, lo + csum_off, ps + l4)
            else:
                fill_csum(b, lo, l4, lo + csum_off, 0 if proto == w.PROTO_ICMP else ps, proto)
        st.tx_packets += 1
        if stack.filter_out is not None and not stack.filter_out(iface, b, off, tot):
            st.tx_filtered += 1
            stack.free(pb)
            return 0
        if tot > iface.mtu and not gso:
            if df:
                st.tx_frag_needed += 1
                stack.free(pb)
                return EMSGSIZE
            return self._fragment(iface, pb, nh)
        iface.output(pb, nh, rc)
        return 0

    def next_ident(self, src, dst, proto):
        """RFC 7739 5.3 (double hash): Identification = F(src, dst, proto) + one of
        ID_BUCKETS counters chosen by G(src, dst, proto), both keyed by secrets. Each
        destination sees its own sequence (unique within 65536 datagrams, RFC 6864 4.1) and
        learns nothing of traffic to others. Arithmetic stays below 2**30 (small ints on
        32-bit MicroPython) and allocates nothing."""
        if self.id_key1 < 0:
            self.id_key1 = self.stack.random16()
            self.id_key2 = self.stack.random16()
        h = ident_hash(self.id_key1, self.id_key2, src, dst, proto)
        k = h >> 16
        c = self.id_count[k]
        self.id_count[k] = (c + 1) & 0xFFFF
        return (h + c) & 0xFFFF

    def _fragment(self, iface, pb, nh):
        """RFC 791 section 3.2 fragmentation: payload split on 8-byte boundaries; each
        fragment gets a copy of the header (options not copied: we never send any)."""
        stack = self.stack
        b = pb.buf
        off = pb.off
        ihl = (b[off] & 0x0F) << 2
        tot = pb.n
        payload = tot - ihl
        chunk = ((iface.mtu - w.HDR_LEN) // 8) * 8
        if chunk < 8:
            self.stats.tx_too_big += 1  # an MTU under 28 holds no fragment at all
            stack.free(pb)
            return EMSGSIZE
        room = ((stack.pool.size - L2_RESERVE - w.HDR_LEN) // 8) * 8
        if room < chunk:
            chunk = room  # a fragment must fit its packet buffer, whatever the MTU
        base = ((b[off + 6] & 0x1F) << 8) | b[off + 7]
        more = b[off + 6] & 0x20
        pos = 0
        while pos < payload:
            n = payload - pos
            last = True
            if n > chunk:
                n = chunk
                last = False
            f = stack.alloc()
            if f is None:
                self.stats.tx_no_buffer += 1
                stack.free(pb)
                return ENOBUFS
            fo = L2_RESERVE
            fb = f.buf
            copy(fb, fo, b, off, w.HDR_LEN)   # no slice loads: nothing allocated per fragment
            fb[fo] = 0x45
            copy(fb, fo + w.HDR_LEN, b, off + ihl + pos, n)
            t = n + w.HDR_LEN
            fb[fo + 2] = t >> 8
            fb[fo + 3] = t & 0xFF
            fr = base + (pos >> 3)
            if not last or more:
                fr |= w.FLAG_MF
            fr |= ((b[off + 6] << 8) & w.FLAG_DF)
            fb[fo + 6] = fr >> 8
            fb[fo + 7] = fr & 0xFF
            fb[fo + 10] = 0
            fb[fo + 11] = 0
            c = ~ck.csum(fb, fo, w.HDR_LEN, 0) & 0xFFFF
            fb[fo + 10] = c >> 8
            fb[fo + 11] = c & 0xFF
            f.off = fo
            f.n = t
            self.stats.tx_fragments += 1
            iface.output(f, nh)
            pos += n
        stack.free(pb)
        return 0

    def alloc_big(self, l4len):
        """A datagram bigger than a packet buffer (it will be fragmented on output): one
        scratch buffer per stack, made on first use, REASS_SIZE big; None if it won't fit."""
        return scratch(self, L2_RESERVE + w.HDR_LEN, l4len, -100)

    def alloc_tx(self):
        """A buffer laid out so that, once IPv4 and Ethernet headers are prepended, the frame
        starts at offset 0. pb.off is the transport header's offset."""
        pb = self.stack.alloc()
        if pb is not None:
            pb.off = L2_RESERVE + w.HDR_LEN
            pb.n = 0
        return pb
