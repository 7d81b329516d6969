"""Go-back-N after a retransmission timeout resends what was sent, in segments that end at
the old SND.MAX: new data queued meanwhile leaves in segments of its own, as Linux's resends
keep to what was sent. A resend stretched past SND.MAX (a short last segment resent at full
size with new bytes behind it) made tshark call the peer's ACK for those bytes an "ACKed
unseen segment": the fast failure of test_impaired_path (issue 12; a pcap of 2026-12-07,
frame 119: Seq=65280 Len=1448 resending the 257 bytes sent at 65280, frame 122 flagged)."""
from ustack.core import socket as so
from ustack.core.tcp.seq import seq_sub
from tests.unit.test_tcp_segments import ACK
from tests.unit.test_tcp_behaviour import OptPeer, data_segs, sq, MSS, BIG

FIRST = 1664       # a full segment and a short one (216 bytes)
WIN = FIRST >> 7   # the peer's window (its ws=7): exactly what was sent, nothing more goes


def test_a_timeout_resends_up_to_the_old_snd_max_and_new_data_apart():
    p = OptPeer(dict(BIG, TCP_TLP=False), win=WIN)
    sa = p.connect()
    una = sa.seq + 1
    p.sock.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)  # the short segment goes at once
    assert p.sock.send(b"a" * FIRST) == FIRST
    first = data_segs(p.advance(1))
    assert first == [(sq(una), MSS), (sq(una + MSS), FIRST - MSS)]
    assert p.sock.send(b"b" * 5000) == 5000        # queued: the window is full
    assert data_segs(p.advance(5)) == []
    tcb = p.tcb()
    assert seq_sub(tcb.snd_max, tcb.snd_una) == FIRST
    out = p.advance(3000)                           # the retransmission timeout fires
    assert (sq(una), MSS) in data_segs(out)
    # the peer has the first segment, opens its window: the rest of go-back-N
    r = p.send(p.seq, una + MSS, ACK, win=(16 * MSS) >> 7, opts=p.tsopt(out[-1]))
    r += p.advance(5)
    segs = data_segs(r)
    assert (sq(una + MSS), FIRST - MSS) in segs, segs   # the short one, as it was
    for s, n in segs:
        assert not (s < sq(una + FIRST) < s + n), (s, n, segs)  # none straddles SND.MAX
    assert (sq(una + FIRST), MSS) in segs                  # new data, a segment of its own


def test_a_fast_retransmit_resends_the_segment_as_it_was_sent():
    """The same bound for the fast retransmit of the segment at SND.UNA (RFC 5681 3.2,
    retransmit_first): the 256 bytes sent, not 1448 with 1192 never sent (nor offered room
    for by the peer's window) behind them."""
    short = 256
    p = OptPeer(dict(BIG, TCP_SACK=False, TCP_TLP=False), win=short >> 7)
    sa = p.connect(sack=False)
    una = sa.seq + 1
    p.sock.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    assert p.sock.send(b"a" * short) == short
    out = p.advance(1)
    assert data_segs(out) == [(sq(una), short)]
    assert p.sock.send(b"b" * 5000) == 5000        # queued behind it
    assert data_segs(p.advance(1)) == []
    tcb = p.tcb()
    sent = seq_sub(tcb.snd_max, tcb.snd_una)
    r = []
    for _ in range(3):                              # three duplicate ACKs
        r += p.send(p.seq, una, ACK, opts=p.tsopt(out[-1]))
    assert p.tcp.stats.fast_retransmits == 1
    rx = [(s, n) for s, n in data_segs(r) if s == sq(una)]
    assert rx == [(sq(una), min(sent, MSS))], (rx, sent)
    assert sent < MSS  # the window held the rest back: the resend must not carry it
