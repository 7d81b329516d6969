"""TCP building blocks on their own: sequence arithmetic, rings, the out-of-order table,
RFC 6298 RTO, NewReno, options, the header writer."""
from ustack.core.tcp import seq as S
from ustack.core.tcp.ring import Ring, RingPool
from ustack.core.tcp.ooo import Ooo
from ustack.core.tcp import rto
from ustack.core.tcp.tcb import TCB
from ustack.core.tcp.cc import initial_window, make
from ustack.core.tcp import options
from ustack.core.wire import tcp as w

M = 0xFFFFFFFF


def test_sequence_comparisons_wrap_modulo_2_32():
    assert S.seq_lt(M, 0) and S.seq_gt(0, M) and S.seq_le(5, 5) and S.seq_ge(5, 5)
    assert S.seq_add(M, 2) == 1 and S.seq_sub(1, M) == 2 and S.seq_diff(1, M) == 2
    assert S.seq_diff(M, 1) == -2 and S.seq_between(M - 1, 0, 3) and not S.seq_between(0, 3, 3)
    assert S.seq_max(M, 1) == 1 and S.seq_min(M, 1) == M


def _lcg(seed):
    x = seed
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield x


def test_seq_add_is_always_greater():
    g = _lcg(1)
    for a in [0, 1, M, M - 1, 2 ** 31, 2 ** 31 - 1] + [next(g) * 2 for _ in range(200)]:
        for n in (1, 2, 1000, 2 ** 31 - 1, next(g) % (2 ** 31 - 1) + 1):
            a &= M
            b = S.seq_add(a, n)
            assert S.seq_gt(b, a) and S.seq_lt(a, b) and S.seq_sub(b, a) == n
            assert S.seq_diff(a, b) == -n


