"""RFC 3465 Appropriate Byte Counting in every controller that slow-starts with it (NewReno,
and CUBIC once HyStart++ is over): in slow start cwnd grows by the bytes an ACK acknowledges
up to L = 2*SMSS (2.3), L = 1*SMSS in the slow start that follows an RTO (2.3); in congestion
avoidance by one SMSS per cwnd of bytes acknowledged (2.1, RFC 5681 3.1). A receiver that
ACKs a burst of segments at once (TCP_ACK_BURST) then costs the sender's slow start less.
Integer arithmetic only: every window stays a MicroPython small int."""
from ustack.core.config import make_config
from ustack.core.stats import Counters
from ustack.core.tcp import cc
from ustack.core.tcp import cc_cubic as K

MSS = 1000
SMALL = 1 << 30


def ctl(name):
    c = cc.make(name, MSS, Counters(cc.CC_COUNTERS), make_config())
    if name == "cubic":
        c.hs = K.HS_OFF  # HyStart++ (RFC 9406 4.2, its own L = 8) is the initial slow start's
    return c


def test_rfc3465_2_3_slow_start_grows_by_the_bytes_acked_up_to_two_segments():
    for name in ("newreno", "cubic"):
        c = ctl(name)
        w = c.window()
        c.on_ack(2 * MSS, 2 * MSS, w, 10, 1)   # one ACK for two segments: both count
        assert c.window() == w + 2 * MSS, name
        c.on_ack(8 * MSS, 10 * MSS, c.window(), 11, 1)  # a stretch ACK: L = 2*SMSS at most
        assert c.window() == w + 4 * MSS, name
        c.on_ack(500, 10 * MSS + 500, c.window(), 12, 1)  # less than a segment: its bytes
        assert c.window() == w + 4 * MSS + 500, name


def test_rfc3465_2_3_slow_start_after_an_rto_grows_by_one_segment_per_ack_at_most():
    for name in ("newreno", "cubic"):
        c = ctl(name)
        c.on_rto(40 * MSS, 40 * MSS, 0)
        assert c.window() == MSS and c.ssthresh == (20 if name == "newreno" else 28) * MSS, name
        una = 40 * MSS
        for _ in range(5):
            una += 2 * MSS
            w = c.window()
            c.on_ack(2 * MSS, una, w, 10, 1)
            assert c.window() == w + MSS, name   # L = 1*SMSS after an RTO
        while c.window() < c.ssthresh:  # slow start ends...
            una += MSS
            c.on_ack(MSS, una, c.window(), 20, 1)
        c.ssthresh = 10 ** 6            # ... and a later one (an undo raised ssthresh) has L = 2
        w = c.window()
        c.on_ack(3 * MSS, una + 3 * MSS, w, 30, 1)
        assert c.window() == w + 2 * MSS, name


def test_rfc3465_2_1_congestion_avoidance_adds_one_segment_per_window_of_bytes_acked():
    c = ctl("newreno")
    c.on_rto(40 * MSS, 40 * MSS, 0)
    c.cwnd = c.ssthresh = 20 * MSS    # congestion avoidance from 20 segments
    una = 0
    for i in range(6):                # ACKs of 8 segments each: 48 segments acked
        una += 8 * MSS
        c.on_ack(8 * MSS, una, c.cwnd, i, 1)
    assert c.window() == 22 * MSS     # 20 acked: +1 (cwnd 21), 21 more acked: +1
    assert c.acked_ca == 7 * MSS      # the rest counts toward the next segment


def test_stretch_acks_keep_every_window_a_small_int():
    for name in ("newreno", "cubic"):
        c = cc.make(name, 65535, Counters(cc.CC_COUNTERS), make_config())
        una = 0
        for i in range(20000):
            una = (una + 8 * 65535) & 0x3FFFFFFF
            c.on_ack(8 * 65535, una, c.cwnd, i, 1)
            assert c.cwnd < SMALL and c.acked_ca < SMALL, name


# ---- RFC 6582 3.2 step 2: the recovery point is the highest sequence number sent -------------

