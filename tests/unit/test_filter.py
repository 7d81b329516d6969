"""The packet filter (core/filter.py): each match and action, conntrack states, the rate limit
on the virtual clock, the full table. A fed stack at 192.0.2.2, the host at 192.0.2.1."""
import struct

import pytest

from ustack.core import socket as so
from ustack.core.compat import ECONNREFUSED
from ustack.core import filter as pf
from ustack.core.stack import Stack
from tests import frames as F
from tests.feed import Fed, Router, FAR_IP

OTHER_IP = bytes([192, 0, 2, 9])   # another host on the link (in the stack's ARP cache)
OTHER_MAC = bytes.fromhex("020000000009")


def fed(*lines, **config):
    config["FILTER"] = tuple(lines)
    f = Fed(config)
    f.iface.arp.add_static(OTHER_IP, OTHER_MAC)
    return f


def from_host(proto, payload, src=F.HOST_IP):
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(src, F.STACK_IP, proto, payload))


def tcp_in(dport, flags, sport=40000, seq=1000, ack=0, src=F.HOST_IP):
    return from_host(6, F.tcp(src, F.STACK_IP, sport, dport, seq, ack, flags), src)


def udp_in(dport, sport=40000, data=b"x", src=F.HOST_IP):
    return from_host(17, F.udp(src, F.STACK_IP, sport, dport, data), src)


def ping_in(ident=7, t=8):
    return from_host(1, F.icmp_echo(ident, 1, b"abcd", t))


def tcp_flags(frame):
    return frame[14 + 20 + 13]


def icmp_of(frame):
    return frame[34], frame[35]


def close_all(f):
    for s in list(f.stack.sockets):
        s.close()


def udp_sock(f, port):
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.setblocking(False)
    s.bind(("", port))
    return s


# ---- cost and wiring ----------------------------------------------------------------------
def test_without_rules_the_stack_hooks_stay_none():
    st = Stack()
    assert st.filter_in is None and st.filter is None and st.filter_out is None
    f = fed("input drop tcp dport 23")
    assert f.stack.filter_in is not None and f.stack.filter_out is not None
    f.stack.packet_filter.flush()  # no rules, accept policies: back to one attribute test
    assert f.stack.filter_in is None and f.stack.filter is None and f.stack.filter_out is None


def test_a_rule_set_from_board_config_with_a_mistake_names_the_line_and_word():
    with pytest.raises(ValueError) as e:
        Stack({"FILTER": ("input drop tcp dport 23", "input drop tcp dport telnet")})
    assert "line 2" in str(e.value) and "dport telnet" in str(e.value)


def test_more_rules_than_FILTER_RULES_are_refused():
    with pytest.raises(ValueError) as e:
        Stack({"FILTER_RULES": 1, "FILTER": ("input drop udp", "input drop tcp")})
    assert "FILTER_RULES" in str(e.value)


# ---- matches -------------------------------------------------------------------------------
def test_drop_by_destination_port_is_silent_and_counted_per_rule():
    f = fed("input drop tcp dport 23")
    assert f.feed(tcp_in(23, 0x02)) == []
    out = f.feed(tcp_in(24, 0x02))                      # not matched: a closed port's RST
    assert len(out) == 1 and tcp_flags(out[0]) & 0x04
    rs = f.stack.packet_filter.rs
    assert rs.pkts == [1] and rs.bytes == [40]
    c = f.counters()
    assert c["filter.drop_rule"] == 1 and c["ip.rx_filtered"] == 1
    assert f.stack.pool.full()


def test_port_ranges_and_source_ports():
    f = fed("input drop udp dport 1000-2000", "input drop udp sport 53")
    s = udp_sock(f, 999)
    t = udp_sock(f, 3000)
    f.feed(udp_in(999))
    f.feed(udp_in(1000))
    f.feed(udp_in(2000))
    f.feed(udp_in(3000, sport=53))
    f.feed(udp_in(3000, sport=54))
    assert f.stack.packet_filter.rs.pkts == [2, 1]
    assert s.recv(10) == b"x" and t.recv(10) == b"x"
    close_all(f)


def test_source_and_destination_prefixes():
    f = fed("input drop icmp saddr 192.0.2.0/30", "input drop icmp daddr 192.0.2.3")
    assert f.feed(ping_in()) == []                       # 192.0.2.1 is in 192.0.2.0/30
    f2 = fed("input drop icmp saddr 192.0.2.4/30", "input drop icmp daddr 192.0.2.3")
    assert len(f2.feed(ping_in())) == 1                  # neither matches: the echo reply
    assert f2.stack.packet_filter.rs.pkts == [0, 0]


