"""The neighbour cache (core/nd.py) against RFC 4861 appendix C, transition by transition,
on a virtual clock (plain integers: every event and tick gets `now`), and Duplicate
Address Detection (RFC 4862 5.4). One test per row of the appendix's table; the owner
records the actions the cache asks for."""
from ustack.core import addr6, nd
from ustack.core.nd import (NeighbourCache, Dad, INCOMPLETE, REACHABLE, STALE, DELAY, PROBE,
                            FREE, PERMANENT, NA_ROUTER, NA_SOLICITED, NA_OVERRIDE)

A = addr6.pton("fe80::2")
B = addr6.pton("fe80::3")
MAC = b"\x02\x00\x00\x00\x00\x02"
MAC2 = b"\x02\x00\x00\x00\x00\x99"
CFG = {"ND_CACHE_SIZE": 4}


class Owner:
    def __init__(self):
        self.log = []

    def nd_solicit(self, cache, i, unicast):
        self.log.append(("ucast" if unicast else "mcast", bytes(cache.addr[i])))

    def nd_transmit(self, cache, i, pkt):
        self.log.append(("tx", pkt, bytes(cache.ll[i])))

    def nd_unreachable(self, cache, i, pkt):
        self.log.append(("unreach", pkt, bytes(cache.addr[i])))

    def nd_discard(self, cache, pkt):
        self.log.append(("discard", pkt))

    def take(self):
        out = self.log
        self.log = []
        return out


def cache(cfg=CFG):
    o = Owner()
    return NeighbourCache(o, 16, 6, cfg), o


def state(c, a=A):
    i = c.find(a)
    return FREE if i < 0 else c.state[i]


def incomplete():
    c, o = cache()
    assert c.resolve(A, 0, "p1", 0) == -1
    o.take()
    return c, o


def reachable():
    c, o = incomplete()
    c.advert(A, 0, MAC, 0, NA_SOLICITED, 10)
    o.take()
    assert state(c) == REACHABLE
    return c, o


def stale():
    c, o = cache()
    c.learn(A, 0, MAC, 0, 0)
    assert state(c) == STALE
    return c, o


# ---- (none) ------------------------------------------------------------------------------------
def test_none_packet_to_send_creates_incomplete_and_sends_multicast_ns():
    c, o = cache()
    assert c.resolve(A, 0, "p1", 0) == -1
    assert state(c) == INCOMPLETE
    assert o.take() == [("mcast", A)]
    assert c.tick(0) == c.retrans_ms


def test_none_ns_rs_ra_redirect_create_stale():
    c, o = cache()
    i = c.learn(A, 0, MAC, 0, 0)
    assert c.state[i] == STALE and bytes(c.ll[i]) == MAC and o.take() == []
    c.learn(B, 0, MAC2, 0, 0, is_router=1)   # an RA
    assert state(c, B) == STALE and c.router[c.find(B)]


def test_none_na_is_ignored():
    c, o = cache()
    assert not c.advert(A, 0, MAC, 0, NA_SOLICITED | NA_OVERRIDE, 0)
    assert state(c) == FREE and c.stats.na_no_entry == 1


# ---- INCOMPLETE ------------------------------------------------------------------------------
def test_incomplete_packet_to_send_replaces_the_waiting_one():
    c, o = incomplete()
    assert c.resolve(A, 0, "p2", 5) == -1
    assert o.take() == [("discard", "p1")] and c.stats.pending_replaced == 1
    assert state(c) == INCOMPLETE


def test_incomplete_retransmit_timeout_below_max_resends_ns():
    c, o = incomplete()
    assert c.tick(999) == 1000 and o.take() == []
    assert c.tick(1000) == 2000
    assert o.take() == [("mcast", A)]
    assert c.tick(2000) == 3000
    assert o.take() == [("mcast", A)] and state(c) == INCOMPLETE


def test_incomplete_after_max_multicast_solicit_is_unreachable():
    c, o = incomplete()
    c.tick(1000)
    c.tick(2000)
    o.take()
    assert c.tick(3000) == -1
    assert o.take() == [("unreach", "p1", A)]
    assert state(c) == FREE and c.stats.unreachable == 1
    assert c.stats.solicits_mcast == 3     # MAX_MULTICAST_SOLICIT


