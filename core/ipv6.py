"""IPv6 input and output (RFC 8200), the address table (RFC 4291, RFC 4862) and neighbour
resolution (RFC 4861) on Ethernet links (RFC 2464).

Addresses live in one fixed table per stack (config IPV6_ADDRS): 16 bytes, prefix length,
ADDR_* flags (core/addr6.py) and the interface each; every interface gets its link-local
address from its MAC when it comes up, and every address is tentative until Duplicate
Address Detection (core/nd.py Dad) says it is unique (RFC 4862 5.4): a tentative address
is never a source and takes nothing but ND. Connected routes go into the 16-byte routing
table (Stack.routes_for(AF_INET6)).

Input walks the extension headers (core/wire/ipv6.py walk: bounded, each drop counted under
its own name), accepts our unicast addresses, ff02::1 and our solicited-node groups, fills
the network layer's metadata (core/net/ip.py Meta, family AF_INET6; the pseudo-header sum
without the length, which transports add) and hands the datagram to TCP, UDP or ICMPv6.
Output selects a source (RFC 6724 5), routes, prepends the 40-byte header, fills the
transport checksum and resolves the next hop through the interface's NeighbourCache, whose
callbacks send the solicitation, the waiting packet, or drop it.

With forwarding on (config IP_FORWARD, `--forward`, shared with IPv4) a unicast datagram
for another node goes to forward(): hop limit, route, the forward filter hook, ICMPv6
errors (RFC 4443 3) and Redirects to on-link sources (RFC 4861 8.2); a forwarding stack
takes no Router Advertisements. Routes from RAs (on-link prefixes, the default router,
RFC 4191 Route Information) go into the table as proto ra (_ra_route: never over another
source's route, bounded and counted).

Fragments (RFC 8200 4.5) go to core/reass6.py; the whole datagram it returns is walked
again and delivered like any other. Only the source fragments in IPv6: a datagram larger
than the path MTU (the link's, or less as Packet Too Big taught core/net/pmtu.py, RFC
8201) leaves in fragments of at most that size, each behind a copy of the 40-byte header
and a Fragment header whose Identification is drawn at random per datagram (RFC 7739 4.3:
not one global counter an observer could follow). Not in this slice: loopback of our own
addresses.
"""
from ustack.core.compat import const, EADDRNOTAVAIL, EMSGSIZE, ENETUNREACH, ENOBUFS
from ustack.core.checksum import csum
from ustack.core.stats import Counters
from ustack.core.wire import ipv6 as w
from ustack.core.wire import ethernet as eth
from ustack.core import addr6
from ustack.core.nd import NeighbourCache, Dad
from ustack.core.mld import Mld
from ustack.core import slaac as sa
from ustack.core.slaac import Slaac
from ustack.core.reass6 import Reassembly6
from ustack.core.wire.fields import copy
from ustack.core.net.ip import AF_INET6, ALEN6, fill_csum, partial_csum, complete_csum, \
    scratch
from ustack.core.buf import OFL_CSUM, OFL_PARTIAL, OFL_GSO_SHIFT
from ustack.core.iface import CAP_CSUM_TX, CAP_TSO6
from ustack.core.net.errors import ERR_PROTO_UNREACH, ERR_HOST_UNREACH
from ustack.core.route import SRC_CONNECTED, SRC_RA, prefix_mask
from ustack.core.wire import icmp6 as wi

IP6_COUNTERS = w.WALK_DROPS + (
    "rx_packets", "rx_delivered", "rx_bad_src", "rx_not_for_us", "rx_tentative",
    "rx_fragments", "rx_reassembled", "rx_frag_nested", "rx_unknown_proto",
    "rx_no_next_header",
    "tx_packets", "tx_no_route", "tx_no_source", "tx_no_buffer", "tx_too_big",
    "tx_fragmented", "tx_fragments", "tx_frag_no_buffer",
    "nd_unreachable", "nd_discarded", "addr_table_full", "addr_duplicate",
    "rx_filtered", "tx_filtered",
    # forwarding (config IP_FORWARD, RFC 8200 3, RFC 4443 3)
    "fwd_packets", "fwd_hop_limit", "fwd_no_route", "fwd_too_big", "fwd_beyond_scope",
    "fwd_bad_src", "fwd_martian", "fwd_multicast", "fwd_link_mcast", "fwd_filtered",
    "fwd_addr_unreach",
    "addr_dad_removed", "addr_removed",
)

L2_RESERVE = const(14)   # Ethernet header room in front of every datagram we send
HOP_LIMIT = const(64)    # RFC 8200 3 / RFC 4861 6.3.2: CurHopLimit when no router says
PAYLOAD_MAX = const(65535)


