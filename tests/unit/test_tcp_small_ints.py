"""TCP keeps every per-segment quantity a small int on a 32-bit MicroPython port.

There, small ints are 31-bit (|v| < 2**30) and anything larger is a heap object; TCP sequence
numbers, ACKs, ISNs and timestamps are uniform 32-bit values. So a connection keeps them
relative to per-connection bases (core/tcp/tcb.py, seq.py) and converts in 16-bit halves at
the wire. These tests force both ISNs and both timestamp clocks just below 2**32 (so the wire
values wrap mid-transfer), move data both ways between two stacks, and after every poll check
that every int in both TCBs, their congestion controllers and out-of-order tables, and every
seg_* / opt_* value the segment parser leaves on the TCP object is below 2**30 in absolute
value. (The unix MicroPython port has 62-bit small ints, so heap_lock cannot see this.)"""
from ustack.core import socket as so
from ustack.core.config import make_config
from ustack.core.stats import Counters
from ustack.core.tcp import cc
from ustack.core.tcp.tcb import TCB
from ustack.hal.impair import Impair
from tests.twostack import Bench, IP_B

SMALL = 1 << 30
M32 = 0xFFFFFFFF
CFG = {"TCP_SND_BUF": 65536, "TCP_RCV_BUF": 65536}


def wire_value(rel, hi, lo):
    """A relative value back on the wire: base hi:lo (16-bit halves) + rel, modulo 2**32."""
    return (((hi << 16) | lo) + rel) & M32


def _bad(obj, names, where, bad):
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, int) and not isinstance(v, bool) and not (abs(v) < SMALL):
            bad.append("%s.%s = %d" % (where, n, v))


def slots(cls):
    """Every slot of cls and of the classes it inherits from (CUBIC's own and NewReno's)."""
    names = list(getattr(cls, "__slots__", ()))
    for b in getattr(cls, "__bases__", ()):
        for n in slots(b):
            if n not in names:
                names.append(n)
    return names


def _check_tcb(t, where, bad):
    _bad(t, slots(TCB), where, bad)
    cc = t.cc
    if cc is not None:
        _bad(cc, slots(type(cc)), where + ".cc", bad)
    o = t.ooo
    if o is not None:
        for i in range(o.n):
            for v in (o.start[i], o.end[i]):
                if not (abs(v) < SMALL):
                    bad.append("%s.ooo[%d] = %d" % (where, i, v))


def parser_fields(tcp):
    """The seg_* / opt_* values the segment parser leaves on the TCP object (named once per
    object: dir() of it is costly under MicroPython, and the check runs after every poll)."""
    return [n for n in dir(tcp) if n.startswith("seg_") or n.startswith("opt_")]


def check(bench):
    if bench.fields_a is None:
        bench.fields_a = parser_fields(bench.a.tcp)
        bench.fields_b = parser_fields(bench.b.tcp)
        assert "seg_seq" in bench.fields_a and "opt_mss" in bench.fields_b, bench.fields_a
    bad = []
    for name, st, fields in (("a", bench.a, bench.fields_a), ("b", bench.b, bench.fields_b)):
        tcp = st.tcp
        _bad(tcp, fields, name + ".tcp", bad)
        seen = []
        for t in tcp.conns:
            seen.append(t)
            _check_tcb(t, name + ".tcb", bad)
        for s in st.sockets:
            t = getattr(s, "tcb", None)
            if t is not None and t not in seen:
                _check_tcb(t, name + ".sock.tcb", bad)
    assert not bad, "not small ints on a 32-bit port: " + ", ".join(bad)


class CheckedBench(Bench):
    """Bench whose polls are each followed by the small-int check."""

    def __init__(self, config=None, wrap=None):
        self.polls = 0
        self.fields_a = self.fields_b = None  # Bench's own set-up polls already
        Bench.__init__(self, config, wrap=wrap)

    def advance(self, ms=1):
        self.t += ms
        self.a.poll(self.t)
        check(self)
        self.b.poll(self.t)
        check(self)
        self.polls += 1


def _near_top(isn_a, isn_b, ts_a, ts_b, bench):
    """ISNs and TSval clocks just below 2**32: both wrap during the transfer."""
    bench.a.tcp.isn_hook = lambda lip, lp, rip, rp: isn_a
    bench.b.tcp.isn_hook = lambda lip, lp, rip, rp: isn_b
    # TSval = now + offset (RFC 7323 5.4): wrap ts_a / ts_b ms from now
    bench.a.tcp.ts_hook = lambda lip, lp, rip, rp: (1 << 32) - bench.t - ts_a
    bench.b.tcp.ts_hook = lambda lip, lp, rip, rp: (1 << 32) - bench.t - ts_b


def _pair(bench, port=9000):
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


CHUNK = 8192
P = 4099  # pattern period: a prime, so misplaced bytes show


def _pattern(k):
    """P bytes, repeated to P + CHUNK: the stream's bytes from offset x are [x % P:]."""
    b = bytearray(P + CHUNK)
    for i in range(P + CHUNK):
        j = i % P
        b[i] = (j * k + (j >> 8)) & 0xFF
    return bytes(b)


class Stream:
    """One direction: n bytes of a periodic pattern, checked as they arrive (no copies of
    the whole stream: the MicroPython unit runner has a small heap)."""

    def __init__(self, src, dst, n, k):
        self.src = src
        self.dst = dst
        self.n = n
        self.pat = _pattern(k)
        self.sent = 0
        self.got = 0
        self.bad = 0
        self.buf = bytearray(CHUNK)

    def step(self):
        if self.sent < self.n:
            x = self.sent % P
            m = min(CHUNK, self.n - self.sent)
            try:
                self.sent += self.src.send(self.pat[x:x + m])
            except OSError:
                pass
        try:
            k = self.dst.recv_into(self.buf)
        except OSError:
            k = 0
        if k:
            x = self.got % P
            if bytes(self.buf[:k]) != self.pat[x:x + k]:
                self.bad += 1
            self.got += k

    def ok(self):
        return self.got == self.n and self.bad == 0