def test_incomplete_na_solicited_becomes_reachable_and_sends_the_packet():
    c, o = incomplete()
    c.advert(A, 0, MAC, 0, NA_SOLICITED, 10)
    assert state(c) == REACHABLE and o.take() == [("tx", "p1", MAC)]
    assert c.expires[c.find(A)] == 10 + c.reachable_ms


def test_incomplete_na_unsolicited_becomes_stale_and_sends_the_packet():
    for flags in (0, NA_OVERRIDE):
        c, o = incomplete()
        c.advert(A, 0, MAC, 0, flags, 10)
        assert state(c) == STALE and o.take() == [("tx", "p1", MAC)]


def test_incomplete_na_without_lladdr_is_ignored():
    c, o = incomplete()
    c.advert(A, 0, None, 0, NA_SOLICITED | NA_OVERRIDE, 10)
    assert state(c) == INCOMPLETE and o.take() == [] and c.stats.na_no_lladdr == 1


def test_incomplete_ns_with_lladdr_becomes_stale_and_sends_the_packet():
    c, o = incomplete()
    c.learn(A, 0, MAC, 0, 10)
    assert state(c) == STALE and o.take() == [("tx", "p1", MAC)]


def test_incomplete_na_sets_isrouter_from_the_r_flag():
    c, o = incomplete()
    c.advert(A, 0, MAC, 0, NA_SOLICITED | NA_ROUTER, 10)
    assert c.router[c.find(A)]


# ---- !INCOMPLETE and NA (RFC 4861 7.2.5) ---------------------------------------------------
def test_na_solicited_no_override_same_lladdr_makes_reachable():
    c, o = stale()
    c.advert(A, 0, MAC, 0, NA_SOLICITED, 50)
    assert state(c) == REACHABLE


def test_na_solicited_no_lladdr_makes_reachable():
    c, o = stale()
    c.advert(A, 0, None, 0, NA_SOLICITED, 50)
    assert state(c) == REACHABLE


def test_na_solicited_no_override_different_lladdr_reachable_becomes_stale():
    c, o = reachable()
    c.advert(A, 0, MAC2, 0, NA_SOLICITED, 50)
    assert state(c) == STALE and bytes(c.ll[c.find(A)]) == MAC   # address not taken


def test_na_solicited_no_override_different_lladdr_leaves_stale_delay_probe():
    for make in (stale, delay, probe):
        c, o = make()
        before = state(c)
        c.advert(A, 0, MAC2, 0, NA_SOLICITED, 50)
        assert state(c) == before and bytes(c.ll[c.find(A)]) == MAC


def test_na_solicited_override_records_lladdr_and_makes_reachable():
    for make in (stale, reachable, delay, probe):
        c, o = make()
        c.advert(A, 0, MAC2, 0, NA_SOLICITED | NA_OVERRIDE, 50)
        assert state(c) == REACHABLE and bytes(c.ll[c.find(A)]) == MAC2


def test_na_unsolicited_override_different_lladdr_records_it_stale():
    c, o = reachable()
    c.advert(A, 0, MAC2, 0, NA_OVERRIDE, 50)
    assert state(c) == STALE and bytes(c.ll[c.find(A)]) == MAC2


def test_na_unsolicited_same_or_no_lladdr_changes_nothing():
    for flags in (0, NA_OVERRIDE):
        for ll in (MAC, None):
            c, o = reachable()
            c.advert(A, 0, ll, 0, flags, 50)
            assert state(c) == REACHABLE and bytes(c.ll[c.find(A)]) == MAC


def test_na_unsolicited_no_override_different_lladdr_on_stale_is_ignored():
    c, o = stale()
    c.advert(A, 0, MAC2, 0, 0, 50)
    assert state(c) == STALE and bytes(c.ll[c.find(A)]) == MAC


def test_na_clearing_the_router_flag_reports_a_lost_router():
    c, o = stale()
    c.learn(A, 0, MAC, 0, 0, is_router=1)
    assert c.advert(A, 0, MAC, 0, NA_SOLICITED, 10) is True
    assert not c.router[c.find(A)] and c.stats.router_lost == 1
    assert c.advert(A, 0, MAC, 0, NA_SOLICITED, 20) is False