def test_a_wire_value_minus_1_borrows_across_the_16_bit_halves():
    """The ISNs a SYN cookie's ACK carries (SEG.SEQ - 1, SEG.ACK - 1), in 16-bit halves."""
    for v in (0x12345678, 0x00010000, 0x12340000, 0, 1, M):
        b = bytes([(v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF])
        want = (v - 1) & M
        assert (S.hi_minus_1(b, 0), S.lo_minus_1(b, 0)) == (want >> 16, want & 0xFFFF)


def test_ring_is_a_fifo_across_wraps():
    g = _lcg(7)
    for rd in range(1, 8):
        r = Ring(64)
        ref = bytearray()
        out = bytearray()
        for i in range(60):
            c = bytes([next(g) & 0xFF for _ in range(next(g) % 51)])
            n = r.write(c, 0, len(c))
            ref += c[:n]
            buf = bytearray(rd * 3)
            k = r.read_into(buf, 0, rd * 3)
            out += buf[:k]
            assert r.count <= r.cap
        buf = bytearray(64)
        out += buf[:r.read_into(buf, 0, 64)]
        assert bytes(out) == bytes(ref)


def test_ring_peek_and_write_at_beyond_count():
    r = Ring(8)
    r.write(b"abcdef", 0, 6)
    r.discard(5)
    r.write_at(3, b"XYZ", 0, 3)  # wraps around the end
    b = bytearray(3)
    r.peek_into(b, 0, 3, 3)
    assert bytes(b) == b"XYZ" and r.count == 1


def test_ring_pool_reuses_rings():
    p = RingPool(2)
    a = p.get(100)
    p.put(a)
    assert p.get(100) is a and p.out == 1
    assert p.get(200) is not a


def test_pooled_ring_holds_storage_only_while_it_has_data():
    p = RingPool(2)
    r = p.get(100)
    assert r.buf is None and p.held == 0
    assert r.write(b"abc", 0, 3) == 0              # no storage yet: nothing taken
    assert r.ensure(p) and r.write(b"abc", 0, 3) == 3 and p.held == 1
    r.trim(p)
    assert r.buf is not None                      # still holds bytes: kept
    b = bytearray(3)
    assert r.read_into(b, 0, 3) == 3 and bytes(b) == b"abc"
    storage = r.buf
    r.trim(p)
    assert r.buf is None and p.held == 0 and p.spare == [storage]
    r2 = p.get(100)
    assert r2.ensure(p)
    r2.write(b"z", 0, 1)
    assert r2.buf is storage                      # the spare buffer is reused, not reallocated
    p.put(r2)
    assert p.held == 0 and p.out == 1


def test_ring_without_storage_refuses_writes_when_the_heap_is_out():
    p = RingPool(2)
    r = p.get(64)

    def no_memory(size):
        return None
    p.take = no_memory
    assert not r.ensure(p) and r.write(b"abc", 0, 3) == 0 and r.count == 0


def test_ooo_merges_and_advances():
    o = Ooo(3)
    assert o.add(100, 110) and o.add(120, 130) and o.add(140, 150)
    assert not o.add(160, 170)  # full: a fourth disjoint range is refused
    assert o.add(110, 120) and o.n == 2  # bridges the first two
    assert (o.start[o.latest], o.end[o.latest]) == (100, 130)
    assert o.advance(90) == 90 and o.advance(100) == 130 and o.n == 1
    assert o.highest(130) == 150 and o.advance(145) == 150 and o.n == 0


def test_ooo_across_sequence_wrap():
    o = Ooo(4)
    o.add(M - 5, 5)
    o.add(5, 10)
    assert o.n == 1 and o.advance(M - 10) == M - 10 and o.advance(M - 5) == 10


def test_rto_rfc6298():
    t = TCB()
    rto.sample(t, 100, 200, 60000)
    assert t.srtt8 >> 3 == 100 and t.rttvar4 >> 2 == 50 and t.rto == 300  # 2.2
    rto.sample(t, 100, 200, 60000)
    assert t.srtt8 >> 3 == 100 and t.rttvar4 >> 2 == 37 and t.rto == 250  # 2.3
    rto.sample(t, 1, 200, 60000)
    assert t.rto >= 200  # 2.4 floor
    t.backoff = 3
    assert rto.current(t, 60000) == t.rto * 8
    t.backoff = 30
    assert rto.current(t, 60000) == 60000  # 5.5 cap


def test_rto_backoff_shift_is_exact_up_to_16_doublings_then_capped():
    """rto.current shifts in 64 bits compiled (rto.pxd): a shift past 32 bits is exact, and
    past 16 doublings the cap applies before any shift."""
    t = TCB()
    t.rto = 0x40000000
    t.backoff = 16
    assert rto.current(t, 1 << 50) == 1 << 46
    t.backoff = 17
    assert rto.current(t, 1 << 50) == 1 << 50
    t.rto = 200
    t.backoff = 16
    assert rto.current(t, 60000) == 60000


def test_initial_window_rfc6928():
    assert initial_window(1460) == 14600 and initial_window(536) == 5360
    assert initial_window(4000) == 14600 and initial_window(9000) == 18000


def test_newreno_slow_start_avoidance_fast_recovery():
    c = make("newreno", 1000)
    assert c.window() == 10000
    c.on_ack(1000, 1000, 10000)
    assert c.window() == 11000  # slow start
    c.ssthresh = 11000
    for i in range(11):
        c.on_ack(1000, 2000 + i * 1000, 11000)
    assert c.window() == 12000  # ~1 MSS per window of ACKs
    assert not c.on_dup_ack(5000, 12000, 17000)
    assert not c.on_dup_ack(5000, 12000, 17000)
    assert c.on_dup_ack(5000, 12000, 17000)  # third: fast retransmit (RFC 5681 3.2)
    assert c.ssthresh == 6000 and c.window() == 9000 and c.in_recovery
    c.on_dup_ack(5000, 12000, 17000)
    assert c.window() == 10000  # inflation
    assert c.on_ack(2000, 7000, 12000)  # partial ACK: retransmit (RFC 6582)
    assert c.in_recovery
    assert not c.on_ack(10000, 17000, 10000)  # full ACK: deflate, leave recovery
    assert not c.in_recovery and c.window() <= 6000
    c.on_rto(8000, 20000)
    assert c.window() == 1000 and c.ssthresh == 4000


def test_newreno_no_second_fast_retransmit_below_recover():
    c = make("newreno", 1000)
    c.on_rto(8000, 50000)
    for i in range(3):
        r = c.on_dup_ack(40000, 8000, 52000)
    assert not r  # RFC 6582 3.2 step 2: ACK not beyond recover


class Scratch:
    pass


def test_options_parse_all_kinds_and_tolerate_garbage():
    b = bytearray(40)
    n = options.write_syn(b, 0, 1460, 7, True, True)
    assert n % 4 == 0
    S.put_rel(b, options.SYN_TS_OFF, 1234, 0, 0)  # the caller fills TSval and TSecr
    S.put_rel(b, options.SYN_TS_OFF + 4, 5678, 0, 0)
    t = Scratch()
    assert options.parse(t, b, 0, n)
    assert t.opt_seen == options.SEEN_MSS | options.SEEN_WS | options.SEEN_TS | options.SEEN_SACK_PERM
    tsval = S.rel_at(b, t.opt_ts_off, 0, 0)
    tsecr = S.rel_at(b, t.opt_ts_off + 4, 0, 0)
    assert (t.opt_mss, t.opt_ws, tsval, tsecr) == (1460, 7, 1234, 5678)
    sack = bytes([1, 1, 5, 18]) + bytes(16)
    assert options.parse(t, sack, 0, len(sack)) and t.opt_sack_blocks == 2
    assert not options.parse(t, bytes([2, 40, 0, 0]), 0, 4)  # length past the end
    assert not options.parse(t, bytes([2, 0, 1, 1]), 0, 4)   # length < 2
    assert options.parse(t, bytes([99, 3, 0, 0]), 0, 4)      # unknown kind skipped


def test_header_writer_layout():
    b = bytearray(20)
    w.write_header(b, 0, 80, 40000, 0x01020304, 0xA0B0C0D0, 32, w.SYN | w.ACK_F, 1234)
    assert b.hex() == "0050 9c40 01020304 a0b0c0d0 80 12 04d2 0000 0000".replace(" ", "")
    assert w.flag_names(w.SYN | w.ACK_F) == "S." and w.flag_names(w.RST) == "R"


def test_ring_storage_starts_at_the_pools_first_size_and_doubles_keeping_every_byte():
    """A ring's storage grows as data needs it (issue 13: a 1 MB window costs 1 MB only
    while the bytes are there), keeping its data and the out-of-order bytes parked beyond
    count in logical order, wrapped or not."""
    p = RingPool(2, 16, 0)
    r = p.get(128)
    assert r.ensure(p, 5) and r.held() == 16
    assert r.write(b"0123456789", 0, 10) == 10
    r.discard(8)                                   # head at 8: the next write wraps
    assert r.write(b"abcdefghijklmn", 0, 14) == 14 and r.count == 16
    assert r.write(b"X", 0, 1) == 0                # the storage held is full
    assert r.ensure(p, 16 + 8 + 4) and r.held() == 32
    r.write_at(24, b"OOO!", 0, 4)                  # out of order, beyond count
    assert r.ensure(p, 100) and r.held() == 128      # doubled past want, never past cap
    got = bytearray(28)
    r.peek_into(got, 0, 0, 28)
    assert bytes(got[:16]) == b"89abcdefghijklmn" and bytes(got[24:]) == b"OOO!"
    assert p.held == 1 and p.big == 128


def test_growth_past_the_first_size_comes_from_one_budget_for_all_rings():
    """RingPool's budget (TCP_MEM) bounds what rings hold beyond their first size together,
    as Linux's tcp_mem does: a ring the budget refuses keeps what it has (a writer sees
    RingPool.limit), a ring with nothing still gets the first size, and storage given back
    is the next ring's to grow into."""
    p = RingPool(2, 16, 64)
    a = p.get(64)
    b = p.get(64)
    assert a.ensure(p, 64) and a.held() == 64 and p.big == 64
    assert b.ensure(p, 64) and b.held() == 16        # refused beyond the first size
    assert p.limit(b) == 16 and p.limit(a) == 64
    assert b.write(b"x" * 20, 0, 20) == 16
    a.trim(p)                                      # empty: storage back, budget free
    assert p.big == 0 and p.limit(b) == 64
    assert b.ensure(p, 32) and b.held() == 32 and p.big == 32
    bb = bytearray(16)
    assert b.read_into(bb, 0, 16) == 16 and bytes(bb) == b"x" * 16
