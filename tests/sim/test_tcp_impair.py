"""TCP over the impairment wrapper (hal/impair.py): transfers survive seeded loss,
duplication, reordering, corruption and delay, checked by SHA-256; the wrapper itself is
deterministic per seed."""
import hashlib

import pytest

from ustack.core import socket as so
from ustack.hal.impair import Impair
from tests.twostack import Bench, IP_B

BIG = {"TCP_SND_BUF": 262144, "TCP_RCV_BUF": 262144, "TCP_OOO_SEGMENTS": 32, "PBUF_COUNT": 256,
       "RX_BATCH": 256, "TCP_MAX_RETRIES": 30}


class ImpairedBench(Bench):
    def __init__(self, config=None, **imp):
        self.imps = []

        def wrap(d, bench):
            i = Impair(d, clock=bench.clock, seed=len(self.imps) + imp.pop("seed", 1), **imp)
            self.imps.append(i)
            return i
        Bench.__init__(self, config, wrap=wrap)
        self.wire.depth = 1 << 20

    def idle_jump(self):
        """Nothing on the wire and nothing delayed: jump virtual time to the next deadline."""
        if self.pa.pending() or self.pb.pending():
            return False
        nd = [s.next_timer for s in (self.a, self.b) if s.next_timer]
        nd += [i.next_release() for i in self.imps if i.next_release()]
        if not nd:
            return False
        t = min(nd)
        if t > self.t + 1:
            self.t = t - 1
        return True


def pair(bench, port=9000):
    srv = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    srv.bind(("", port))
    srv.listen(1)
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, port))
    s, _ = srv.accept()
    srv.close()
    c.setblocking(False)
    s.setblocking(False)
    return c, s


def transfer(bench, c, s, data, limit_ms=10 ** 8):
    """Send data from c to s (non-blocking, virtual time); returns what s received."""
    mv = memoryview(data)
    sent = 0
    got = hashlib.sha256()
    n_got = 0
    buf = bytearray(262144)
    end = bench.t + limit_ms
    while n_got < len(data) and bench.t < end:
        progress = False
        if sent < len(data):
            try:
                k = c.send(mv[sent:sent + 262144])
                sent += k
                progress = k > 0
            except BlockingIOError:
                pass
        try:
            n = s.recv_into(buf)
            if n:
                got.update(memoryview(buf)[:n])
                n_got += n
                progress = True
        except BlockingIOError:
            pass
        if not progress:
            bench.idle_jump()
        bench.advance(1)
    return n_got, got.hexdigest()


def finish(bench, c, s):
    c.close()
    s.close()
    bench.until(lambda: not bench.a.tcp.conns and not bench.b.tcp.conns, 10 ** 6, 100)
    for i in bench.imps:
        i.flush()
    bench.pump()
    assert bench.pools_full()
    assert bench.a.tcp.rings.out == 0 and bench.b.tcp.rings.out == 0


def test_10mb_at_5_percent_loss_arrives_intact():
    bench = ImpairedBench(BIG, loss=0.05, seed=7)
    c, s = pair(bench)
    data = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(65536)) * 160  # 10 MiB
    n, digest = transfer(bench, c, s, data)
    assert n == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
    st = bench.a.tcp.stats
    assert sum(i.lost for i in bench.imps) > 300
    assert st.fast_retransmits > 0 and st.tx_retransmits > 0
    assert bench.b.tcp.stats.rx_ooo > 0
    finish(bench, c, s)


def test_transfer_survives_dup_reorder_corrupt_and_delay():
    bench = ImpairedBench(BIG, loss=0.02, dup=0.02, reorder=0.05, corrupt=0.01, delay_ms=5,
                          jitter_ms=3, seed=3)
    c, s = pair(bench)
    data = bytes(range(256)) * 4096  # 1 MiB
    n, digest = transfer(bench, c, s, data)
    assert n == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
    imps = bench.imps
    assert sum(i.duplicated for i in imps) and sum(i.reordered for i in imps)
    assert sum(i.corrupted for i in imps)
    assert bench.a.tcp.stats.rx_bad_csum + bench.b.tcp.stats.rx_bad_csum + \
        bench.a.ipv4.stats.rx_bad_csum + bench.b.ipv4.stats.rx_bad_csum > 0
    finish(bench, c, s)


class Sink:
    mac = b"\x02\0\0\0\0\x01"
    mtu = 1500

    def __init__(self):
        self.frames = []

    def send(self, buf, n):
        self.frames.append(bytes(buf[:n]))
        return True


def test_impair_is_deterministic_per_seed():
    def run(seed):
        k = Sink()
        imp = Impair(k, loss=0.3, dup=0.2, reorder=0.2, corrupt=0.1, seed=seed)
        for i in range(200):
            imp.send(bytes([i]) * 60, 60)
        imp.flush()
        return k.frames, (imp.lost, imp.duplicated, imp.reordered, imp.corrupted)
    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a != c
    frames, (lost, dup, reo, cor) = a
    assert 30 < lost < 90 and dup > 10 and reo > 10 and cor > 5
    firsts = [f[59] for f in frames]
    assert firsts != sorted(firsts)  # reordered


def test_impair_delay_follows_the_clock():
    t = [0]
    k = Sink()
    imp = Impair(k, delay_ms=10, clock=lambda: t[0])
    imp.send(b"a" * 60, 60)
    assert k.frames == [] and imp.next_release() == 10
    t[0] = 9
    imp.service = imp.service  # the wrapped Sink has no service(); release directly
    imp._release()
    assert k.frames == []
    t[0] = 10
    imp._release()
    assert k.frames == [b"a" * 60]


def test_impair_needs_clock_for_delay():
    with pytest.raises(ValueError):
        Impair(Sink(), delay_ms=5)
