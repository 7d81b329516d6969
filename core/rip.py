"""RIPv2 (RFC 2453): a distance-vector speaker that learns IPv4 routes from the routers on
the stack's links and tells them the stack's own. Optional: config RIP (a board leaves the
module out); the stack creates it and hands it UDP port 520 and its timers. The messages are
this module's; the table and its timers are core/distvec.py's, shared with RIPng.

Fixed memory: RIP_ROUTES learned routes in parallel arrays and one message buffer; a route
learned goes into the stack's routing table with source "rip" (`ustack route` shows it) and
never replaces a connected or static route to the same prefix. Announced: the connected,
static and DHCP routes (metric 1; a static route's gateway on the link goes out as the RTE's
next hop, RFC 2453 4.4) and the learned ones, split horizon with poisoned reverse (3.4.3).
RIPv2 only (5.1 allows a RIP-2-only router): version 1 messages and authentication entries
are counted and dropped. Timers (3.8): updates every RIP_UPDATE_MS +-1/6 at random, a route
times out after RIP_TIMEOUT_MS, is then advertised with metric 16 for RIP_GC_MS and deleted;
triggered updates (3.10.1) carry only changed routes, no sooner than 1-5 s after the last.
"""
from ustack.core.compat import const
from ustack.core.route import SRC_CONNECTED, SRC_STATIC, SRC_DHCP
from ustack.core.wire import fields
from ustack.core.distvec import DistVec, INFINITY, dispatch, CMD_REQUEST, CMD_RESPONSE, \
    HDR_LEN, RTE_LEN

RIP_PORT = const(520)              # RFC 2453 3.6
RIP2_GROUP = b"\xe0\x00\x00\x09"   # 224.0.0.9, RFC 2453 4.5
VERSION2 = const(2)
AFI_INET = const(2)                # RFC 2453 3.6: Address Family Identifier of IP
AFI_AUTH = const(0xFFFF)           # RFC 2453 4.1: an authentication entry
MAX_RTES = const(25)               # RFC 2453 3.6: 504 bytes of RIP at most
MSG_LEN = const(504)
TOS_NETCTL = const(0xC0)           # RFC 791 precedence 6, Internetwork Control (RFC 4594)

RIP_COUNTERS = ("rx_messages", "rx_requests", "rx_responses", "rx_bad_port", "rx_bad_source",
            "rx_own", "rx_bad_version", "rx_bad_command", "rx_malformed", "rx_auth_unsupported",
            "rx_bad_rte", "rx_shadowed", "routes_learned", "routes_changed", "routes_timed_out",
            "routes_deleted", "table_full", "tx_updates", "tx_triggered", "tx_responses",
            "tx_requests", "tx_errors")