def test_input_interface_is_matched_by_name():
    f = fed("input iif eth1 drop icmp")
    assert len(f.feed(ping_in())) == 1
    f = fed("input iif eth0 drop icmp")
    assert f.feed(ping_in()) == []


def test_tcp_flags_value_under_a_mask_tells_a_syn_from_a_syn_ack():
    f = fed("input tcp flags syn/syn,ack drop")
    assert f.feed(tcp_in(80, 0x02)) == []                # SYN: dropped
    out = f.feed(tcp_in(80, 0x12))                       # SYN-ACK: on to TCP (a RST)
    assert len(out) == 1 and tcp_flags(out[0]) & 0x04
    out = f.feed(tcp_in(80, 0x10))                       # ACK: on to TCP
    assert len(out) == 1


def test_icmp_type_by_name_and_number():
    f = fed("input icmp type echo-request drop")
    assert f.feed(ping_in()) == []
    f = fed("input icmp type 0 drop")                    # echo-reply: not this request
    assert len(f.feed(ping_in())) == 1


def test_protocol_by_number():
    f = fed("input proto 17 drop")
    s = udp_sock(f, 7)
    f.feed(udp_in(7))
    assert f.stack.packet_filter.rs.pkts == [1]
    assert len(f.feed(ping_in())) == 1
    close_all(f)


def test_first_matching_rule_decides_and_log_only_rules_go_on():
    lines = []
    f = fed("input log tcp dport 23", "input accept tcp dport 23", "input drop tcp")
    f.stack.log = lines.append
    out = f.feed(tcp_in(23, 0x02))                       # logged, accepted: closed port's RST
    assert len(out) == 1
    assert f.feed(tcp_in(24, 0x02)) == []
    assert f.stack.packet_filter.rs.pkts == [1, 1, 1]
    assert len(lines) == 1 and "input rule 0 log" in lines[0] and "dport=23" in lines[0]


def test_log_lines_are_rate_limited():
    lines = []
    f = fed("input log drop udp", FILTER_LOG_BURST=2, FILTER_LOG_RATE_MS=1000)
    f.stack.log = lines.append
    for k in range(5):
        f.feed(udp_in(9))
    assert len(lines) == 2 and "drop" in lines[0]
    c = f.counters()
    assert c["filter.logged"] == 2 and c["filter.log_suppressed"] == 3
    f.advance(1000)
    f.feed(udp_in(9))
    assert len(lines) == 3


# ---- reject ---------------------------------------------------------------------------------
def test_reject_tcp_answers_with_rst_ack_as_a_closed_port_does():
    f = fed("input reject tcp dport 80")
    out = f.feed(tcp_in(80, 0x02, seq=5000))
    assert len(out) == 1 and tcp_flags(out[0]) == 0x14
    assert struct.unpack("!I", out[0][42:46])[0] == 5001  # ACK covers the SYN
    out = f.feed(tcp_in(80, 0x10, seq=5001, ack=777))
    assert tcp_flags(out[0]) == 0x04 and struct.unpack("!I", out[0][38:42])[0] == 777
    assert f.feed(tcp_in(80, 0x04)) == []                 # a RST is never answered
    assert f.counters()["filter.reject_tcp"] == 2


def test_reject_udp_sends_port_unreachable_or_admin_prohibited():
    f = fed("input reject udp dport 9", "input reject udp dport 10 with admin")
    out = f.feed(udp_in(9))
    assert len(out) == 1 and icmp_of(out[0]) == (3, 3)
    out = f.feed(udp_in(10))
    assert icmp_of(out[0]) == (3, 13)
    assert out[0][14 + 20 + 8 + 12:14 + 20 + 8 + 16] == F.HOST_IP  # it quotes the datagram
    assert f.counters()["filter.reject_icmp"] == 2
    assert f.stack.pool.full()


def test_output_reject_of_a_connect_refuses_it():
    f = fed("output reject tcp dport 9")
    s = f.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("192.0.2.1", 9))
    except OSError:
        pass
    f.advance(1)
    f.advance(1)
    assert f.drv.tx == [] or all(x[23] != 6 for x in f.drv.tx)  # no SYN on the wire
    assert s.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == ECONNREFUSED
    assert f.counters()["filter.reject_tcp"] == 1
    close_all(f)


