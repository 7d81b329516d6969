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