# ---- !INCOMPLETE and other events --------------------------------------------------------------
def test_upper_layer_confirmation_makes_reachable():
    for make in (stale, delay, probe, reachable):
        c, o = make()
        c.confirm(A, 0, 100)
        assert state(c) == REACHABLE and c.expires[c.find(A)] == 100 + c.reachable_ms


def test_confirmation_of_an_incomplete_entry_changes_nothing():
    c, o = incomplete()
    c.confirm(A, 0, 100)
    assert state(c) == INCOMPLETE


def test_reachable_timeout_becomes_stale():
    c, o = reachable()
    t = c.expires[c.find(A)]
    c.tick(t - 1)
    assert state(c) == REACHABLE
    assert c.tick(t) == -1
    assert state(c) == STALE and o.take() == []


def test_ns_with_different_lladdr_makes_any_resolved_entry_stale():
    for make in (reachable, delay, probe, stale):
        c, o = make()
        c.learn(A, 0, MAC2, 0, 50)
        assert state(c) == STALE and bytes(c.ll[c.find(A)]) == MAC2


def test_ns_with_the_same_lladdr_changes_nothing():
    c, o = reachable()
    c.learn(A, 0, MAC, 0, 50)
    assert state(c) == REACHABLE


# ---- STALE, DELAY, PROBE -------------------------------------------------------------------
def delay():
    c, o = stale()
    i = c.resolve(A, 0, "p", 100)
    assert i >= 0 and bytes(c.ll[i]) == MAC
    assert state(c) == DELAY
    return c, o


def probe():
    c, o = delay()
    c.tick(100 + c.delay_ms)
    assert state(c) == PROBE and o.take() == [("ucast", A)]
    return c, o


def test_stale_packet_to_send_is_sent_and_starts_the_delay():
    c, o = delay()
    assert c.expires[c.find(A)] == 100 + nd.DELAY_FIRST_PROBE_TIME_MS
    assert o.take() == []


def test_reachable_delay_probe_packets_are_sent_at_once():
    for make in (reachable, delay, probe):
        c, o = make()
        before = state(c)
        assert c.resolve(A, 0, "q", 200) >= 0
        assert state(c) == before


def test_delay_timeout_sends_unicast_ns_and_probes():
    c, o = probe()
    assert c.expires[c.find(A)] == 100 + c.delay_ms + c.retrans_ms


def test_probe_retransmit_below_max_resends_unicast_ns():
    c, o = probe()
    t = 100 + c.delay_ms
    c.tick(t + 1000)
    c.tick(t + 2000)
    assert o.take() == [("ucast", A), ("ucast", A)] and state(c) == PROBE


def test_probe_after_max_unicast_solicit_discards_the_entry():
    c, o = probe()
    t = 100 + c.delay_ms
    c.tick(t + 1000)
    c.tick(t + 2000)
    o.take()
    assert c.tick(t + 3000) == -1
    assert state(c) == FREE and o.take() == [] and c.stats.probe_failed == 1


def test_probe_answered_by_solicited_na_is_reachable():
    c, o = probe()
    c.advert(A, 0, MAC, 0, NA_SOLICITED, 6000)
    assert state(c) == REACHABLE and c.tick(6001) == 6000 + c.reachable_ms


# ---- table and timers -------------------------------------------------------------------------
def test_reachable_time_is_randomised_between_half_and_one_and_a_half():
    """RFC 4861 6.3.2: ReachableTime = BaseReachableTime * uniform(0.5, 1.5)."""
    for r, want in ((0, 15000), (0x8000, 30000), (0xFFFF, 44999)):
        c = NeighbourCache(Owner(), 16, 6, CFG, rand=lambda r=r: r)
        assert c.reachable_ms == want
    c, o = cache()
    c.set_params(10000, 500)
    assert c.reachable_ms == 10000 and c.retrans_ms == 500
    c.set_params(0, 0)
    assert c.reachable_ms == 10000 and c.retrans_ms == 500


