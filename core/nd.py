"""Neighbour cache (RFC 4861 section 7.3) and Duplicate Address Detection (RFC 4862 5.4).

NeighbourCache is a fixed table of `size` entries, each FREE, INCOMPLETE (solicitations
going out, one packet waiting), REACHABLE, STALE, DELAY, PROBE or PERMANENT, driven by
events - a packet to send (resolve), a solicitation or other message carrying the sender's
link-layer address (learn), a Neighbor Advertisement (advert, the 7.2.5 table), an
upper-layer reachability confirmation (confirm) - and by tick(now) on the caller's clock.
What the protocol must do is reported through the owner's methods:

    owner.nd_solicit(cache, i, unicast)     # a solicitation for cache.addr[i]; unicast: to
                                            # cache.ll[i], else to its solicited-node group
    owner.nd_transmit(cache, i, pkt)        # the waiting packet, now that cache.ll[i] is known
    owner.nd_unreachable(cache, i, pkt)     # resolution failed: drop pkt (may be None) and
                                            # send ICMPv6 Address Unreachable (RFC 4861 7.2.2)
    owner.nd_discard(cache, pkt)            # a waiting packet replaced or evicted: drop it

The cache knows nothing of IPv6 beyond these timers: addresses are `alen` bytes and
link-layer addresses `llen` bytes, so ARP (alen 4, a broadcast request for "solicit") can
sit on the same mechanism; ND is this cache with alen 16 and an NS for "solicit".

Dad keeps the addresses under Duplicate Address Detection: tentative, DupAddrDetectTransmits
solicitations RetransTimer apart (the first after a random delay up to
MAX_RTR_SOLICITATION_DELAY, RFC 4862 5.4.2), then owner.dad_done(dad, i, True); a
solicitation from the unspecified address or an advertisement for a tentative target makes
it owner.dad_done(dad, i, False): duplicate (5.4.3, 5.4.4). owner.dad_solicit(dad, i) sends
the probe for dad.addr[i].
"""
from ustack.core.compat import const
from ustack.core.stats import Counters

FREE = const(0)
GEN_MASK = const(0x3FFFFFFF)  # generations wrap below 2**30 (route.py): small ints on MCUs
INCOMPLETE = const(1)
REACHABLE = const(2)
STALE = const(3)
DELAY = const(4)
PROBE = const(5)
PERMANENT = const(6)
RESOLVING = const(1)   # _alloc modes
LEARNING = const(2)
STATE_NAMES = ("FREE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT")

# RFC 4861 section 10 protocol constants (host)
MAX_MULTICAST_SOLICIT = const(3)
MAX_UNICAST_SOLICIT = const(3)
REACHABLE_TIME_MS = const(30000)
RETRANS_TIMER_MS = const(1000)
DELAY_FIRST_PROBE_TIME_MS = const(5000)
MAX_RTR_SOLICITATION_DELAY_MS = const(1000)
# MIN_RANDOM_FACTOR 0.5 and MAX_RANDOM_FACTOR 1.5: see reachable_time()

# NA flags byte (RFC 4861 4.4), as wire/icmp6 names them
NA_ROUTER = const(0x80)
NA_SOLICITED = const(0x40)
NA_OVERRIDE = const(0x20)

DEFAULTS = {
    "ND_CACHE_SIZE": 16,            # neighbours at once
    "ND_RETRANS_TIMER_MS": RETRANS_TIMER_MS,
    "ND_REACHABLE_TIME_MS": REACHABLE_TIME_MS,      # BaseReachableTime
    "ND_DELAY_FIRST_PROBE_MS": DELAY_FIRST_PROBE_TIME_MS,
    "ND_MAX_MULTICAST_SOLICIT": MAX_MULTICAST_SOLICIT,
    "ND_MAX_UNICAST_SOLICIT": MAX_UNICAST_SOLICIT,
    "ND_DAD_TRANSMITS": 1,          # DupAddrDetectTransmits (RFC 4862 5.1); 0: no DAD
    "ND_DAD_SLOTS": 4,              # addresses under DAD at once
    "ND_DAD_MAX_DELAY_MS": MAX_RTR_SOLICITATION_DELAY_MS,
}

