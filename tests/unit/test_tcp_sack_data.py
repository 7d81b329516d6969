"""RFC 2018 4: "If sent at all, SACK options SHOULD be included in all ACKs which do not ACK
the highest sequence number in the data receiver's queue" - segments that carry data too.
A connection sending while it holds the peer's data out of order puts the SACK blocks on its
data segments, within the option space (40 bytes: 3 blocks beside timestamps, RFC 2018 3)
and within the MSS (RFC 6691: the payload shrinks by the options' length, so no frame grows
past the MTU)."""
import errno
import hashlib
import struct

from ustack.core import socket as so
from ustack.hal.impair import Impair
from tests.twostack import Bench, IP_B
from tests.unit.test_tcp_segments import Peer, ACK, PSH

BIG = {"TCP_SND_BUF": 65536, "TCP_RCV_BUF": 65536, "TCP_OOO_SEGMENTS": 16}


def connected():
    p = Peer(BIG)
    sa = p.connect()  # MSS 1460, timestamps, SACK-permitted, window scale
    t = p.tcb()
    assert t.mss == 1448  # 1460 less the timestamp option
    return p, sa


def data_segments(segs):
    return [s for s in segs if s.data]


def test_rfc2018_4_data_segments_carry_sack_while_we_hold_data_out_of_order():
    p, sa = connected()
    # the peer's data with a hole: 1000 bytes missing, then 500 bytes
    r = p.send(p.seq + 1000, p.rnxt, ACK | PSH, b"b" * 500, opts=p.tsopt(sa))
    assert r and r[0].opts["sack"] == [(p.seq + 1000, p.seq + 1500)]  # the duplicate ACK
    p.sock.send(b"x" * 6000)
    segs = data_segments(p.advance(2))
    assert segs, "nothing sent"
    for s in segs:
        assert s.opts.get("sack") == [(p.seq + 1000, p.seq + 1500)], s
        assert "ts" in s.opts
        # 12 bytes of timestamps and 12 of SACK beside the payload: within the MSS option
        assert len(s.data) + 12 <= 1448, s
    # the MSS less the option: 1436-byte segments (the last 256 bytes wait: Nagle, RFC 896)
    assert [len(s.data) for s in segs] == [1436] * 4
    # the hole filled: full-sized segments again, no SACK option
    r = p.send(p.seq, p.rnxt + 4 * 1436, ACK | PSH, b"a" * 1000, opts=p.tsopt(segs[-1]))
    assert r and "sack" not in r[-1].opts
    p.sock.send(b"y" * 3000)
    segs = data_segments(p.advance(2))
    assert segs and all("sack" not in s.opts for s in segs)
    assert len(segs[0].data) == 1448


def test_rfc2018_3_three_blocks_beside_timestamps_on_a_data_segment():
    p, sa = connected()
    last = sa
    for k in range(4):  # four islands: 100 bytes each, 100 apart, above a hole
        r = p.send(p.seq + 200 * (k + 1), p.rnxt, ACK, b"c" * 100, opts=p.tsopt(last))
        last = r[-1]
    p.sock.send(b"x" * 4000)
    segs = data_segments(p.advance(2))
    assert segs
    for s in segs:
        blocks = s.opts.get("sack")
        assert blocks is not None and len(blocks) == 3, s  # 12 + 4 + 24 = 40 option bytes
        assert blocks[0] == (p.seq + 800, p.seq + 900)      # the most recent first (RFC 2018 4)
        assert len(s.data) + 12 + 28 <= 1460 and len(s.data) <= 1448 - 28, s


def _opts(t, hl):
    """(kind -> value bytes) of a TCP header's options."""
    out = {}
    i = 20
    while i < hl:
        k = t[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        out[k] = bytes(t[i + 2:i + t[i + 1]])
        i += t[i + 1]
    return out


class Wire(Bench):
    """Two stacks; every TCP frame recorded (side, payload length, options, frame length);
    drop(side, seq, n) decides a loss."""

    def __init__(self, config, drop):
        self.frames = []
        self.lose = drop

        def wrap(d, bench):
            side = "a" if d is bench.pa else "b"

            def hook(f):
                if f[12:14] != b"\x08\x00" or f[23] != 6:
                    return False
                ihl = (f[14] & 15) * 4
                t = f[14 + ihl:14 + ((f[16] << 8) | f[17])]
                hl = (t[12] >> 4) * 4
                seq = struct.unpack("!I", t[4:8])[0]
                n = len(t) - hl
                self.frames.append((side, n, _opts(t, hl), len(f)))
                return n > 0 and self.lose(side, seq, n)
            return Impair(d, drop=hook)
        Bench.__init__(self, config, wrap=wrap)


def test_bidirectional_transfer_with_loss_puts_sack_on_data_segments_both_ways():
    """Both ends send 300 KB at once through a wire that loses every 40th data segment in
    each direction: the data segments that go while the sender holds the other direction's
    data out of order carry SACK blocks, no frame exceeds the MTU, both streams arrive
    intact."""
    count = {"a": 0, "b": 0}

    def drop(side, seq, n):
        count[side] += 1
        return count[side] % 40 == 0
    net = Wire(dict(BIG, TCP_SND_BUF=131072, TCP_RCV_BUF=131072), drop)
    srv = net.b.socket(so.AF_INET, so.SOCK_STREAM)
    srv.bind(("", 9000))
    srv.listen(1)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 9000))
    s, _ = srv.accept()
    c.setblocking(False)
    s.setblocking(False)
    size = 300000
    da = bytes(i % 251 for i in range(size))
    db = bytes((i * 7) % 253 for i in range(size))
    sent = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}
    for _ in range(200000):
        for side, sk, d in (("a", c, da), ("b", s, db)):
            if sent[side] < size:
                try:
                    sent[side] += sk.send(d[sent[side]:sent[side] + 16384])
                except OSError as e:  # EAGAIN (MicroPython has no BlockingIOError)
                    assert e.errno == errno.EAGAIN, e
            try:
                got[side] += sk.recv(65536)
            except OSError as e:
                assert e.errno == errno.EAGAIN, e
        if len(got["a"]) == size and len(got["b"]) == size:
            break
        net.advance(1)
    assert hashlib.sha256(got["b"]).digest() == hashlib.sha256(da).digest()
    assert hashlib.sha256(got["a"]).digest() == hashlib.sha256(db).digest()
    for side in ("a", "b"):
        with_sack = [f for f in net.frames if f[0] == side and f[1] > 0 and 5 in f[2]]
        assert len(with_sack) >= 5, (side, len(with_sack))
        for f in with_sack:
            assert 8 in f[2] and (len(f[2][5]) // 8) <= 3     # beside timestamps
    assert max(f[3] for f in net.frames) <= 1514              # nothing past the MTU
    net.close_all()
