"""SACK on the sending side: the scoreboard fed by received blocks (RFC 2018, RFC 2883),
SACK-based loss recovery (RFC 6675) paced by PRR (RFC 6937), RACK-TLP (RFC 8985). First the
rules on a bare Scoreboard (sequence numbers in bytes, MSS 100), then one segment at a time
against a stack. Each test names its RFC section."""
import struct

from ustack.core.tcp import scoreboard as sc
from ustack.core.tcp.ooo import RangeSet
from ustack.core.tcp.scoreboard import Scoreboard, mul_div_ceil
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG

M = 100  # the bare scoreboard's SMSS
RFC6675 = dict(BIG, TCP_RACK=False)  # DupThresh decides, not RACK's send times (RFC 8985)


def board(*ranges, slots=8):
    b = Scoreboard(slots)
    for s, e in ranges:
        assert b.add(s, e)
    return b


# ---- the range set both sides share (ooo.py) --------------------------------------------------
def test_range_set_keeps_ranges_sorted_merged_and_cut_below_a_point():
    r = RangeSet(4)
    assert r.add(500, 600) and r.add(100, 200) and r.add(300, 400)
    assert [(r.start[i], r.end[i]) for i in range(r.n)] == [(100, 200), (300, 400), (500, 600)]
    assert r.add(200, 300) and r.n == 2 and (r.start[0], r.end[0]) == (100, 400)
    assert r.covered(150, 550) == 250 + 50 and r.total() == 400
    r.cut(350)
    assert [(r.start[i], r.end[i]) for i in range(r.n)] == [(350, 400), (500, 600)]
    r.cut(600)
    assert r.n == 0


# ---- RFC 6675 3 / RFC 2018: the scoreboard -----------------------------------------------------
def test_scoreboard_merges_sacked_ranges_and_forgets_what_snd_una_passes():
    b = board((100, 200), (300, 400))
    assert b.sacked == 200
    assert b.add(200, 300) and b.rs.n == 1 and b.sacked == 300
    b.cut(250)                       # SND.UNA moved into the range
    assert (b.rs.start[0], b.rs.end[0]) == (250, 400) and b.sacked == 150


def test_a_full_scoreboard_refuses_a_new_range_but_still_merges():
    b = board((100, 200), (300, 400), slots=2)
    assert not b.add(500, 600) and b.rs.n == 2      # no slot: forgotten, not wrong
    assert b.add(400, 450) and b.sacked == 250       # touching an existing one: merged


# ---- RFC 6675 4: IsLost, SetPipe -----------------------------------------------------------------
def test_islost_needs_dupthresh_ranges_or_more_than_dupthresh_minus_1_smss_above():
    una = 0
    b = board((100, 200), (300, 400))
    assert not b.is_lost(0, una, M)               # 2 ranges, 200 bytes: not yet
    b.add(500, 501)
    assert b.is_lost(0, una, M)                   # DupThresh (3) ranges above
    assert not b.is_lost(200, una, M)             # two ranges, 101 bytes above it
    assert not b.is_lost(150, una, M)             # SACKed bytes are never lost
    b = board((100, 301))
    assert b.is_lost(99, una, M)                  # 201 > (3 - 1) * 100 bytes above
    assert b.lost_end(una, M) == 100


def test_pipe_counts_unsacked_bytes_not_lost_plus_those_retransmitted():
    # 1000 bytes out; SACKed 100-200, 300-400, 500-600: only the hole 0-100 is lost
    b = board((100, 200), (300, 400), (500, 600))
    assert b.pipe(0, 1000, M) == 600              # 200-300, 400-500, 600-1000
    b.high_rxt = 100                              # the lost hole was retransmitted
    assert b.pipe(0, 1000, M) == 700
    b.high_rxt = 700                              # so were 200-300, 400-500, 600-700:
    assert b.pipe(0, 1000, M) == 600 + 400        # not lost, so out twice


