"""A lost retransmission found without a timeout (RFC 8985 6.2), also when it was not the
segment at SND.UNA when it went out: recovery retransmits holes in order (RFC 6675 NextSeg),
SND.UNA climbs to a later hole whose retransmission was lost, and data sent after it is
SACKed - RACK's rule says that retransmission is lost. Found in the 2 % loss interop run
(tests/interop/test_linux_sack.py): a 200 ms RTO for one such segment."""
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg


def test_a_lost_retransmission_of_a_later_hole_is_sent_again_without_a_timeout():
    """Segments 0 and 2 lost: both retransmitted in the recovery; 0's arrives (SND.UNA moves
    to 2, the ACK echoing the retransmission: no Eifel undo), 2's is lost too. Data sent
    after it is SACKed and the reordering window passes: segment 2 goes again (RFC 8985 6.2
    step 5, lost_rexmits), not after an RTO."""
    p = Peer(BIG)
    una, d, last = filled(p)
    st = p.tcp.stats
    echo = last
    rxt = {}
    k = 1
    while k < 8 and len(rxt) < 2:
        for s in p.send(p.seq, una, ACK, opts=sack_opts(p, echo, [seg(una, 1), seg(una, 3, k)])):
            if s.data and s.seq in (sq(una), sq(una + 2 * MSS)):
                rxt[s.seq] = s
        k += 1
    assert sorted(rxt) == sorted([sq(una), sq(una + 2 * MSS)]), rxt
    top = k + 2                                  # segments SACKed so far: 3 .. top-1
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, rxt[sq(una)],
                                                        [seg(una, 3, top - 3)]))
    echo = r[-1] if r else rxt[sq(una)]
    assert p.tcb().sb.in_recovery
    p.advance(5)
    again = []
    n = top
    while n < top + 12 and (sq(una + 2 * MSS), MSS) not in again:
        n += 1
        r = p.send(p.seq, una + 2 * MSS, ACK, opts=sack_opts(p, echo, [seg(una, 3, n - 3)]))
        again = data_segs(r)
        echo = r[-1] if r else echo
    assert (sq(una + 2 * MSS), MSS) in again and st.lost_rexmits == 1
    assert st.rto_expired == 0 and st.rx_sack_bad == 0
