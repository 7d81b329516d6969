"""RACK (RFC 8985 6): time-based loss detection with a reordering window. First the rules on a
bare Rack and its run log (sequence numbers in bytes, MSS 100, times in ms), then one segment
at a time against a stack. Each test names its RFC section."""
from ustack.core.tcp.rack import Rack, REO_PERSIST
from ustack.core.tcp.ooo import RangeSet
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg

M = 100


def ranges(*rs):
    r = RangeSet(8)
    for s, e in rs:
        assert r.add(s, e)
    return r


def sent_at(rack, *runs):
    """New data sent: (seq, ms) for each run, in order."""
    for s, t in runs:
        rack.sent(s, t)


# ---- 6.1: transmit times in a fixed run log -------------------------------------------------
def test_the_run_log_keeps_one_run_per_clock_tick_and_merges_into_the_earlier_time_when_full():
    r = Rack(3)
    sent_at(r, (0, 10), (100, 10), (200, 11), (300, 15))   # 0 and 100 leave in one tick
    assert r.n == 3 and r.seq[:3] == [0, 200, 300] and r.ts[:3] == [10, 11, 15]
    assert r.ts_at(150) == 10 and r.ts_at(250) == 11 and r.ts_at(999) == 15
    r.sent(400, 30)                      # full: the two runs closest in time (10, 11) merge
    assert r.seq[:3] == [0, 300, 400] and r.ts[:3] == [10, 15, 30]
    assert r.ts_at(250) == 10            # earlier than it was: its deadline comes no sooner
    r.cut(320, 500)                      # SND.UNA passes the first run
    assert r.n == 2 and r.seq[:2] == [300, 400]
    r.cut(500, 500)                      # all acknowledged
    assert r.n == 0


def test_a_range_set_names_the_highest_byte_a_block_newly_delivers():
    rs = ranges((200, 300), (500, 600))
    assert rs.top_uncovered(100, 700) == 700     # its top is new
    assert rs.top_uncovered(100, 600) == 500     # the top is known: the hole below it
    assert rs.top_uncovered(250, 300) == 250     # nothing new
    assert rs.top_uncovered(150, 300) == 200


# ---- 6.2 step 3: reordering -------------------------------------------------------------------
def test_a_never_retransmitted_segment_delivered_below_fack_is_reordering():
    r = Rack(8)
    sent_at(r, (0, 0))
    r.delivered(300, 400, M)
    r.update(20)
    assert not r.reo_seen and r.fack == 400
    r.delivered(0, 100, M)                       # sent before 300-400, delivered after it
    assert r.reo_seen and r.reord_seen == 1 and r.reordering == 4   # 400 - 0: 4 segments


def test_a_retransmitted_segment_delivered_late_is_not_reordering():
    r = Rack(8)
    sent_at(r, (0, 0))
    r.rxt(100)                                   # 0-100 went again
    r.delivered(300, 400, M)
    r.update(20)
    r.delivered(0, 100, M)                       # ambiguous (6.2 step 1): either copy
    assert not r.reo_seen and r.reordering == 3


def test_two_blocks_of_one_ack_are_not_reordering():
    r = Rack(8)
    sent_at(r, (0, 0))
    r.delivered(500, 600, M)                     # an ACK was lost: one ACK brings both
    r.delivered(300, 400, M)
    r.update(20)
    assert not r.reo_seen and r.fack == 600


# ---- 6.2 steps 1-2: the most recently sent segment delivered ----------------------------------
def test_rack_xmit_ts_follows_the_latest_sent_segment_delivered_and_its_rtt():
    r = Rack(8)
    sent_at(r, (0, 0), (100, 5), (200, 9))
    r.delivered(100, 200, M)
    r.update(25)
    assert (r.xmit_ts, r.end_seq, r.rtt, r.min_rtt) == (5, 200, 20, 20)
    r.delivered(0, 100, M)                       # sent earlier: RACK.xmit_ts stays
    r.update(30)
    assert (r.xmit_ts, r.end_seq, r.rtt) == (5, 200, 20) and r.min_rtt == 20