# ---- RFC 6675 4: NextSeg -------------------------------------------------------------------------
def test_nextseg_rule_1_retransmits_the_first_lost_hole_above_highrxt_only():
    b = board((100, 200), (300, 400), (500, 600), (700, 800))  # 0-100, 200-300 lost
    b.enter(0, 1000, 500)
    assert b.next_seg(0, 1000, M, True) == sc.LOST and (b.seg, b.seg_len) == (0, 100)
    b.high_rxt = 100
    assert b.next_seg(0, 1000, M, True) == sc.LOST and (b.seg, b.seg_len) == (200, 100)
    b.high_rxt = 300                  # the next hole (past SACKed 300-400) is not lost
    assert b.next_seg(0, 1000, M, True) == sc.NEW
    assert b.next_seg(0, 1000, M, False) == sc.HOLE and (b.seg, b.seg_len) == (400, 100)


def test_nextseg_rule_2_new_data_before_rule_3_holes_not_yet_lost():
    b = board((100, 200))                        # one range: the hole 0-100 is not lost
    b.enter(0, 1000, 500)
    assert b.next_seg(0, 1000, M, True) == sc.NEW
    assert b.next_seg(0, 1000, M, False) == sc.HOLE and (b.seg, b.seg_len) == (0, 100)


def test_nextseg_rule_4_rescue_retransmits_the_highest_unsacked_segment_once():
    b = board((100, 200))
    b.enter(0, 1000, 500)
    b.high_rxt = 200                             # every hole below the SACKs retransmitted
    assert b.next_seg(0, 1000, M, False) == sc.RESCUE and (b.seg, b.seg_len) == (900, 100)
    b.rescue = b.point                           # what output.py does once it went
    b.rescue_valid = True
    assert b.next_seg(0, 1000, M, False) == sc.NONE
    assert b.next_seg(1000, 1000, M, False) == sc.NONE  # nothing unSACKed: nothing to rescue


def test_rescue_skips_a_sacked_tail():
    b = board((100, 200), (950, 1000))
    b.enter(0, 1000, 500)
    b.high_rxt = 950
    assert b.next_seg(0, 1000, M, False) == sc.RESCUE and (b.seg, b.seg_len) == (850, 100)


# ---- RFC 6937: Proportional Rate Reduction -------------------------------------------------------
def test_prr_sends_in_proportion_one_segment_for_every_two_delivered():
    """RFC 6937 5's example: ssthresh half of RecoverFS, each ACK delivers one segment; the
    fast retransmit goes at once, then one segment on every second ACK."""
    b = Scoreboard(8)
    b.enter(0, 20 * M, 10 * M)
    sends = []
    pipe = 19 * M
    for _ in range(10):
        n = 1 if b.prr(M, pipe, M) > 0 else 0    # output.py sends whole segments
        sends.append(n)
        b.sent(n * M)
        pipe += n * M - M
    assert sends == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert b.prr_out == 5 * M == b.prr_delivered // 2


def test_prr_ssrb_grows_back_to_ssthresh_by_at_most_one_smss_beyond_delivered():
    """RFC 6937 3 (PRR-SSRB): with pipe below ssthresh, sndcnt = min(ssthresh - pipe,
    max(prr_delivered - prr_out, DeliveredData) + MSS)."""
    b = Scoreboard(8)
    b.enter(0, 20 * M, 10 * M)
    b.prr_out = 3 * M
    b.prr_delivered = 3 * M
    assert b.prr(M, 4 * M, M) == 2 * M           # limit: delivered 1 + 1 MSS
    b.prr_out += 2 * M
    assert b.prr(M, 9 * M + 50, M) == 50         # ssthresh - pipe


def test_prr_arithmetic_stays_within_small_ints():
    assert mul_div_ceil(3, 10, 20) == 2 and mul_div_ceil(0, 5, 7) == 0
    big = mul_div_ceil(1 << 20, 1 << 19, 1 << 20)
    assert big == 1 << 19                         # scaled, not a 2**39 intermediate


# ---- against a stack: blocks, recovery, PRR, TLP ---------------------------------------------
def sack_opts(p, last, blocks):
    o = p.tsopt(last)
    o += struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(blocks))
    for a, b in blocks:
        o += struct.pack("!II", sq(a), sq(b))
    return o


def seg(una, k, n=1):
    """[start, end) of segments k .. k+n-1 of the flight that starts at una."""
    return (una + k * MSS, una + (k + n) * MSS)


