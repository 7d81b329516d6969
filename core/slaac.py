"""Stateless address autoconfiguration (RFC 4862 section 5.5) and the host's view of Router
Advertisements (RFC 4861 section 6.3.4): a fixed table of prefixes (on-link and/or
autonomous, each with the address formed from it and its lifetimes) and of default routers,
plus the link parameters an RA carries (hop limit, reachable time, retransmission timer,
MTU).

    s = Slaac(owner, iid, config)            # iid: 8 bytes (EUI-64), or secret= for RFC 7217
    s.on_ra(b, ip_off, o, n, now)            # an RA that passed wire/icmp6.nd_check
    s.tick(now) -> next deadline (-1: none)
    s.start_solicit(now, delay)              # bring-up: Router Solicitations (RFC 4861 6.3.7)

Changes are reported through owner.slaac_event(s, kind, i): EV_ADDR_NEW (s.addr[i] formed:
run DAD on it), EV_ADDR_DEPRECATED (preferred lifetime over: keep it for existing
connections, avoid it for new ones, RFC 4862 5.5.4), EV_ADDR_REMOVED (valid lifetime over),
EV_ONLINK_NEW / EV_ONLINK_REMOVED (s.prefix[i]/s.plen[i] is on-link or no longer),
EV_ROUTER_NEW / EV_ROUTER_REMOVED (s.router[i]), EV_MTU (s.mtu), EV_PARAMS (s.hop_limit,
s.reachable_ms, s.retrans_ms: the neighbour cache's set_params), EV_DNS (s.dns[i] where
s.dns_used[i]: the RFC 8106 recursive DNS servers changed), EV_ROUTE_NEW / EV_ROUTE_REMOVED
(RFC 4191: s.route[i]/s.route_plen[i] via s.route_via[i], preference s.route_prf[i] 1, 0 or
-1). Lifetimes are kept as absolute ms deadlines, -1 for infinity (0xFFFFFFFF seconds).
Router Solicitations go out through owner.slaac_solicit(s): after start_solicit's random
delay, up to SLAAC_RTR_SOLICITS of them RTR_SOLICITATION_INTERVAL_MS apart, until an RA with
a non-zero Router Lifetime arrives.
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6
from ustack.core import addr6

EV_ADDR_NEW = const(1)
EV_ADDR_DEPRECATED = const(2)
EV_ADDR_REMOVED = const(3)
EV_ONLINK_NEW = const(4)
EV_ONLINK_REMOVED = const(5)
EV_ROUTER_NEW = const(6)
EV_ROUTER_REMOVED = const(7)
EV_MTU = const(8)
EV_PARAMS = const(9)
EV_DNS = const(10)
EV_ROUTE_NEW = const(11)
EV_ROUTE_REMOVED = const(12)

TWO_HOURS_MS = const(7200000)   # RFC 4862 5.5.3 (e): the 2-hour rule
IID_PREFIX_LEN = const(64)      # RFC 4291 2.5.1: interface identifiers are 64 bits
# RFC 4861 10 host constants
MAX_RTR_SOLICITATION_DELAY_MS = const(1000)
RTR_SOLICITATION_INTERVAL_MS = const(4000)
MAX_RTR_SOLICITATIONS = const(3)

DEFAULTS = {
    "SLAAC": True,              # form addresses from autonomous prefixes
    "SLAAC_PREFIXES": 4,        # prefixes (on-link or autonomous) at once
    "SLAAC_ROUTERS": 3,         # default routers at once
    "SLAAC_DNS": 2,             # RFC 8106 recursive DNS servers kept from RAs (0: ignored)
    "SLAAC_ROUTES": 4,          # RFC 4191 more-specific routes kept from RAs (0: ignored)
    "SLAAC_RTR_SOLICITS": MAX_RTR_SOLICITATIONS,   # RSs at bring-up (0: wait for RAs)
}

SLAAC_COUNTERS = (
    "rx_ra", "rx_ra_bad_mtu", "prefix_link_local", "prefix_bad_lifetimes",
    "prefix_bad_length", "prefix_table_full", "router_table_full", "addr_formed",
    "addr_deprecated", "addr_removed", "two_hour_rule", "routers_added", "routers_removed",
    "dns_learned", "dns_expired", "route_bad_option", "route_table_full", "routes_added",
    "routes_removed", "rs_sent", "routes_shadowed",
)


def setting(config, key):
    if config is not None and key in config:
        return config[key]
    return DEFAULTS[key]


def _deadline(now, secs):
    if secs == icmp6.INFINITE:
        return -1
    return now + secs * 1000


def _prefix_in_option_eq(r, b, pp, plen):
    """The stored route prefix r equals the option's first plen bits at b[pp:] (the
    option may hold fewer than 16 bytes; only plen bits are compared)."""
    k = 0
    while k * 8 < plen:
        x = r[k] ^ b[pp + k]
        if k * 8 + 8 > plen:
            x &= (0xFF << (8 - (plen - k * 8))) & 0xFF
        if x:
            return False
        k += 1
    return True


class Slaac:
    def __init__(self, owner, iid=None, config=None, secret=None, ifname="", link_mtu=1500):
        np_ = setting(config, "SLAAC_PREFIXES")
        nr = setting(config, "SLAAC_ROUTERS")
        self.owner = owner
        self.auto = setting(config, "SLAAC")
        self.iid = iid            # 8 bytes, or None with secret: RFC 7217 per prefix
        self.secret = secret
        self.ifname = ifname
        self.link_mtu = link_mtu
        self.nprefix = np_
        self.prefix = [bytearray(16) for _ in range(np_)]   # bits beyond plen zero
        self.plen = [0] * np_
        self.addr = [bytearray(16) for _ in range(np_)]     # formed address (auto)
        self.has_addr = [False] * np_
        self.onlink = [False] * np_
        self.onlink_until = [0] * np_
        self.valid_until = [0] * np_
        self.preferred_until = [0] * np_
        self.deprecated = [False] * np_
        self.dad_counter = [0] * np_
        self.used = [False] * np_
        self.nrouter = nr
        self.router = [bytearray(16) for _ in range(nr)]
        self.router_until = [0] * nr
        self.router_used = [False] * nr
        nd_ = setting(config, "SLAAC_DNS")
        self.ndns = nd_
        self.dns = [bytearray(16) for _ in range(nd_)]
        self.dns_until = [0] * nd_
        self.dns_used = [False] * nd_
        nrt = setting(config, "SLAAC_ROUTES")
        self.nroute = nrt
        self.route = [bytearray(16) for _ in range(nrt)]      # prefix, bits beyond plen 0
        self.route_plen = [0] * nrt
        self.route_via = [bytearray(16) for _ in range(nrt)]  # the advertising router
        self.route_prf = [0] * nrt                            # 1 high, 0 medium, -1 low
        self.route_until = [0] * nrt
        self.route_used = [False] * nrt
        self.rs_max = setting(config, "SLAAC_RTR_SOLICITS")
        self.rs_sent = 0
        self.rs_next = -1         # when the next Router Solicitation goes out (-1: none)
        self.mtu = 0
        self.hop_limit = 0
        self.reachable_ms = 0
        self.retrans_ms = 0
        self.stats = Counters(SLAAC_COUNTERS)

    # ---- lookups ------------------------------------------------------------------------------
    def find_prefix(self, b, o, plen=IID_PREFIX_LEN):
        """The entry of prefix b[o:]/plen ("equal": same length, same leading bits)."""
        i = 0
        while i < self.nprefix:
            if self.used[i] and self.plen[i] == plen and \
                    addr6.prefix_eq(self.prefix[i], 0, b, o, plen):
                return i
            i += 1
        return -1

    def find_router(self, b, o):
        i = 0
        while i < self.nrouter:
            if self.router_used[i] and addr6.eq16(self.router[i], 0, b, o):
                return i
            i += 1
        return -1

    def default_router(self):
        """The first default router (RFC 4861 6.3.6 leaves the choice to the host; the
        neighbour cache's reachability should be asked first when wired in), or -1."""
        i = 0
        while i < self.nrouter:
            if self.router_used[i]:
                return i
            i += 1
        return -1

    def is_onlink(self, b, o):
        """Is address b[o:] inside an on-link prefix (RFC 4861 5.2)?"""
        i = 0
        while i < self.nprefix:
            if self.used[i] and self.onlink[i] and \
                    addr6.prefix_eq(self.prefix[i], 0, b, o, self.plen[i]):
                return True
            i += 1
        return False

    # ---- Router Solicitation ------------------------------------------------------------------
    def start_solicit(self, now, delay):
        """RFC 4861 6.3.7: the interface came up; the first solicitation after delay ms (the
        caller draws it from [0, MAX_RTR_SOLICITATION_DELAY_MS], so hosts booting together
        do not solicit at once)."""
        self.rs_sent = 0
        self.rs_next = now + delay if self.rs_max > 0 else -1
        return self.rs_next

    # ---- Router Advertisement -----------------------------------------------------------------
    def on_ra(self, b, ip_off, o, n, now):
        """Take in a Router Advertisement of n bytes at b[o] (IPv6 header at ip_off)."""
        self.stats.rx_ra += 1
        # RFC 4861 6.3.4: non-zero hop limit, reachable time, retrans timer are taken
        hl = b[o + icmp6.RA_CUR_HOP_LIMIT]
        rt = icmp6.get32(b, o + icmp6.RA_REACHABLE_TIME)
        rx = icmp6.get32(b, o + icmp6.RA_RETRANS_TIMER)
        if (hl and hl != self.hop_limit) or (rt and rt != self.reachable_ms) or \
                (rx and rx != self.retrans_ms):
            if hl:
                self.hop_limit = hl
            if rt:
                self.reachable_ms = rt
            if rx:
                self.retrans_ms = rx
            self.owner.slaac_event(self, EV_PARAMS, -1)
        life = (b[o + icmp6.RA_ROUTER_LIFETIME] << 8) | b[o + icmp6.RA_ROUTER_LIFETIME + 1]
        if life:
            self.rs_next = -1     # RFC 4861 6.3.7: a router answered, no more solicitations
        self._router(b, ip_off + ip6.SRC, life, now)
        end = o + n
        p = o + icmp6.RA_LEN
        while p + 2 <= end and b[p + 1]:
            t = b[p]
            if t == icmp6.OPT_MTU and b[p + 1] == 1:
                m = icmp6.get32(b, p + icmp6.MTU_VALUE)
                # RFC 8200 5 / RFC 4861 6.3.4: at least 1280, at most the link's
                if m < ip6.MIN_MTU or m > self.link_mtu:
                    self.stats.rx_ra_bad_mtu += 1
                elif m != self.mtu:
                    self.mtu = m
                    self.owner.slaac_event(self, EV_MTU, -1)
            elif t == icmp6.OPT_PREFIX_INFO and b[p + 1] == 4:
                self._prefix(b, p, now)
            elif t == icmp6.OPT_RDNSS and b[p + 1] >= 3 and (b[p + 1] & 1):
                self._rdnss(b, p, now)
            elif t == icmp6.OPT_ROUTE_INFO:
                self._route_info(b, p, ip_off + ip6.SRC, now)
            p += b[p + 1] << 3

    def _rdnss(self, b, p, now):
        """RFC 8106 5.1/5.3.1: each listed server is added or refreshed; lifetime 0 removes
        it; a full table keeps the servers it has (the earliest expiring one replaced)."""
        life = icmp6.get32(b, p + icmp6.RDNSS_LIFETIME)
        n = (b[p + 1] - 1) >> 1
        changed = False
        k = 0
        while k < n:
            a = p + icmp6.RDNSS_ADDRS + 16 * k
            k += 1
            i = 0
            while i < self.ndns and not (self.dns_used[i] and addr6.eq16(self.dns[i], 0, b, a)):
                i += 1
            if life == 0:
                if i < self.ndns:
                    self.dns_used[i] = False
                    self.stats.dns_expired += 1
                    changed = True
                continue
            if i == self.ndns:
                i = 0
                while i < self.ndns and self.dns_used[i]:
                    i += 1
                if i == self.ndns:
                    j = 0
                    while j < self.ndns:
                        t = self.dns_until[j]
                        if t >= 0 and (i == self.ndns or t < self.dns_until[i]):
                            i = j
                        j += 1
                    if i == self.ndns:
                        continue          # all infinite: keep them
                addr6.copy16(self.dns[i], 0, b, a)
                self.dns_used[i] = True
                self.stats.dns_learned += 1
                changed = True
            self.dns_until[i] = _deadline(now, life)
        if changed:
            self.owner.slaac_event(self, EV_DNS, -1)

    def _route_info(self, b, p, so, now):
        """RFC 4191 2.3/3.1: a more-specific route through the advertising router; lifetime
        0 removes it; a reserved preference, a prefix longer than 128 or than the option
        holds make the option ignored."""
        ln = b[p + 1]
        plen = b[p + icmp6.RIO_PREFIX_LEN]
        prf = (b[p + icmp6.RIO_FLAGS] >> 3) & 3
        if ln > 3 or plen > 128 or (plen > 64 and ln < 3) or (plen > 0 and ln < 2) or \
                prf == 2:
            self.stats.route_bad_option += 1
            return
        life = icmp6.get32(b, p + icmp6.RIO_LIFETIME)
        pp = p + icmp6.RIO_PREFIX
        have = (ln - 1) * 8
        i = 0
        while i < self.nroute:
            if self.route_used[i] and self.route_plen[i] == plen and \
                    addr6.eq16(self.route_via[i], 0, b, so) and \
                    _prefix_in_option_eq(self.route[i], b, pp, plen):
                break
            i += 1
        if life == 0:
            if i < self.nroute:
                self.route_used[i] = False
                self.stats.routes_removed += 1
                self.owner.slaac_event(self, EV_ROUTE_REMOVED, i)
            return
        if i == self.nroute:
            i = 0
            while i < self.nroute and self.route_used[i]:
                i += 1
            if i == self.nroute:
                self.stats.route_table_full += 1
                return
            r = self.route[i]
            k = 0
            while k < 16:
                v = b[pp + k] if k < have else 0
                if k * 8 >= plen:
                    v = 0
                elif k * 8 + 8 > plen:
                    v &= (0xFF << (8 - (plen - k * 8))) & 0xFF
                r[k] = v
                k += 1
            self.route_plen[i] = plen
            addr6.copy16(self.route_via[i], 0, b, so)
            self.route_used[i] = True
            self.route_prf[i] = 1 if prf == 1 else (-1 if prf == 3 else 0)
            self.route_until[i] = _deadline(now, life)
            self.stats.routes_added += 1
            self.owner.slaac_event(self, EV_ROUTE_NEW, i)
            return
        self.route_prf[i] = 1 if prf == 1 else (-1 if prf == 3 else 0)
        self.route_until[i] = _deadline(now, life)

    def _router(self, b, so, lifetime_s, now):
        i = self.find_router(b, so)
        if lifetime_s == 0:
            # RFC 4861 6.3.4: a zero Router Lifetime: no longer a default router
            if i >= 0:
                self._drop_router(i)
            return
        if i < 0:
            i = 0
            while i < self.nrouter and self.router_used[i]:
                i += 1
            if i == self.nrouter:
                self.stats.router_table_full += 1
                return
            addr6.copy16(self.router[i], 0, b, so)
            self.router_used[i] = True
            self.router_until[i] = now + lifetime_s * 1000
            self.stats.routers_added += 1
            self.owner.slaac_event(self, EV_ROUTER_NEW, i)
            return
        self.router_until[i] = now + lifetime_s * 1000

    def _drop_router(self, i):
        self.router_used[i] = False
        self.stats.routers_removed += 1
        self.owner.slaac_event(self, EV_ROUTER_REMOVED, i)

    def _prefix(self, b, p, now):
        """One Prefix Information option (RFC 4861 6.3.4 on-link, RFC 4862 5.5.3 autonomous)."""
        pp = p + icmp6.PI_PREFIX
        flags = b[p + icmp6.PI_FLAGS]
        plen = b[p + icmp6.PI_PREFIX_LEN]
        valid = icmp6.get32(b, p + icmp6.PI_VALID)
        pref = icmp6.get32(b, p + icmp6.PI_PREFERRED)
        if addr6.is_link_local(b, pp):          # 5.5.3 (b) and 6.3.4: ignore link-local
            self.stats.prefix_link_local += 1
            return
        if plen > 128:
            self.stats.prefix_bad_length += 1
            return
        auto = self.auto and (flags & icmp6.PI_FLAG_AUTO)
        if auto and pref > valid:     # 5.5.3 (c) (0xFFFFFFFF, infinity, compares as largest)
            self.stats.prefix_bad_lifetimes += 1
            auto = False
        if auto and plen != IID_PREFIX_LEN:
            self.stats.prefix_bad_length += 1          # 5.5.3 (d): prefix + IID != 128
            auto = False
        if not auto and not (flags & icmp6.PI_FLAG_ONLINK):
            return
        i = self.find_prefix(b, pp, plen)
        if i < 0:
            if valid == 0:
                return
            i = 0
            while i < self.nprefix and self.used[i]:
                i += 1
            if i == self.nprefix:
                self.stats.prefix_table_full += 1
                return
            self.used[i] = True
            self.onlink[i] = False
            self.has_addr[i] = False
            self.deprecated[i] = False
            self.dad_counter[i] = 0
            self.plen[i] = plen
            pfx = self.prefix[i]
            addr6.copy16(pfx, 0, b, pp)
            k = 0
            while k < 16:                        # the bits beyond the length are zero
                if k * 8 >= plen:
                    pfx[k] = 0
                elif k * 8 + 8 > plen:
                    pfx[k] &= (0xFF << (8 - (plen - k * 8))) & 0xFF
                k += 1
        if flags & icmp6.PI_FLAG_ONLINK:
            if valid == 0:
                if self.onlink[i]:
                    self.onlink[i] = False
                    self.owner.slaac_event(self, EV_ONLINK_REMOVED, i)
            else:
                self.onlink_until[i] = _deadline(now, valid)
                if not self.onlink[i]:
                    self.onlink[i] = True
                    self.owner.slaac_event(self, EV_ONLINK_NEW, i)
        if auto:
            if not self.has_addr[i]:
                if valid != 0:
                    self._form(i, now, valid, pref)
            else:
                self._update(i, now, valid, pref)
        self._release(i)

    def _form(self, i, now, valid, pref):
        """RFC 4862 5.5.3 (d): prefix + interface identifier, lifetimes from the option."""
        a = self.addr[i]
        addr6.copy16(a, 0, self.prefix[i], 0)
        if self.iid is not None:
            k = 0
            while k < 8:
                a[8 + k] = self.iid[k]
                k += 1
        else:
            self._stable(i)
        self.has_addr[i] = True
        self.valid_until[i] = _deadline(now, valid)
        self.preferred_until[i] = _deadline(now, pref)
        self.deprecated[i] = pref == 0
        self.stats.addr_formed += 1
        self.owner.slaac_event(self, EV_ADDR_NEW, i)
        if pref == 0:
            self.stats.addr_deprecated += 1
            self.owner.slaac_event(self, EV_ADDR_DEPRECATED, i)

    def _stable(self, i):
        """RFC 7217 IID for this prefix, skipping reserved IIDs (section 5 step 3)."""
        a = self.addr[i]
        while True:
            iid = addr6.stable_iid(self.prefix[i], self.ifname, b"", self.dad_counter[i],
                                   self.secret)
            if not addr6.iid_reserved(iid, 0):
                break
            self.dad_counter[i] += 1
        k = 0
        while k < 8:
            a[8 + k] = iid[k]
            k += 1

    def dad_failed(self, i, now):
        """DAD found s.addr[i] a duplicate (RFC 7217 section 6): with a secret the next
        DAD_Counter gives a new address (EV_ADDR_NEW again, at most 3 tries); otherwise the
        address is given up."""
        if self.secret is not None and self.dad_counter[i] < 3:
            self.dad_counter[i] += 1
            self._stable(i)
            self.owner.slaac_event(self, EV_ADDR_NEW, i)
            return
        self.has_addr[i] = False
        self._release(i)

    def _update(self, i, now, valid, pref):
        """RFC 4862 5.5.3 (e): preferred lifetime as advertised; the valid lifetime by the
        2-hour rule, so a forged RA cannot cut an address's life short."""
        self.preferred_until[i] = _deadline(now, pref)
        if pref != 0 and self.deprecated[i]:
            self.deprecated[i] = False          # preferred again
        elif pref == 0 and not self.deprecated[i]:
            self.deprecated[i] = True
            self.stats.addr_deprecated += 1
            self.owner.slaac_event(self, EV_ADDR_DEPRECATED, i)
        vu = self.valid_until[i]
        remaining = -1 if vu < 0 else vu - now
        if valid == icmp6.INFINITE or valid * 1000 > TWO_HOURS_MS or \
                (remaining >= 0 and valid * 1000 > remaining):
            self.valid_until[i] = _deadline(now, valid)       # 1.
        elif remaining >= 0 and remaining <= TWO_HOURS_MS:
            self.stats.two_hour_rule += 1                     # 2. ignore
        else:
            self.valid_until[i] = now + TWO_HOURS_MS          # 3. reset to 2 hours
            self.stats.two_hour_rule += 1

    def _release(self, i):
        if self.used[i] and not self.onlink[i] and not self.has_addr[i]:
            self.used[i] = False

    # ---- timers ---------------------------------------------------------------------------
    def tick(self, now):
        nxt = -1
        # self.owner.slaac_event(...) at each event, not a local bound method: fetching one
        # allocates on MicroPython, and this runs on every IPv6 timer pass (heap-locked loop)
        t = self.rs_next
        if t >= 0:
            if t <= now:
                self.rs_sent += 1
                self.stats.rs_sent += 1
                self.rs_next = now + RTR_SOLICITATION_INTERVAL_MS \
                    if self.rs_sent < self.rs_max else -1
                self.owner.slaac_solicit(self)
            if self.rs_next >= 0:
                nxt = self.rs_next
        i = 0
        while i < self.nprefix:
            if self.used[i]:
                if self.onlink[i]:
                    t = self.onlink_until[i]
                    if 0 <= t <= now:
                        self.onlink[i] = False
                        self.owner.slaac_event(self, EV_ONLINK_REMOVED, i)
                    elif t >= 0 and (nxt < 0 or t < nxt):
                        nxt = t
                if self.has_addr[i]:
                    t = self.valid_until[i]
                    if 0 <= t <= now:
                        self.has_addr[i] = False
                        self.stats.addr_removed += 1
                        self.owner.slaac_event(self, EV_ADDR_REMOVED, i)
                    else:
                        if t >= 0 and (nxt < 0 or t < nxt):
                            nxt = t
                        t = self.preferred_until[i]
                        if not self.deprecated[i] and t >= 0:
                            if t <= now:
                                self.deprecated[i] = True
                                self.stats.addr_deprecated += 1
                                self.owner.slaac_event(self, EV_ADDR_DEPRECATED, i)
                            elif nxt < 0 or t < nxt:
                                nxt = t
                self._release(i)
            i += 1
        i = 0
        while i < self.nrouter:
            if self.router_used[i]:
                t = self.router_until[i]
                if t <= now:
                    self._drop_router(i)
                elif nxt < 0 or t < nxt:
                    nxt = t
            i += 1
        i = 0
        while i < self.nroute:
            if self.route_used[i]:
                t = self.route_until[i]
                if 0 <= t <= now:
                    self.route_used[i] = False
                    self.stats.routes_removed += 1
                    self.owner.slaac_event(self, EV_ROUTE_REMOVED, i)
                elif t >= 0 and (nxt < 0 or t < nxt):
                    nxt = t
            i += 1
        i = 0
        while i < self.ndns:
            if self.dns_used[i]:
                t = self.dns_until[i]
                if 0 <= t <= now:
                    self.dns_used[i] = False
                    self.stats.dns_expired += 1
                    self.owner.slaac_event(self, EV_DNS, -1)
                elif t >= 0 and (nxt < 0 or t < nxt):
                    nxt = t
            i += 1
        return nxt
