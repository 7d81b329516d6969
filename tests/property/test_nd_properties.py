"""The neighbour cache (core/nd.py) under random event sequences (CPython only): whatever
arrives - packets to send, solicitations, advertisements with any flags and addresses,
confirmations, time passing, removals, static entries - every packet handed to resolve()
ends exactly once (sent at once, transmitted when resolved, discarded, or reported
unreachable), never more than one waits per entry, only INCOMPLETE entries hold one, and
tick's next deadline always lies ahead."""
from hypothesis import given, settings, strategies as st

from ustack.core.nd import NeighbourCache, FREE, INCOMPLETE
from tests.property.budget import examples

ADDRS = [bytes(15) + bytes([k]) for k in range(6)]
MACS = [bytes(5) + bytes([k]) for k in range(3)]


class Owner:
    def __init__(self):
        self.ended = []

    def nd_solicit(self, cache, i, unicast):
        assert cache.state[i] != FREE

    def nd_transmit(self, cache, i, pkt):
        assert cache.state[i] not in (FREE, INCOMPLETE)
        self.ended.append(pkt)

    def nd_unreachable(self, cache, i, pkt):
        if pkt is not None:
            self.ended.append(pkt)

    def nd_discard(self, cache, pkt):
        self.ended.append(pkt)


EVENT = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 5)),
    st.tuples(st.just("learn"), st.integers(0, 5), st.integers(0, 2), st.integers(-1, 1)),
    st.tuples(st.just("advert"), st.integers(0, 5), st.integers(-1, 2), st.integers(0, 7)),
    st.tuples(st.just("confirm"), st.integers(0, 5)),
    st.tuples(st.just("wait"), st.integers(0, 40000)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("static"), st.integers(0, 5), st.integers(0, 2)),
)


@settings(max_examples=examples(400))
@given(st.integers(1, 4), st.lists(EVENT, max_size=80))
def test_every_packet_ends_exactly_once_and_the_table_stays_consistent(size, events):
    o = Owner()
    c = NeighbourCache(o, 16, 6, {"ND_CACHE_SIZE": size})
    now = 0
    sent = []
    made = 0
    for ev in events:
        kind = ev[0]
        if kind == "wait":
            now += ev[1]
        elif kind == "send":
            made += 1
            pkt = "p%d" % made
            if c.resolve(ADDRS[ev[1]], 0, pkt, now) >= 0:
                sent.append(pkt)
        elif kind == "learn":
            c.learn(ADDRS[ev[1]], 0, MACS[ev[2]], 0, now, ev[3])
        elif kind == "advert":
            ll = None if ev[2] < 0 else MACS[ev[2]]
            c.advert(ADDRS[ev[1]], 0, ll, 0, ev[3] << 5, now)
        elif kind == "confirm":
            c.confirm(ADDRS[ev[1]], 0, now)
        elif kind == "remove":
            c.remove(ADDRS[ev[1]], 0)
        else:
            c.add_static(ADDRS[ev[1]], MACS[ev[2]])
        deadline = c.tick(now)
        assert deadline < 0 or deadline > now
        for i in range(size):
            assert c.pending[i] is None or c.state[i] == INCOMPLETE
        live = [c.addr[i] for i in range(size) if c.state[i] != FREE]
        assert len(live) == len(set(bytes(a) for a in live))
    # let every timer run out: nothing may stay waiting
    for _ in range(10):
        now += 10 ** 6
        c.tick(now)
    held = [c.pending[i] for i in range(size) if c.pending[i] is not None]
    assert held == []
    ends = sent + o.ended
    assert sorted(ends) == sorted("p%d" % k for k in range(1, made + 1))
