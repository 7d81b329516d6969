"""Issue 12's 0 ms / 2 % cell: what stalled ustack's sending to Linux (benchmarks/impaired.md).
Each test names the RFC rule it holds the stack to."""
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg


class Flight:
    """A Peer whose stack side has a 40-segment stream queued and its first 10 out; ack()
    answers with a cumulative ACK and SACK blocks in segments of that stream, and returns the
    segment numbers sent in reply."""

    def __init__(self, **config):
        self.p = Peer(dict(BIG, TCP_TLP=False, **config))
        self.una, _, self.last = filled(self.p, 40 * MSS)
        self.sent = {}
        self.p.advance(1)

    def k(self, seq):
        return (seq - sq(self.una)) // MSS

    def ack(self, a, blocks, echo=None):
        p = self.p
        out = p.send(p.seq, self.una + a * MSS, ACK,
                     opts=sack_opts(p, echo or self.last, [seg(self.una, s, n) for s, n in blocks]))
        for s in out:
            if s.data:
                self.sent[self.k(s.seq)] = s
        return [self.k(s) for s, n in data_segs(out)]


def test_a_new_recovery_does_not_resend_snd_una_whose_retransmission_is_still_in_flight():
    """RFC 8985 6.2 step 5 judges a retransmitted segment by its latest transmission: lost
    only once a segment sent after it was delivered and RTT + reo_wnd passed. Segment 12,
    new data sent in a recovery, was lost and resent by it; the cumulative ACK that ends that
    recovery stops at 12 with later data SACKed, which starts the next recovery (RFC 6675 5
    (4): IsLost(SND.UNA)). Only data sent BEFORE 12's retransmission was delivered since:
    nothing says the retransmission is lost. It used to go again at once - a duplicate that
    Linux D-SACKed, and the ACK for the first resend then echoed a TSval older than the new
    episode's, which undo.py took for reordering (issue 12: 1 such 'reordering' per 6 s
    run on a FIFO path, then RACK's window held every recovery back by ~3 ms)."""
    f = Flight()
    st = f.p.tcp.stats
    for j in (1, 2, 3):
        f.ack(0, [(1, j)])               # 0 lost: 10, 11 (RFC 3042), then recovery resends 0
    assert st.sack_recoveries == 1 and f.sent[0]
    for j in range(4, 12):
        f.ack(0, [(1, j)])               # 1..11 arrive; recovery sends 12..16
    assert 16 in f.sent
    f.ack(0, [(13, 1), (1, 11)])         # 12 lost
    f.ack(0, [(13, 2), (1, 11)])
    assert 12 in f.ack(0, [(13, 3), (1, 11)])   # 12 deemed lost and resent
    f.p.advance(1)
    f.ack(0, [(13, 4), (1, 11)])
    rx = st.tx_retransmits
    # the resent 0 arrived (the ACK echoes it): recovery 1 is over, SND.UNA = 12, 13..17 SACKed
    out = f.ack(12, [(13, 5)], f.sent[0])
    assert st.sack_recoveries == 2       # a new loss, a new recovery (its congestion event)
    assert 12 not in out and st.tx_retransmits == rx, out
    assert not f.p.tcb().sb.rack.reo_seen


def test_the_ack_for_an_earlier_recoverys_resend_is_no_eifel_verdict_on_the_new_one():
    """RFC 3522 3.2: RetransmitTS is the TSval of the episode's FIRST retransmission, and an
    ACK echoing an older one acknowledges the original. A recovery that starts with SND.UNA
    already resent (by the recovery before, above) retransmits nothing at its start: the ACK
    for that earlier resend echoes a TSval older than the new episode yet proves nothing - it
    was taken for a spurious recovery (the reduction undone) and for reordering."""
    f = Flight()
    st = f.p.tcp.stats
    for j in (1, 2, 3):
        f.ack(0, [(1, j)])
    for j in range(4, 12):
        f.ack(0, [(1, j)])
    f.ack(0, [(13, 1), (1, 11)])
    f.ack(0, [(13, 2), (1, 11)])
    f.ack(0, [(13, 3), (1, 11)])
    f.p.advance(1)
    f.ack(0, [(13, 4), (1, 11)])
    f.ack(12, [(13, 5)], f.sent[0])
    assert st.sack_recoveries == 2
    f.p.advance(2)
    f.ack(18, [], f.sent[12])            # 12's only retransmission arrived: 12..17 delivered
    assert st.spurious_recoveries == 0 and st.cc_undos == 0
    assert not f.p.tcb().sb.rack.reo_seen and st.rack_reordering == 0