def test_output_drop_keeps_a_datagram_off_the_wire():
    f = fed("output drop udp dport 9")
    s = udp_sock(f, 5000)
    s.sendto(b"x", ("192.0.2.1", 9))
    s.sendto(b"y", ("192.0.2.1", 10))
    f.advance(1)
    assert len(f.drv.tx) == 1 and f.drv.tx[0][36:38] == b"\x00\x0a"
    c = f.counters()
    assert c["ip.tx_filtered"] == 1 and c["filter.drop_rule"] == 1
    close_all(f)


# ---- forwarding hooks ----------------------------------------------------------------------
def test_forward_rules_see_both_interfaces_and_postrouting_runs_after():
    r = Router(FILTER=("forward iif e0 oif e1 drop udp dport 9", "postrouting oif e1 drop udp "
                       "dport 10", "forward reject udp dport 11"))
    ip = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 4000, 9, b"x"))
    assert r.feed(ip) == ([], [])
    ip = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 4000, 10, b"x"))
    assert r.feed(ip) == ([], [])
    ip = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 4000, 11, b"x"))
    back, fwd = r.feed(ip)
    assert fwd == [] and len(back) == 1 and icmp_of(back[0]) == (3, 3)
    ip = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 4000, 12, b"x"))
    assert len(r.feed(ip)[1]) == 1
    c = r.counters()
    assert c["ip.fwd_filtered"] == 3 and c["filter.drop_rule"] == 2
    assert r.stack.pool.full()


# ---- policies and connection tracking -------------------------------------------------------
STATEFUL = ("policy input drop", "input accept ct established,related")


def test_established_only_input_lets_udp_replies_in_and_keeps_new_flows_out():
    f = fed(*STATEFUL)
    s = udp_sock(f, 5000)
    s.sendto(b"q", ("192.0.2.1", 53))
    f.advance(1)
    f.feed(udp_in(5000, sport=53, data=b"answer"))       # the reply: established
    assert s.recv(10) == b"answer"
    f.feed(udp_in(5000, sport=54, data=b"stray"))         # another port: new, dropped
    with pytest.raises(OSError):
        s.recv(10)
    c = f.counters()
    assert c["filter.ct_new"] == 1 and c["filter.drop_policy"] == 1
    close_all(f)


def test_established_only_input_lets_a_connects_syn_ack_in_and_keeps_new_syns_out():
    f = fed(*STATEFUL)
    ls = f.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(1)
    assert f.feed(tcp_in(80, 0x02)) == []                # a new connection: dropped
    s = f.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("192.0.2.1", 7))
    except OSError:
        pass
    f.advance(1)
    syn = f.drv.tx[-1]
    f.drv.tx.clear()
    sport = struct.unpack("!H", syn[34:36])[0]
    iss = struct.unpack("!I", syn[38:42])[0]
    out = f.feed(tcp_in(sport, 0x12, sport=7, seq=9000, ack=iss + 1))
    assert len(out) == 1 and tcp_flags(out[0]) == 0x10  # our ACK: the SYN-ACK got in
    ct = f.stack.packet_filter.conntrack()
    assert len(ct) == 1 and ct[0]["state"] == "established" and ct[0]["dport"] == 7
    close_all(f)


def test_an_icmp_error_quoting_a_tracked_flow_is_related():
    f = fed(*STATEFUL)
    s = udp_sock(f, 5000)
    s.connect(("192.0.2.1", 53))
    s.send(b"q")
    f.advance(1)
    sent = f.drv.tx[-1][14:]
    err = from_host(1, _icmp_error(3, 3, sent[:28]))
    f.feed(err)
    c = f.counters()
    assert c["filter.ct_related"] == 1
    assert s.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == ECONNREFUSED
    stray = F.ipv4(F.STACK_IP, F.HOST_IP, 17, F.udp(F.STACK_IP, F.HOST_IP, 5001, 53, b"q"))
    f.feed(from_host(1, _icmp_error(3, 3, stray[:28])))   # quotes no tracked flow: invalid
    assert f.counters()["filter.ct_invalid"] == 1 and f.counters()["filter.drop_policy"] == 1
    close_all(f)


def _icmp_error(t, code, quote):
    h = struct.pack("!BBHI", t, code, 0, 0) + quote
    from tests.unit_ref import csum
    c = ~csum(h) & 0xFFFF
    return h[:2] + struct.pack("!H", c) + h[4:]


