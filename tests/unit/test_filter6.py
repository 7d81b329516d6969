"""The packet filter on IPv6 (core/filter.py, issues 9 and 14): family-6 rules, IPv6 prefixes,
icmpv6 types by name and number, reject as RST or ICMPv6 port unreachable, connection
tracking with 16-byte addresses and related ICMPv6 errors, rate limits, logs, per-rule
counters, and neighbour discovery filtered as ip6tables filters it - but never silently.
Two stacks on the in-memory wire (tests/unit/test_ipv6_two_stacks.py): A at 2001:db8::a,
B at 2001:db8::b with the rules."""
import struct

import pytest

from ustack.core import socket as so
from ustack.core import addr6
from ustack.core import filter as pf
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB, ping6

ECONNREFUSED = 111
EHOSTUNREACH = 113
ETIMEDOUT = 110
ND_OK = ("input accept icmpv6 type nd-neighbor-solicit",
         "input accept icmpv6 type nd-neighbor-advert")


def bench_with(*lines, **config):
    """Two stacks after DAD; B's filter loaded with lines (A has none)."""
    bench = Bench6(config or None)
    bench.logs = []
    bench.b.log = bench.logs.append
    pf.install(bench.b, lines)
    return bench


def capture(stack):
    frames = []
    stack.capture = lambda iface, buf, n, out: frames.append((out, bytes(buf[:n])))
    return frames


def icmp6_sent(frames):
    """(type, code) of each ICMPv6 message the stack sent."""
    return [(f[54], f[55]) for out, f in frames
            if out and f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] < 128]