def test_full_table_evicts_the_least_recently_used_resolved_entry():
    c, o = cache()
    for k in range(4):
        c.learn(addr6.pton("fe80::%d" % (k + 10)), 0, MAC, 0, k)
    c.resolve(addr6.pton("fe80::10"), 0, None, 50)      # used again: not the oldest now
    assert c.resolve(A, 0, "p", 60) == -1
    assert c.find(addr6.pton("fe80::11")) == -1 and c.find(addr6.pton("fe80::10")) >= 0
    assert c.stats.evicted == 1 and state(c) == INCOMPLETE


def test_incomplete_entries_are_evicted_last_and_their_packet_dropped():
    c, o = cache()
    for k in range(4):
        c.resolve(addr6.pton("fe80::%d" % (k + 10)), 0, "p%d" % k, k)
    o.take()
    # a solicitation's sender never takes the entry a waiting packet needs
    assert c.learn(A, 0, MAC, 0, 10) == -1
    assert o.take() == [] and c.stats.learn_skipped == 1
    # a packet to a new neighbour takes the oldest one
    assert c.resolve(A, 0, "q", 11) == -1
    assert o.take() == [("discard", "p0"), ("mcast", bytes(A))] and state(c) == INCOMPLETE


def test_a_new_neighbour_to_resolve_takes_the_oldest_incomplete_entry_not_a_resolved_one():
    # RFC 6583 7.1: packets to ever new neighbours (a SYN flood's answers to random on-link
    # sources) must not push out the neighbours in use: tcp6's flood from a /64 stalled a
    # Linux echo connection for 3 s, its neighbour entry evicted again and again
    c, o = cache()
    c.learn(A, 0, MAC, 0, 0)
    assert c.resolve(A, 0, None, 1) >= 0                  # in use, but long ago
    for k in range(3):
        c.resolve(addr6.pton("fe80::%d" % (k + 10)), 0, "p%d" % k, 10 + k)
    o.take()
    assert c.resolve(B, 0, "q", 20) == -1
    assert state(c, A) == DELAY and state(c, B) == INCOMPLETE
    assert c.find(addr6.pton("fe80::10")) == -1           # the oldest resolution went
    assert o.take() == [("discard", "p0"), ("mcast", bytes(B))]
    assert c.stats.evicted == 1 and c.stats.pending_evicted == 1


def test_solicitations_from_ever_new_senders_never_push_out_a_neighbour_in_use():
    # RFC 4861 7.2.3 makes a STALE entry for a solicitation's sender; a flood of NS from
    # random sources of the prefix (flood_solicitate6) must not evict the neighbours the
    # stack talks to: a sender nobody has sent to yet may only replace another such one
    c, o = cache({"ND_CACHE_SIZE": 3})
    c.learn(A, 0, MAC, 0, 0)
    assert c.resolve(A, 0, None, 5) >= 0                   # in use
    for k in range(20):
        c.learn(addr6.pton("fe80::%x" % (k + 10)), 0, MAC2, 0, 10 + k)
        assert state(c, A) != FREE
    assert c.find(addr6.pton("fe80::1d")) >= 0             # the newest asker has an entry
    assert c.find(addr6.pton("fe80::a")) == -1
    assert c.stats.evicted == 18
    # with every other entry in use, an asker gets no entry, counted; the user keeps its own
    c.resolve(addr6.pton("fe80::1c"), 0, None, 40)
    c.resolve(addr6.pton("fe80::1d"), 0, None, 40)
    assert c.learn(addr6.pton("fe80::99"), 0, MAC2, 0, 41) == -1
    assert c.stats.learn_skipped == 1 and state(c, A) != FREE


def test_permanent_entries_are_never_changed_or_evicted():
    c, o = cache({"ND_CACHE_SIZE": 1})
    c.add_static(A, MAC)
    c.advert(A, 0, MAC2, 0, NA_SOLICITED | NA_OVERRIDE, 0)
    c.learn(A, 0, MAC2, 0, 0)
    assert state(c) == PERMANENT and bytes(c.ll[0]) == MAC
    assert c.resolve(B, 0, "p", 0) == -1 and o.take() == [("discard", "p")]
    assert c.resolve(A, 0, "q", 0) == 0