def test_echo_replies_to_our_pings_are_established_and_unasked_ones_invalid():
    f = fed(*STATEFUL)
    assert f.feed(ping_in(ident=3, t=0)) == []           # a reply nobody asked for
    assert f.counters()["filter.ct_invalid"] == 1
    assert f.feed(ping_in()) == []                       # a request: new, dropped
    assert f.counters()["filter.drop_policy"] == 2


def test_an_unanswered_tcp_segment_without_syn_is_invalid():
    f = fed("input drop ct invalid")
    assert f.feed(tcp_in(80, 0x10)) == []
    out = f.feed(tcp_in(80, 0x02))                      # a SYN: new, accepted (RST: closed)
    assert len(out) == 1
    assert f.stack.packet_filter.rs.pkts == [1]


def test_a_udp_flow_expires_after_FILTER_CT_UDP_MS():
    f = fed(*STATEFUL, FILTER_CT_UDP_MS=5000)
    s = udp_sock(f, 5000)
    s.sendto(b"q", ("192.0.2.1", 53))
    f.advance(1)
    f.advance(4000)
    f.feed(udp_in(5000, sport=53, data=b"in time"))
    assert s.recv(10) == b"in time"                      # the reply refreshed it: 5 s more
    f.advance(5001)
    f.feed(udp_in(5000, sport=53, data=b"late"))
    with pytest.raises(OSError):
        s.recv(10)
    assert f.counters()["filter.ct_expired"] == 1
    close_all(f)


def test_a_tcp_flow_that_never_completes_its_handshake_expires_after_the_syn_timeout():
    f = fed("input accept ct new", "output drop tcp flags rst", FILTER_CT_TCP_SYN_MS=2000)
    f.feed(tcp_in(80, 0x02))                            # to a closed port: its RST held back
    assert len(f.stack.packet_filter.conntrack()) == 1
    assert f.stack.packet_filter.conntrack()[0]["state"] == "syn_sent"
    f.advance(1999)
    assert len(f.stack.packet_filter.conntrack()) == 1
    f.advance(2)
    assert f.stack.packet_filter.conntrack() == []


# ---- rate limit ------------------------------------------------------------------------------
def test_rate_limit_passes_a_burst_then_the_rate_and_drops_the_rest():
    f = fed("input icmp type echo-request limit 2/second burst 3 accept", "input drop icmp")
    got = 0
    for k in range(6):
        got += len(f.feed(ping_in()))
    assert got == 3                                      # the burst
    f.advance(500)                                       # half a second: one more token
    got = len(f.feed(ping_in())) + len(f.feed(ping_in()))
    assert got == 1
    assert f.counters()["filter.drop_limit"] == 4


def test_rate_limit_else_action_can_reject():
    f = fed("input udp limit 1/minute burst 1 accept else reject")
    s = udp_sock(f, 7)
    assert f.feed(udp_in(7)) == []
    out = f.feed(udp_in(7))
    assert len(out) == 1 and icmp_of(out[0]) == (3, 3)
    close_all(f)


# ---- table full ------------------------------------------------------------------------------
def test_a_full_table_evicts_an_unanswered_flow_first_then_refuses_new_ones():
    f = fed(*STATEFUL, FILTER_CONNTRACK=2)
    s = udp_sock(f, 5000)
    for port in (1, 2):
        s.sendto(b"q", ("192.0.2.1", port))
        f.advance(1)
        f.feed(udp_in(5000, sport=port, data=b"r"))      # answered: never evicted
    f.drv.tx.clear()
    s.sendto(b"q", ("192.0.2.1", 3))                     # no room: dropped, counted
    f.advance(1)
    assert f.drv.tx == []
    c = f.counters()
    assert c["filter.ct_full"] == 1 and c["ip.tx_filtered"] == 1
    f.advance(30001)                                     # both expire: room again
    s.sendto(b"q", ("192.0.2.1", 3))
    f.advance(1)
    assert len(f.drv.tx) == 1
    close_all(f)


def test_a_full_table_drops_the_oldest_unanswered_flow_for_a_new_one():
    f = fed(*STATEFUL, FILTER_CONNTRACK=2)
    s = udp_sock(f, 5000)
    for port in (1, 2, 3):
        s.sendto(b"q", ("192.0.2.1", port))
        f.advance(1)
    assert len(f.drv.tx) == 3 and f.counters()["filter.ct_early_drop"] == 1
    close_all(f)


