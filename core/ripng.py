"""RIPng (RFC 2080): RIP for IPv6. Learns IPv6 routes from the routers on the stack's links
and tells them the stack's own. Optional: config RIPNG (the "ripng" feature; a board leaves
the module out); it needs IPV6. The stack hands it UDP port 521; the table, split horizon
with poisoned reverse, triggered updates, timeout and garbage collection are core/distvec.py's,
shared with RIPv2, and so are the timers (RIP_UPDATE_MS, RIP_TIMEOUT_MS, RIP_GC_MS: RFC 2080
2.3 has RFC 2453's). Its own table bound: RIPNG_ROUTES.

On every link with IPv6 it joins ff02::9 (MLD) and, once the link-local address is valid
(DAD), asks the routers there for their tables and sends its own, always from the link-local
address with hop limit 255 (RFC 2080 2.5). A response is taken only from port 521, from a
link-local source, with hop limit 255 (2.4.2: it came from a neighbour, not across a
router); each entry needs metric 1..16, prefix length <= 128, a prefix that is neither
link-local nor multicast and no bits past its length; a next-hop entry (metric 0xFF, 2.1.1)
names the gateway of the entries after it if link-local, else the sender. Route tags are
kept and passed on. Everything else is counted (`ripng.` counters) and changes nothing.
"""
from ustack.core.compat import const
from ustack.core.route import SRC_CONNECTED, SRC_STATIC
from ustack.core.wire import fields
from ustack.core.distvec import DistVec, INFINITY, dispatch, CMD_REQUEST, CMD_RESPONSE, \
    HDR_LEN, RTE_LEN
from ustack.core import addr6

RIPNG_PORT = const(521)            # RFC 2080 2.1
RIPNG_GROUP = b"\xff\x02" + bytes(13) + b"\x09"   # ff02::9, RFC 2080 2.5.1
VERSION1 = const(1)                # RFC 2080 2.1
NH_METRIC = const(0xFF)            # RFC 2080 2.1.1: a next-hop entry
HOP_LIMIT = const(255)             # RFC 2080 2.4.2 / 2.5: sent with 255, taken only with it
IP6_UDP_HDRS = const(48)           # IPv6 and UDP headers in front of the message
MAX_RTES = const(72)               # RFC 2080 2.1: as many as a 1500-byte MTU holds
MSG_LEN = const(1444)              # HDR_LEN + MAX_RTES * RTE_LEN

RIPNG_COUNTERS = ("rx_messages", "rx_requests", "rx_responses", "rx_bad_port", "rx_bad_source",
                  "rx_bad_hop_limit", "rx_own", "rx_bad_version", "rx_bad_command",
                  "rx_malformed", "rx_bad_rte", "rx_bad_next_hop", "rx_shadowed",
                  "routes_learned", "routes_changed", "routes_timed_out", "routes_deleted",
                  "table_full", "tx_updates", "tx_triggered", "tx_responses", "tx_requests",
                  "tx_errors")


def _link_local(b, o):
    return b[o] == 0xFE and (b[o + 1] & 0xC0) == 0x80


