"""D-SACK generation (RFC 2883): our receiver reports each duplicate segment it gets in the
first SACK block of the ACK that follows it, so the sender can tell a spurious retransmission
from a loss. One segment at a time against a stack (tests/unit/test_tcp_segments.Peer), then
two stacks on the in-memory wire where the sender is ours too. Each test names its section."""
from ustack.core import socket as so
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import BIG
from tests.unit.test_tcp_undo import LateSegment
from tests.twostack import Bench, IP_B

DATA = bytes(range(100))


def acks(r):
    """The stack's replies as (ACK number, SACK blocks)."""
    return [(s.ack, s.opts.get("sack")) for s in r]


def connected(sack=True):
    p = Peer()
    sa = p.connect(sack=sack)
    p.una = sa.seq + 1
    p.sa = sa
    p.s0 = p.seq
    return p


def put(p, a, b):
    """The peer sends DATA[a:b] (offsets from its first data byte)."""
    return p.send(p.s0 + a, p.una, ACK, DATA[a:b], opts=p.tsopt(p.sa))


def closed(p):
    for s in list(p.stack.sockets):
        s.close()
    p.advance(5)
    p.tcp.conns and [p.tcp.drop(t, 0) for t in list(p.tcp.conns)]
    assert p.stack.pool.full(), "packet buffers leaked"


# ---- RFC 2883 4.1.1: a duplicate below the cumulative ACK ------------------------------------
def test_a_segment_received_twice_is_reported_in_the_first_block_of_the_next_ack():
    """RFC 2883 4 (1): the first block of the ACK after a duplicate reports it; here the
    whole segment was already acknowledged, so the block lies below the ACK number."""
    p = connected()
    s0 = p.s0
    put(p, 0, 10)
    p.advance(50)                                      # the delayed ACK went out
    assert acks(put(p, 0, 10)) == [(s0 + 10, [(s0, s0 + 10)])]
    assert p.tcp.stats.dsack_sent == 1
    assert p.sock.recv(100) == DATA[0:10]              # delivered once
    closed(p)


def test_the_dsack_block_is_sent_in_the_next_ack_only():
    """RFC 2883 4 (2): a duplicate is reported in one ACK - the ones after carry no D-SACK."""
    p = connected()
    s0 = p.s0
    put(p, 0, 10)
    p.advance(50)
    put(p, 0, 10)
    r = put(p, 10, 20) + p.advance(50)                 # next in-order data: a plain ACK
    assert acks(r) == [(s0 + 20, None)]
    assert p.tcp.stats.dsack_sent == 1
    closed(p)


def test_a_partly_duplicate_segment_reports_only_its_duplicate_part():
    """RFC 2883 4.1.1 with a partial overlap: bytes 5..9 came before, 10..14 are new; the
    ACK covers 15 and its first block names the duplicate part 5..10."""
    p = connected()
    s0 = p.s0
    put(p, 0, 10)
    p.advance(50)
    assert acks(put(p, 5, 15)) == [(s0 + 15, [(s0 + 5, s0 + 10)])]
    assert p.sock.recv(100) == DATA[0:15]
    closed(p)


def test_a_retransmission_overlapping_stored_out_of_order_data_reports_the_overlap():
    """RFC 2883 4.1.1: the in-order segment 10..30 fills the hole and repeats 20..30 parked
    above it; the ACK covers 30, the overlap is the duplicate."""
    p = connected()
    s0 = p.s0
    put(p, 0, 10)
    put(p, 20, 30)
    assert acks(put(p, 10, 30)) == [(s0 + 30, [(s0 + 20, s0 + 30)])]
    assert p.sock.recv(100) == DATA[0:30]
    closed(p)


# ---- RFC 2883 4.1.2: a duplicate of out-of-order data -----------------------------------------
def test_a_duplicate_above_the_ack_comes_first_then_the_block_that_contains_it():
    """RFC 2883 4 (3) and 4.1.2: a duplicate of data held beyond a hole - first block the
    duplicate, second block the (larger) block that contains it, then the others."""
    p = connected()
    s0 = p.s0
    put(p, 30, 40)
    put(p, 60, 70)
    r = put(p, 30, 40)
    assert acks(r) == [(s0, [(s0 + 30, s0 + 40), (s0 + 30, s0 + 40), (s0 + 60, s0 + 70)])]
    r = put(p, 35, 45)                                 # 35..40 repeated, 40..45 new
    assert acks(r) == [(s0, [(s0 + 35, s0 + 40), (s0 + 30, s0 + 45), (s0 + 60, s0 + 70)])]
    r = put(p, 45, 50)                                 # new data only: no D-SACK
    assert acks(r) == [(s0, [(s0 + 30, s0 + 50), (s0 + 60, s0 + 70)])]
    assert p.tcp.stats.dsack_sent == 2
    put(p, 0, 30)
    put(p, 50, 60)
    assert p.sock.recv(100) == DATA[0:70]
    closed(p)