# ---- 6.2 step 4: the reordering window ------------------------------------------------------
def test_reo_wnd_is_zero_before_reordering_once_recovering_or_dupthresh_segments_are_sacked():
    r = Rack(8)
    r.min_rtt = 40
    assert r.window(False, 2 * M, M, 50) == 10   # min_RTT / 4
    assert r.window(True, 0, M, 50) == 0         # in recovery, no reordering seen
    assert r.window(False, 3 * M, M, 50) == 0    # DupThresh segments SACKed
    r.reo_seen = True
    assert r.window(True, 3 * M, M, 50) == 10


def test_reo_wnd_is_capped_at_srtt():
    r = Rack(8)
    r.min_rtt = 40
    r.reo_seen = True
    r.reo_mult = 6
    assert r.window(False, 0, M, 50) == 50       # min(6 * 40 / 4, SRTT)


def test_a_dsack_grows_reo_wnd_once_per_round_trip_for_16_recoveries():
    r = Rack(8)
    r.min_rtt = 40
    r.reo_seen = True
    r.dsack(0, 1000)                             # round ends when SND.UNA reaches 1000
    r.dsack(500, 1500)                           # the same round: no second step
    assert r.reo_mult == 2 and r.window(False, 0, M, 100) == 20
    r.dsack(1000, 2000)                          # the next round
    assert r.reo_mult == 3 and r.reo_persist == REO_PERSIST
    for i in range(REO_PERSIST - 1):
        r.recovered()
    assert r.reo_mult == 3
    r.recovered()                                # 16 recoveries without a D-SACK: reset
    assert r.reo_mult == 1


# ---- 6.2 step 5 and 6.3: loss marking and the reordering timer --------------------------------
def test_a_segment_sent_before_the_delivered_one_is_lost_after_rtt_plus_reo_wnd():
    r = Rack(8)
    sent_at(r, (0, 0), (100, 2), (200, 4))       # 0-100 at 0, 100-200 at 2, 200-300 at 4
    rs = ranges((200, 300))
    r.delivered(200, 300, M)
    r.update(24)                                 # RACK.rtt 20
    assert r.detect(rs, 0, 300, 0, 24, 5) == 0   # 0 + 20 + 5 > 24: not yet
    assert r.t_reo == 24 + 3                     # the latest deadline of the two (2 + 25)
    assert r.detect(rs, 0, 300, 0, 25, 5) == 100     # 0-100 lost, 100-200 waits
    assert r.t_reo == 27
    assert r.detect(rs, 0, 300, 0, 27, 5) == 200     # both lost: the timer is off
    assert r.t_reo == 0


def test_nothing_sent_after_the_delivered_segment_is_ever_lost_by_rack():
    r = Rack(8)
    sent_at(r, (0, 0), (200, 10))
    rs = ranges((100, 200))
    r.delivered(100, 200, M)
    r.update(20)
    assert r.detect(rs, 0, 400, 0, 1000, 0) == 200   # 0-100 lost; 200-400 went later:
    assert r.t_reo == 0                                # not judged, no timer for them


def test_retransmitted_bytes_are_left_to_their_own_timing():
    r = Rack(8)
    sent_at(r, (0, 0))
    r.rxt(100)
    rs = ranges((200, 300))
    r.delivered(200, 300, M)
    r.update(20)
    assert r.detect(rs, 0, 300, 0, 100, 0) == 300    # 100-200 lost
    rs = ranges((100, 300))
    assert r.detect(rs, 0, 300, 0, 100, 0) == 0      # 0-100 was resent: not judged here


