"""SLAAC and MLD under random event sequences (CPython only).

SLAAC: whatever RAs arrive (any prefixes, lifetimes, router lifetimes), no RA leaves an
address less than min(its remaining lifetime, 2 hours) (the 2-hour rule), no address
outlives its deadline, and the events come in order (new before deprecated or removed).

MLD: whatever joins, leaves and queries arrive, after a General Query every group joined
at that moment (and still joined) is reported within the Maximum Response Delay, every
sent packet is a well-formed report, and tick's next deadline always lies ahead."""
from hypothesis import given, settings, strategies as st

from ustack.core import addr6, slaac
from ustack.core.mld import Mld
from ustack.core.slaac import Slaac
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6
from tests.property.budget import examples

PREFIXES = [addr6.pton("2001:db8:%x::" % k) for k in range(1, 4)]
ROUTERS = [addr6.pton("fe80::%x" % k) for k in range(1, 4)]
LIFE = st.sampled_from([0, 1, 60, 3600, 7200, 7201, 86400, icmp6.INFINITE])


class SlaacOwner:
    def __init__(self):
        self.alive = {}

    def slaac_event(self, s, kind, i):
        if kind == slaac.EV_ADDR_NEW:
            assert s.has_addr[i]
            self.alive[i] = True
        elif kind == slaac.EV_ADDR_REMOVED:
            assert self.alive.pop(i) and not s.has_addr[i]
        elif kind == slaac.EV_ADDR_DEPRECATED:
            assert self.alive.get(i) and s.deprecated[i]


RA_EVENT = st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from([0, 60, 1800]),
                     LIFE, LIFE, st.integers(0, 3 * 3600 * 1000))


@settings(max_examples=examples(300))
@given(st.lists(RA_EVENT, max_size=30))
def test_slaac_addresses_live_by_the_two_hour_rule(events):
    o = SlaacOwner()
    s = Slaac(o, bytes(7) + b"\x01", {"SLAAC_PREFIXES": 2})
    now = 0
    two_h = 7200 * 1000
    for p, r, rlife, valid, pref, wait in events:
        b = bytearray(40 + 16 + 32)
        n = icmp6.write_ra(b, 40, 0, 0, rlife, 0, 0)
        n += icmp6.write_prefix_option(b, 40 + n, PREFIXES[p], 64, icmp6.PI_FLAG_AUTO,
                                       valid, pref)
        ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 255, ROUTERS[r], addr6.ALL_NODES)
        i = s.find_prefix(PREFIXES[p], 0)
        before = s.valid_until[i] if i >= 0 and s.has_addr[i] else None
        s.on_ra(b, 0, 40, n, now)
        if before is not None:
            # RFC 4862 5.5.3 e: an RA never leaves less than min(remaining, 2 hours)
            after = s.valid_until[i]
            assert s.has_addr[i]
            if before < 0:
                assert after < 0 or after >= now + two_h
            else:
                assert after < 0 or after >= now + min(before - now, two_h)
        end = now + wait
        while True:
            nxt = s.tick(now)
            assert nxt < 0 or nxt > now
            for k in range(s.nprefix):
                if s.has_addr[k]:
                    assert s.valid_until[k] < 0 or s.valid_until[k] > now
            if nxt < 0 or nxt > end:
                break
            now = nxt
        now = end


# ---- MLD --------------------------------------------------------------------------------
GROUPS = [addr6.pton("ff05::%x" % k) for k in range(1, 6)] + [addr6.ALL_NODES]
QUERIER = addr6.pton("fe80::99")


class MldOwner:
    def __init__(self):
        self.reports = []     # (time, [(record type, group bytes)])
        self.now = 0

    def mld_send(self, m, buf, n):
        p = bytes(buf[:n])
        assert p[6] == ip6.NH_HOPOPTS and p[7] == 1 and n <= 1280
        assert icmp6.checksum_ok(p, 0, 48, n - 48)
        if p[48] == icmp6.MLD_REPORT_V2:
            k = (p[54] << 8) | p[55]
            assert n == 56 + 20 * k
            self.reports.append((self.now, [(p[56 + 20 * j], p[60 + 20 * j:76 + 20 * j])
                                            for j in range(k)]))


MLD_EVENT = st.one_of(
    st.tuples(st.just("join"), st.integers(0, 5)),
    st.tuples(st.just("leave"), st.integers(0, 5)),
    st.tuples(st.just("query"), st.integers(0, 20000)),
    st.tuples(st.just("wait"), st.integers(0, 5000)),
)


@settings(max_examples=examples(300))
@given(st.integers(0, 0xFFFF), st.lists(MLD_EVENT, max_size=40))
def test_mld_answers_every_general_query_in_time(r, events):
    o = MldOwner()
    m = Mld(o, {"MLD_GROUPS": 4}, rand=lambda: r)
    addr6.copy16(m.src, 0, addr6.pton("fe80::1"), 0)
    now = 0
    due = []      # (deadline, asked at, group) to check
    for ev in events:
        kind = ev[0]
        o.now = now
        if kind == "join":
            m.join(GROUPS[ev[1]], now)
        elif kind == "leave":
            m.leave(GROUPS[ev[1]], now)
            g = GROUPS[ev[1]]
            if not m.is_member(g):    # left: earlier questions about it need no answer
                due = [d for d in due if d[2] != g]
        elif kind == "query":
            b = bytearray(68)
            b[40] = icmp6.MLD_QUERY
            b[44] = ev[1] >> 8
            b[45] = ev[1] & 0xFF
            ip6.write_header(b, 0, 0, 0, 28, ip6.NH_ICMPV6, 1, QUERIER, addr6.ALL_NODES)
            assert m.on_query(b, 0, 40, 28, now)
            for k in range(m.size):
                if m.state[k] == 1 and m._reported(k):
                    due.append((now + ev[1], now, bytes(m.group[k])))
        else:
            end = now + ev[1]
            while True:
                o.now = now
                nxt = m.tick(now)
                assert nxt < 0 or nxt > now
                if nxt < 0 or nxt > end:
                    break
                now = nxt
            now = end
    # run out every timer, then check each query was answered in time for the groups that
    # stayed joined
    for _ in range(1000):
        o.now = now
        nxt = m.tick(now)
        if nxt < 0:
            break
        now = nxt
    assert nxt < 0
    for deadline, asked, g in due:
        assert any(asked <= t <= deadline and any(bytes(x[1]) == g for x in recs)
                   for t, recs in o.reports), (asked, deadline, addr6.ntop(g))