class Rip(DistVec):
    group = RIP2_GROUP
    port = RIP_PORT

    def __init__(self, stack):
        DistVec.__init__(self, stack, stack.routes, 4, stack.config["RIP_ROUTES"], RIP_COUNTERS)
        self.msg = bytearray(MSG_LEN)

    # ---- input ------------------------------------------------------------------------------
    def input(self, iface, b, o, n, m, sport):
        """A UDP datagram to port 520 (RIP at b[o:o+n]); m the network layer's metadata."""
        dispatch(self, iface, b, o, n, m, sport, 4, VERSION2)

    def _on_link(self, iface, b, o):
        """RFC 2453 3.9.2: the address at b[o] is on iface's directly connected network."""
        ip = iface.ip
        mk = iface.mask
        return (ip[0] | ip[1] | ip[2] | ip[3]) != 0 and \
            ((b[o] ^ ip[0]) & mk[0]) == 0 and ((b[o + 1] ^ ip[1]) & mk[1]) == 0 and \
            ((b[o + 2] ^ ip[2]) & mk[2]) == 0 and ((b[o + 3] ^ ip[3]) & mk[3]) == 0

    def _response(self, iface, b, o, n, m, sport):
        st = self.stats
        src = m.src
        if sport != RIP_PORT:
            st.rx_bad_port += 1   # RFC 2453 3.9.2: responses come from port 520
            return
        if not self._on_link(iface, b, src):
            st.rx_bad_source += 1  # only neighbours on a connected network
            return
        now = self.stack.now
        e = o + HDR_LEN
        end = o + n
        while e < end:
            afi = (b[e] << 8) | b[e + 1]
            if afi == AFI_AUTH:
                st.rx_auth_unsupported += 1   # RFC 2453 4.1: no key configured: all of it
                return
            self._rte(iface, b, e, src, afi, now)
            e += RTE_LEN

    def _rte(self, iface, b, e, src, afi, now):
        st = self.stats
        metric = (b[e + 16] << 24) | (b[e + 17] << 16) | (b[e + 18] << 8) | b[e + 19]
        a = e + 4
        mk = e + 8
        plen = _prefix_len(b, mk)
        if afi != AFI_INET or metric < 1 or metric > INFINITY or plen < 0 or \
                not _unicast_net(b, a) or (b[a] & ~b[mk] & 0xFF) or \
                (b[a + 1] & ~b[mk + 1] & 0xFF) or (b[a + 2] & ~b[mk + 2] & 0xFF) or \
                (b[a + 3] & ~b[mk + 3] & 0xFF) or (plen == 0 and (b[a] | b[a + 1] | b[a + 2] |
                                                                    b[a + 3])):
            st.rx_bad_rte += 1   # RFC 2453 3.9.2: the entry is ignored, the rest taken
            return
        metric += 1   # the cost of the link it came over (RFC 2453 3.9.2)
        if metric > INFINITY:
            metric = INFINITY
        # RFC 2453 4.4: a next hop on our network is used as is, anything else means "via
        # the sender"
        nh = e + 12
        if (b[nh] | b[nh + 1] | b[nh + 2] | b[nh + 3]) == 0 or not self._on_link(iface, b, nh) \
                or self.stack.ip.local_iface(b, nh, 4) is not None:
            nh = src
        self.learn(iface, b, a, plen, b, nh, metric, (b[e + 2] << 8) | b[e + 3], now)

    def _request(self, iface, b, o, n, m, sport):
        """RFC 2453 3.9.1: one entry of AFI 0 and metric 16 asks for the whole table (sent as
        a normal update, split horizon included); otherwise each entry is answered with our
        metric for it, as is (a diagnostic query, from any port)."""
        st = self.stats
        src = bytes(b[m.src:m.src + 4])   # answered to its sender (control plane: a copy)
        if n == HDR_LEN + RTE_LEN and b[o + 4] == 0 and b[o + 5] == 0 and \
                b[o + 23] == INFINITY and (b[o + 20] | b[o + 21] | b[o + 22]) == 0:
            self._send_table(iface, src, sport, False)
            return
        if n > MSG_LEN:
            st.rx_malformed += 1
            return
        out = self.msg
        fields.copy(out, 0, b, o, n)
        out[0] = CMD_RESPONSE
        e = HDR_LEN
        while e < n:
            plen = _prefix_len(out, e + 8)
            metric = INFINITY
            if plen >= 0:
                metric = self.metric_for(out, e + 4, plen)
            out[e + 16] = 0
            out[e + 17] = 0
            out[e + 18] = 0
            out[e + 19] = metric
            e += RTE_LEN
        self._send(iface, src, sport, n)
        st.tx_responses += 1

    # ---- output -----------------------------------------------------------------------------
    def _send(self, iface, dst, dport, n):
        """Message bytes self.msg[:n] to dst:dport from port 520 out of iface."""
        # RFC 2453 3.9.1: only neighbours hear it; TTL 1 keeps multicast on the link
        if self.stack.udp.output(iface.ip, RIP_PORT, dst, dport, self.msg, n, 1, TOS_NETCTL,
                                 iface):
            self.stats.tx_errors += 1

    def _send_table(self, iface, dst, dport, only_changed):
        """Responses to dst carrying our routes as seen from iface (25 per message)."""
        msg = self.msg
        msg[0] = CMD_RESPONSE
        msg[1] = VERSION2
        msg[2] = 0
        msg[3] = 0
        k = 0
        i = 0
        while i < self.size:
            if self.used[i] and (self.changed[i] or not only_changed):
                metric = self.metric[i]
                nh = None
                if self.local[i]:
                    # RFC 2453 4.4: a gateway on the link the update goes out of is the
                    # next hop
                    if self.has_nh[i] and self.iface[i] is iface:
                        nh = self.gw[i]
                elif self.poisoned(i, iface):
                    metric = INFINITY   # split horizon with poisoned reverse (3.4.3)
                k = self._put(k, i, nh, metric, iface, dst, dport)
            i += 1
        if k:
            self._send(iface, dst, dport, HDR_LEN + k * RTE_LEN)
            self.stats.tx_responses += 1

    def _put(self, k, i, nh, metric, iface, dst, dport):
        """Route i as RTE number k of the message; a full message goes first. Returns the
        next k."""
        if k == MAX_RTES:
            self._send(iface, dst, dport, MSG_LEN)
            self.stats.tx_responses += 1
            k = 0
        msg = self.msg
        net = self.net[i]
        plen = self.prefix[i]
        tag = self.tag[i]
        e = HDR_LEN + k * RTE_LEN
        msg[e] = 0
        msg[e + 1] = AFI_INET
        msg[e + 2] = tag >> 8   # RFC 2453 3.6: the route tag goes on as it came
        msg[e + 3] = tag & 0xFF
        j = 0
        while j < 4:
            bits = plen - 8 * j
            msg[e + 4 + j] = net[j]
            msg[e + 8 + j] = 0xFF if bits >= 8 else (0 if bits <= 0 else
                                                     (0xFF << (8 - bits)) & 0xFF)
            msg[e + 12 + j] = nh[j] if nh is not None else 0
            msg[e + 16 + j] = 0
            j += 1
        msg[e + 19] = metric
        return k + 1

    def request_all(self, iface):
        """RFC 2453 3.9.1: ask the link's routers for their whole tables (at start)."""
        msg = self.msg
        msg[0] = CMD_REQUEST
        msg[1] = VERSION2
        msg[2] = 0
        msg[3] = 0
        j = HDR_LEN
        while j < HDR_LEN + RTE_LEN:
            msg[j] = 0
            j += 1
        msg[HDR_LEN + 19] = INFINITY
        self._send(iface, RIP2_GROUP, RIP_PORT, HDR_LEN + RTE_LEN)
        self.stats.tx_requests += 1

    def _ifaces(self):
        for i in self.stack.ifaces:
            if i.ip[0] | i.ip[1] | i.ip[2] | i.ip[3]:
                yield i

    def _announce(self, r):
        """Connected routes, and static and DHCP ones other than a default."""
        rt = self.rt
        src = rt.source[r]
        return src == SRC_CONNECTED or ((src == SRC_STATIC or src == SRC_DHCP) and
                                        rt.prefix[r] > 0)

    def _fmt(self, a):
        return "%d.%d.%d.%d" % (a[0], a[1], a[2], a[3])


def _prefix_len(b, o):
    """The prefix length of the contiguous netmask at b[o:o+4]; -1 if not contiguous."""
    v = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
    p = 0
    while p < 32 and (v >> (31 - p)) & 1:
        p += 1
    if p < 32 and (v & ((1 << (32 - p)) - 1)):
        return -1
    return p


def _unicast_net(b, a):
    """RFC 2453 3.9.2: no 127/8, class D/E or broadcast destinations (0/8 only as 0/0)."""
    x = b[a]
    if x == 127 or x >= 224:
        return False
    if x == 0 and (b[a + 1] | b[a + 2] | b[a + 3]):
        return False
    return True