class RipNg(DistVec):
    group = RIPNG_GROUP
    port = RIPNG_PORT

    def __init__(self, stack):
        DistVec.__init__(self, stack, stack.routes6, 16, stack.config["RIPNG_ROUTES"],
                         RIPNG_COUNTERS)
        self.msg = bytearray(MSG_LEN)
        self.joined = []   # the links whose ff02::9 membership we hold

    # ---- input ------------------------------------------------------------------------------
    def input(self, iface, b, o, n, m, sport):
        """A UDP datagram to port 521 (RIPng at b[o:o+n]); m the network layer's metadata."""
        dispatch(self, iface, b, o, n, m, sport, 16, VERSION1)

    def _response(self, iface, b, o, n, m, sport):
        """RFC 2080 2.4.2."""
        st = self.stats
        src = m.src
        if sport != RIPNG_PORT:
            st.rx_bad_port += 1
            return
        if not _link_local(b, src):
            st.rx_bad_source += 1   # a neighbour speaks from its link-local address
            return
        if b[m.hdr + 7] != HOP_LIMIT:
            st.rx_bad_hop_limit += 1   # it crossed a router: not a neighbour's
            return
        now = self.stack.now
        nh = src
        e = o + HDR_LEN
        end = o + n
        while e < end:
            metric = b[e + 19]
            if metric == NH_METRIC:
                # RFC 2080 2.1.1: the gateway of the entries that follow; :: or anything but
                # a link-local address (or one of ours) means the sender
                nh = src
                if _link_local(b, e):
                    if self.stack.ip.local_iface(b, e, 16) is None:
                        nh = e
                elif not addr6.is_unspecified(b, e):
                    st.rx_bad_next_hop += 1
                e += RTE_LEN
                continue
            plen = b[e + 18]
            if metric < 1 or metric > INFINITY or plen > 128 or b[e] == 0xFF or \
                    _link_local(b, e) or _host_bits(b, e, plen) or \
                    (plen == 128 and addr6.is_loopback(b, e)):
                st.rx_bad_rte += 1   # RFC 2080 2.4.2: the entry is ignored, the rest taken
                e += RTE_LEN
                continue
            metric += 1   # the cost of the link it came over
            if metric > INFINITY:
                metric = INFINITY
            self.learn(iface, b, e, plen, b, nh, metric, (b[e + 16] << 8) | b[e + 17], now)
            e += RTE_LEN

    def _request(self, iface, b, o, n, m, sport):
        """RFC 2080 2.4.1: one entry of prefix ::/0 and metric 16 asks for the whole table
        (answered as an update, split horizon included); otherwise each entry is answered
        with our metric for it (a diagnostic query, from any port and address)."""
        st = self.stats
        src = bytes(b[m.src:m.src + 16])   # answered to its sender (control plane: a copy)
        e = o + HDR_LEN
        if n == HDR_LEN + RTE_LEN and b[e + 18] == 0 and b[e + 19] == INFINITY and \
                addr6.is_unspecified(b, e):
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
            plen = out[e + 18]
            out[e + 19] = self.metric_for(out, e, plen) if plen <= 128 else INFINITY
            e += RTE_LEN
        self._send(iface, src, sport, n)
        st.tx_responses += 1

    # ---- output -----------------------------------------------------------------------------
    def _ll(self, iface):
        """iface's valid link-local address (bytes of the address table), or None."""
        v6 = self.stack.ipv6
        k = 0
        while k < v6.count:
            a = v6.addrs[k]
            if v6.ifaces[k] is iface and _link_local(a, 0) and \
                    not v6.flags[k] & (addr6.ADDR_TENTATIVE | addr6.ADDR_DUPLICATE):
                return a
            k += 1
        return None

    def _send(self, iface, dst, dport, n):
        """Message bytes self.msg[:n] to dst:dport from port 521: from iface's link-local
        address, hop limit 255 (RFC 2080 2.5), except to a diagnostic asker off the link."""
        out = iface
        src = None
        if dst[0] == 0xFF or _link_local(dst, 0):
            src = self._ll(iface)
            if src is None:
                self.stats.tx_errors += 1
                return
        else:
            out = None   # by the route, from the address it picks
        if self.stack.udp.output(src, RIPNG_PORT, dst, dport, self.msg, n, HOP_LIMIT, 0, out):
            self.stats.tx_errors += 1

    def _send_table(self, iface, dst, dport, only_changed):
        """Responses to dst carrying our routes as seen from iface (as many entries a
        message as iface's MTU holds, RFC 2080 2.1)."""
        msg = self.msg
        msg[0] = CMD_RESPONSE
        msg[1] = VERSION1
        msg[2] = 0
        msg[3] = 0
        most = (iface.mtu6 - IP6_UDP_HDRS - HDR_LEN) // RTE_LEN
        if most > MAX_RTES:
            most = MAX_RTES
        k = 0
        cur = -1   # the route whose gateway the last next-hop entry named (-1: the sender)
        i = 0
        while i < self.size:
            if self.used[i] and (self.changed[i] or not only_changed):
                if k >= most - 1:   # room for a next-hop entry and the route's
                    self._send(iface, dst, dport, HDR_LEN + k * RTE_LEN)
                    self.stats.tx_responses += 1
                    k = 0
                    cur = -1
                metric = self.metric[i]
                want = -1
                if self.local[i]:
                    # RFC 2080 2.1.1: a link-local gateway on the link the update goes out
                    # of is the next hop
                    if self.has_nh[i] and self.iface[i] is iface and _link_local(self.gw[i], 0):
                        want = i
                elif self.poisoned(i, iface):
                    metric = INFINITY   # split horizon with poisoned reverse
                if want != cur and (want < 0 or cur < 0 or
                                    not fields.eq(self.gw[want], 0, self.gw[cur], 16)):
                    self._put(k, self.gw[want] if want >= 0 else None, 0, 0, NH_METRIC)
                    k += 1
                cur = want
                self._put(k, self.net[i], self.tag[i], self.prefix[i], metric)
                k += 1
            i += 1
        if k:
            self._send(iface, dst, dport, HDR_LEN + k * RTE_LEN)
            self.stats.tx_responses += 1

    def _put(self, k, a, tag, plen, metric):
        """Entry number k: the address a (None: ::), tag, prefix length, metric."""
        msg = self.msg
        e = HDR_LEN + k * RTE_LEN
        j = 0
        while j < 16:
            msg[e + j] = a[j] if a is not None else 0
            j += 1
        msg[e + 16] = tag >> 8
        msg[e + 17] = tag & 0xFF
        msg[e + 18] = plen
        msg[e + 19] = metric

    def request_all(self, iface):
        """RFC 2080 2.4.1: ask the link's routers for their whole tables."""
        msg = self.msg
        msg[0] = CMD_REQUEST
        msg[1] = VERSION1
        msg[2] = 0
        msg[3] = 0
        self._put(0, None, 0, 0, INFINITY)
        self._send(iface, RIPNG_GROUP, RIPNG_PORT, HDR_LEN + RTE_LEN)
        self.stats.tx_requests += 1

    def _ifaces(self):
        """The links that speak RIPng now: IPv6 on, the link-local address valid. Every
        IPv6 link joins ff02::9 at once (its updates are heard while DAD runs)."""
        for i in self.stack.ifaces:
            if i.mld is None:
                continue
            if i not in self.joined:
                i.mld.join(RIPNG_GROUP, self.stack.now)
                self.joined.append(i)
            if self._ll(i) is not None:
                yield i

    def _announce(self, r):
        """Connected and static routes (not a default), neither link-local nor multicast
        (RFC 2080 2.1); not those a Router Advertisement gave."""
        rt = self.rt
        src = rt.source[r]
        net = rt.net[r]
        return (src == SRC_CONNECTED or (src == SRC_STATIC and rt.prefix[r] > 0)) and \
            net[0] != 0xFF and not _link_local(net, 0)

    def _fmt(self, a):
        return addr6.ntop(a)


def _host_bits(b, o, plen):
    """Any bit set past the first plen of the prefix at b[o:o+16]."""
    j = plen >> 3
    if j < 16 and b[o + j] & (0xFF >> (plen & 7)):
        return True
    j += 1
    while j < 16:
        if b[o + j]:
            return True
        j += 1
    return False