def test_rfc6582_3_2_three_dup_acks_at_the_old_recovery_point_start_fast_retransmit():
    """`recover` is the highest sequence number transmitted when recovery began (SND.MAX - 1);
    duplicate ACKs whose cumulative ACK is SND.MAX of then (the segment sent next was lost)
    "cover more than recover": a new loss, fast retransmit - not a wait for the RTO."""
    for name in ("newreno", "cubic", "none"):
        c = cc.make(name, MSS, Counters(cc.CC_COUNTERS), make_config())
        for _ in range(2):
            assert not c.on_dup_ack(0, 10 * MSS, 10 * MSS, 1)
        assert c.on_dup_ack(0, 10 * MSS, 10 * MSS, 1)      # SND.MAX was 10 segments
        c.on_ack(10 * MSS, 10 * MSS, 10 * MSS, 2, 1)        # full ACK: recovery over
        assert not c.in_recovery, name
        for _ in range(2):
            assert not c.on_dup_ack(10 * MSS, 6 * MSS, 16 * MSS, 3)
        assert c.on_dup_ack(10 * MSS, 6 * MSS, 16 * MSS, 3), name  # the next segment lost
        assert c.in_recovery, name
        # ... but not for duplicates of data below the recovery point (go-back-N's echoes)
        c = cc.make(name, MSS, Counters(cc.CC_COUNTERS), make_config())
        c.on_rto(10 * MSS, 10 * MSS, 1)
        for _ in range(3):
            assert not c.on_dup_ack(9 * MSS, MSS, 10 * MSS, 2), name


# ---- RFC 5681 3.2 (1) / RFC 3042: limited transmit without SACK ------------------------------

def test_rfc3042_first_and_second_duplicate_ack_each_send_one_new_segment_without_sack():
    """RFC 5681 3.2 step 1: "On the first and second duplicate ACKs received at a sender, a
    TCP SHOULD send a segment of previously unsent data per [RFC3042]": at most cwnd + 2*SMSS
    outstanding, cwnd itself unchanged - so a loss in a small window still draws the three
    duplicates fast retransmit needs instead of an RTO."""
    from tests.unit.test_tcp_segments import Peer, ACK
    p = Peer({"TCP_SND_BUF": 65536, "TCP_SACK": False})
    sa = p.connect(sack=False)
    una = sa.seq + 1
    assert p.sock.send(b"d" * 30000) == 30000
    first = [s for s in p.advance(1) if s.data]
    mss = len(first[0].data)
    assert len(first) == 10                       # the initial window (RFC 6928)
    cw = p.tcb().cc.cwnd
    top = first[-1].seq + len(first[-1].data)
    for k in (1, 2):                              # the first segment was lost: duplicates
        r = [s for s in p.send(p.seq, una, ACK, opts=p.tsopt(first[-1])) if s.data]
        assert [(s.seq, len(s.data)) for s in r] == [(top & 0xFFFFFFFF, mss)], (k, r)
        top += mss
        assert p.tcb().cc.cwnd == cw              # cwnd MUST NOT change (RFC 3042 2)
    r = [s for s in p.send(p.seq, una, ACK, opts=p.tsopt(first[-1])) if s.data]
    assert r and r[0].seq == una & 0xFFFFFFFF     # the third: fast retransmit
    assert p.tcp.stats.fast_retransmits == 1


def test_rfc5681_3_2_ssthresh_leaves_the_limited_transmit_segments_out_of_flightsize():
    for name in ("newreno", "cubic"):
        c = cc.make(name, MSS, Counters(cc.CC_COUNTERS), make_config())
        c.cwnd = 10 * MSS
        c.on_dup_ack(0, 10 * MSS, 10 * MSS, 1)   # SND.MAX 10 segments at the first
        c.on_dup_ack(0, 11 * MSS, 11 * MSS, 1)   # one limited-transmit segment each
        assert c.on_dup_ack(0, 12 * MSS, 12 * MSS, 1)
        assert c.ssthresh == (5 if name == "newreno" else 7) * MSS, (name, c.ssthresh)
