"""MLDv2 host state (core/mld.py, RFC 3810): unsolicited reports on join and leave, answers
to General and Group-Specific Queries after a random delay, MLDv1 compatibility, on a
virtual clock (plain integers). Each report is checked as the packet that would leave:
IPv6 to ff02::16 with hop limit 1, a Router Alert, a valid checksum, its records."""
from ustack.core import addr6
from ustack.core.mld import Mld
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6

LL = addr6.pton("fe80::ff:fe00:1")
G1 = addr6.pton("ff02::1:ff00:1")
G2 = addr6.pton("ff05::1234")
QUERIER = addr6.pton("fe80::99")


class Owner:
    def __init__(self):
        self.sent = []

    def mld_send(self, mld, buf, n):
        self.sent.append(bytes(buf[:n]))

    def take(self):
        out = [parse(p) for p in self.sent]
        self.sent = []
        return out


def parse(p):
    """(type, destination, [(record type, group)]) of one sent packet, checking its frame."""
    assert p[6] == ip6.NH_HOPOPTS and p[7] == 1
    assert p[40:48] == bytes([58, 0, 5, 2, 0, 0, 1, 0])
    n = len(p) - 48
    assert ip6.payload_len(p, 0) == n + 8
    assert icmp6.checksum_ok(p, 0, 48, n)
    dst = addr6.ntop(p, 24)
    t = p[48]
    if t != icmp6.MLD_REPORT_V2:
        return (t, dst, addr6.ntop(p, 48 + 8))
    nrec = (p[54] << 8) | p[55]
    recs = []
    for k in range(nrec):
        r = 56 + 20 * k
        recs.append((p[r], addr6.ntop(p, r + 4)))
    return (t, dst, recs)


def mld(rand=0x8000, cfg=None):
    o = Owner()
    m = Mld(o, cfg, rand=lambda: rand)
    addr6.copy16(m.src, 0, LL, 0)
    return m, o


def query(group=addr6.ANY, max_resp=10000, v1=False, src=QUERIER, hlim=1):
    n = 24 if v1 else 28
    b = bytearray(40 + n)
    b[40] = icmp6.MLD_QUERY
    b[44] = max_resp >> 8
    b[45] = max_resp & 0xFF
    b[48:64] = group
    ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, hlim, src, addr6.ALL_NODES)
    icmp6.fill_checksum(b, 0, 40, n)
    return b, n


def on_query(m, now, **kw):
    b, n = query(**kw)
    return m.on_query(b, 0, 40, n, now)


CHG_EX = icmp6.CHANGE_TO_EXCLUDE
IS_EX = icmp6.MODE_IS_EXCLUDE


def test_join_sends_a_report_at_once_and_robustness_minus_one_more():
    m, o = mld()
    m.join(G1, 0)
    assert o.take() == [(143, "ff02::16", [(CHG_EX, "ff02::1:ff00:1")])]
    assert m.tick(0) == 500                 # within the 1 s Unsolicited Report Interval
    m.tick(500)
    assert o.take() == [(143, "ff02::16", [(CHG_EX, "ff02::1:ff00:1")])]
    assert m.tick(10 ** 6) == -1 and o.take() == []


def test_solicited_node_join_from_an_address():
    m, o = mld()
    m.join_solicited_node(addr6.pton("2001:db8::12:3456"), 0)
    assert o.take()[0][2] == [(CHG_EX, "ff02::1:ff12:3456")]
    assert m.is_member(addr6.pton("ff02::1:ff12:3456"))


def test_all_nodes_and_interface_local_groups_are_never_reported():
    m, o = mld()
    m.join(addr6.ALL_NODES, 0)
    m.join(addr6.pton("ff01::5"), 0)
    on_query(m, 0)
    m.tick(10 ** 6)
    assert o.take() == [] and m.is_member(addr6.ALL_NODES)


