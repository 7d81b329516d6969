"""RIPv2 (RFC 2453): a distance-vector speaker that learns IPv4 routes from the routers on
the stack's links and tells them the stack's own. Optional: config RIP (a board leaves the
module out); the stack creates it and hands it UDP port 520 and its timers.

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
from ustack.core.stats import Counters
from ustack.core.route import SRC_CONNECTED, SRC_STATIC, SRC_DHCP, SRC_RIP
from ustack.core.wire import fields

RIP_PORT = const(520)              # RFC 2453 3.6
RIP2_GROUP = b"\xe0\x00\x00\x09"   # 224.0.0.9, RFC 2453 4.5
CMD_REQUEST = const(1)
CMD_RESPONSE = const(2)
VERSION2 = const(2)
AFI_INET = const(2)                # RFC 2453 3.6: Address Family Identifier of IP
AFI_AUTH = const(0xFFFF)           # RFC 2453 4.1: an authentication entry
INFINITY = const(16)               # RFC 2453 3.6
HDR_LEN = const(4)
RTE_LEN = const(20)
MAX_RTES = const(25)               # RFC 2453 3.6: 504 bytes of RIP at most
MSG_LEN = const(504)
TOS_NETCTL = const(0xC0)           # RFC 791 precedence 6, Internetwork Control (RFC 4594)
TRIGGER_MIN_MS = const(1000)       # RFC 2453 3.10.1: 1 to 5 s between triggered updates
TRIGGER_SPAN_MS = const(4000)
SYNC_MS = const(1000)              # our own routes are compared with the table this often

RIP_COUNTERS = ("rx_messages", "rx_requests", "rx_responses", "rx_bad_port", "rx_bad_source",
            "rx_own", "rx_bad_version", "rx_bad_command", "rx_malformed", "rx_auth_unsupported",
            "rx_bad_rte", "rx_shadowed", "routes_learned", "routes_changed", "routes_timed_out",
            "routes_deleted", "table_full", "tx_updates", "tx_triggered", "tx_responses",
            "tx_requests", "tx_errors")


class Rip:
    def __init__(self, stack):
        cfg = stack.config
        self.stack = stack
        self.stats = Counters(RIP_COUNTERS)
        n = cfg["RIP_ROUTES"]
        self.size = n
        self.used = [False] * n
        self.net = [bytearray(4) for _ in range(n)]
        self.prefix = [0] * n
        self.gw = [bytearray(4) for _ in range(n)]
        self.iface = [None] * n
        self.metric = [0] * n
        self.expires = [0] * n     # metric < 16: when the route times out
        self.gc = [0] * n          # metric 16: when it is deleted (RFC 2453 3.8)
        self.changed = [False] * n
        # our own routes (connected, static, DHCP) announced at metric 1: kept here too, so
        # one that leaves the routing table is announced unreachable (RFC 2453 3.10.1)
        self.local = [False] * n
        self.has_nh = [False] * n  # a local static route's gateway: the RTE's next hop
        self.update_ms = cfg["RIP_UPDATE_MS"]
        self.timeout_ms = cfg["RIP_TIMEOUT_MS"]
        self.gc_ms = cfg["RIP_GC_MS"]
        self.msg = bytearray(MSG_LEN)
        self.next_update = 0       # 0: the first tick asks the neighbours and answers them
        self.trigger_at = 0        # a triggered update is due (0: none pending)
        self.trigger_ok = 0        # and may not go before this

    # ---- input ------------------------------------------------------------------------------
    def input(self, iface, b, o, n, m, sport):
        """A UDP datagram to port 520 (RIP at b[o:o+n]); m the network layer's metadata."""
        st = self.stats
        st.rx_messages += 1
        if n < HDR_LEN or (n - HDR_LEN) % RTE_LEN:
            st.rx_malformed += 1
            return
        src = m.src
        if self.stack.ip.local_iface(b, src, 4) is not None:
            st.rx_own += 1   # our own multicast heard back
            return
        if b[o + 1] != VERSION2:
            # RFC 2453 5.1: a RIP-2-only router ignores version 1 (and 0 is never valid)
            st.rx_bad_version += 1
            return
        cmd = b[o]
        if cmd == CMD_REQUEST:
            st.rx_requests += 1
            self._request(iface, b, o, n, m, sport)
        elif cmd == CMD_RESPONSE:
            st.rx_responses += 1
            self._response(iface, b, o, n, m, sport)
        else:
            st.rx_bad_command += 1

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
        i = self._find(b, a, plen)
        if i < 0:
            if metric >= INFINITY:
                return
            rt = self.stack.routes
            r = rt.find(bytes(b[a:a + 4]), plen)
            if r >= 0 and rt.source[r] != SRC_RIP:
                st.rx_shadowed += 1   # a connected or static route wins over RIP
                return
            i = self._free()
            if i < 0:
                st.table_full += 1
                return
            self.used[i] = True
            self.local[i] = False
            self.has_nh[i] = False
            fields.copy(self.net[i], 0, b, a, 4)
            self.prefix[i] = plen
            self._set(i, iface, b, nh, metric, now)
            st.routes_learned += 1
            return
        if self.local[i]:
            if self.metric[i] < INFINITY:
                st.rx_shadowed += 1   # our own route: a neighbour's never replaces it
                return
            # ours was withdrawn and is being poisoned: a neighbour's may take its place
            self.local[i] = False
            self.has_nh[i] = False
            self._set(i, iface, b, nh, metric, now)
            st.routes_learned += 1
            return
        same_gw = fields.eq(b, nh, self.gw[i], 4) and self.iface[i] is iface
        if same_gw:
            if metric < INFINITY:
                self.expires[i] = now + self.timeout_ms
            if metric != self.metric[i]:
                if metric >= INFINITY:
                    self._start_deletion(i, now)
                else:
                    self._set(i, iface, b, nh, metric, now)
                    st.routes_changed += 1
        elif metric < self.metric[i]:
            self._set(i, iface, b, nh, metric, now)
            st.routes_changed += 1

    def _set(self, i, iface, b, nh, metric, now):
        """Route i now goes via b[nh] on iface at metric: installed, announced soon."""
        fields.copy(self.gw[i], 0, b, nh, 4)
        self.iface[i] = iface
        self.metric[i] = metric
        self.expires[i] = now + self.timeout_ms
        self.gc[i] = 0
        try:
            self.stack.routes.add(bytes(self.net[i]), self.prefix[i], bytes(self.gw[i]), iface,
                                  metric, SRC_RIP)
        except OSError:
            self.stats.table_full += 1   # the stack's routing table is full
        self._changed(i, now)

    def _start_deletion(self, i, now):
        """RFC 2453 3.8: metric 16, out of the routing table, announced as unreachable until
        the garbage-collection timer deletes it."""
        self.metric[i] = INFINITY
        self.gc[i] = now + self.gc_ms
        if not self.local[i]:
            rt = self.stack.routes
            r = rt.find(bytes(self.net[i]), self.prefix[i])
            if r >= 0 and rt.source[r] == SRC_RIP:
                rt.remove(bytes(self.net[i]), self.prefix[i])
        self._changed(i, now)

    def _changed(self, i, now):
        self.changed[i] = True
        if self.trigger_at == 0:
            self.trigger_at = now if now >= self.trigger_ok else self.trigger_ok
            self.stack.timer_at(self.trigger_at)

    def _find(self, b, a, plen):
        i = 0
        while i < self.size:
            if self.used[i] and self.prefix[i] == plen and fields.eq(b, a, self.net[i], 4):
                return i
            i += 1
        return -1

    def _free(self):
        i = 0
        while i < self.size:
            if not self.used[i]:
                return i
            i += 1
        return -1

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
                metric = self._metric_for(out, e + 4, plen)
            out[e + 16] = 0
            out[e + 17] = 0
            out[e + 18] = 0
            out[e + 19] = metric
            e += RTE_LEN
        self._send(iface, src, sport, n)
        st.tx_responses += 1

    def _metric_for(self, b, a, plen):
        i = self._find(b, a, plen)
        return self.metric[i] if i >= 0 else INFINITY

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
                elif self.iface[i] is iface:
                    metric = INFINITY   # split horizon with poisoned reverse (3.4.3)
                k = self._put(k, self.net[i], self.prefix[i], nh, metric, iface, dst, dport)
            i += 1
        if k:
            self._send(iface, dst, dport, HDR_LEN + k * RTE_LEN)
            self.stats.tx_responses += 1

    def _put(self, k, net, plen, nh, metric, iface, dst, dport):
        """RTE number k of the message; a full message goes first. Returns the next k."""
        if k == MAX_RTES:
            self._send(iface, dst, dport, MSG_LEN)
            self.stats.tx_responses += 1
            k = 0
        msg = self.msg
        e = HDR_LEN + k * RTE_LEN
        msg[e] = 0
        msg[e + 1] = AFI_INET
        msg[e + 2] = 0   # route tag
        msg[e + 3] = 0
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

    # ---- timers -----------------------------------------------------------------------------
    def _sync(self, now):
        """Our announceable routes (connected, static and DHCP ones other than a default, on
        a link) as local entries; a local entry whose route left starts its deletion."""
        stack = self.stack
        rt = stack.routes
        i = 0
        while i < self.size:
            if self.used[i] and self.local[i] and self.metric[i] < INFINITY:
                r = rt.find(bytes(self.net[i]), self.prefix[i])
                if r < 0 or rt.source[r] == SRC_RIP:
                    self._start_deletion(i, now)
            i += 1
        r = 0
        while r < rt.count:
            src = rt.source[r]
            ri = rt.iface[r]
            if ri is not None and ri is not stack.loop and (src == SRC_CONNECTED or (
                    (src == SRC_STATIC or src == SRC_DHCP) and rt.prefix[r] > 0)):
                i = self._find(rt.net[r], 0, rt.prefix[r])
                if i >= 0 and not self.local[i]:
                    # a learned route the table now has from elsewhere: ours replaces it
                    self.local[i] = True
                    self.changed[i] = True
                elif i < 0:
                    i = self._free()
                    if i < 0:
                        self.stats.table_full += 1
                        r += 1
                        continue
                    self.used[i] = True
                    self.local[i] = True
                    fields.copy(self.net[i], 0, rt.net[r], 0, 4)
                    self.prefix[i] = rt.prefix[r]
                    self._changed(i, now)
                if self.metric[i] != 1 or self.iface[i] is not ri:
                    self._changed(i, now)
                self.metric[i] = 1
                self.gc[i] = 0
                self.iface[i] = ri
                gw = rt.gw[r]
                self.has_nh[i] = gw is not None
                if gw is not None:
                    fields.copy(self.gw[i], 0, gw, 0, 4)
            r += 1

    def tick(self, now):
        st = self.stats
        self._sync(now)
        i = 0
        while i < self.size:
            if self.used[i]:
                if self.local[i]:
                    if self.gc[i] and now >= self.gc[i]:
                        self.used[i] = False
                        self.local[i] = False
                        self.gc[i] = 0
                        self.iface[i] = None
                elif self.metric[i] < INFINITY and now >= self.expires[i]:
                    st.routes_timed_out += 1
                    self._start_deletion(i, now)
                elif self.gc[i] and now >= self.gc[i]:
                    self.used[i] = False
                    self.changed[i] = False
                    self.gc[i] = 0
                    self.iface[i] = None
                    st.routes_deleted += 1
            i += 1
        if self.next_update == 0 or now >= self.next_update:
            first = self.next_update == 0
            for iface in self._ifaces():
                if first:
                    self.request_all(iface)
                self._send_table(iface, RIP2_GROUP, RIP_PORT, False)
            st.tx_updates += 1
            self._clear_changed()
            # RFC 2453 3.8: 30 s offset at random so routers don't synchronise
            u = self.update_ms
            self.next_update = now + u - u // 6 + self.stack.random16() % (u // 3 + 1)
            self.trigger_at = 0
        elif self.trigger_at and now >= self.trigger_at:
            for iface in self._ifaces():
                self._send_table(iface, RIP2_GROUP, RIP_PORT, True)
            st.tx_triggered += 1
            self._clear_changed()
            self.trigger_at = 0
            self.trigger_ok = now + TRIGGER_MIN_MS + self.stack.random16() % TRIGGER_SPAN_MS
        d = self.next_update
        if self.trigger_at and self.trigger_at < d:
            d = self.trigger_at
        if now + SYNC_MS < d:
            d = now + SYNC_MS
        i = 0
        while i < self.size:
            if self.used[i]:
                t = self.gc[i] if self.metric[i] >= INFINITY else (
                    0 if self.local[i] else self.expires[i])
                if t and t < d:
                    d = t
            i += 1
        return d

    def _clear_changed(self):
        i = 0
        while i < self.size:
            self.changed[i] = False
            i += 1

    def table(self):
        """The learned routes, for `ustack rip` and tests: (net, prefix, gw, dev, metric)."""
        out = []
        for i in range(self.size):
            if self.used[i]:
                out.append(("%d.%d.%d.%d" % tuple(self.net[i]), self.prefix[i],
                            None if self.local[i] else "%d.%d.%d.%d" % tuple(self.gw[i]),
                            self.iface[i].name if self.iface[i] is not None else None,
                            self.metric[i]))
        return out


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