def test_sack_blocks_are_checked_bad_ones_counted_and_dsack_recognised():
    """RFC 2018 3: a block must lie within SND.UNA..SND.NXT with left < right; RFC 2883 4:
    a first block below the cumulative ACK reports a duplicate (D-SACK), it SACKs nothing."""
    p = Peer(BIG)
    una, d, last = filled(p)
    st = p.tcp.stats
    p.send(p.seq, una + MSS, ACK, opts=sack_opts(p, last, [seg(una, 0), seg(una, 3)]))
    assert st.rx_dsack == 1 and p.tcb().sb.sacked == MSS
    p.send(p.seq, una + MSS, ACK, opts=sack_opts(p, last, [(una + 5 * MSS, una + 4 * MSS),
                                                            seg(una, 20), seg(una, 5)]))
    assert st.rx_sack_bad == 2 and p.tcb().sb.sacked == 2 * MSS  # only the third one taken
    # RFC 2883 4.2.2: a first block inside the second reports a duplicate above the ACK
    p.send(p.seq, una + MSS, ACK, opts=sack_opts(p, last, [seg(una, 3), seg(una, 3, 3)]))
    assert st.rx_dsack == 2 and p.tcb().sb.sacked == 3 * MSS     # the second block: 3-5


def test_a_full_scoreboard_counts_the_block_it_could_not_keep():
    p = Peer(dict(BIG, TCP_SACK_SLOTS=1))
    una, d, last = filled(p)
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 2), seg(una, 4)]))
    assert p.tcp.stats.rx_sack_no_slot == 1 and p.tcb().sb.rs.n == 1


def test_sack_recovery_retransmits_only_the_hole_and_prr_paces_the_rest():
    """RFC 6675 5: segment 0 lost; duplicate ACKs SACK 1, 1-2, 1-3. Before recovery cwnd -
    pipe lets a new segment out per duplicate (5 (3)); the third SACKed segment makes
    segment 0 IsLost: it alone is retransmitted (4.3). Then PRR (RFC 6937 3): while pipe
    is above ssthresh (6 segments) one new segment for every second one delivered, then
    one for one (PRR-SSRB) - new data only, no SACKed segment is ever sent again. DupThresh
    decides here (TCP_RACK off; test_tcp_rack.py has RACK's time-based rule)."""
    p = Peer(RFC6675)
    una, d, last = filled(p)
    st = p.tcp.stats
    r1 = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    r2 = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 2)]))
    assert data_segs(r1) == [(sq(una + 10 * MSS), MSS)]
    assert data_segs(r2) == [(sq(una + 11 * MSS), MSS)]
    r3 = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 3)]))
    assert data_segs(r3) == [(sq(una), MSS)]
    assert st.sack_recoveries == 1 and st.fast_retransmits == 1 and st.tx_retransmits == 1
    sb = p.tcb().sb
    assert sb.ssthresh == 6 * MSS and sb.recover_fs == 12 * MSS
    sent = []
    for k in range(4, 12):
        r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, k)]))
        sent.append([(s - una) // MSS for s, n in data_segs(r)])
    assert sent == [[], [12], [], [], [13], [14], [15], [16]]
    t = p.tcb()
    assert sb.pipe(t.snd_una, t.snd_max, MSS) == sb.ssthresh
    assert st.tx_retransmits == 1
    # the ACK covering RecoveryPoint (everything sent before recovery) ends it
    sb = p.tcb().sb
    assert sb.in_recovery and sb.point == seq_rel(p, una + 12 * MSS)
    p.send(p.seq, una + 12 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 12, 5)]))
    cc = p.tcb().cc
    assert not sb.in_recovery and not cc.in_recovery and cc.window() <= cc.ssthresh


def seq_rel(p, wire):
    t = p.tcb()
    return (wire - ((t.iss_hi << 16) | t.iss_lo)) & 0xFFFFFFFF


def test_recovery_starts_before_three_duplicates_when_snd_una_islost():
    """RFC 6675 5 (2): one ACK SACKing three segments above SND.UNA is enough."""
    p = Peer(BIG)
    una, d, last = filled(p)
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 3)]))
    # PRR: 3 segments delivered, ssthresh/RecoverFS = 1/2: 1.5 segments' worth goes out -
    # the retransmission and one new segment
    assert data_segs(r) == [(sq(una), MSS), (sq(una + 10 * MSS), MSS)]
    assert p.tcp.stats.sack_recoveries == 1 and p.tcb().sb.dupacks == 1