def connect(bench, stack, addr, port, limit=5000):
    """A non-blocking connect from stack; its outcome: 0 or the errno it ended with."""
    c = stack.socket(so.AF_INET6 if ":" in addr else so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((addr, port))
    errs = []

    def done():
        e = c.getsockopt(so.SOL_SOCKET, so.SO_ERROR)
        if e:
            errs.append(e)
            return True
        try:
            c.getpeername()
            return True
        except OSError:
            return False
    if not bench.until(done, limit):
        c.close()
        return "timeout"
    c.close()
    return errs[0] if errs else 0


def listen(stack, port, family=so.AF_INET6):
    ls = stack.socket(family, so.SOCK_STREAM)
    ls.bind(("", port))
    ls.listen(4)
    ls.setblocking(False)
    return ls


def udp_outcome(bench, stack, addr, port, limit=2000):
    u = stack.socket(so.AF_INET6, so.SOCK_DGRAM)
    u.setblocking(False)
    u.connect((addr, port))
    u.send(b"x")
    got = []

    def done():
        try:
            got.append(u.recv(10))
        except OSError as e:
            if e.args[0] != 11:
                got.append(e.args[0])
        return bool(got)
    r = got[0] if bench.until(done, limit) else "timeout"
    u.close()
    return r


# ---- the parser ------------------------------------------------------------------------------
def test_an_ipv6_prefix_makes_a_family_6_rule():
    r = pf.parse_rule("input drop saddr 2001:db8::/32 tcp dport 22")
    assert r["family"] == 6 and r["saddr"] == (addr6.pton("2001:db8::"), 32)
    assert pf.parse_rule("input drop daddr 2001:db8::1")["daddr"][1] == 128
    assert pf.parse_rule("input family 6 drop udp")["family"] == 6
    assert pf.parse_rule("input ip6 drop udp")["family"] == 6
    assert pf.parse_rule("input drop udp")["family"] == 0     # both families
    r = pf.parse_rule("input accept icmpv6 type nd-neighbor-solicit")
    assert (r["family"], r["proto"], r["type"]) == (6, 58, 135)
    assert pf.parse_rule("input accept icmpv6 type neighbour-advertisement")["type"] == 136
    assert pf.parse_rule("input accept icmpv6 type echo-request")["type"] == 128
    assert pf.parse_rule("input accept icmp type echo-request")["type"] == 8
    assert pf.parse_rule("input accept type 129 icmpv6")["type"] == 129
    assert pf.parse_rule("input accept proto 58 type 1")["family"] == 6


@pytest.mark.parametrize("text,word", [
    ("input family 6 saddr 192.0.2.0/24 drop", "saddr 192.0.2.0/24"),
    ("input saddr 192.0.2.0/24 family 6 drop", "family 6"),
    ("input ip6 daddr 192.0.2.1 drop", "daddr 192.0.2.1"),
    ("input saddr 2001:db8::/32 daddr 192.0.2.1 drop", "daddr 192.0.2.1"),
    ("input family 4 icmpv6 drop", "icmpv6"),
    ("input icmp saddr 2001:db8::/32 drop", "saddr 2001:db8::/32"),
    ("input ip6 icmp drop", "icmp"),
    ("input family 5 drop", "family 5"),
    ("input saddr 2001:db8::1/32 drop", "host bits"),
    ("input saddr 2001:db8::/129 drop", "0..128"),
    ("input saddr 2001:db8::/x drop", "2001:db8::/x"),
    ("input saddr 2001:db8:::1 drop", "2001:db8:::1"),
    ("input saddr 2001:gb8::/32 drop", "2001:gb8::/32"),
    ("input daddr fe80::1%eth0 drop", "fe80::1%eth0"),
    ("input icmpv6 type neighbour-gossip drop", "neighbour-gossip"),
    ("input icmp type nd-neighbor-solicit drop", "nd-neighbor-solicit"),
    ("input icmpv6 type 256 drop", "type 256"),
    ("input udp type 128 drop", "type"),
])
def test_every_ipv6_rule_mistake_is_one_line_naming_the_word(text, word):
    with pytest.raises(ValueError) as e:
        pf.parse_rule(text)
    m = str(e.value)
    assert word in m and "\n" not in m, m


def test_an_ipv4_prefix_in_a_family_6_rule_is_one_clear_error():
    with pytest.raises(ValueError) as e:
        pf.parse_rule("input family 6 saddr 192.0.2.0/24 accept")
    assert str(e.value) == ("saddr 192.0.2.0/24: an IPv4 word in an IPv6 rule "
                            "(family 6 said so)")


# ---- matches and actions ---------------------------------------------------------------------
def test_drop_of_tcp6_times_a_connect_out_and_leaves_ipv4_alone():
    bench = bench_with("input drop tcp dport 7 family 6")
    listen(bench.b, 7)
    assert connect(bench, bench.a, GB, 7, 3000) == "timeout"
    assert connect(bench, bench.a, "192.0.2.11", 7) == 0      # the rule is IPv6's only
    c = bench.b.counters()
    assert c["filter.drop_rule"] >= 1 and c["ip6.rx_filtered"] == c["filter.drop_rule"]
    assert bench.b.packet_filter.rs.pkts[0] == c["filter.drop_rule"]
    assert c.get("tcp.rx_listen_segments", 0) <= 1             # only the IPv4 SYN


def test_a_rule_without_family_matches_both():
    bench = bench_with("input drop tcp dport 7")
    listen(bench.b, 7)   # IPv4 and IPv6 (IPV6_V6ONLY off, as Linux)
    assert connect(bench, bench.a, GB, 7, 2000) == "timeout"
    assert connect(bench, bench.a, "192.0.2.11", 7, 2000) == "timeout"


def test_reject_tcp6_is_a_rst_and_refuses_the_connect():
    bench = bench_with("input reject tcp dport 8")
    frames = capture(bench.b)
    listen(bench.b, 8)
    assert connect(bench, bench.a, GB, 8) == ECONNREFUSED
    rst = [f for out, f in frames if out and f[12:14] == b"\x86\xdd" and f[20] == 6]
    assert len(rst) == 1 and rst[0][14 + 40 + 13] == 0x14          # RST|ACK
    assert rst[0][14 + 24:14 + 40] == addr6.pton(GA)
    assert bench.b.counters()["filter.reject_tcp"] == 1


def test_reject_udp6_is_icmpv6_port_unreachable_as_ip6tables_sends_by_default():
    bench = bench_with("input reject udp dport 9", "input reject udp dport 10 with admin")
    frames = capture(bench.b)
    srv = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.bind(("", 9))
    assert udp_outcome(bench, bench.a, GB, 9) == ECONNREFUSED
    assert udp_outcome(bench, bench.a, GB, 10) != "timeout"
    assert icmp6_sent(frames) == [(1, 4), (1, 1)]   # RFC 4443 3.1: port, admin prohibited
    c = bench.b.counters()
    assert c["filter.reject_icmp"] == 2 and c["icmp6.tx_errors"] == 2
    srv.close()


def test_output_reject_of_our_own_connect_refuses_it_without_a_syn_on_the_wire():
    bench = bench_with("output reject tcp dport 9 family 6", "output reject udp dport 9")
    frames = capture(bench.b)
    assert connect(bench, bench.b, GA, 9) == ECONNREFUSED
    assert udp_outcome(bench, bench.b, GA, 9) == ECONNREFUSED
    assert not [f for out, f in frames if out and f[12:14] == b"\x86\xdd" and f[20] in (6, 17)]
    c = bench.b.counters()
    assert c["filter.reject_tcp"] == 1 and c["filter.reject_icmp"] == 1
    assert c["ip6.tx_filtered"] == 2


def test_icmpv6_echo_by_type_number_and_the_rule_counters():
    bench = bench_with("input drop icmpv6 type 128")
    assert not ping6(bench, bench.a, GB)
    rs = bench.b.packet_filter.rs
    assert rs.pkts == [1] and rs.bytes == [40 + 16]
    assert ping6(bench, bench.b, GA)                   # B's own ping: a reply, not 128


def test_ipv6_prefixes_match_source_and_destination():
    bench = bench_with("input drop icmpv6 saddr 2001:db8::/120 daddr 2001:db8::b")
    assert not ping6(bench, bench.a, GB)
    bench2 = bench_with("input drop icmpv6 saddr 2001:db8:1::/48")
    assert ping6(bench2, bench2.a, GB)
    assert bench2.b.packet_filter.rs.pkts == [0]


def test_tcp_flags_and_ports_on_ipv6():
    bench = bench_with("input drop tcp flags syn/syn,ack dport 7000-7010 family 6")
    listen(bench.b, 7005)
    listen(bench.b, 7011)
    assert connect(bench, bench.a, GB, 7005, 2000) == "timeout"
    assert connect(bench, bench.a, GB, 7011) == 0


def test_a_rate_limit_and_log_lines_for_ipv6():
    bench = bench_with("input icmpv6 type echo-request limit 2/second burst 2 log accept",
                       "input drop icmpv6 type echo-request")
    assert ping6(bench, bench.a, GB, seq=0)        # resolved both ways; 1 token spent
    bench.run(2000)                                # the bucket full again: 2
    before = bench.a.icmp6.stats.rx_echo_reply
    for k in range(6):                             # 6 at once: the burst of 2 answered
        echo_request(bench.a, GB, k + 1)
    bench.run(100)
    assert bench.a.icmp6.stats.rx_echo_reply - before == 2
    c = bench.b.counters()
    assert c["filter.drop_limit"] == 4
    lines = [x for x in bench.logs if x.startswith("filter: input rule 0")]
    assert lines and "src=2001:db8::a dst=2001:db8::b" in lines[0] and "proto=58" in lines[0]


def echo_request(stack, dst, seq, ident=7):
    pb = stack.ipv6.alloc_tx()
    b = pb.buf
    o = pb.off
    b[o:o + 16] = bytes([128, 0, 0, 0, 0, ident, 0, seq]) + b"ABCDEFGH"
    pb.n = 16
    assert stack.ipv6.output(pb, 58, None, addr6.pton(dst), 2) == 0


# ---- connection tracking ---------------------------------------------------------------------
STATEFUL = ("policy input drop", "input accept ct established,related") + ND_OK


def test_established_only_input_on_ipv6_lets_replies_in_and_keeps_new_flows_out():
    bench = bench_with(*STATEFUL)
    listen(bench.a, 7007)
    listen(bench.b, 8000)
    assert connect(bench, bench.b, GA, 7007) == 0            # B's own: the SYN-ACK gets in
    assert connect(bench, bench.a, GB, 8000, 3000) == "timeout"   # new: kept out
    ct = bench.b.packet_filter.conntrack()
    mine = [e for e in ct if e["dport"] == 7007]
    assert mine and mine[0]["family"] == 6 and mine[0]["src"] == GB and mine[0]["dst"] == GA
    assert ping6(bench, bench.b, GA)                          # echo reply: established
    assert not ping6(bench, bench.a, GB)                      # echo request: new
    c = bench.b.counters()
    assert c["filter.drop_policy"] >= 2 and c.get("filter.drop_nd", 0) == 0


def test_an_icmpv6_error_quoting_a_tracked_flow_is_related():
    bench = bench_with(*STATEFUL)
    assert udp_outcome(bench, bench.b, GA, 9) == ECONNREFUSED   # A: port unreachable
    c = bench.b.counters()
    assert c["filter.ct_related"] == 1 and c["filter.ct_new"] == 1


def test_an_unasked_echo_reply_is_invalid():
    bench = bench_with("input drop ct invalid")
    ping6(bench, bench.b, GA)
    before = bench.b.counters().get("filter.ct_invalid", 0)
    pb = bench.a.ipv6.alloc_tx()
    b = pb.buf
    o = pb.off
    b[o:o + 8] = bytes([129, 0, 0, 0, 0, 99, 0, 1])
    pb.n = 8
    bench.a.ipv6.output(pb, 58, None, addr6.pton(GB), 2)
    bench.run(10)
    assert bench.b.counters()["filter.ct_invalid"] == before + 1


# ---- neighbour discovery ---------------------------------------------------------------------
def test_policy_input_drop_without_nd_rules_darkens_ipv6_but_says_so():
    """As ip6tables: ND is filtered like anything else, so `policy input drop` with only an
    established rule keeps out the Neighbour Advertisements B's own connect needs - B cannot
    resolve A and its connect fails (EHOSTUNREACH after the solicitations). Not silently:
    filter.drop_nd counts them and one log line names the rules to add."""
    bench = bench_with("policy input drop", "input accept ct established,related")
    listen(bench.a, 7007)
    assert connect(bench, bench.b, GA, 7007, 6000) == EHOSTUNREACH
    c = bench.b.counters()
    assert c["filter.drop_nd"] >= 1
    warn = [x for x in bench.logs if "nd-neighbor-solicit" in x]
    assert len(warn) == 1 and "input" in warn[0], bench.logs
    # the rules it names mend it
    bench.b.packet_filter.add(ND_OK[0])
    bench.b.packet_filter.add(ND_OK[1])
    assert connect(bench, bench.b, GA, 7007) == 0
    assert ping6(bench, bench.b, GA)


def test_output_drop_of_nd_is_counted_too():
    bench = bench_with("output drop icmpv6 type nd-neighbor-solicit")
    assert not ping6(bench, bench.b, GA)
    assert bench.b.counters()["filter.drop_nd"] >= 1
    assert [x for x in bench.logs if "output" in x and "type 135" in x]


# ---- the hooks fed directly (forwarding: core/ipv6.py forwards in another change) ---------------
def _v6_udp(sport, dport, frag=None):
    src = addr6.pton("2001:db8:1::1")
    dst = addr6.pton("2001:db8:2::1")
    udp = struct.pack("!HHHH", sport, dport, 12, 0) + b"abcd"
    nh = 17
    ext = b""
    if frag is not None:
        ext = struct.pack("!BBHI", 17, 0, frag, 7)
        nh = 44
    body = ext + udp
    return bytearray(struct.pack("!IHBB", 0x60000000, len(body), nh, 64) + src + dst + body)


def test_forward_rules_see_ipv6_ports_and_a_later_fragment_has_none():
    bench = bench_with("forward drop udp dport 53 daddr 2001:db8:2::/48",
                       "forward drop ct invalid")
    f = bench.b.packet_filter
    p = _v6_udp(4000, 53)
    assert not f.hook_forward(bench.ib, bench.ib, p, 0, len(p))
    p = _v6_udp(4000, 54)
    assert f.hook_forward(bench.ib, bench.ib, p, 0, len(p))
    p = _v6_udp(4000, 53, frag=8)          # offset 8, no ports: ct invalid
    assert not f.hook_forward(bench.ib, bench.ib, p, 0, len(p))
    assert f.rs.pkts == [1, 1]
    ct = f.conntrack()
    assert [(e["src"], e["dport"]) for e in ct] == [("2001:db8:1::1", 54)]


def test_the_input_interface_is_matched_on_ipv6_too():
    bench = bench_with("input iif eth9 drop icmpv6 type echo-request")
    assert ping6(bench, bench.a, GB)
    bench = bench_with("input iif b0 drop icmpv6 type echo-request")
    assert not ping6(bench, bench.a, GB)
    assert bench.b.packet_filter.rs.pkts == [1]