def test_without_sack_negotiated_a_duplicate_gets_a_plain_ack():
    """RFC 2883 4: D-SACK is an extension of SACK - only where SACK-permitted was agreed."""
    p = connected(sack=False)
    s0 = p.s0
    put(p, 0, 10)
    p.advance(50)
    assert acks(put(p, 0, 10)) == [(s0 + 10, None)]
    assert p.tcp.stats.dsack_sent == 0
    closed(p)


# ---- two stacks: our sender reads our receiver's D-SACKs ------------------------------------
def test_two_stacks_a_reordered_segment_is_dsacked_and_the_recovery_undone():
    """Without timestamps (no Eifel) a segment overtaken by the next ones is fast-retransmitted
    (RFC 6675); the original arrives first, so the receiver D-SACKs the retransmission (RFC
    2883 4.1.1), and the sender, seeing every retransmission of the episode duplicated, undoes
    the window reduction (RFC 3708 3) and widens RACK's reordering window (RFC 8985 6.2)."""
    late = []

    def wrap(d, bench):
        if d is bench.pa:
            late.append(LateSegment(d))
            return late[0]
        return d
    b = Bench(dict(BIG, TCP_TIMESTAMPS=False), wrap=wrap)
    srv = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    srv.bind(("", 9000))
    srv.listen(1)
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 9000))
    s, _ = srv.accept()
    srv.close()
    c.setblocking(False)
    s.setblocking(False)
    b.pump()
    data = bytes((i * 7) & 0xFF for i in range(40000))
    late[0].want = -2
    sent = 0
    got = bytearray()
    buf = bytearray(65536)
    end = b.t + 5000
    while len(got) < len(data) and b.t < end:
        if sent < len(data):
            try:
                sent += c.send(data[sent:sent + 8192])
            except OSError:
                pass
        try:
            n = s.recv_into(buf)
            got += buf[:n]
        except OSError:
            pass
        b.advance(1)
    sa, sb = b.a.tcp.stats, b.b.tcp.stats
    assert bytes(got) == data and late[0].late == 1
    assert sa.fast_retransmits == 1 and sb.dsack_sent == 1 and sa.rx_dsack == 1
    assert sa.spurious_dsack == 1 and sa.cc_undos == 1 and sa.rack_reo_wnd_grown == 1
    assert sa.rto_expired == 0
    c.close()
    s.close()
    b.close_all()


# ---- the sender: D-SACKs widen RACK's reordering window, also on a LAN -----------------------
def test_on_a_lan_where_min_rtt_reads_0_ms_each_dsack_round_widens_reo_wnd_by_a_tick():
    """RFC 8985 6.2 step 4: each round with a D-SACK grows reo_wnd (reo_wnd_mult * min_RTT /
    4). On a LAN min_RTT reads 0 ms on our 1 ms clock, so the product never grows: the 1 ms
    floor times the multiplier does instead, up to REO_WND_FLOOR_MAX_MS. Found in the long
    interop run (benchmarks/impaired.py --long): with 1-2 ms of reordering ustack resent 6
    segments per drop, the D-SACKs for them changing nothing."""
    from ustack.core.tcp.rack import Rack, REO_WND_FLOOR_MAX_MS
    r = Rack(8)
    r.min_rtt = 0
    r.reo_seen = True
    assert r.window(False, 0, 1000, 1) == 1
    r.dsack(0, 1000)
    assert r.window(False, 0, 1000, 1) == 2
    r.dsack(1000, 2000)
    r.dsack(2000, 3000)
    r.dsack(3000, 4000)
    r.dsack(4000, 5000)
    assert r.reo_mult == 6 and r.window(False, 0, 1000, 1) == REO_WND_FLOOR_MAX_MS
    r2 = Rack(8)                                 # a longer path: RFC 8985's rule unchanged
    r2.min_rtt = 40
    r2.reo_seen = True
    r2.reo_mult = 6
    assert r2.window(False, 0, 1000, 50) == 50
