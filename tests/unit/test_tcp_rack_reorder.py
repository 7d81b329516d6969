"""Issue 12: a retransmission storm through reordering (1 ms jitter each way at sub-ms RTT,
tests/interop/test_impaired_path.py). RACK's rules (RFC 8985 6.2) against what made them fire
needlessly: a grown reordering window held at a fixed 4 ms, the retransmission at SND.UNA
judged with SRTT/4 instead of RACK's window, and the verdicts of a recovery found spurious
left standing. Each test names its RFC section."""
from ustack.core.tcp.rack import Rack
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg

M = 100


def test_dsack_rounds_grow_a_sub_ms_paths_window_up_to_srtt_not_a_fixed_4_ms():
    """RFC 8985 6.2 step 4: reo_wnd = min(reo_wnd_mult * min_RTT / 4, SRTT). At sub-ms RTT
    min_RTT reads 0 ms on the 1 ms clock, so the window is the per-round floor; its bound is
    SRTT (plus two ticks: step 5 compares tick-rounded send times and RACK.rtt), never less
    than 4 ms. It sat at 4 ms while D-SACK rounds asked for more."""
    r = Rack(8)
    r.min_rtt = 0
    r.reo_seen = True
    r.reo_mult = 12                                 # twelve D-SACK rounds
    assert r.window(False, 0, M, 7) == 9            # SRTT 7 ms + 2 ticks
    assert r.window(False, 0, M, 1) == 4            # never below the old bound
    r.reo_mult = 3
    assert r.window(False, 0, M, 7) == 3            # one tick a round until then
    r.min_rtt = 40
    r.reo_mult = 6
    assert r.window(False, 0, M, 50) == 50          # a slow path: the RFC's own product


def reordering_then_a_hole_resent(p):
    """Reordering seen (segment 0 arrives after 1, RFC 8985 6.2 step 3), then segment 2 is
    a hole below SACKed 3-5: the reordering timer finds it lost and recovery resends it.
    Returns (SND.UNA at the start, the retransmission)."""
    una, d, last = filled(p)
    p.advance(19)                                          # RTT 20 ms
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(last))  # segment 0 came late
    rk = p.tcb().sb.rack
    assert rk.reo_seen
    p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 3)]))
    out = p.advance(rk.reo_wnd)
    rtx = [s for s in out if s.data and s.seq == sq(una + 2 * MSS)]
    assert rtx and p.tcb().sb.in_recovery
    return una, rtx[0]


def test_the_retransmission_at_snd_una_is_judged_with_rack_reordering_window():
    """RFC 8985 6.2 step 5 holds for retransmissions too, with the same RACK.reo_wnd: once
    reordering was seen, the resent segment at SND.UNA is lost only when data SACKed after
    it came more than SRTT + RACK.reo_wnd later (or data sent after it was delivered), not
    SRTT + SRTT/4 - at sub-ms RTT that 1/4 read 0 ms, and every reordered SACK resent it."""
    p = Peer(dict(BIG, TCP_TLP=False))
    una, rtx = reordering_then_a_hole_resent(p)
    t = p.tcb()
    sb = t.sb
    rk = sb.rack
    st = p.tcp.stats
    k = 0
    again = False
    while not again and k < 20:                  # originals SACKed, one a millisecond
        k += 1
        out = p.advance(1)
        r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, rtx, [seg(una, 3, 3 + k)]))
        age = p.fed.t - sb.una_rxt_at
        again = st.lost_rexmits == 1
        if not again:
            assert (sq(una + 2 * MSS), MSS) not in data_segs(out + r)
    # resent again only once SRTT + the window had passed since the retransmission
    assert again and age > (t.srtt8 >> 3) + rk.reo_wnd and age >= 6, (age, k)


def test_once_reordering_is_seen_a_hole_not_yet_lost_waits_for_rack_not_nextseg_rule_3():
    """RFC 6675 4 NextSeg rule 3 resends a hole below the highest SACK that is not deemed
    lost when no new data may go; with RACK (RFC 8985 6.2) having seen reordering that hole
    is one its window holds back - resending it defeats the window (issue 12: most of the
    storm's resends were these). The hole goes when RACK's deadline passes (6.2 step 5)."""
    p = Peer(dict(BIG, TCP_TLP=False))
    una, d, last = filled(p, 14 * MSS)            # 14 segments: the last 4 after the ACKs
    p.advance(19)
    r = p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    r += p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(last))  # segment 0 came late
    assert [s.seq for s in r if s.data] == [sq(una + k * MSS) for k in (10, 11, 12, 13)]
    sb = p.tcb().sb
    rk = sb.rack
    p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 3)]))
    out = p.advance(rk.reo_wnd)                   # the reordering timer: segment 2 lost
    assert (sq(una + 2 * MSS), MSS) in data_segs(out) and sb.in_recovery
    out = p.advance(1)                            # 3-9 and 11 SACKed: 10 a hole, sent
    r = p.send(p.seq, una + 2 * MSS, ACK,          # with 11, so not lost yet
               opts=sack_opts(p, last, [seg(una, 3, 7), seg(una, 11)]))
    assert rk.reo_seen and sb.budget > 0 and rk.t_reo > p.fed.t
    assert (sq(una + 10 * MSS), MSS) not in data_segs(out + r)
    due = rk.t_reo
    out = p.advance(due - p.fed.t)                # RACK's deadline for it
    assert (sq(una + 10 * MSS), MSS) in data_segs(out)
    assert p.tcp.stats.rescue_rexmits == 0
