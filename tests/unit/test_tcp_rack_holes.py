"""Once RACK has seen the path reorder, SACK recovery sends no hole that RACK has not deemed
lost (RFC 8985 6.2-6.3), even when new data cannot go: RFC 6675's NextSeg rule 3 would resend
it at once, and over a reordering path (issue 12's vde2 wirefilter, 1 ms jitter) such holes
are mostly late, not lost - the peer D-SACKs them. Measured over that path, 2 MB from ustack
to Linux: 3.98 resends per dropped frame before (339 D-SACKs in 6 runs), 2.54 after (195)."""
from ustack.core.tcp.seq import seq_sub
from tests.unit.test_tcp_segments import ACK
from tests.unit.test_tcp_behaviour import OptPeer, filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg

WIN = (10 * MSS + 127) >> 7  # the peer's window (scaled by its ws=7): 10 segments, the first flight


def test_a_late_hole_in_recovery_waits_for_racks_verdict_when_no_new_data_can_go():
    p = OptPeer(dict(BIG, TCP_TLP=False), win=WIN)
    una, d, last = filled(p)                         # segments 0-9 at t0, the window full
    assert len(d) == 10
    p.advance(19)                                    # RTT 20 ms
    p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1)]))
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(last))   # segment 0 came late
    st = p.tcp.stats
    tcb = p.tcb()
    rk = tcb.sb.rack
    assert rk.reo_seen and st.tx_retransmits == 0
    # new segments fill the window again; segment 2 is lost: 3-5 SACKed, and once the
    # reordering window has passed RACK's timer starts the recovery with segment 2
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 3)]))
    out = r + p.advance(rk.reo_wnd + 1)
    assert (sq(una + 2 * MSS), MSS) in data_segs(out)
    assert tcb.sb.in_recovery and st.tx_retransmits == 1
    assert seq_sub(tcb.snd_nxt, tcb.snd_una) + MSS > tcb.snd_wnd  # no new data may go
    # segments 7-9 SACKed: 6 is a hole below them, sent in the same tick - not lost before
    # RACK.rtt + reo_wnd has passed; the window is full, so rule 3 would resend it now
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 3),
                                                                   seg(una, 7, 3)]))
    assert (sq(una + 6 * MSS), MSS) not in data_segs(r)
    assert st.tx_retransmits == 1
    # ... and it was only late: SACKed a moment later, never resent
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, last, [seg(una, 3, 7)]))
    out = r + p.advance(50)
    assert (sq(una + 6 * MSS), MSS) not in data_segs(out)
    assert st.rto_expired == 0
    # (a hole that stays unSACKed is resent once RACK's timer deems it lost: test_tcp_rack's
    # test_reordering_seen_then_a_hole_waits_for_the_reordering_timer, test_tcp_lost_rexmit)