ND_COUNTERS = (
    "solicits_mcast", "solicits_ucast", "learned", "lladdr_changed", "resolved",
    "pending_sent", "pending_replaced", "pending_evicted", "unreachable", "probe_failed",
    "evicted", "na_no_entry", "na_no_lladdr", "na_ignored_override", "confirmations",
    "router_lost", "host_unreach", "learn_skipped",
)
DAD_COUNTERS = ("dad_started", "dad_probes", "dad_succeeded", "dad_duplicates",
                "dad_table_full")


def setting(config, key):
    """config[key], or this module's default when the stack's config does not have it."""
    if config is not None and key in config:
        return config[key]
    return DEFAULTS[key]


def _half_rand():
    return 0x8000


def _eq(a, ao, b, n):
    i = 0
    while i < n:
        if a[ao + i] != b[i]:
            return False
        i += 1
    return True


def _put(dst, src, so, n):
    i = 0
    while i < n:
        dst[i] = src[so + i]
        i += 1


class NeighbourCache:
    def __init__(self, owner, alen=16, llen=6, config=None, rand=None):
        n = setting(config, "ND_CACHE_SIZE")
        self.owner = owner
        self.size = n
        self.alen = alen
        self.llen = llen
        self.addr = [bytearray(alen) for _ in range(n)]
        self.ll = [bytearray(llen) for _ in range(n)]
        self.state = [FREE] * n
        self.expires = [0] * n     # INCOMPLETE/PROBE: next solicitation; REACHABLE: end; DELAY
        self.probes = [0] * n      # solicitations sent in INCOMPLETE / PROBE
        self.pending = [None] * n  # one packet per INCOMPLETE entry (RFC 4861 7.2.2)
        self.router = [False] * n  # IsRouter
        self.used = [0] * n        # last use, for least-recently-used eviction
        self.retrans_ms = setting(config, "ND_RETRANS_TIMER_MS")
        self.delay_ms = setting(config, "ND_DELAY_FIRST_PROBE_MS")
        self.max_mcast = setting(config, "ND_MAX_MULTICAST_SOLICIT")
        self.max_ucast = setting(config, "ND_MAX_UNICAST_SOLICIT")
        self.rand = rand if rand is not None else _half_rand
        self.base_reachable_ms = setting(config, "ND_REACHABLE_TIME_MS")
        self.reachable_ms = self.reachable_time()
        self.stats = Counters(ND_COUNTERS)
        self.gen = 0    # bumped when an entry is freed, reused or learns another link-layer
                        # address: a connection's route.RouteCache index is good while equal

    # ---- parameters ---------------------------------------------------------------------------
    def reachable_time(self):
        """RFC 4861 6.3.2: BaseReachableTime times a uniform random factor in [0.5, 1.5)."""
        b = self.base_reachable_ms
        return (b >> 1) + ((b * (self.rand() & 0xFFFF)) >> 16)

    def set_params(self, base_reachable_ms, retrans_ms):
        """From a Router Advertisement (RFC 4861 6.3.4): 0 leaves a value unchanged; a new
        BaseReachableTime draws a new ReachableTime at once."""
        if base_reachable_ms and base_reachable_ms != self.base_reachable_ms:
            self.base_reachable_ms = base_reachable_ms
            self.reachable_ms = self.reachable_time()
        if retrans_ms:
            self.retrans_ms = retrans_ms

    # ---- table ------------------------------------------------------------------------------
    def find(self, a, ao=0):
        st = self.state
        addrs = self.addr
        n = self.alen
        i = 0
        while i < self.size:
            if st[i] != FREE and _eq(a, ao, addrs[i], n):
                return i
            i += 1
        return -1

    def _alloc(self, a, ao, now, mode=0):
        """A free entry, else one evicted (its waiting packet dropped) by mode: LEARNING (a
        solicitation's sender): only an entry learned that way that nothing has used since,
        the oldest; RESOLVING (a packet to a new neighbour): such an entry, else the oldest
        INCOMPLETE one; otherwise the least recently used. RFC 6583 7.1: the neighbours in
        use come first, so neither packets to ever new addresses (a flood's answers to random
        on-link sources) nor solicitations from them can push them out. -1 when none may go
        (a learner's counted)."""
        best = -1
        inc = -1
        idle = -1
        st = self.state
        used = self.used
        i = 0
        while i < self.size:
            s = st[i]
            if s == FREE:
                best = i
                idle = -1
                break
            if s == INCOMPLETE:
                if inc < 0 or used[i] < used[inc]:
                    inc = i
            elif s != PERMANENT:
                if best < 0 or used[i] < used[best]:
                    best = i
                if used[i] < 0 and (idle < 0 or self.expires[i] < self.expires[idle]):
                    idle = i
            i += 1
        if best >= 0 and st[best] == FREE:
            pass
        elif idle >= 0 and mode != 0:
            best = idle
        elif mode == LEARNING:
            self.stats.learn_skipped += 1
            return -1
        elif best < 0 or (mode == RESOLVING and inc >= 0):
            best = inc
        if best < 0:
            return -1
        if st[best] != FREE:
            self.stats.evicted += 1
            self._free(best)
        self.gen = (self.gen + 1) & GEN_MASK
        _put(self.addr[best], a, ao, self.alen)
        self.router[best] = False
        self.probes[best] = 0
        self.used[best] = now
        return best

    def drop_pending(self):
        """Drop (and count) every packet waiting for resolution: the stack is stopping."""
        i = 0
        while i < self.size:
            p = self.pending[i]
            if p is not None:
                self.pending[i] = None
                self.stats.pending_evicted += 1
                self.owner.nd_discard(self, p)
            i += 1

    def _free(self, i):
        p = self.pending[i]
        if p is not None:
            self.pending[i] = None
            self.stats.pending_evicted += 1
            self.owner.nd_discard(self, p)
        self.state[i] = FREE
        self.gen = (self.gen + 1) & GEN_MASK

    def remove(self, a, ao=0):
        i = self.find(a, ao)
        if i >= 0:
            self._free(i)
        return i >= 0

    def add_static(self, a, ll):
        i = self.find(a, 0)
        if i < 0:
            i = self._alloc(a, 0, 0)
            if i < 0:
                return -1
        self._set_ll(i, ll, 0)
        self.state[i] = PERMANENT
        self._flush_pending(i)      # an INCOMPLETE entry's packet can go now
        return i

    def _set_ll(self, i, ll, lo):
        _put(self.ll[i], ll, lo, self.llen)
        self.gen = (self.gen + 1) & GEN_MASK

    def _reachable(self, i, now):
        self.state[i] = REACHABLE
        self.expires[i] = now + self.reachable_ms

    def _flush_pending(self, i):
        p = self.pending[i]
        if p is not None:
            self.pending[i] = None
            self.stats.pending_sent += 1
            self.owner.nd_transmit(self, i, p)

    # ---- events ---------------------------------------------------------------------------
    def resolve(self, a, ao, pkt, now, rc=None):
        """A packet to send to neighbour a (RFC 4861 7.2.2, 7.3.3): the entry index when its
        link-layer address is usable (send pkt to self.ll[i] now), or -1: the packet (if any)
        now waits in the entry, or was dropped when the table is all PERMANENT. rc, a
        connection's route.RouteCache: its entry index, while no entry changed since (gen)."""
        if rc is not None and rc.nb_gen == self.gen:
            i = rc.nb_idx
        else:
            i = self.find(a, ao)
            if rc is not None and i >= 0:
                rc.nb_gen = self.gen
                rc.nb_idx = i
        if i < 0:
            i = self._alloc(a, ao, now, RESOLVING)
            if i < 0:
                if pkt is not None:
                    self.owner.nd_discard(self, pkt)
                return -1
            self.state[i] = INCOMPLETE
            self.pending[i] = pkt
            self.probes[i] = 1
            self.expires[i] = now + self.retrans_ms
            self.stats.solicits_mcast += 1
            self.owner.nd_solicit(self, i, False)
            return -1
        s = self.state[i]
        if s == INCOMPLETE:
            if pkt is not None:
                old = self.pending[i]
                self.pending[i] = pkt
                if old is not None:
                    # 7.2.2: "the new arrival SHOULD replace the oldest entry"
                    self.stats.pending_replaced += 1
                    self.owner.nd_discard(self, old)
            return -1
        self.used[i] = now
        if s == STALE:
            # 7.3.3: the first use of a STALE entry starts the delay before probing
            self.state[i] = DELAY
            self.expires[i] = now + self.delay_ms
        return i

    def learn(self, a, ao, ll, lo, now, is_router=-1):
        """A Neighbor Solicitation, Router Solicitation, Router Advertisement or Redirect
        carrying the link-layer address ll[lo:] of a (RFC 4861 7.2.3, 6.3.4, 8.3; appendix
        C): a new entry or a changed address is STALE; an INCOMPLETE entry learns it and
        sends its packet. is_router: 1 or 0 sets IsRouter, -1 leaves it. Returns the entry
        (-1 when the table is all PERMANENT)."""
        i = self.find(a, ao)
        if i < 0:
            i = self._alloc(a, ao, now, LEARNING)
            if i < 0:
                return -1
            self._set_ll(i, ll, lo)
            self.state[i] = STALE
            self.used[i] = -1        # an asker, not yet a neighbour in use
            self.expires[i] = now    # STALE needs no deadline: the age among askers
            self.stats.learned += 1
        else:
            s = self.state[i]
            if s == PERMANENT:
                return i
            if s == INCOMPLETE:
                self._set_ll(i, ll, lo)
                self.state[i] = STALE
                self.stats.resolved += 1
                self._flush_pending(i)
            elif not _eq(ll, lo, self.ll[i], self.llen):
                self._set_ll(i, ll, lo)
                self.state[i] = STALE
                self.stats.lladdr_changed += 1
        if is_router >= 0:
            self.router[i] = is_router > 0
        return i

    def advert(self, a, ao, ll, lo, flags, now):
        """A Neighbor Advertisement for target a (RFC 4861 7.2.5); ll None when it has no
        Target Link-Layer Address option; flags its R/S/O byte. Returns True when the
        neighbour stopped being a router (the caller then removes it from the default
        router list, 7.2.5's last paragraph)."""
        i = self.find(a, ao)
        if i < 0:
            self.stats.na_no_entry += 1   # 7.2.5: no entry: silently discard
            return False
        s = self.state[i]
        if s == PERMANENT:
            return False
        solicited = flags & NA_SOLICITED
        was_router = self.router[i]
        if s == INCOMPLETE:
            if ll is None:
                self.stats.na_no_lladdr += 1
                return False
            self._set_ll(i, ll, lo)
            if solicited:
                self._reachable(i, now)
            else:
                self.state[i] = STALE
            self.stats.resolved += 1
            self.router[i] = (flags & NA_ROUTER) != 0
            self._flush_pending(i)
            return False
        differs = ll is not None and not _eq(ll, lo, self.ll[i], self.llen)
        if not (flags & NA_OVERRIDE) and differs:
            # 7.2.5: a different address without Override only marks REACHABLE as STALE
            if s == REACHABLE:
                self.state[i] = STALE
            self.stats.na_ignored_override += 1
            return False
        if differs:
            self._set_ll(i, ll, lo)
            self.stats.lladdr_changed += 1
        if solicited:
            self._reachable(i, now)
        elif differs:
            self.state[i] = STALE
        self.router[i] = (flags & NA_ROUTER) != 0
        if was_router and not self.router[i]:
            self.stats.router_lost += 1
            return True
        return False

    def confirm(self, a, ao, now):
        """Upper-layer reachability confirmation (RFC 4861 7.3.1: TCP saw new data
        acknowledged): the entry is REACHABLE again."""
        i = self.find(a, ao)
        if i >= 0:
            s = self.state[i]
            if s != INCOMPLETE and s != PERMANENT:
                self._reachable(i, now)
                self.stats.confirmations += 1

    def tick(self, now):
        """Run the timers due at now; returns the next deadline (-1: none)."""
        nxt = -1
        st = self.state
        i = 0
        while i < self.size:
            s = st[i]
            if s == FREE or s == STALE or s == PERMANENT:
                i += 1
                continue
            if self.expires[i] <= now:
                if s == INCOMPLETE:
                    if self.probes[i] < self.max_mcast:
                        self.probes[i] += 1
                        self.expires[i] = now + self.retrans_ms
                        self.stats.solicits_mcast += 1
                        self.owner.nd_solicit(self, i, False)
                    else:
                        # 7.3.3: resolution failed: ICMPv6 address unreachable, entry gone
                        p = self.pending[i]
                        self.pending[i] = None
                        st[i] = FREE
                        self.gen = (self.gen + 1) & GEN_MASK
                        self.stats.unreachable += 1
                        self.owner.nd_unreachable(self, i, p)
                elif s == REACHABLE:
                    st[i] = STALE
                elif s == DELAY:
                    st[i] = PROBE
                    self.probes[i] = 1
                    self.expires[i] = now + self.retrans_ms
                    self.stats.solicits_ucast += 1
                    self.owner.nd_solicit(self, i, True)
                elif s == PROBE:
                    if self.probes[i] < self.max_ucast:
                        self.probes[i] += 1
                        self.expires[i] = now + self.retrans_ms
                        self.stats.solicits_ucast += 1
                        self.owner.nd_solicit(self, i, True)
                    else:
                        st[i] = FREE   # 7.3.3: "the entry SHOULD be deleted"
                        self.gen = (self.gen + 1) & GEN_MASK
                        self.stats.probe_failed += 1
            s = st[i]
            if s != FREE and s != STALE and s != PERMANENT and (nxt < 0 or self.expires[i] < nxt):
                nxt = self.expires[i]
            i += 1
        return nxt