def test_the_cache_holds_4_byte_addresses_too():
    """Address-length agnostic: the same machine with IPv4 addresses (ARP's)."""
    o = Owner()
    c = NeighbourCache(o, 4, 6, CFG)
    ip = bytes([192, 0, 2, 7])
    assert c.resolve(ip, 0, "p", 0) == -1 and o.take() == [("mcast", ip)]
    c.advert(ip, 0, MAC, 0, NA_SOLICITED, 5)
    assert o.take() == [("tx", "p", MAC)] and c.state[c.find(ip)] == REACHABLE


def test_remove():
    c, o = incomplete()
    assert c.remove(A, 0) and o.take() == [("discard", "p1")] and state(c) == FREE
    assert not c.remove(A, 0)


# ---- Duplicate Address Detection (RFC 4862 5.4) -----------------------------------------------
class DadOwner:
    def __init__(self):
        self.log = []

    def dad_solicit(self, dad, i):
        self.log.append(("ns", bytes(dad.addr[i])))

    def dad_done(self, dad, i, ok):
        self.log.append(("done" if ok else "dup", bytes(dad.addr[i])))


T = addr6.pton("2001:db8::abcd")


def test_dad_success_after_transmits_and_one_retrans_timer():
    o = DadOwner()
    d = Dad(o, 16, {"ND_DAD_TRANSMITS": 2}, rand=lambda: 0x8000)
    d.start(T, 0)
    assert d.is_tentative(T)
    assert d.tick(0) == 500          # a random delay first (half of 1000 ms)
    assert o.log == []
    d.tick(500)
    assert o.log == [("ns", T)]
    assert d.tick(1499) == 1500
    d.tick(1500)
    assert o.log == [("ns", T), ("ns", T)]
    assert d.tick(2499) == 2500 and d.is_tentative(T)
    assert d.tick(2500) == -1
    assert o.log[-1] == ("done", T) and not d.is_tentative(T)
    assert d.stats.dad_succeeded == 1 and d.stats.dad_probes == 2


def test_dad_ns_from_unspecified_for_the_tentative_target_is_a_duplicate():
    o = DadOwner()
    d = Dad(o, 16, None, rand=lambda: 0)
    d.start(T, 0)
    d.tick(0)
    assert d.on_ns(T, 0, True) is True
    assert o.log[-1] == ("dup", T) and not d.is_tentative(T)
    assert d.stats.dad_duplicates == 1
    assert d.tick(5000) == -1 and o.log[-1] == ("dup", T)


def test_dad_ns_from_a_unicast_source_is_ignored_but_not_answered():
    o = DadOwner()
    d = Dad(o, 16, None, rand=lambda: 0)
    d.start(T, 0)
    assert d.on_ns(T, 0, False) is True       # tentative: the caller must not answer
    assert d.is_tentative(T) and ("dup", T) not in o.log


def test_dad_na_for_the_tentative_target_is_a_duplicate():
    o = DadOwner()
    d = Dad(o, 16, None, rand=lambda: 0)
    d.start(T, 0)
    assert d.on_na(T, 0) and o.log[-1] == ("dup", T)
    assert not d.on_na(T, 0)


def test_dad_off_with_zero_transmits():
    o = DadOwner()
    d = Dad(o, 16, {"ND_DAD_TRANSMITS": 0})
    d.start(T, 0)
    assert o.log == [("done", T)] and not d.is_tentative(T)


def test_dad_table_is_bounded():
    o = DadOwner()
    d = Dad(o, 16, {"ND_DAD_SLOTS": 1})
    assert d.start(T, 0) == 0
    assert d.start(addr6.pton("2001:db8::1"), 0) == -1 and d.stats.dad_table_full == 1


def test_a_static_entry_over_an_incomplete_one_sends_the_waiting_packet():
    """Found by tests/property/test_nd_properties.py: the packet stayed in a PERMANENT
    entry for ever."""
    c, o = incomplete()
    c.add_static(A, MAC)
    assert o.take() == [("tx", "p1", MAC)]
    assert c.pending[c.find(A)] is None and state(c) == PERMANENT
