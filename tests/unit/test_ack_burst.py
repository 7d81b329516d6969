"""One ACK decision per receive burst (issue 13): in-order full-sized segments read in one poll
are acknowledged once at the end of the burst, or at once every TCP_ACK_BURST of them, within
RFC 9293 3.8.6.3 / RFC 5681 4.2's rule (an ACK for at least every second full-sized segment:
here, per burst, as Linux does for a GRO batch). Out-of-order segments and hole fills are
still acknowledged at once."""
from tests.unit.test_tcp_segments import Peer, tcp_frame, Seg, ACK


def burst(peer, segs):
    """Feed the (seq, data) segments as one burst: all read by one poll. The stack's TCP
    segments sent during that poll."""
    sa = peer.sa
    una = sa.seq + 1
    drv = peer.fed.drv
    for seq, data in segs:
        drv.rx.append(tcp_frame(seq, una, ACK, data, opts=peer.tsopt(sa)))
    peer.stack.poll(peer.fed.t)
    out = drv.tx[:]
    drv.tx.clear()
    return [Seg(f) for f in out if f[12:14] == b"\x08\x00" and f[23] == 6]


def connected(ack_burst=None):
    p = Peer({"TCP_ACK_BURST": ack_burst} if ack_burst else None)
    p.sa = p.connect()
    p.mss = p.tcb().mss
    return p


def in_order(p, n, size=None):
    """n back-to-back segments from the peer's next sequence number on."""
    size = size or p.mss
    segs = []
    for _ in range(n):
        segs.append((p.seq, b"x" * size))
        p.seq += size
    return segs


def test_a_burst_of_full_segments_gets_one_ack_at_its_end():
    p = connected(ack_burst=8)
    r = burst(p, in_order(p, 6))
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]  # one ACK, covering all six
    assert p.tcp.stats.burst_acks == 1


def test_a_long_burst_is_still_acked_every_ack_burst_segments():
    p = connected(ack_burst=4)
    start = p.seq
    r = burst(p, in_order(p, 10))
    m = p.mss
    # at the 4th and 8th segment at once, the last two at the end of the burst
    assert [(s.f, s.ack) for s in r] == [(".", start + 4 * m), (".", start + 8 * m),
                                         (".", start + 10 * m)]


def test_ack_burst_2_acks_every_second_full_segment_at_once():
    p = connected(ack_burst=2)
    start = p.seq
    r = burst(p, in_order(p, 5))
    m = p.mss
    assert [s.ack for s in r] == [start + 2 * m, start + 4 * m]
    # the fifth waits for the delayed-ACK timer (RFC 9293 3.8.6.3: under 0.5 s)
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [s.ack for s in r] == [start + 5 * m]


def test_one_full_segment_alone_still_waits_for_the_delayed_ack_timer():
    p = connected()
    assert burst(p, in_order(p, 1)) == []
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]
    assert p.tcp.stats.burst_acks == 0


def test_a_gap_in_a_burst_is_acked_at_once_and_its_fill_too():
    """RFC 5681 4.2: out-of-order data and a hole's fill get an immediate ACK."""
    p = connected()
    start = p.seq
    m = p.mss
    segs = in_order(p, 4)
    r = burst(p, segs[0:1] + segs[2:4])  # the second one lost
    assert [s.ack for s in r] == [start + m, start + m]  # a duplicate ACK per segment beyond
    assert "sack" in r[-1].opts
    r = burst(p, segs[1:2])
    assert [s.ack for s in r] == [start + 4 * m]  # the hole filled: at once


def test_small_segments_below_two_full_ones_wait_for_the_timer():
    p = connected()
    r = burst(p, in_order(p, 3, size=100))
    assert r == []
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [s.ack for s in r] == [p.seq]