# ---- rule set changes ------------------------------------------------------------------------
def test_a_new_rule_set_replaces_the_old_at_once_and_kept_rules_keep_their_counters():
    f = fed("input drop udp dport 9")
    flt = f.stack.packet_filter
    f.feed(udp_in(9))
    flt.add("input drop udp dport 10", 0)
    assert [flt.rs.text[i] for i in range(flt.rs.n)] == ["input drop udp dport 10",
                                                         "input drop udp dport 9"]
    assert flt.rs.pkts == [0, 1]
    flt.delete(0)
    assert flt.rs.pkts == [1]
    flt.set_policy(pf.INPUT, pf.DROP)
    assert f.feed(ping_in()) == []
    flt.zero()
    assert flt.rs.pkts == [0] and f.counters().get("filter.drop_policy") is None
    with pytest.raises(ValueError):
        flt.delete(5)


def test_policy_lines_in_board_config():
    f = fed("policy input drop", "input accept icmp")
    assert len(f.feed(ping_in())) == 1
    s = udp_sock(f, 7)
    f.feed(udp_in(7))
    assert f.counters()["filter.drop_policy"] == 1
    close_all(f)


@pytest.mark.parametrize("text,word", [
    ("inptu drop", "inptu"),
    ("input drop tcp dport 70000", "dport 70000"),
    ("input drop dport 22", "dport"),
    ("input drop tcp flags syn,fun", "fun"),
    ("input drop saddr 192.0.2.1/24", "host bits"),
    ("input drop saddr 192.0.2/24", "192.0.2/24"),
    ("input drop saddr 192.0.2.300", "192.0.2.300"),
    ("input drop daddr 192.0.2.0/33", "0..32"),
    ("input tcp dport 22", "no action"),
    ("input drop accept", "second action"),
    ("input drop ct new,old", "old"),
    ("input limit 5/week accept", "week"),
    ("input accept else drop", "else"),
    ("input drop udp type 3", "type"),
    ("output iif eth0 drop", "iif"),
    ("input frobnicate 3 drop", "frobnicate"),
    ("input drop tcp dport", "dport needs a value"),
])
def test_every_rule_mistake_is_one_line_naming_the_word(text, word):
    with pytest.raises(ValueError) as e:
        pf.parse_rule(text)
    m = str(e.value)
    assert word in m and "\n" not in m


def test_a_packet_of_neither_family_meets_the_policies_alone():
    f = fed("input accept icmp", "policy input drop")
    flt = f.stack.packet_filter
    v6 = bytearray(40)
    v6[0] = 0x50   # version 5: neither IPv4 nor IPv6
    assert not flt.hook_in(f.iface, v6, 0, 40)
    flt.set_policy(pf.INPUT, pf.ACCEPT)
    assert flt.hook_in(f.iface, v6, 0, 40)
    assert f.counters()["filter.not_ip"] == 2


def _connected(f):
    """The stack connects out to 192.0.2.1:7 and the host answers: (socket, sport, iss)."""
    s = f.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("192.0.2.1", 7))
    except OSError:
        pass
    f.advance(1)
    syn = f.drv.tx[-1]
    f.drv.tx.clear()
    sport = struct.unpack("!H", syn[34:36])[0]
    iss = struct.unpack("!I", syn[38:42])[0]
    f.feed(tcp_in(sport, 0x12, sport=7, seq=9000, ack=iss + 1))
    return s, sport, iss


def test_a_tcp_flow_goes_closing_on_fin_and_is_forgotten_after_the_close_timeout():
    f = fed(*STATEFUL, FILTER_CT_TCP_CLOSE_MS=5000)
    s, sport, iss = _connected(f)
    flt = f.stack.packet_filter
    assert flt.conntrack()[0]["state"] == "established"
    f.feed(tcp_in(sport, 0x11, sport=7, seq=9001, ack=iss + 1))   # the host's FIN
    ct = flt.conntrack()
    assert ct[0]["state"] == "closing" and ct[0]["expires_ms"] <= 5000
    f.advance(5001)
    assert flt.conntrack() == []
    f.feed(tcp_in(sport, 0x10, sport=7, seq=9002, ack=iss + 1))   # too late: invalid
    assert f.counters()["filter.ct_invalid"] >= 1
    close_all(f)


def test_a_reset_flow_is_kept_ten_seconds_at_most():
    f = fed(*STATEFUL)
    s, sport, iss = _connected(f)
    f.feed(tcp_in(sport, 0x04, sport=7, seq=9001))                # the host resets it
    ct = f.stack.packet_filter.conntrack()
    assert ct[0]["state"] == "closed" and ct[0]["expires_ms"] <= 10000
    close_all(f)