class IPv6:
    def __init__(self, stack):
        self.stack = stack
        cfg = stack.config
        self.stats = Counters(IP6_COUNTERS)
        self.hop_limit = cfg["IPV6_HOP_LIMIT"]
        n = cfg["IPV6_ADDRS"]
        self.size = n
        self.count = 0
        self.addrs = [bytearray(ALEN6) for _ in range(n)]
        self.plens = [0] * n
        self.flags = [0] * n
        self.ifaces = [None] * n
        self.auto = [False] * n         # formed by SLAAC (RFC 4862 5.5.3), not configured
        self.res = w.new_result()
        self.meta = stack.ip.meta
        self.nh = bytearray(ALEN6)      # the next hop of the datagram being sent
        self.grp = bytearray(ALEN6)     # a solicited-node group being built
        self.mac = bytearray(6)         # a multicast MAC being built
        self.dad = Dad(self, ALEN6, cfg, stack.random16)
        self.dad_iface = [None] * self.dad.size
        self.reass = Reassembly6(stack, cfg)
        self.big = None                 # the scratch buffer of a datagram to fragment
        self.fwd_nh = bytearray(ALEN6)  # the next hop of the datagram being forwarded

    # ---- addresses ------------------------------------------------------------------------
    def attach(self, iface):
        """An interface comes up: its neighbour cache and its link-local address (RFC 4862
        5.3, the modified EUI-64 IID of its MAC)."""
        if iface.l2 == 0:
            iface.nd = None
            return
        nd = NeighbourCache(self, ALEN6, 6, self.stack.config, self.stack.random16)
        nd.iface = iface
        iface.nd = nd
        # RFC 3810 / RFC 4861 7.2.1: the solicited-node groups are reported by MLDv2,
        # from :: until the link-local address is valid (RFC 3810 5.2.13)
        mld = Mld(self, self.stack.config, self.stack.random16)
        mld.iface = iface
        iface.mld = mld
        # RFC 4862 5.5: addresses and the default router from Router Advertisements
        iid = bytearray(8)
        addr6.eui64_iid(iface.mac, iid, 0)
        sl = Slaac(self, iid, self.stack.config, None, iface.name, iface.mtu)
        sl.iface = iface
        iface.slaac = sl
        iface.mtu6 = iface.mtu      # the IPv6 link MTU: an RA's MTU option may lower it
        self.add_address(iface, addr6.link_local_from_mac(iface.mac), 64)
        # RFC 4861 6.3.7: solicit routers after a random delay up to
        # MAX_RTR_SOLICITATION_DELAY, rather than wait up to MaxRtrAdvInterval for an RA
        # (a router solicits nobody: RFC 4861 6.3.7 is the host's part, see forward())
        now = self.stack.now
        if not self.stack.ipv4.forward:
            t = sl.start_solicit(now, self.stack.random16() %
                                 (sa.MAX_RTR_SOLICITATION_DELAY_MS + 1))
            if t >= 0:
                self.stack.timer_at(t or 1)

    def add_address(self, iface, a, plen, auto=False):
        """a (16 bytes) with its prefix length joins iface, tentative until DAD ends; its
        connected route goes into the routing table. auto: formed by SLAAC, so a failed
        DAD removes it (RFC 4862 5.4.5) where a configured one stays, marked duplicate.
        Returns the table index."""
        i = self.find(a, 0)
        new = i < 0
        if new:
            if self.count >= self.size:
                self.stats.addr_table_full += 1
                raise OSError(28, "IPv6 address table full (config IPV6_ADDRS)")
            i = self.count
            self.count += 1
        elif self.ifaces[i] is not iface:
            self.remove_address(a, 0)    # it moves to another link: leave the old one's group
            return self.add_address(iface, a, plen, auto)
        addr6.copy16(self.addrs[i], 0, a, 0)
        self.plens[i] = plen
        self.ifaces[i] = iface
        self.flags[i] = addr6.ADDR_TENTATIVE
        self.auto[i] = auto
        if plen < 128:
            self.stack.routes6.add(a, plen, None, iface, 0, SRC_CONNECTED)
        if new and iface.mld is not None:
            # RFC 4861 7.2.1: its solicited-node group, counted once per address (the
            # group is shared by addresses ending alike, left by the last, remove_address)
            iface.mld.join_solicited_node(a, self.stack.now)
            self.stack.timer_at(self.stack.now or 1)
        k = self.dad.start(a, self.stack.now)
        if k >= 0:
            if self.dad.state[k]:
                self.dad_iface[k] = iface
                self.stack.timer_at(self.dad.expires[k] or 1)
        else:
            self.flags[i] = 0  # no DAD slot free: counted by Dad (dad_table_full)
        return i

    def remove_address(self, b, o):
        """The address at b[o] leaves its interface (a SLAAC address whose valid lifetime
        ended, RFC 4862 5.5.4; a duplicate SLAAC formed, 5.4.5; the user's): its DAD stops,
        its connected route goes unless another address of the link holds the prefix, and
        its solicited-node group is left unless another address of the link still needs it
        (MLD counts the joins), so NS for it go unanswered. True when it was there."""
        i = self.find(b, o)
        if i < 0:
            return False
        a = bytes(self.addrs[i])    # setup path: the table entry is about to be reused
        iface = self.ifaces[i]
        plen = self.plens[i]
        last = self.count - 1
        if i != last:
            addr6.copy16(self.addrs[i], 0, self.addrs[last], 0)
            self.plens[i] = self.plens[last]
            self.flags[i] = self.flags[last]
            self.ifaces[i] = self.ifaces[last]
            self.auto[i] = self.auto[last]
        self.ifaces[last] = None
        self.count = last
        self.stats.addr_removed += 1
        k = self.dad.stop(a, 0)
        if k >= 0:
            self.dad_iface[k] = None
        if plen < 128 and not self._holds_prefix(iface, a, plen):
            rt = self.stack.routes6
            net = bytes(a[j] & m for j, m in enumerate(prefix_mask(plen, ALEN6)))
            rt.remove(net, plen, iface, SRC_CONNECTED)
        if iface.mld is not None:
            iface.mld.leave_solicited_node(a, self.stack.now)
            self.stack.timer_at(self.stack.now or 1)
        return True

    # ---- SLAAC owner (core/slaac.py) -------------------------------------------------------
    def slaac_event(self, s, kind, i):
        iface = s.iface
        rt = self.stack.routes6
        if kind == sa.EV_ADDR_NEW:
            if self.find(s.addr[i], 0) < 0 and self.count < self.size:
                self.add_address(iface, s.addr[i], 128, True)  # its prefix is on-link by the RA
            elif self.count >= self.size:
                self.stats.addr_table_full += 1
        elif kind == sa.EV_ADDR_DEPRECATED:
            k = self.find(s.addr[i], 0)
            if k >= 0:
                self.flags[k] |= addr6.ADDR_DEPRECATED   # RFC 6724 rule 3 avoids it
        elif kind == sa.EV_ADDR_REMOVED:
            self.remove_address(s.addr[i], 0)
        elif kind == sa.EV_ONLINK_NEW:
            self._ra_route(s, s.prefix[i], s.plen[i], None, 0)
        elif kind == sa.EV_ONLINK_REMOVED:
            # the RA's on-link lifetime ended; an address configured in that prefix keeps
            # its connected route (RFC 4861 6.3.4 speaks for the RA's information only)
            if not self._holds_prefix(iface, s.prefix[i], s.plen[i]):
                rt.remove(s.prefix[i], s.plen[i], iface, SRC_RA)
        elif kind == sa.EV_ROUTER_NEW:
            # RFC 4861 6.3.6: the router in use stays while it is there; a new one becomes
            # the default route only when there is none (so a rogue RA cannot take over)
            if self._default_gw(rt) is None:
                self._ra_route(s, addr6.ANY, 0, s.router[i], 0)
        elif kind == sa.EV_ROUTER_REMOVED:
            gw = self._default_gw(rt)
            if gw is not None and addr6.eq16(gw, 0, s.router[i], 0):
                rt.remove(addr6.ANY, 0, None, SRC_RA)
                k = s.default_router()     # 6.3.6: the next router of the list takes over
                if k >= 0:
                    self._ra_route(s, addr6.ANY, 0, s.router[k], 0)
        elif kind == sa.EV_ROUTE_NEW:
            # RFC 4191 3.1: a more-specific route through the advertising router; its
            # preference (2.1) is the metric among routes to the same prefix: high 0,
            # medium 1, low 2
            self._ra_route(s, s.route[i], s.route_plen[i], s.route_via[i], 1 - s.route_prf[i])
        elif kind == sa.EV_ROUTE_REMOVED:
            r = rt.find(s.route[i], s.route_plen[i], None, SRC_RA)
            if r >= 0 and rt.gw[r] is not None and addr6.eq16(rt.gw[r], 0, s.route_via[i], 0):
                rt.remove_at(r)   # lifetime 0 or over (RFC 4191 3.1)
        elif kind == sa.EV_MTU:
            iface.mtu6 = s.mtu      # RFC 4861 6.3.4: checked against the link's by Slaac
        elif kind == sa.EV_PARAMS:
            if s.hop_limit:
                self.hop_limit = s.hop_limit
            iface.nd.set_params(s.reachable_ms, s.retrans_ms)

    def _ra_route(self, s, net, plen, gw, metric):
        """A route an RA teaches (on-link prefix, default or RFC 4191 route): never in place
        of a route from elsewhere (connected, static, RIP: routes_shadowed) nor of another
        router's with a better preference; a full table keeps what it has (the route
        table's bound, route_table_full). True when the route is in."""
        rt = self.stack.routes6
        r = rt.find(net, plen)
        if r >= 0 and (rt.source[r] != SRC_RA or (
                rt.metric[r] < metric and rt.gw[r] is not None and gw is not None and
                not addr6.eq16(rt.gw[r], 0, gw, 0))):
            s.stats.routes_shadowed += 1
            return False
        if r < 0 and rt.count >= rt.size:
            s.stats.route_table_full += 1
            return False
        rt.add(net, plen, gw, s.iface, metric, SRC_RA)
        return True

    def _holds_prefix(self, iface, p, plen):
        """Has iface an address configured with prefix p/plen (its connected route)?"""
        k = 0
        while k < self.count:
            if self.ifaces[k] is iface and self.plens[k] == plen and \
                    addr6.prefix_eq(self.addrs[k], 0, p, 0, plen):
                return True
            k += 1
        return False

    @staticmethod
    def _default_gw(rt):
        """The default route's router, or None."""
        r = rt.lookup(addr6.ANY, 0)
        if r >= 0 and rt.prefix[r] == 0 and rt.gw[r] is not None:
            return rt.gw[r]
        return None

    def slaac_solicit(self, s):
        """RFC 4861 6.3.7: a Router Solicitation to all-routers, from the link-local address
        once DAD has made it usable, else from :: - and then without our link-layer
        address (4.1: never with an unspecified source)."""
        self.stack.icmp6.send_rs(s.iface)

    def find(self, b, o):
        """The table index of the address at b[o] (any state), or -1."""
        i = 0
        while i < self.count:
            if addr6.eq16(self.addrs[i], 0, b, o):
                return i
            i += 1
        return -1

    def addresses(self, iface=None):
        """[(text, prefix length, 'tentative'/'duplicate'/'')] of iface (None: all)."""
        out = []
        for i in range(self.count):
            if iface is None or self.ifaces[i] is iface:
                f = self.flags[i]
                out.append((addr6.ntop(self.addrs[i]), self.plens[i],
                            "duplicate" if f & addr6.ADDR_DUPLICATE else
                            ("tentative" if f & addr6.ADDR_TENTATIVE else "")))
        return out

    def local_iface(self, b, o):
        """The interface owning the usable (not tentative) address at b[o], or None."""
        i = self.find(b, o)
        if i < 0 or self.flags[i] & (addr6.ADDR_TENTATIVE | addr6.ADDR_DUPLICATE):
            return None
        return self.ifaces[i]

    def is_our_group(self, iface, b, o):
        """ff02::1 or the solicited-node group of one of iface's addresses (tentative ones
        too: DAD hears other nodes' probes there, RFC 4862 5.4.2)."""
        if b[o + 1] != 0x02:
            return False
        i = 2
        while i < 11:
            if b[o + i]:
                return False
            i += 1
        if b[o + 11] == 0 and b[o + 12] == 0 and b[o + 13] == 0 and b[o + 14] == 0 and \
                b[o + 15] == 1:
            return True   # all-nodes (RFC 4291 2.7.1)
        if b[o + 11] != 1 or b[o + 12] != 0xFF:
            return iface.mld is not None and iface.mld.is_member(b, o)
        i = 0
        while i < self.count:
            a = self.addrs[i]
            if self.ifaces[i] is iface and a[13] == b[o + 13] and a[14] == b[o + 14] and \
                    a[15] == b[o + 15]:
                return True
            i += 1
        return False

    def source_for(self, dst, do, iface):
        """The index of the source address for dst[do:] leaving by iface, or -1."""
        return addr6.select_source(dst, do, self.addrs, self.flags, self.ifaces, self.plens,
                                   self.count, iface)

    # ---- DAD owner (core/nd.py) -----------------------------------------------------------
    def dad_solicit(self, dad, k):
        """RFC 4862 5.4.2: an NS from :: to the tentative address's solicited-node group."""
        iface = self.dad_iface[k]
        if iface is not None:
            self.stack.icmp6.send_ns(iface, dad.addr[k], None, False)

    def dad_done(self, dad, k, unique):
        i = self.find(dad.addr[k], 0)
        self.dad_iface[k] = None
        if i < 0:
            return
        if unique:
            self.flags[i] &= ~addr6.ADDR_TENTATIVE
            iface = self.ifaces[i]
            if iface.mld is not None and addr6.is_link_local(dad.addr[k], 0):
                addr6.copy16(iface.mld.src, 0, dad.addr[k], 0)   # RFC 3810 5.2.13
        else:
            # RFC 4862 5.4.5: a duplicate is never used. One SLAAC formed goes (as Linux
            # deletes an autoconfigured address whose DAD failed); a configured one stays,
            # marked, for the user to see (Linux: "dadfailed")
            self.stats.addr_duplicate += 1
            if self.auto[i]:
                self.stats.addr_dad_removed += 1
                self.stack.log("ustack: IPv6 address %s is a duplicate (RFC 4862 DAD): "
                               "removed" % addr6.ntop(dad.addr[k]))
                self.remove_address(dad.addr[k], 0)
                return
            self.flags[i] = addr6.ADDR_DUPLICATE
            self.stack.log("ustack: IPv6 address %s is a duplicate (RFC 4862 DAD): not used"
                           % addr6.ntop(dad.addr[k]))

    # ---- neighbour cache owner (core/nd.py) -----------------------------------------------
    def nd_solicit(self, cache, i, unicast):
        self.stack.icmp6.send_ns(cache.iface, cache.addr[i], cache.ll[i] if unicast else None,
                                 True)

    def nd_transmit(self, cache, i, pb):
        self._link_send(cache.iface, pb, cache.ll[i])

    def nd_unreachable(self, cache, i, pb):
        # RFC 4861 7.2.2: resolution failed; the waiting packet is dropped
        self.stats.nd_unreachable += 1
        if pb is not None:
            if self.find(pb.buf, pb.off + w.SRC) < 0:
                # a datagram we were forwarding: its source hears Address Unreachable
                # (RFC 4443 3.1 code 3)
                self.stats.fwd_addr_unreach += 1
                self.stack.icmp6.forward_error(None, pb, pb.off, pb.n, wi.DEST_UNREACH,
                                               wi.ADDR_UNREACH, 0)
            elif self.host_unreachable(pb.buf, pb.off):
                cache.stats.host_unreach += 1
            self.stack.free(pb)

    def host_unreachable(self, b, q):
        """Our datagram at b[q] could not be delivered (its next hop never answered ND):
        its transport hears it as an ICMPv6 Address Unreachable (RFC 4861 7.2.2, RFC 4443
        3.1 code 3), as Linux's ndisc_error_report does, so a connect() in SYN-SENT fails
        with EHOSTUNREACH after the solicitations, not after the SYN retries. True when a
        transport was told."""
        proto = b[q + w.NEXT_HDR]
        stack = self.stack
        if proto != w.NH_UDP and (proto != w.NH_TCP or stack.tcp is None):
            return False      # a fragment or ICMPv6: nobody to tell
        qm = stack.ip.quote
        qm.family = AF_INET6
        qm.hdr = q
        qm.src = q + w.SRC
        qm.dst = q + w.DST
        qm.alen = ALEN6
        qm.l4 = q + w.HDR_LEN
        qm.l4len = (b[q + 4] << 8) | b[q + 5]
        qm.proto = proto
        qm.iface = None
        if proto == w.NH_UDP:
            stack.udp.icmp_error(ERR_HOST_UNREACH, 0, b, qm)
        else:
            stack.tcp.icmp_error(ERR_HOST_UNREACH, 0, b, qm)
        return True

    def nd_discard(self, cache, pb):
        self.stats.nd_discarded += 1
        self.stack.free(pb)

    def mld_send(self, mld, buf, n):
        """An MLD report built whole in buf[0:n] (core/mld.py): to its group's MAC."""
        pb = self.stack.alloc()
        if pb is None:
            self.stats.tx_no_buffer += 1
            return
        o = L2_RESERVE
        b = pb.buf
        i = 0
        while i < n:
            b[o + i] = buf[i]
            i += 1
        pb.off = o
        pb.n = n
        self.stats.tx_packets += 1
        if self.stack.filter_out is not None and not self._out_ok(mld.iface, pb):
            return
        addr6.copy16(self.nh, 0, buf, w.DST)
        self.send_to(mld.iface, pb, self.nh)

    def tick(self, now):
        nxt = self.dad.tick(now)
        d = self.reass.tick(now)
        if d > 0 and (nxt <= 0 or d < nxt):
            nxt = d
        for iface in self.stack.ifaces:
            nd = iface.nd
            if nd is not None:
                d = nd.tick(now)
                if d >= 0 and (nxt < 0 or d < nxt):
                    nxt = d
                d = iface.mld.tick(now)
                if d >= 0 and (nxt < 0 or d < nxt):
                    nxt = d
                d = iface.slaac.tick(now)
                if d >= 0 and (nxt < 0 or d < nxt):
                    nxt = d
        return nxt if nxt > 0 else 0

    # ---- input ----------------------------------------------------------------------------
    def input(self, iface, pb, off, n, whole=False):
        """The IPv6 packet at pb.buf[off:off+n] arrived on iface (whole: a datagram
        core/reass6.py just put together). Takes pb."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        if not whole:
            st.rx_packets += 1
        ofl = pb.offload  # for delivery here only (see core/ipv4.py)
        pb.offload = 0
        mcast = n >= w.HDR_LEN and b[off + w.DST] == 0xFF
        if not mcast and not whole and n >= w.HDR_LEN and (b[off] >> 4) == 6 and \
                stack.ipv4.forward and self.find(b, off + w.DST) < 0:
            self.forward(iface, pb, off, n, ofl)   # for another node: a router's
            return
        res = self.res
        why = w.walk(b, off, n, mcast, res)
        if why is not None:
            setattr(st, why, getattr(st, why) + 1)
            if res[w.R_PP_CODE] >= 0:
                stack.icmp6.param_problem(iface, pb, off, n, res[w.R_PP_CODE], res[w.R_PP_PTR])
            stack.free(pb)
            return
        s = off + w.SRC
        if b[s] == 0xFF:
            st.rx_bad_src += 1   # RFC 4291 2.7: a multicast address is never a source
            stack.free(pb)
            return
        d = off + w.DST
        bcast = False
        if mcast:
            if not self.is_our_group(iface, b, d):
                if stack.ipv4.forward and (b[d + 1] & 0x0F) > 2:
                    st.fwd_multicast += 1   # beyond link scope: no multicast routing here
                else:
                    st.rx_not_for_us += 1
                stack.free(pb)
                return
            bcast = True
        else:
            i = self.find(b, d)
            if i < 0:
                st.rx_not_for_us += 1   # a host does not forward (RFC 8200 3)
                stack.free(pb)
                return
            if self.flags[i] & (addr6.ADDR_TENTATIVE | addr6.ADDR_DUPLICATE):
                # RFC 4862 5.4: a tentative address takes nothing but ND (below, by group)
                st.rx_tentative += 1
                stack.free(pb)
                return
        if res[w.R_FRAG] >= 0:
            if whole:
                st.rx_frag_nested += 1   # a Fragment header inside a reassembled datagram
                stack.free(pb)
                return
            st.rx_fragments += 1
            s = self.reass.input(iface, pb, off, res)
            if s is not None:
                st.rx_reassembled += 1
                self.input(iface, s, s.off, s.n, True)
            return
        if stack.filter_in is not None and not stack.filter_in(
                iface, b, off, w.HDR_LEN + ((b[off + 4] << 8) | b[off + 5])):
            st.rx_filtered += 1   # core/filter.py counted why (after reassembly, as IPv4)
            stack.free(pb)
            return
        proto = res[w.R_PROTO]
        l4 = res[w.R_OFF]
        pb.off = off
        st.rx_delivered += 1
        m = self.meta
        m.family = AF_INET6
        m.hdr = off
        m.src = s
        m.dst = d
        m.alen = ALEN6
        m.l4 = l4
        m.l4len = off + w.HDR_LEN + ((b[off + 4] << 8) | b[off + 5]) - l4
        m.proto = proto
        # RFC 8200 8.1: both addresses and the next header; the transport adds its length
        m.psum = csum(b, s, 32, proto)
        m.ecn = (b[off + 1] >> 4) & 3
        m.iface = iface
        m.bcast = bcast
        m.csum_ok = (ofl & OFL_CSUM) != 0
        m.partial = (ofl & OFL_PARTIAL) != 0
        if proto == w.NH_TCP and stack.tcp is not None:
            stack.tcp.input(pb, m)
        elif proto == w.NH_UDP:
            stack.udp.input(pb, m)
        elif proto == w.NH_ICMPV6:
            stack.icmp6.input(pb, m)
        elif proto == w.NH_NONE:
            st.rx_no_next_header += 1   # RFC 8200 4.7: nothing follows
            stack.free(pb)
        else:
            st.rx_unknown_proto += 1
            if not bcast:
                stack.ip.error(pb, m, ERR_PROTO_UNREACH, res[w.R_NH_PTR])
            stack.free(pb)

    # ---- forwarding -----------------------------------------------------------------------
    def forward(self, iface, pb, off, n, ofl):
        """A unicast datagram for another node arrived on iface with forwarding on (config
        IP_FORWARD, as IPv4's, RFC 8200 3): the hop limit goes down by one and the datagram
        leaves by its route, unless an ICMPv6 error says why not (RFC 4443 3). IPv6 routers
        never fragment (RFC 8200 5): a datagram over the egress link's MTU gets Packet Too
        Big. Extension headers are not examined on the way (RFC 8200 4: only the
        destination processes them). A router takes no Router Advertisements (core/icmp6.py)
        and solicits none. Takes pb."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        tot = w.HDR_LEN + ((b[off + 4] << 8) | b[off + 5])
        if tot > n:
            st.rx_truncated += 1
            stack.free(pb)
            return
        s = off + w.SRC
        d = off + w.DST
        if b[s] == 0xFF or addr6.is_unspecified(b, s) or addr6.is_loopback(b, s):
            # RFC 4291 2.5.2, 2.5.3, 2.7: never the source of a datagram on a link
            st.fwd_bad_src += 1
            stack.free(pb)
            return
        if addr6.is_unspecified(b, d) or addr6.is_loopback(b, d):
            st.fwd_martian += 1     # RFC 4291 2.5.2/2.5.3: never forwarded
            stack.free(pb)
            return
        if iface.hlen and pb.index >= 0 and off >= iface.hlen and (b[0] & 1):
            # a unicast datagram in a link-layer multicast frame is not forwarded (as IPv4,
            # RFC 1812 5.3.4), nor answered (RFC 4443 2.4 (e.3))
            st.fwd_link_mcast += 1
            stack.free(pb)
            return
        icmp6 = stack.icmp6
        if addr6.is_link_local(b, s) or addr6.is_link_local(b, d):
            # RFC 4291 2.5.6: link-local addresses never leave their link; RFC 4443 3.1
            # code 2: the destination is beyond the scope of the source
            st.fwd_beyond_scope += 1
            icmp6.forward_error(iface, pb, off, tot, wi.DEST_UNREACH, wi.BEYOND_SCOPE, 0)
            stack.free(pb)
            return
        if b[off + w.HOP_LIMIT] <= 1:
            st.fwd_hop_limit += 1   # RFC 8200 3, RFC 4443 3.3 code 0
            icmp6.forward_error(iface, pb, off, tot, wi.TIME_EXCEEDED, wi.HOP_LIMIT_EXCEEDED,
                                0)
            stack.free(pb)
            return
        rt = stack.routes6
        r = rt.lookup(b, d)
        if r < 0 or rt.iface[r].nd is None:
            st.fwd_no_route += 1    # RFC 4443 3.1 code 0
            icmp6.forward_error(iface, pb, off, tot, wi.DEST_UNREACH, wi.NO_ROUTE, 0)
            stack.free(pb)
            return
        out = rt.iface[r]
        nh = self.fwd_nh
        addr6.copy16(nh, 0, rt.nexthop, 0)
        if stack.filter is not None and not stack.filter(iface, out, b, off, tot):
            st.fwd_filtered += 1    # core/filter.py counted why
            stack.free(pb)
            return
        if tot > out.mtu6:
            st.fwd_too_big += 1     # RFC 8200 5, RFC 4443 3.2: the egress link's MTU
            icmp6.forward_error(iface, pb, off, tot, wi.PACKET_TOO_BIG, 0, out.mtu6)
            stack.free(pb)
            return
        if out is iface:
            self._redirect(iface, pb, off, tot, nh)
        if ofl & OFL_PARTIAL:
            # a local sender's partial checksum (see core/ipv4.py): whole before it goes on
            res = self.res
            if w.walk(b, off, n, False, res) is None and res[w.R_FRAG] < 0:
                p = res[w.R_PROTO]
                complete_csum(b, res[w.R_OFF], off + tot - res[w.R_OFF], csum(b, s, 32, p), p)
        b[off + w.HOP_LIMIT] -= 1
        st.fwd_packets += 1
        if off < eth.HDR_LEN:
            copy(b, eth.HDR_LEN, b, off, tot)   # room for the outgoing link header
            off = eth.HDR_LEN
        pb.off = off
        pb.n = tot
        self.send_to(out, pb, nh)

    def _redirect(self, iface, pb, off, tot, nh):
        """RFC 4861 8.2: the datagram at pb.buf[off] leaves by the link it came from. When
        its source is a neighbour there (on-link by a connected route) and the better first
        hop nh is a router's link-local address or the destination itself (on-link), that
        source hears of it in a Redirect (core/icmp6.py: rate-limited, counted); the
        datagram is forwarded all the same."""
        b = pb.buf
        d = off + w.DST
        if not addr6.is_link_local(nh, 0) and not addr6.eq16(nh, 0, b, d):
            return   # a target by its global address: a host would not take it (8.1)
        rt = self.stack.routes6
        r = rt.lookup(b, off + w.SRC)
        if r < 0 or rt.gw[r] is not None or rt.iface[r] is not iface:
            return   # the source is no neighbour on this link
        self.stack.icmp6.send_redirect(iface, pb, off, tot, nh)

    # ---- output ---------------------------------------------------------------------------
    def route_out(self, b, o):
        """The interface a datagram to b[o] leaves by, its next hop in routes6.nexthop."""
        rt = self.stack.routes6
        r = rt.lookup(b, o)
        if r < 0:
            return None
        return rt.iface[r]

    def alloc_tx(self):
        pb = self.stack.alloc()
        if pb is not None:
            pb.off = L2_RESERVE + w.HDR_LEN
            pb.n = 0
        return pb

    def output(self, pb, proto, src, dst, csum_off=-1, hlim=0, tc=0, iface=None,
               unspec=False, rc=None):
        """Send the transport message at pb.buf[pb.off:pb.off+pb.n] to dst (16 bytes): the
        IPv6 half of IP.output. A link-local or multicast dst leaves by iface (None: the
        first link's). src None or :: picks one (RFC 6724 5); unspec: :: it is (a DAD
        probe, RFC 4862 5.4.2). rc (route.RouteCache): a connection's route, next hop and
        neighbour entry, used while routes6 and the neighbour cache are unchanged, as
        IPv4's. Takes pb; returns 0 or an errno."""
        stack = self.stack
        st = self.stats
        nh = self.nh
        if rc is not None and iface is None and rc.gen == stack.routes6.gen and \
                rc.iface is not None:
            iface = rc.iface
            addr6.copy16(nh, 0, rc.nexthop, 0)
        elif dst[0] == 0xFF or (dst[0] == 0xFE and (dst[1] & 0xC0) == 0x80):
            # RFC 4007 6: link scope; without a zone the first link
            if iface is None:
                if src is not None and not addr6.is_unspecified(src, 0):
                    iface = self.local_iface(src, 0)
                if iface is None and stack.ifaces:
                    iface = stack.ifaces[0]
            addr6.copy16(nh, 0, dst, 0)
            rc = None
        else:
            out = self.route_out(dst, 0)
            if out is None or (iface is not None and out is not iface):
                st.tx_no_route += 1
                stack.free(pb)
                return ENETUNREACH
            iface = out
            addr6.copy16(nh, 0, stack.routes6.nexthop, 0)
            if rc is not None:
                rc.fill(stack.routes6.gen, iface, nh, dst)
        if iface is None or iface.nd is None:
            st.tx_no_route += 1
            stack.free(pb)
            return ENETUNREACH
        if unspec:
            src = addr6.ANY
        elif src is None or addr6.is_unspecified(src, 0):
            k = self.source_for(dst, 0, iface)
            if k < 0:
                st.tx_no_source += 1
                stack.free(pb)
                return EADDRNOTAVAIL
            src = self.addrs[k]
        l4 = pb.n
        if l4 > PAYLOAD_MAX:
            st.tx_too_big += 1
            stack.free(pb)
            return EMSGSIZE
        off = pb.off - w.HDR_LEN
        b = pb.buf
        w.write_header(b, off, tc, 0, l4, proto, hlim or self.hop_limit, src, dst)
        gso = pb.offload >> OFL_GSO_SHIFT
        if gso and not iface.caps & CAP_TSO6:
            pb.offload = 0
            gso = 0
        # the path MTU (RFC 8201): a datagram over it leaves in fragments, whose checksum
        # must be whole; a TSO segment is cut by the kernel into MSS-sized ones instead
        mtu = self.stack.ip.path_mtu(dst, 0, ALEN6, iface.mtu6)
        if csum_off >= 0:
            # RFC 8200 8.1 (and RFC 4443 2.3: ICMPv6 too): the pseudo-header's sum
            lo = off + w.HDR_LEN
            if proto != w.NH_ICMPV6 and iface.caps & CAP_CSUM_TX and \
                    (l4 + w.HDR_LEN <= mtu or gso):
                partial_csum(pb, b, lo + csum_off, csum(b, off + w.SRC, 32, proto) + l4)
            else:
                fill_csum(b, lo, l4, lo + csum_off, csum(b, off + w.SRC, 32, proto), proto)
        pb.off = off
        pb.n = l4 + w.HDR_LEN
        st.tx_packets += 1
        if stack.filter_out is not None and not self._out_ok(iface, pb):
            return 0
        if gso or pb.n <= mtu:
            self.send_to(iface, pb, nh, rc)
            return 0
        return self._fragment(iface, pb, nh, mtu)

    def _out_ok(self, iface, pb):
        """The output and postrouting chains (core/filter.py) on the datagram in pb; False:
        refused there (counted) and pb freed."""
        if self.stack.filter_out(iface, pb.buf, pb.off, pb.n):
            return True
        self.stats.tx_filtered += 1
        self.stack.free(pb)
        return False

    def reply(self, iface, pb):
        """Send the IPv6 packet built at pb.buf[pb.off:] (an answer made in place): to a
        link-scope destination by iface, any other the way the routes say. Takes pb."""
        b = pb.buf
        d = pb.off + w.DST
        nh = self.nh
        if b[d] == 0xFF or (b[d] == 0xFE and (b[d + 1] & 0xC0) == 0x80):
            addr6.copy16(nh, 0, b, d)
        else:
            out = self.route_out(b, d)
            if out is None:
                self.stats.tx_no_route += 1
                self.stack.free(pb)
                return
            iface = out
            addr6.copy16(nh, 0, self.stack.routes6.nexthop, 0)
        self.stats.tx_packets += 1
        if self.stack.filter_out is not None and not self._out_ok(iface, pb):
            return
        self._send_sized(iface, pb, nh, b, d)

    def _send_sized(self, iface, pb, nh, dst, do):
        """pb whole to nh if it fits the path MTU towards dst[do:], else in fragments (RFC
        8200 4.5, 5). Takes pb; returns 0 or an errno."""
        mtu = self.stack.ip.path_mtu(dst, do, ALEN6, iface.mtu6)
        if pb.n <= mtu:
            self.send_to(iface, pb, nh)
            return 0
        return self._fragment(iface, pb, nh, mtu)

    def _fragment(self, iface, pb, nh, mtu):
        """RFC 8200 4.5: the 40-byte header (the unfragmentable part: we send no extension
        headers on this path) repeated in front of a Fragment header and at most mtu - 48
        bytes (a multiple of 8) of the rest, each fragment in a packet buffer of its own."""
        stack = self.stack
        st = self.stats
        b = pb.buf
        off = pb.off
        payload = pb.n - w.HDR_LEN
        chunk = ((mtu - w.HDR_LEN - w.FRAG_HDR_LEN) >> 3) << 3
        room = ((stack.pool.size - L2_RESERVE - w.HDR_LEN - w.FRAG_HDR_LEN) >> 3) << 3
        if room < chunk:
            chunk = room   # a fragment must fit its packet buffer, whatever the MTU
        if chunk < 8:
            st.tx_too_big += 1
            stack.free(pb)
            return EMSGSIZE
        # RFC 7739 4.3: a random Identification per datagram, in 16-bit halves
        id_hi = stack.random16()
        id_lo = stack.random16()
        nxt = b[off + w.NEXT_HDR]
        st.tx_fragmented += 1
        pos = 0
        while pos < payload:
            n = payload - pos
            more = 0
            if n > chunk:
                n = chunk
                more = w.FRAG_M
            f = stack.alloc()
            if f is None:
                st.tx_frag_no_buffer += 1
                stack.free(pb)
                return ENOBUFS
            fo = L2_RESERVE
            fb = f.buf
            copy(fb, fo, b, off, w.HDR_LEN)
            pl = w.FRAG_HDR_LEN + n
            fb[fo + 4] = pl >> 8
            fb[fo + 5] = pl & 0xFF
            fb[fo + w.NEXT_HDR] = w.NH_FRAGMENT
            p = fo + w.HDR_LEN
            fb[p] = nxt
            fb[p + 1] = 0
            fw = pos | more
            fb[p + 2] = fw >> 8
            fb[p + 3] = fw & 0xFF
            fb[p + 4] = id_hi >> 8
            fb[p + 5] = id_hi & 0xFF
            fb[p + 6] = id_lo >> 8
            fb[p + 7] = id_lo & 0xFF
            copy(fb, p + w.FRAG_HDR_LEN, b, off + w.HDR_LEN + pos, n)
            f.off = fo
            f.n = w.HDR_LEN + pl
            st.tx_fragments += 1
            self.send_to(iface, f, nh)
            pos += n
        stack.free(pb)
        return 0

    def alloc_big(self, l4len):
        """A datagram bigger than a packet buffer (fragmented on output): one scratch
        buffer per stack, made on first use, REASS_SIZE big; None if it won't fit."""
        return scratch(self, L2_RESERVE + w.HDR_LEN, l4len, -101)

    def send_to(self, iface, pb, nh, rc=None):
        """The IPv6 packet at pb.buf[pb.off:] to neighbour nh on iface: multicast mapped to
        its MAC (RFC 2464 7), unicast through neighbour discovery (rc: a connection's
        route.RouteCache keeps its entry). Takes pb."""
        if nh[0] == 0xFF:
            addr6.mcast_mac(nh, 0, self.mac, 0)
            self._link_send(iface, pb, self.mac)
            return
        nd = iface.nd
        stack = self.stack
        i = nd.resolve(nh, 0, pb, stack.now, rc)
        if i >= 0:
            self._link_send(iface, pb, nd.ll[i])
        else:
            stack.timer_at(stack.now + 1)   # the cache's retransmission timer runs

    def _link_send(self, iface, pb, mac):
        off = pb.off - eth.HDR_LEN
        pb.off = off
        pb.n += eth.HDR_LEN
        eth.write_header(pb.buf, off, mac, iface.mac, eth.ETH_P_IPV6)
        iface.transmit(pb)
