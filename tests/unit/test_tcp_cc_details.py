"""Congestion-control details a review found wrong (issue 12), one test per rule, for every
controller (newreno, cubic, none): the initial window after a retransmitted SYN (RFC 5681
3.1, RFC 6928 2), no growth while application-limited and a window that stays a small int
(RFC 7661, RFC 9438 5.8), TCP timing keys within their RFC bounds (RFC 6298 2.5, RFC 9293
3.8.6.3), a retransmission counter that counts segments, and a delayed ACK well inside the
minimum RTO (RFC 6298 2.4)."""
from ustack.core import socket as so
from ustack.core.config import make_config
from ustack.core.stats import Counters
from ustack.core.tcp import cc
from ustack.core.tcp.cc import CWND_MAX, NAMES, initial_window
from tests.unit.test_tcp_states import Net, connected, close_all, first_dropped, recv_all

SMALL = 1 << 30  # a MicroPython small int on a 32-bit board is below this


def controller(name, mss):
    return cc.make(name, mss, Counters(cc.CC_COUNTERS), make_config())



# ---- RFC 5681 3.1 / RFC 6928 2: one segment after a lost SYN or SYN-ACK ----------------------

def test_initial_window_is_one_segment_after_a_retransmitted_syn_for_every_controller():
    for name in NAMES:
        net = Net({"TCP_CC": name})
        net.drop_a = first_dropped(lambda seg: seg[0] == "S")
        c, s = connected(net)
        assert net.a.tcp.stats.rto_expired == 1, name  # the SYN went twice
        t = c.tcb
        assert t.cc is None  # an idle connection holds none: the first send makes it
        # ... and the first flight is that one segment: the rest waits for its ACK
        t0 = net.t
        c.send(b"x" * (4 * t.mss))
        assert t.cc.name == name and t.cc.window() == t.mss, (name, t.cc.window(), t.mss)
        net.advance(1)
        assert len([x for x in net.segs("a", t0) if x[5] > 0]) == 1, name
        net.jump(1000, lambda: s.readable())
        close_all(net)


def test_initial_window_is_one_segment_after_a_retransmitted_synack_for_every_controller():
    for name in NAMES:
        net = Net({"TCP_CC": name})
        net.drop_b = first_dropped(lambda seg: seg[0] == "S.")
        c, s = connected(net)
        assert net.b.tcp.stats.rto_expired == 1, name
        assert s.tcb.cc is None
        s.send(b"y" * (4 * s.tcb.mss))
        assert s.tcb.cc.window() == s.tcb.mss, name
        close_all(net)


def test_initial_window_is_rfc_6928s_when_the_handshake_lost_nothing():
    for name in NAMES:
        net = Net({"TCP_CC": name})
        c, s = connected(net)
        w = cc.of(net.a.tcp, c.tcb).window()
        assert w > c.tcb.mss and w <= initial_window(c.tcb.mss), (name, w)
        close_all(net)


def test_none_slow_starts_back_to_its_fixed_window_after_a_retransmitted_syn():
    c = controller("none", 1000)
    fixed = c.window()
    c.syn_lost()
    assert c.window() == 1000
    una = 0
    for _ in range(20):
        una += 1000
        c.on_ack(1000, una, c.window())
    assert c.window() == fixed


# ---- RFC 7661 / RFC 9438 5.8: no growth while application-limited; a small-int window -------

def test_an_application_limited_connection_does_not_grow_cwnd_for_any_controller():
    for name in NAMES:
        c = controller(name, 1000)
        w = c.window()
        una = 0
        for i in range(5000):  # request/response: one segment out at a time
            una += 1000
            c.on_ack(1000, una, 1000, 10 * i, 10)
        assert c.window() == w, (name, c.window(), w)


def test_an_application_limited_connection_in_congestion_avoidance_does_not_grow_cwnd():
    for name in NAMES:
        c = controller(name, 1000)
        c.on_rto(20000, 20000, 0)  # ssthresh = 10000
        una = 20000
        for i in range(40):  # cwnd-limited: back up to ssthresh and past it
            una += 1000
            c.on_ack(1000, una, c.cwnd, 10 * i, 10)
        w = c.window()
        for i in range(5000):
            una += 1000
            c.on_ack(1000, una, 1000, 1000 + 10 * i, 10)
        assert c.window() == w, (name, c.window(), w)


def test_request_response_over_two_stacks_leaves_cwnd_at_the_initial_window():
    for name in NAMES:
        net = Net({"TCP_CC": name})
        c, s = connected(net)
        w = cc.of(net.a.tcp, c.tcb).window()
        for _ in range(200):  # 200 small requests, each answered: never a full window out
            c.send(b"r" * 100)
            net.jump(1000, lambda: s.readable())
            assert s.recv(200) == b"r" * 100
            s.send(b"a" * 10)
            net.jump(1000, lambda: c.readable())
            assert c.recv(20) == b"a" * 10
        assert c.tcb.cc.window() == w and c.tcb.cc.cwnd <= w, (name, c.tcb.cc.cwnd, w)
        close_all(net)


