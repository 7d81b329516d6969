"""The route-table half of RIP, written once for both families: RIPv2 (core/rip.py, RFC
2453) and RIPng (core/ripng.py, RFC 2080) parse and write their own messages and hand each
sane entry to `learn`; this module keeps the table and its timers.

Fixed memory: `size` routes in parallel arrays of the family's address length. A route
learned goes into the family's routing table with source "rip" (never replacing a connected
or static route to the same prefix); our own announceable routes sit in the same arrays as
"local" entries at metric 1, so one that leaves the routing table is announced unreachable.
Timers (RFC 2453 3.8, RFC 2080 2.3): a full update every update_ms +-1/6 at random, a
learned route times out after timeout_ms, is then advertised with metric 16 for gc_ms and
deleted; triggered updates (RFC 2453 3.10.1, RFC 2080 2.5.1) carry only changed routes, no
sooner than 1-5 s after the last. Split horizon with poisoned reverse (RFC 2453 3.4.3) is
the family's output's: `poisoned(i, iface)` tells it.

A family's class sets `group`, `port`, provides `_send_table(iface, dst, dport,
only_changed)`, `request_all(iface)`, `_ifaces()`, `_announce(r)` (a route of the table it
may announce) and `_fmt(a)` (an address as text).
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.route import SRC_RIP
from ustack.core.wire import fields

INFINITY = const(16)               # RFC 2453 3.6, RFC 2080 2.1
TRIGGER_MIN_MS = const(1000)       # RFC 2453 3.10.1, RFC 2080 2.5.1: 1 to 5 s apart
TRIGGER_SPAN_MS = const(4000)
SYNC_MS = const(1000)              # our own routes are compared with the table this often


# Both RIPs' messages (RFC 2453 4, RFC 2080 2.1): a 4-byte header (command, version, zero)
# and 20-byte entries
CMD_REQUEST = const(1)
CMD_RESPONSE = const(2)
HDR_LEN = const(4)
RTE_LEN = const(20)


def dispatch(sp, iface, b, o, n, m, sport, alen, version):
    """The header checks RIPv2 and RIPng share, each failure counted: a message of whole
    entries, not our own multicast heard back, the speaker's version, a known command
    (handed to sp._request / sp._response)."""
    st = sp.stats
    st.rx_messages += 1
    if n < HDR_LEN or (n - HDR_LEN) % RTE_LEN:
        st.rx_malformed += 1
        return
    if sp.stack.ip.local_iface(b, m.src, alen) is not None:
        st.rx_own += 1
        return
    if b[o + 1] != version:
        st.rx_bad_version += 1   # RFC 2453 5.1: a RIP-2-only router ignores version 1
        return
    cmd = b[o]
    if cmd == CMD_REQUEST:
        st.rx_requests += 1
        sp._request(iface, b, o, n, m, sport)
    elif cmd == CMD_RESPONSE:
        st.rx_responses += 1
        sp._response(iface, b, o, n, m, sport)
    else:
        st.rx_bad_command += 1


class DistVec:
    def __init__(self, stack, routes, alen, size, names):
        cfg = stack.config
        self.stack = stack
        self.rt = routes           # the family's routing table
        self.alen = alen
        self.stats = Counters(names)
        n = size
        self.size = n
        self.used = [False] * n
        self.net = [bytearray(alen) for _ in range(n)]
        self.prefix = [0] * n
        self.gw = [bytearray(alen) for _ in range(n)]
        self.iface = [None] * n
        self.metric = [0] * n
        self.tag = [0] * n         # RFC 2453 3.6 / RFC 2080 2.1: kept and passed on
        self.expires = [0] * n     # metric < 16: when the route times out
        self.gc = [0] * n          # metric 16: when it is deleted
        self.changed = [False] * n
        self.local = [False] * n   # our own route (connected, static, DHCP), metric 1
        self.has_nh = [False] * n  # a local static route's gateway: the entry's next hop
        self.update_ms = cfg["RIP_UPDATE_MS"]
        self.timeout_ms = cfg["RIP_TIMEOUT_MS"]
        self.gc_ms = cfg["RIP_GC_MS"]
        self.next_update = 0       # 0: the first tick sends a full update
        self.asked = []            # the links whose routers we asked for their tables
        self.trigger_at = 0        # a triggered update is due (0: none pending)
        self.trigger_ok = 0        # and may not go before this

    # ---- input: one sane entry --------------------------------------------------------------
    def learn(self, iface, b, a, plen, nb, nh, metric, tag, now):
        """A neighbour's entry for the prefix at b[a] / plen, already checked; metric with
        the link's cost added; the next hop at nb[nh] (the sender, or the one it named)."""
        st = self.stats
        alen = self.alen
        i = self._find(b, a, plen)
        if i < 0:
            if metric >= INFINITY:
                return
            rt = self.rt
            r = rt.find(bytes(b[a:a + alen]), plen)
            if r >= 0 and rt.source[r] != SRC_RIP:
                st.rx_shadowed += 1   # a connected or static route wins over RIP
                return
            i = self._free()
            if i < 0:
                st.table_full += 1
                return
            fields.copy(self.net[i], 0, b, a, alen)
            self.prefix[i] = plen
            if not self._set(i, iface, nb, nh, metric, tag, now):
                return   # the slot stays free: the next update tries again
            self.used[i] = True
            self.local[i] = False
            self.has_nh[i] = False
            st.routes_learned += 1
            return
        if self.local[i]:
            if self.metric[i] < INFINITY:
                st.rx_shadowed += 1   # our own route: a neighbour's never replaces it
                return
            if metric >= INFINITY:
                return
            # ours was withdrawn and is being poisoned: a neighbour's may take its place
            if self._set(i, iface, nb, nh, metric, tag, now):
                self.local[i] = False
                self.has_nh[i] = False
                st.routes_learned += 1
            return
        # RFC 2453 3.9.2 / RFC 2080 2.4.2: the same router is believed whatever it says
        if fields.eq(nb, nh, self.gw[i], alen) and self.iface[i] is iface:
            if metric < INFINITY:
                self.expires[i] = now + self.timeout_ms
            if metric != self.metric[i] or (metric < INFINITY and tag != self.tag[i]):
                if metric >= INFINITY:
                    if self.metric[i] < INFINITY:
                        self._start_deletion(i, now)
                elif self._set(i, iface, nb, nh, metric, tag, now):
                    st.routes_changed += 1
                elif self.metric[i] < INFINITY:
                    self._start_deletion(i, now)
        elif metric < self.metric[i]:
            if self._set(i, iface, nb, nh, metric, tag, now):
                st.routes_changed += 1
            elif self.metric[i] < INFINITY:
                self._start_deletion(i, now)

    def _set(self, i, iface, nb, nh, metric, tag, now):
        """Route i (its prefix already in the slot) now goes via nb[nh] on iface at metric:
        installed, announced soon. False, counted, the entry as it was, when the stack's
        routing table has no room: a route RIP cannot install is not one to announce
        (neighbours would send us traffic we have no route for). False too when the table
        has a route of another source there (added since RIP last looked): it stays."""
        rt = self.rt
        net = bytes(self.net[i])
        r = rt.find(net, self.prefix[i])
        if r >= 0 and rt.source[r] != SRC_RIP:
            self.stats.rx_shadowed += 1
            return False
        try:
            rt.add(net, self.prefix[i], bytes(nb[nh:nh + self.alen]), iface, metric, SRC_RIP)
        except OSError:
            self.stats.table_full += 1   # the stack's routing table is full
            return False
        fields.copy(self.gw[i], 0, nb, nh, self.alen)
        self.iface[i] = iface
        self.metric[i] = metric
        self.tag[i] = tag
        self.expires[i] = now + self.timeout_ms
        self.gc[i] = 0
        self._changed(i, now)
        return True

    def _start_deletion(self, i, now):
        """RFC 2453 3.8 / RFC 2080 2.3: metric 16, out of the routing table, announced as
        unreachable until the garbage-collection timer deletes it."""
        self.metric[i] = INFINITY
        self.gc[i] = now + self.gc_ms
        if not self.local[i]:
            rt = self.rt
            r = rt.find(bytes(self.net[i]), self.prefix[i], None, SRC_RIP)
            if r >= 0:
                rt.remove_at(r)
        self._changed(i, now)

    def _changed(self, i, now):
        self.changed[i] = True
        if self.trigger_at == 0:
            self.trigger_at = now if now >= self.trigger_ok else self.trigger_ok
            self.stack.timer_at(self.trigger_at)

    def _find(self, b, a, plen):
        i = 0
        alen = self.alen
        while i < self.size:
            if self.used[i] and self.prefix[i] == plen and fields.eq(b, a, self.net[i], alen):
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

    def metric_for(self, b, a, plen):
        """Our metric for the prefix at b[a] / plen (a diagnostic request), 16 if none."""
        i = self._find(b, a, plen)
        return self.metric[i] if i >= 0 else INFINITY

    def poisoned(self, i, iface):
        """RFC 2453 3.4.3: a learned route goes back out of its own link with metric 16."""
        return not self.local[i] and self.iface[i] is iface

    # ---- timers -----------------------------------------------------------------------------
    def _sync(self, now):
        """Our announceable routes as local entries; a local entry whose route left starts
        its deletion."""
        rt = self.rt
        alen = self.alen
        i = 0
        while i < self.size:
            if self.used[i] and self.local[i] and self.metric[i] < INFINITY:
                r = rt.find(bytes(self.net[i]), self.prefix[i])
                if r < 0 or rt.source[r] == SRC_RIP:
                    self._start_deletion(i, now)
            i += 1
        r = 0
        while r < rt.count:
            ri = rt.iface[r]
            if ri is not None and ri is not self.stack.loop and self._announce(r):
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
                    fields.copy(self.net[i], 0, rt.net[r], 0, alen)
                    self.prefix[i] = rt.prefix[r]
                    self._changed(i, now)
                if self.metric[i] != 1 or self.iface[i] is not ri:
                    self._changed(i, now)
                self.metric[i] = 1
                self.tag[i] = 0
                self.gc[i] = 0
                self.iface[i] = ri
                gw = rt.gw[r]
                self.has_nh[i] = gw is not None
                if gw is not None:
                    fields.copy(self.gw[i], 0, gw, 0, alen)
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
        for iface in self._ifaces():
            if iface not in self.asked:
                # RFC 2453 3.9.1 / RFC 2080 2.4.1: a link that starts speaking asks its
                # routers for their tables; one after the first round gets ours at once
                self.asked.append(iface)
                self.request_all(iface)
                if self.next_update:
                    self._send_table(iface, self.group, self.port, False)
        if self.next_update == 0 or now >= self.next_update:
            for iface in self._ifaces():
                self._send_table(iface, self.group, self.port, False)
            st.tx_updates += 1
            self._clear_changed()
            # RFC 2453 3.8: the 30 s offset at random so routers don't synchronise
            u = self.update_ms
            self.next_update = now + u - u // 6 + self.stack.random16() % (u // 3 + 1)
            self.trigger_at = 0
        elif self.trigger_at and now >= self.trigger_at:
            for iface in self._ifaces():
                self._send_table(iface, self.group, self.port, True)
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
        """The routes, for tests and the control channel: (net, prefix, gw or None for our
        own, dev, metric)."""
        out = []
        for i in range(self.size):
            if self.used[i]:
                out.append((self._fmt(self.net[i]), self.prefix[i],
                            None if self.local[i] else self._fmt(self.gw[i]),
                            self.iface[i].name if self.iface[i] is not None else None,
                            self.metric[i]))
        return out