def test_a_probe_with_several_segments_in_flight_is_the_last_one_again_not_new_data():
    """RFC 8985 7.3 prefers (SHOULD) new data for the probe. With ten segments out and no
    ACK after 2*SRTT, the flight's ACK was due at once (RFC 5681 4.2: every second
    full-sized segment) - most likely lost: a new in-order segment would wait for the
    receiver's delayed ACK (Linux: 40-200 ms, each lost ACK cost that in the 0 ms / 2 %
    cell), the last segment again is answered at once (RFC 9293 3.10.7.4) with a D-SACK,
    and then the probe is no congestion event (RFC 8985 7.4.1)."""
    p = Peer(BIG)
    una, d, last = filled(p)                     # 10 segments out, more data queued
    st = p.tcp.stats
    r = []
    while not r:
        r = p.advance(1)
    assert data_segs(r) == [(sq(una + 9 * MSS), MSS)]
    assert st.tlp_probes == 1 and st.tx_retransmits == 1
    ss0 = p.tcb().cc.ssthresh
    p.send(p.seq, una + 10 * MSS, ACK, opts=sack_opts(p, r[-1], [seg(una, 9)]))
    assert st.rx_dsack == 1 and st.spurious_tlps == 1 and st.tlp_recoveries == 0
    assert p.tcb().cc.ssthresh == ss0 and not p.tcb().sb.tlp_out


def test_a_probe_with_one_segment_in_flight_is_new_data():
    """RFC 8985 7.3: with one segment in flight (its PTO includes WCDelAckT, 7.2) the probe
    is new data when the receive window allows - a lost segment then leaves a hole the
    receiver reports at once (RFC 5681 4.2)."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    p.sock.send(b"a" * MSS)
    assert data_segs(p.advance(1)) == [(sq(una), MSS)]
    p.sock.send(b"b" * MSS)                      # Nagle holds it: one segment is unacknowledged
    r = []
    while not r:
        r = p.advance(1)
    assert data_segs(r) == [(sq(una + MSS), MSS)] and p.tcp.stats.tx_retransmits == 0


def test_the_probe_timeout_is_two_srtt_plus_two_ticks_with_no_10_ms_floor():
    """RFC 8985 7.2: PTO = 2*SRTT (plus WCDelAckT with one segment in flight); the RFC has no
    floor. Ours had 10 ms: at sub-ms RTT every lost ACK at the end of a flight cost 10 ms
    before the probe. Two ticks stay for the 1 ms clock (a send time and now each read up
    to a tick off)."""
    p = Peer(BIG)
    una, d, last = filled(p)
    t0 = p.fed.t - 1                             # the flight left a tick ago (filled)
    srtt = p.tcb().srtt8 >> 3
    r = []
    while not r:
        r = p.advance(1)
    assert p.fed.t - t0 <= 2 * srtt + 2 + 1 and p.fed.t - t0 < 10, (p.fed.t - t0, srtt)


def test_a_probe_or_rescue_resend_delivered_below_fack_is_not_reordering():
    """RFC 8985 6.2 step 1: a retransmitted segment's delivery is ambiguous - no reordering
    proof (step 3). The tail loss probe and the rescue retransmission resend the last MSS
    of what was sent, which can straddle an earlier original (a short last segment): its
    SACK below RACK.fack was taken for reordering on a FIFO path (issue 12: then every
    recovery waited RACK's window and entered on its timer with one segment to send)."""
    from ustack.core.tcp.rack import Rack
    r = Rack(8)
    r.sent(0, 0)
    r.delivered(300, 400, 100)                   # the short last segment arrived
    r.update(20)
    r.rxt_range(250, 400)                        # the probe: the last MSS again, 250-400
    r.delivered(250, 300, 100)                   # its copy of 250-300 filled the hole
    assert not r.reo_seen and r.reord_seen == 0
    r.delivered(0, 100, 100)                     # an original, below fack: reordering
    assert r.reo_seen
    r.cut(500, 600)                              # SND.UNA passed it: forgotten
    assert r.rxt_lo2 == r.rxt_hi2 == 500


def test_at_a_recoverys_tail_a_probe_resends_snd_una_before_the_rto():
    """Segment 0 lost, 1..9 SACKed: recovery resends 0 and nothing is left to send (the
    stream's 10 segments are all out). When that retransmission or its ACK is lost, no ACK
    comes again: RACK (RFC 8985 6.2) needs a later delivery, so only the RTO was left
    (200 ms; 5-13 a 6 s run in the 0 ms / 2 % cell, most of them spurious). RFC 8985 7.2
    recommends probes outside recovery (a SHOULD, not a MUST NOT); here the probe goes after
    the PTO with no ACK: the segment at SND.UNA again, answered at once by a receiver that has
    it (RFC 9293 3.10.7.4), and repairing it when it does not."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"r" * (10 * MSS)) == 10 * MSS
    last = p.advance(1)[-1]
    st = p.tcp.stats
    r = []
    for j in (1, 2, 3):
        r += p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, j)]))
    for j in range(4, 10):
        r += p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, j)]))
    assert (sq(una), MSS) in data_segs(r) and p.tcb().sb.in_recovery
    t0 = p.fed.t
    got = []
    while not got and p.fed.t - t0 < 150:
        got = data_segs(p.advance(1))
    assert got == [(sq(una), MSS)] and st.rto_expired == 0 and st.tlp_probes == 1, got
    assert p.fed.t - t0 <= (p.tcb().srtt8 >> 2) + 2 + 1
    p.send(p.seq, una + 10 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 0)]))  # a D-SACK
    assert not p.tcb().sb.in_recovery and st.rto_expired == 0