# ---- against a stack ------------------------------------------------------------------------
def test_reordering_seen_then_a_hole_waits_for_the_reordering_timer():
    """RFC 8985 6.2 step 3: segment 0 arrives after segment 1 (never retransmitted):
    reordering. Then a hole at segment 2 below three SACKed segments is not retransmitted
    at once (RFC 6675's DupThresh would): min_RTT / 4 later the reordering timer (6.3) finds
    it lost and recovery retransmits it (no tail loss probe here: TCP_TLP off)."""
    p = Peer(dict(BIG, TCP_TLP=False))
    una, d, last = filled(p)                         # ten segments at t0
    p.advance(19)                                    # RTT 20 ms
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    assert (sq(una), MSS) not in data_segs(r)        # one segment SACKed: reo_wnd > 0
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(last))   # segment 0 came late
    st = p.tcp.stats
    rk = p.tcb().sb.rack
    assert st.rack_reordering == 1 and rk.reo_seen and st.tx_retransmits == 0
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 3)]))
    assert (sq(una + 2 * MSS), MSS) not in data_segs(r)
    w = rk.reo_wnd                                   # min(min_RTT / 4, SRTT): the handshake's
    assert w > 0 and rk.t_reo == p.fed.t + w         # RTT (~0 here) made SRTT small
    assert st.sack_recoveries == 0
    out = p.advance(w - 1)
    assert (sq(una + 2 * MSS), MSS) not in data_segs(out)
    out = p.advance(1)
    assert (sq(una + 2 * MSS), MSS) in data_segs(out)
    assert st.rack_reo_timeouts == 1 and st.sack_recoveries == 1 and st.tx_retransmits == 1


def test_before_any_reordering_three_sacked_segments_make_the_hole_lost_at_once():
    """RFC 8985 6.2 step 4: no reordering seen and DupThresh segments SACKed - reo_wnd 0, so
    the hole sent before them is lost as soon as their ACK comes (RFC 6675's pace)."""
    p = Peer(BIG)
    una, d, last = filled(p)
    p.advance(19)
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 3)]))
    assert (sq(una), MSS) in data_segs(r)
    assert p.tcp.stats.sack_recoveries == 1 and p.tcp.stats.rack_reo_timeouts == 0


def test_rack_off_keeps_rfc6675_dupthresh():
    p = Peer(dict(BIG, TCP_RACK=False))
    una, d, last = filled(p)
    assert p.tcb().sb.rack is None
    p.advance(19)
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 2)]))
    assert (sq(una), MSS) not in data_segs(r)
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, 3)]))
    assert (sq(una), MSS) in data_segs(r)


def test_the_ctl_dump_shows_the_options_and_the_reordering_rack_saw():
    """ustack ss -ti (core/ctl.py): ts, sack, ecn, rack, the reordering degree (RFC 8985 6.2
    step 3, in segments, as Linux's reordering:) and how often reordering was seen."""
    from ustack.core import ctl
    p = Peer(dict(BIG, TCP_TLP=False))
    una, d, last = filled(p)
    row = ctl._tcb_row(p.tcb(), p.tcp)
    assert row["ts"] and row["sack"] and not row["ecn"] and row["rack"]
    assert row["reordering"] == 3 and row["reord_seen"] == 0
    p.advance(19)
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 3)]))   # 0-2 late
    p.send(p.seq, una + 4 * MSS, ACK, opts=p.tsopt(last))
    row = ctl._tcb_row(p.tcb(), p.tcp)
    assert row["reord_seen"] == 1 and row["reordering"] == 4          # 4 segments apart
    p2 = Peer(dict(BIG, TCP_RACK=False))
    filled(p2)
    assert not ctl._tcb_row(p2.tcb(), p2.tcp)["rack"]


def test_rack_marks_follow_snd_una_so_sequence_comparisons_never_turn_over():
    """RFC 9293 3.4's modulo-2**32 comparisons hold within 2**31: a mark left behind by
    SND.UNA (nothing resent for 3 GB) would read as ahead of it."""
    r = Rack(8)
    r.dsack(0, 1000)
    for g in (1, 2, 3):                           # SND.UNA moving on, 1 GB at a time
        una = g << 30
        r.cut(una, una)
    r.sent(una, 5)
    r.cut(una, una + 100)
    assert r.rxt_hi == una and r.fack == una and not r.dsack_valid
    r.delivered(una + 50, una + 100, M)           # an original, not "resent"
    assert r.cand_valid and r.fack_next == una + 100