def test_a_long_cwnd_limited_connection_keeps_cwnd_a_small_int():
    for name in NAMES:
        c = controller(name, 65535)
        una = 0
        for i in range(20000):  # 20000 full-sized ACKs into an ever-used window
            una = (una + 65535) & 0x3FFFFFFF
            c.on_ack(65535, una, c.cwnd, i, 1)
        assert c.cwnd <= CWND_MAX and c.window() < SMALL, (name, c.cwnd)


def test_duplicate_acks_without_end_do_not_inflate_cwnd_beyond_a_small_int():
    # a peer that sends duplicate ACKs for ever (RFC 5681 3.2 step 4 inflates per dup ACK)
    for name in NAMES:
        c = controller(name, 65535)
        for _ in range(20000):
            c.on_dup_ack(0, 655350, 655350, 0)
        assert c.in_recovery and c.cwnd <= CWND_MAX, (name, c.cwnd)


# ---- TCP timing keys within their RFC bounds ----------------------------------------------------

def refused(over, key):
    try:
        make_config(over)
    except ValueError as e:
        assert key in str(e), str(e)
        return
    assert False, "accepted %r" % (over,)


def test_rto_max_below_60_seconds_is_refused():
    # RFC 6298 2.5: "a maximum value MAY be placed on RTO provided it is at least 60 seconds"
    refused({"TCP_RTO_MAX_MS": 59999}, "TCP_RTO_MAX_MS")
    assert make_config({"TCP_RTO_MAX_MS": 60000})["TCP_RTO_MAX_MS"] == 60000


def test_delayed_ack_of_half_a_second_is_refused():
    # RFC 9293 3.8.6.3: the delay "MUST be less than 0.5 seconds"
    refused({"TCP_DELACK_MS": 500}, "TCP_DELACK_MS")
    assert make_config({"TCP_DELACK_MS": 499})["TCP_DELACK_MS"] == 499


def test_rto_min_above_rto_max_is_refused():
    refused({"TCP_RTO_MIN_MS": 70000, "TCP_RTO_INIT_MS": 70000}, "TCP_RTO_MIN_MS")


def test_default_delayed_ack_is_well_below_the_minimum_rto():
    # RFC 6298 2.4 vs RFC 5681 4.2: a delayed ACK must come back before the peer's minimum
    # RTO even with some RTT on top (Linux: 40 ms delayed ACK, 200 ms minimum RTO)
    cfg = make_config()
    assert 2 * cfg["TCP_DELACK_MS"] <= cfg["TCP_RTO_MIN_MS"]


# ---- tx_retransmits counts segments (Linux's RetransSegs), rto_expired the timeouts --------

def test_every_segment_resent_after_an_rto_counts_as_a_retransmission():
    net = Net({"TCP_TLP": False})  # the RTO's go-back-N alone, no tail loss probe first
    c, s = connected(net)
    net.jump(10)
    mss = c.tcb.mss
    sent = []

    def first_copy_of_each(seg):
        if seg[3] > 0 and seg[1] not in sent:
            sent.append(seg[1])
            return True  # every data segment's first transmission is lost: no dup ACKs
        return False
    net.drop_a = first_copy_of_each
    t0 = net.t
    c.send(b"y" * (4 * mss))
    assert recv_all(net, s, 4 * mss) == 4 * mss
    data = [x for x in net.segs("a", t0) if x[5] > 0]
    resent = len(data) - len(sent)
    st = net.a.tcp.stats
    assert len(sent) == 4 and resent == 4
    assert st.rto_expired == 1 and st.fast_retransmits == 0
    assert st.tx_retransmits == resent and c.tcb.rexmits == resent
    net.drop_a = None
    close_all(net)


# ---- RFC 6298 2.4: a delayed ACK does not trigger a spurious RTO ---------------------------

def test_one_segment_and_a_delayed_ack_cause_no_spurious_retransmission_with_defaults():
    net = Net()
    c, s = connected(net)
    net.jump(10)
    assert c.tcb.rto == net.a.config["TCP_RTO_MIN_MS"]  # tiny RTTs: the floor
    for _ in range(3):
        t0 = net.t
        c.send(b"q")  # one small segment; the peer holds its ACK back (RFC 5681 4.2)
        net.jump(2000)
        assert s.recv(10) == b"q"
        acks = [x for x in net.segs("b", t0) if x[5] == 0 and x[2] == "."]
        assert acks and acks[0][0] - t0 >= net.b.config["TCP_DELACK_MS"]  # it was delayed
    st = net.a.tcp.stats
    assert st.rto_expired == 0 and st.tx_retransmits == 0
    close_all(net)