# ---- Duplicate Address Detection (RFC 4862 5.4) ----------------------------------------------
TENTATIVE = const(1)


class Dad:
    def __init__(self, owner, alen=16, config=None, rand=None):
        n = setting(config, "ND_DAD_SLOTS")
        self.owner = owner
        self.size = n
        self.alen = alen
        self.transmits = setting(config, "ND_DAD_TRANSMITS")
        self.retrans_ms = setting(config, "ND_RETRANS_TIMER_MS")
        self.max_delay = setting(config, "ND_DAD_MAX_DELAY_MS")
        self.rand = rand if rand is not None else _half_rand
        self.addr = [bytearray(alen) for _ in range(n)]
        self.state = [FREE] * n
        self.sent = [0] * n
        self.expires = [0] * n
        self.stats = Counters(DAD_COUNTERS)

    def find(self, a, ao=0):
        i = 0
        while i < self.size:
            if self.state[i] == TENTATIVE and _eq(a, ao, self.addr[i], self.alen):
                return i
            i += 1
        return -1

    def is_tentative(self, a, ao=0):
        return self.find(a, ao) >= 0

    def start(self, a, now):
        """Address a becomes tentative (RFC 4862 5.4): the first probe after a random delay
        of up to MAX_RTR_SOLICITATION_DELAY (5.4.2). With DupAddrDetectTransmits 0 it is
        done at once. Returns the slot, or -1 when every slot is busy (counted; the caller
        may retry)."""
        if self.find(a, 0) >= 0:
            return self.find(a, 0)
        i = 0
        while i < self.size and self.state[i] != FREE:
            i += 1
        if i == self.size:
            self.stats.dad_table_full += 1
            return -1
        _put(self.addr[i], a, 0, self.alen)
        self.stats.dad_started += 1
        if self.transmits <= 0:
            self.stats.dad_succeeded += 1
            self.owner.dad_done(self, i, True)
            return i
        self.state[i] = TENTATIVE
        self.sent[i] = 0
        self.expires[i] = now + ((self.max_delay * (self.rand() & 0xFFFF)) >> 16)
        return i

    def stop(self, a, ao=0):
        """Address a left before its DAD ended (removed): its slot is free, nothing
        reported. The slot it had, or -1."""
        i = self.find(a, ao)
        if i >= 0:
            self.state[i] = FREE
        return i

    def _dup(self, i):
        self.state[i] = FREE
        self.stats.dad_duplicates += 1
        self.owner.dad_done(self, i, False)

    def on_ns(self, target, to, src_unspecified):
        """A Neighbor Solicitation for target[to:] (RFC 4862 5.4.3). True when the target
        is tentative: the caller must not answer it. From the unspecified address it is
        another node's DAD for the same address: ours is a duplicate. From a unicast
        address it is address resolution, ignored."""
        i = self.find(target, to)
        if i < 0:
            return False
        if src_unspecified:
            self._dup(i)
        return True

    def on_na(self, target, to):
        """A Neighbor Advertisement for a tentative target: duplicate (5.4.4)."""
        i = self.find(target, to)
        if i < 0:
            return False
        self._dup(i)
        return True

    def tick(self, now):
        nxt = -1
        i = 0
        while i < self.size:
            if self.state[i] == TENTATIVE:
                if self.expires[i] <= now:
                    if self.sent[i] < self.transmits:
                        self.sent[i] += 1
                        self.expires[i] = now + self.retrans_ms
                        self.stats.dad_probes += 1
                        self.owner.dad_solicit(self, i)
                    else:
                        # RetransTimer after the last probe and no answer: unique (5.4)
                        self.state[i] = FREE
                        self.stats.dad_succeeded += 1
                        self.owner.dad_done(self, i, True)
                if self.state[i] == TENTATIVE and (nxt < 0 or self.expires[i] < nxt):
                    nxt = self.expires[i]
            i += 1
        return nxt