def test_rescue_retransmission_repairs_a_lost_tail_in_recovery():
    """RFC 6675 4 rule 4: with no new data to send and no hole left below the SACKs, the
    highest unSACKed segment goes once, instead of waiting for the RTO."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"r" * (6 * MSS)) == 6 * MSS
    last = p.advance(1)[-1]
    # segments 0 and 5 lost; 1-4 SACKed: 0 is lost (4.3), the tail (5) never SACKed
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 4)]))
    assert data_segs(r) == [(sq(una), MSS)]
    got = []
    for _ in range(3):
        # the ACKs of the retransmission echo its TSval (RFC 7323 4.3), not the original's:
        # that would say segment 0 was never lost (RFC 3522, tests/unit/test_tcp_undo.py)
        got += data_segs(p.send(p.seq, una + MSS, ACK, opts=sack_opts(p, r[-1],
                                                                     [seg(una, 1, 4)])))
    assert got == [(sq(una + 5 * MSS), MSS)]
    assert p.tcp.stats.rescue_rexmits == 1 and p.tcp.stats.rto_expired == 0


def test_tail_loss_probe_resends_the_last_segment_after_pto_not_rto():
    """RFC 8985 7.2-7.3: nothing new to send and no ACK for PTO = 2*SRTT + 2 ticks: the
    last segment goes again as a probe, once per tail; the RTO is rearmed behind it."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    t0 = p.fed.t                                  # the flight leaves now
    assert p.sock.send(b"t" * (3 * MSS)) == 3 * MSS
    assert len(data_segs(p.advance(1))) == 3
    r = []
    while not r:
        r = data_segs(p.advance(1))
    probe = p.fed.t
    pto = (p.tcb().srtt8 >> 2) + 2
    assert probe - t0 == pto and r == [(sq(una + 2 * MSS), MSS)], (probe - t0, pto)
    assert p.tcp.stats.tlp_probes == 1 and p.tcp.stats.rto_expired == 0
    rto = p.tcb().rto
    # no second probe for the same tail; the RTO counts from the probe
    assert data_segs(p.advance(probe + rto - 1 - p.fed.t)) == []
    assert data_segs(p.advance(2)) == [(sq(una), MSS)] and p.tcp.stats.rto_expired == 1