def test_joining_twice_needs_leaving_twice_and_leaving_reports_change_to_include():
    m, o = mld()
    m.join(G2, 0)
    m.join(G2, 0)
    m.tick(5000)
    o.take()
    m.leave(G2, 6000)
    assert o.take() == [] and m.is_member(G2)
    m.leave(G2, 7000)
    assert o.take() == [(143, "ff02::16", [(icmp6.CHANGE_TO_INCLUDE, "ff05::1234")])]
    assert not m.is_member(G2)
    m.tick(7500)
    assert o.take() == [(143, "ff02::16", [(icmp6.CHANGE_TO_INCLUDE, "ff05::1234")])]
    assert m.tick(10 ** 6) == -1


def test_general_query_answered_after_a_random_delay_with_every_group():
    m, o = mld(rand=0x4000)                 # a quarter of the maximum delay
    m.join(G1, 0)
    m.join(G2, 0)
    m.tick(2000)
    o.take()
    assert on_query(m, 10000, max_resp=10000)
    assert m.tick(12499) == 12500 and o.take() == []
    m.tick(12500)
    assert o.take() == [(143, "ff02::16", [(IS_EX, "ff02::1:ff00:1"), (IS_EX, "ff05::1234")])]


def test_an_earlier_pending_general_answer_is_kept():
    m, o = mld(rand=0x8000)
    m.join(G1, 0)
    m.tick(2000)
    on_query(m, 10000, max_resp=2000)       # due 11000
    on_query(m, 10500, max_resp=10000)      # would be 15500: the earlier one stands
    assert m.tick(10600) == 11000


def test_group_specific_query_answered_for_that_group_only():
    m, o = mld()
    m.join(G1, 0)
    m.join(G2, 0)
    m.tick(2000)
    o.take()
    on_query(m, 10000, group=G2, max_resp=1000)
    m.tick(10500)
    assert o.take() == [(143, "ff02::16", [(IS_EX, "ff05::1234")])]


def test_query_for_a_group_we_did_not_join_is_ignored():
    m, o = mld()
    m.join(G1, 0)
    m.tick(2000)
    o.take()
    on_query(m, 10000, group=G2)
    m.tick(30000)
    assert o.take() == [] and m.stats.rx_query_not_member == 1


def test_invalid_queries_are_dropped_and_counted():
    m, o = mld()
    b, n = query()
    assert not m.on_query(b, 0, 40, 26, 0) and m.stats.rx_query_bad_length == 1
    assert not on_query(m, 0, src=addr6.pton("2001:db8::1"))
    assert m.stats.rx_query_bad_source == 1
    assert not on_query(m, 0, hlim=2) and m.stats.rx_query_bad_hop_limit == 1
    assert m.stats.rx_queries == 0


def test_mldv1_query_switches_to_version_1_reports():
    """RFC 3810 8.2.1: a v1 querier present: answer with v1 Reports to the group."""
    m, o = mld(rand=0)
    m.join(G2, 0)
    m.tick(2000)
    o.take()
    on_query(m, 10000, v1=True)
    m.tick(10000)
    assert o.take() == [(icmp6.MLD_REPORT_V1, "ff05::1234", "ff05::1234")]
    m.leave(G2, 11000)
    assert o.take() == [(icmp6.MLD_DONE, "ff02::2", "ff05::1234")]
    m.join(G1, 300000)                      # the v1 querier timed out: v2 again
    assert o.take()[0][0] == icmp6.MLD_REPORT_V2


def test_report_source_is_unspecified_before_a_link_local_address():
    o = Owner()
    m = Mld(o, None)
    m.join(G1, 0)
    assert o.sent[0][8:24] == addr6.ANY
    assert icmp6.checksum_ok(o.sent[0], 0, 48, len(o.sent[0]) - 48)


def test_group_table_is_bounded():
    m, o = mld(cfg={"MLD_GROUPS": 1})
    assert m.join(G1, 0) == 0
    assert m.join(G2, 0) == -1 and m.stats.groups_full == 1


def test_many_groups_split_into_reports_that_fit_the_minimum_mtu():
    m, o = mld(cfg={"MLD_GROUPS": 70})
    for k in range(70):
        m.join(addr6.pton("ff05::%x" % (k + 1)), 0)
    m.tick(5000)
    o.sent = []
    on_query(m, 10000, max_resp=0)
    m.tick(10000)
    assert all(len(p) <= 1280 for p in o.sent)
    got = o.take()
    assert len(got) == 2 and sum(len(r[2]) for r in got) == 70