def _both_ways(bench, c, s, n, limit_ms):
    """n bytes c -> s and n bytes s -> c at the same time."""
    ab = Stream(c, s, n, 7)
    ba = Stream(s, c, n, 13)
    end = bench.t + limit_ms
    while (ab.got < n or ba.got < n) and bench.t < end:
        ab.step()
        ba.step()
        bench.advance(1)
    return ab, ba


def _close(bench, c, s):
    c.close()
    s.close()
    bench.until(lambda: not bench.a.tcp.conns and not bench.b.tcp.conns, 10 ** 6, 50)
    assert not bench.a.tcp.conns and not bench.b.tcp.conns
    assert bench.pools_full()


def test_relative_sequence_space_stays_small_through_wraps_1mb_each_way():
    bench = CheckedBench(CFG)
    isn_a = (1 << 32) - 300000
    isn_b = (1 << 32) - 700001
    _near_top(isn_a, isn_b, 5, 12, bench)
    t0 = bench.t
    c, s = _pair(bench)
    # the bases are what the wire says: 16-bit halves of the forced ISNs
    assert wire_value(0, c.tcb.iss_hi, c.tcb.iss_lo) == isn_a
    assert wire_value(0, s.tcb.irs_hi, s.tcb.irs_lo) == isn_a
    assert wire_value(0, s.tcb.iss_hi, s.tcb.iss_lo) == isn_b
    assert wire_value(0, c.tcb.irs_hi, c.tcb.irs_lo) == isn_b
    n = 1 << 20
    ab, ba = _both_ways(bench, c, s, n, 10 ** 6)
    assert ab.ok() and ba.ok(), (ab.got, ab.bad, ba.got, ba.bad)
    bench.run(300)  # the last ACKs (delayed) arrive
    # both sequence spaces and both TSval clocks wrapped on the wire
    assert wire_value(c.tcb.snd_una, c.tcb.iss_hi, c.tcb.iss_lo) < isn_a - n
    assert wire_value(s.tcb.snd_una, s.tcb.iss_hi, s.tcb.iss_lo) < isn_b
    assert c.tcb.snd_una == n + 1 and s.tcb.rcv_nxt == n + 1  # relative: SYN + data
    assert wire_value(s.tcb.ts_recent, s.tcb.tsr_hi, s.tcb.tsr_lo) < 1 << 20
    assert wire_value(c.tcb.ts_recent, c.tcb.tsr_hi, c.tcb.tsr_lo) < 1 << 20
    assert bench.t - t0 > 12  # the clocks ran past both TSval wraps
    # no timestamp was taken for an old duplicate across the TSval wraps
    assert bench.a.tcp.stats.rx_paws == 0 and bench.b.tcp.stats.rx_paws == 0
    assert c.tcb.srtt8 > 0 and s.tcb.srtt8 > 0  # RTT samples from the timestamps
    _close(bench, c, s)


def test_the_check_sees_every_controllers_inherited_fields():
    # CUBIC and "none" inherit NewReno's cwnd, ssthresh and recovery point: a big one there
    # is as much a heap object as one in their own slots
    for name in cc.NAMES:
        t = TCB()
        t.cc = cc.make(name, 1448, Counters(cc.CC_COUNTERS), make_config())
        t.cc.cwnd = 1 << 30        # the first that is no small int (compiled: a C int holds it)
        t.cc.recover = -(1 << 31)
        bad = []
        _check_tcb(t, "t", bad)
        assert bad == ["t.cc.cwnd = %d" % (1 << 30), "t.cc.recover = %d" % -(1 << 31)], \
            (name, bad)


def test_small_ints_with_loss_and_reordering_retransmit_and_sack():
    _with_loss(None, 256 << 10)


def test_small_ints_with_loss_for_cubic():
    _with_loss("cubic", 128 << 10)


def test_small_ints_with_loss_for_the_fixed_window():
    _with_loss("none", 64 << 10)


def _with_loss(cc_name, n):
    imps = []

    def wrap(d, bench):
        i = Impair(d, loss=0.03, reorder=0.03, seed=len(imps) + 5)
        imps.append(i)
        return i
    cfg = dict(CFG)
    cfg["TCP_OOO_SEGMENTS"] = 16
    if cc_name is not None:
        cfg["TCP_CC"] = cc_name
    bench = CheckedBench(cfg, wrap=wrap)
    _near_top((1 << 32) - 90000, (1 << 32) - 123457, 10, 40, bench)
    c, s = _pair(bench)
    ab, ba = _both_ways(bench, c, s, n, 10 ** 7)
    if cc_name is not None:
        assert c.tcb.cc.name == cc_name and s.tcb.cc.name == cc_name
    assert ab.ok() and ba.ok(), (ab.got, ab.bad, ba.got, ba.bad)
    ta, tb = bench.a.tcp.stats, bench.b.tcp.stats
    assert ta.tx_retransmits + tb.tx_retransmits > 0
    assert ta.rx_ooo + tb.rx_ooo > 0 and ta.rx_sack_blocks + tb.rx_sack_blocks > 0
    assert sum(i.lost for i in imps) > 0
    for i in imps:
        i.enabled = False
    _close(bench, c, s)