def test_a_sacked_probe_marks_everything_sent_before_it_lost():
    """RFC 8985 6.2 after a probe: all unSACKed data went out a PTO before the probe
    (more than an RTT plus the reordering window): lost, so recovery repairs the whole
    tail at once (RFC 6675 5 (2) on IsLost(SND.UNA)), not segment by segment."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"t" * (3 * MSS)) == 3 * MSS
    p.advance(1)
    last = p.advance(10)[-1]                     # the probe: segment 2 again
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 2)]))
    # both lost segments at once: pipe 0, PRR-SSRB lets ssthresh (2 segments) out
    assert data_segs(r) == [(sq(una), MSS), (sq(una + MSS), MSS)]
    assert p.tcp.stats.sack_recoveries == 1
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(last))
    assert not p.tcb().sb.in_recovery and p.tcp.stats.rto_expired == 0


def test_a_lost_retransmission_at_snd_una_is_sent_again_without_a_timeout():
    """RFC 8985 6.2: data sent after the retransmission of segment 0 was SACKed and the
    reordering window passed: that retransmission was lost too - it goes again."""
    p = Peer(BIG)
    una, d, last = filled(p)
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 3)]))   # 0 retransmitted
    p.advance(5)
    got = []
    for k in range(4, 13):
        got = data_segs(p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, k)])))
        if (sq(una), MSS) in got:
            break
    assert (sq(una), MSS) in got and p.tcp.stats.lost_rexmits == 1
    assert p.tcp.stats.rto_expired == 0


def test_the_scoreboard_exists_only_once_there_is_data_to_send():
    p = Peer(BIG)
    sa = p.connect()
    assert p.tcb().sb is None                     # idle: no cost (tests/ports size bound)
    p.sock.send(b"x" * 100)
    assert p.tcb().sb is not None and p.tcb().sb.rs.slots == 8   # TCP_SACK_SLOTS


def test_without_scoreboard_slots_sack_blocks_are_ignored_and_newreno_recovers():
    p = Peer(dict(BIG, TCP_SACK_SLOTS=0))
    una, d, last = filled(p)
    assert p.tcb().sb is None
    r = [p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, k)])) for k in (1, 2, 3)]
    # RFC 5681 3.2: limited transmit (RFC 3042) on the first two, fast retransmit on the third
    assert [data_segs(x) for x in r] == [[(sq(una + 10 * MSS), MSS)],
                                         [(sq(una + 11 * MSS), MSS)], [(sq(una), MSS)]]
    assert p.tcp.stats.sack_recoveries == 0 and p.tcp.stats.fast_retransmits == 1


def test_rack_waits_out_the_reordering_window_before_a_retransmission_is_lost():
    """RFC 8985 6.2: a retransmission counts as lost only once data sent after it was
    delivered AND the reordering window (SRTT/4 here) has passed since it was sent."""
    b = board((100, 300))
    b.enter(0, 1000, 500)
    b.first = False
    b.una_rxt_at, b.una_rxt_hi, b.una_rxt_end = 1000, 1000, 100   # 0-100 resent at t=1000
    b.add(1000, 1100)                                             # sent after it: SACKed
    assert not b.una_rxt_lost(0, 1004, 20, 5, 100)                # within reo_wnd
    assert b.una_rxt_lost(0, 1005, 20, 5, 100) and b.first        # then it goes again
    b = board((100, 300))
    b.enter(0, 1000, 500)
    b.first = False
    b.una_rxt_at, b.una_rxt_hi, b.una_rxt_end = 1000, 1000, 100
    assert not b.una_rxt_lost(0, 1020, 20, 5, 100)                # only older data SACKed:
    assert b.una_rxt_lost(0, 1026, 20, 5, 100)                    # lost after SRTT + reo_wnd


def probe_out(p):
    """Three segments out, nothing new to send, the tail loss probe (segment 2) sent."""
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"t" * (3 * MSS)) == 3 * MSS
    p.advance(1)
    last = p.advance(10)[-1]
    assert p.tcp.stats.tlp_probes == 1
    return una, last


def test_a_probe_that_repaired_a_loss_reduces_the_congestion_window():
    """RFC 8985 7.4.2: the ACK covering the probe, with no D-SACK saying the peer had the
    segment already, means the original was lost: a congestion event."""
    p = Peer(BIG)
    una, last = probe_out(p)
    cc = p.tcb().cc
    w0 = cc.window()
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(last))
    assert p.tcp.stats.tlp_recoveries == 1 and cc.ssthresh == 2 * MSS
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(last))
    assert cc.window() <= cc.ssthresh < w0 and not p.tcb().sb.tlp_out


def test_a_probe_the_peer_already_had_is_no_congestion_event():
    """RFC 8985 7.4.1: a D-SACK for the probe says the original arrived: no reduction."""
    p = Peer(BIG)
    una, last = probe_out(p)
    ss0 = p.tcb().cc.ssthresh
    p.send(p.seq, una + 3 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 2)]))
    assert p.tcp.stats.rx_dsack == 1 and p.tcp.stats.tlp_recoveries == 0
    assert p.tcb().cc.ssthresh == ss0 and not p.tcb().sb.tlp_out


def test_a_cumulative_ack_without_sack_blocks_resets_the_duplicate_count():
    """RFC 6675 5: a cumulative ACK resets DupAcks - also one without a SACK option, or two
    old duplicates and one new one would start a recovery no loss called for (DupThresh:
    TCP_RACK off)."""
    p = Peer(RFC6675)
    una, d, last = filled(p)
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 2)]))
    assert p.tcb().sb.dupacks == 2
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(last))   # the hole filled: all of 0-2
    r = p.send(p.seq, una + 3 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 4)]))
    assert p.tcb().sb.dupacks == 1 and p.tcp.stats.sack_recoveries == 0
    assert (sq(una + 3 * MSS), MSS) not in data_segs(r)
