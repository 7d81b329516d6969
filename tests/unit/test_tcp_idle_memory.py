"""What an idle connection holds (issue 13: 100 000 idle connections in under 100 MB). The
out-of-order table is taken only while data waits beyond a hole and given back when the hole
fills; spare tables are kept (bounded) so a lossy path's steady state reuses them instead of
allocating (a heap-locked MCU). Sizes in bytes are checked in tests/ports/test_tcp_cpython.py."""
from ustack.core.tcp import proto
from ustack.core.tcp import tcb as T
from tests.unit.test_ack_burst import connected, in_order, burst


def test_an_idle_or_in_order_connection_holds_no_out_of_order_table():
    p = connected()
    t = p.tcb()
    assert t.ooo is None and t.sb is None
    burst(p, in_order(p, 3))
    assert t.ooo is None
    assert len(p.sock.recv(65536)) == 3 * p.mss


def test_a_hole_takes_a_table_its_fill_gives_it_back_and_the_next_hole_reuses_it():
    p = connected()
    tcp = p.tcp
    t = p.tcb()
    m = p.mss
    spares = tcp.ooo_nspare
    start = p.seq
    segs = in_order(p, 3)
    r = burst(p, segs[0:1] + segs[2:3])  # the second one lost
    held = t.ooo
    assert held is not None and held.n == 1 and tcp.ooo_nspare == spares - 1
    assert r[-1].ack == start + m and "sack" in r[-1].opts   # RFC 2018: reported
    r = burst(p, segs[1:2])
    assert r[-1].ack == start + 3 * m and "sack" not in r[-1].opts
    assert t.ooo is None and tcp.ooo_nspare == spares
    segs = in_order(p, 3)
    burst(p, segs[0:1] + segs[2:3])
    assert t.ooo is held                  # the same table again: nothing allocated
    burst(p, segs[1:2])
    assert t.ooo is None
    got = b""
    while len(got) < 6 * m:
        got += p.sock.recv(65536)
    assert got == b"x" * (6 * m)
    assert tcp.stats.rx_ooo == 2 and tcp.stats.no_memory == 0


def test_no_table_to_be_had_drops_the_segment_beyond_the_hole_and_counts_it():
    """The heap is out and no spare is left: the segment is dropped unacknowledged
    (no_memory, never an exception), the peer's retransmission delivers it later."""
    p = connected()
    tcp = p.tcp
    t = p.tcb()
    m = p.mss
    while tcp.ooo_nspare:
        tcp.ooo_nspare -= 1
        tcp.ooo_spare[tcp.ooo_nspare] = None

    def no_heap(slots):
        raise MemoryError
    made = proto.Ooo
    proto.Ooo = no_heap   # (by hand: tests/micropython's runner has no monkeypatch)
    try:
        start = p.seq
        segs = in_order(p, 3)
        r = burst(p, segs[0:1] + segs[2:3])
    finally:
        proto.Ooo = made
    assert t.ooo is None and tcp.stats.no_memory == 1 and tcp.stats.rx_ooo == 0
    assert r[-1].ack == start + m and "sack" not in r[-1].opts
    r = burst(p, segs[1:3])               # the retransmissions, in order: no table needed
    assert r[-1].ack == start + 3 * m and t.ooo is None


def test_spare_tables_are_bounded():
    p = connected()
    tcp = p.tcp
    tcbs = [T.TCB() for _ in range(3 * proto.OOO_KEEP)]
    for t in tcbs:
        assert tcp.ooo_get(t) is not None
    assert tcp.ooo_nspare == 0
    for t in tcbs:
        tcp.ooo_put(t)
        assert t.ooo is None
    assert tcp.ooo_nspare == proto.OOO_KEEP
    assert len(tcp.ooo_spare) == proto.OOO_KEEP


def test_connections_share_their_address_bytes_and_only_a_listener_has_an_accept_list():
    """Two connections from one peer to one address hold one bytes object for each address
    and one route cache, and an accepted socket no list of its own (issue 13)."""
    from ustack.core import socket as so
    from tests.twostack import Bench, IP_B, pair
    bench = Bench()
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 9))
    ls.listen(4)
    ls.setblocking(False)
    assert isinstance(ls.acc_q, list)
    cs = []
    for _ in range(2):
        c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((IP_B, 9))
        cs.append(c)
    bench.pump(20)
    s1, _ = ls.accept()
    s2, _ = ls.accept()
    t1, t2 = s1.tcb, s2.tcb
    assert t1.local_ip == t2.local_ip and t1.local_ip is t2.local_ip
    assert t1.remote_ip is t2.remote_ip
    assert t1.rc is t2.rc       # the route cache follows from the remote address alone
    assert cs[0].tcb.remote_ip is cs[1].tcb.remote_ip
    assert not isinstance(s1.acc_q, list) and len(s1.acc_q) == 0
    assert s1.getpeername() == cs[0].getsockname()
    ls.close()
    assert not isinstance(ls.acc_q, list)
    bench.close_all()


def test_the_connection_table_is_a_fixed_bucket_list_whose_chains_hold_collisions():
    """TCP.table: made once, a power of two at least TCP_MAX_CONNS long (a dict cost 84 bytes
    a connection at 100 000, issue 13); 4-tuples sharing a bucket chain through tcb.hnext."""
    p = connected()
    tcp = p.tcp
    table = tcp.table
    n = len(table)
    assert isinstance(table, list) and n >= tcp.max_conns and n & (n - 1) == 0
    t0 = p.tcb()
    lip, rip, lport = t0.local_ip, t0.remote_ip, t0.local_port
    rports = []
    r = t0.remote_port + 1
    want = tcp._key(rip, 0, len(rip), r, lport) & tcp.tmask
    while len(rports) < 3:
        if tcp._key(rip, 0, len(rip), r, lport) & tcp.tmask == want:
            rports.append(r)
        r += 1
    made = [tcp.new_tcb(lip, lport, rip, r) for r in rports]
    assert tcp.table is table and len(table) == n
    for t, r in zip(made, rports):
        assert tcp.find(lip, lport, rip, r) is t
    tcp.drop(made[1], 0)      # the middle of the chain
    assert tcp.find(lip, lport, rip, rports[1]) is None
    assert tcp.find(lip, lport, rip, rports[0]) is made[0]
    assert tcp.find(lip, lport, rip, rports[2]) is made[2]
    tcp.drop(made[2], 0)
    tcp.drop(made[0], 0)
    assert all(tcp.find(lip, lport, rip, r) is None for r in rports)
    assert tcp.find(lip, lport, rip, t0.remote_port) is t0


def test_keepalive_options_take_linux_bounds_so_their_times_fit_32_bits():
    """TCP_KEEPIDLE and TCP_KEEPINTVL: 1..32767 s, TCP_KEEPCNT: 1..127, else EINVAL
    (Linux's MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); the times in ms then fit
    the TCB's and the socket's 32-bit fields (issue 13)."""
    from ustack.core import socket as so
    p = connected()
    s = p.sock
    for opt, top in ((so.TCP_KEEPIDLE, 32767), (so.TCP_KEEPINTVL, 32767),
                     (so.TCP_KEEPCNT, 127)):
        for bad in (0, top + 1, 1 << 31):
            try:
                s.setsockopt(so.IPPROTO_TCP, opt, bad)
                raise AssertionError("%d accepted for option %d" % (bad, opt))
            except OSError as e:
                assert e.args[0] == 22, e     # EINVAL
        s.setsockopt(so.IPPROTO_TCP, opt, top)
    s.setsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE, 1)
    t = p.tcb()
    assert t.keep_idle == 32767000 and t.keep_intvl == 32767000 and t.keep_cnt == 127
    assert s.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE) == 32767


def test_idle_connections_share_an_empty_ring_and_take_their_own_only_while_data_waits():
    """An idle connection holds no ring object (issue 13: two 48-byte rings each, 9.6 MB at
    100 000): its TCB points at the pool's shared empty ring of each cap, which never holds a
    byte. Sending or receiving takes a ring of its own (from the pool's idle ones), and it
    goes back once its data is read or acknowledged; echoing both ways on two connections at
    once leaves the shared rings empty and every byte where it belongs. (A stack for fewer
    than RING_SHARE_CONNS connections - a board - gives each its own rings: the shared ones
    and their table would cost it more than they save.)"""
    from ustack.core import socket as so
    from ustack.core.tcp.proto import RING_SHARE_CONNS
    from tests.twostack import Bench, IP_B, pair
    small = Bench(config={"TCP_MAX_CONNS": RING_SHARE_CONNS - 1})
    try:
        assert small.b.tcp.rings.empty is None
        assert small.b.tcp.rings.share(100) is not small.b.tcp.rings.share(100)
    finally:
        small.close_all()
    bench = Bench(config={"TCP_MAX_CONNS": RING_SHARE_CONNS})
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 9))
    ls.listen(4)
    ls.setblocking(False)
    cs = []
    for _ in range(2):
        c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((IP_B, 9))
        cs.append(c)
    bench.pump(20)
    ss = [ls.accept()[0], ls.accept()[0]]
    for s in ss:
        s.setblocking(False)
    pool = bench.b.tcp.rings
    t1, t2 = ss[0].tcb, ss[1].tcb
    assert t1.snd is t2.snd and t1.rcv is t2.rcv and t1.snd.buf is None
    shared = (t1.snd, t1.rcv)
    assert cs[0].tcb.snd is cs[1].tcb.snd     # the other stack's connections too
    for rnd in range(3):
        for i in range(2):
            cs[i].send(b"%d-%d" % (rnd, i) * 300)
        bench.pump(20)
        assert t1.rcv is not t2.rcv and t1.rcv not in shared   # their own while data waits
        for i in range(2):
            got = b""
            while len(got) < len(b"0-0") * 300:
                got += ss[i].recv(65536)
            assert got == b"%d-%d" % (rnd, i) * 300
            ss[i].send(got)
        bench.pump(20)
        for i in range(2):
            back = b""
            while len(back) < len(b"0-0") * 300:
                back += cs[i].recv(65536)
            assert back == b"%d-%d" % (rnd, i) * 300
        bench.run(500)   # the delayed ACKs of the echoes
        # read and acknowledged: the rings went back, the shared ones held nothing
        assert (t1.snd, t1.rcv) == shared and (t2.snd, t2.rcv) == shared
        assert shared[0].buf is None and shared[0].count == 0
        assert shared[1].buf is None and shared[1].count == 0
        assert cs[0].tcb.snd is cs[1].tcb.snd and cs[0].tcb.rcv is cs[1].tcb.rcv
    assert pool.held == 0 and 0 < len(pool.idle) <= pool.keep
    for c in cs + ss:
        c.close()
    ls.close()
    bench.close_all()


def test_a_ring_pool_shares_empty_rings_for_a_few_caps_only():
    """The shared empty rings are bounded (EMPTY_CAPS caps): beyond them a connection gets a
    ring of its own, as before; `own` never hands out the shared ring, `shed` takes a ring
    back only once empty."""
    from ustack.core.tcp.ring import RingPool, EMPTY_CAPS
    p = RingPool(2)
    a = p.share(100)
    assert p.share(100) is a and p.out == 2
    mine = p.own(a)
    assert mine is not a and mine.cap == 100 and p.out == 2
    assert mine.ensure(p) and mine.write(b"abc", 0, 3) == 3
    assert p.shed(mine) is mine               # still holds bytes
    mine.discard(3)
    assert p.shed(mine) is a and p.held == 0 and p.idle == [mine]
    assert p.own(a) is mine                   # the idle ring again: nothing allocated
    for cap in range(1, EMPTY_CAPS):
        p.share(1000 + cap)
    r = p.share(5000)
    assert r not in p.empty.values() and len(p.empty) == EMPTY_CAPS
    assert p.own(r) is r and p.shed(r) is r
    p.put(a)
    p.put(a)
    assert p.empty[100] is a and a not in p.idle


def test_a_connection_gets_its_congestion_controller_with_its_first_send_only():
    """An idle connection holds no congestion controller (issue 13: NewReno's 120 bytes, 12 MB
    at 100 000): cc.of makes it when the first data or FIN is to go, the socket's
    TCP_CONGESTION choice or the board's TCP_CC. A connection that only receives never makes
    one (its ACKs need none); `ss` shows the controller to come."""
    from ustack.core import socket as so
    from ustack.core import ctl
    from tests.twostack import Bench, IP_B, pair
    bench = Bench()
    c, s, ls = pair(bench, 9, [(so.IPPROTO_TCP, so.TCP_CONGESTION, b"cubic")])
    assert c.tcb.cc is None and s.tcb.cc is None
    row = ctl._tcb_row(s.tcb, bench.b.tcp)
    assert row["cc"] == "cubic" and row["cwnd"] > s.tcb.mss and row["ssthresh"] is None
    for _ in range(5):
        c.send(b"q" * 3000)
        bench.pump(20)
        got = b""
        while len(got) < 3000:
            got += s.recv(65536)
        assert got == b"q" * 3000
    assert s.tcb.cc is None and c.tcb.cc is not None and c.tcb.cc.name == "newreno"
    s.send(b"r")
    assert s.tcb.cc is not None and s.tcb.cc.name == "cubic"
    bench.pump(20)
    assert c.recv(10) == b"r"
    # a FIN alone makes one too: the FIN is new sequence space under the window
    c2 = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c2.setblocking(False)
    c2.connect_ex((IP_B, 9))
    bench.pump(20)
    s2, _ = ls.accept()
    assert s2.tcb.cc is None
    t2 = s2.tcb
    s2.close()
    assert t2.cc is not None and t2.cc.name == "cubic" and t2.flags & T.F_FIN_SENT
    bench.close_all()


def test_no_heap_for_the_controller_holds_the_data_back_and_counts_it_never_raises():
    """The heap cannot hold the controller at the first send: no_memory, nothing sent and no
    exception; the send is retried from tick (F_PENDING) and goes once the heap allows."""
    from ustack.core import socket as so
    from ustack.core.tcp import cc as ccmod
    from tests.twostack import Bench, IP_B, pair
    bench = Bench()
    c, s, ls = pair(bench, 9)
    tcp = bench.a.tcp
    t = c.tcb
    una = t.snd_una

    def no_heap(tcp, tcb):
        raise MemoryError
    made = ccmod.for_tcb
    ccmod.for_tcb = no_heap   # (by hand: tests/micropython's runner has no monkeypatch)
    try:
        assert c.send(b"m" * 2000) == 2000
        assert t.cc is None and t.snd_nxt == una and tcp.stats.no_memory == 1
        assert t.flags & T.F_PENDING
    finally:
        ccmod.for_tcb = made
    bench.run(50)   # tick retries the stalled output
    assert t.cc is not None and not (t.flags & T.F_PENDING)
    got = b""
    for _ in range(20):
        bench.pump(5)
        try:
            got += s.recv(65536)
        except OSError:
            pass
        if len(got) >= 2000:
            break
    assert got == b"m" * 2000
    bench.close_all()


def _rebase(snd_side, rcv_side, d):
    """Move one direction's relative sequence space forward by d (modulo 2**32) on both
    ends, bases back by d: the wire values stay the same, the relative ones are as after
    d bytes moved (4 GB, not sent here)."""
    m = 0xFFFFFFFF
    t = snd_side
    base = (((t.iss_hi << 16) | t.iss_lo) - d) & m
    t.iss_hi, t.iss_lo = base >> 16, base & 0xFFFF
    for f in ("snd_una", "snd_nxt", "snd_max", "snd_wl2", "rtt_seq", "ecn_point"):
        setattr(t, f, (getattr(t, f) + d) & m)
    t = rcv_side
    base = (((t.irs_hi << 16) | t.irs_lo) - d) & m
    t.irs_hi, t.irs_lo = base >> 16, base & 0xFFFF
    for f in ("rcv_nxt", "rcv_adv", "snd_wl1", "ooo_fin", "last_ack_sent", "dsack_s",
              "dsack_e"):
        setattr(t, f, (getattr(t, f) + d) & m)


def test_relative_sequence_numbers_wrap_past_2_32_through_loss_and_recovery():
    """The compiled TCB keeps sequence numbers in unsigned 32-bit fields (issue 13: TCB
    480 -> 416 bytes): after 4 GB a connection's relative values pass 2**32 - 1 and wrap to
    0 (seq.py's modulo-2**32 helpers), with loss, SACK recovery and RACK working across the
    wrap and every byte intact, both ways at once."""
    from ustack.hal.impair import Impair
    from tests.twostack import Bench
    from tests.unit.test_tcp_small_ints import _pair, _both_ways, _close, CFG
    imps = []

    def wrap(d, bench):
        i = Impair(d, loss=0.03, reorder=0.03, seed=41 + len(imps))
        imps.append(i)
        return i
    bench = Bench(dict(CFG, TCP_OOO_SEGMENTS=16), wrap=wrap)
    c, s = _pair(bench)
    d = (1 << 32) - 60000   # 60 000 bytes before the relative values wrap
    _rebase(c.tcb, s.tcb, d)
    _rebase(s.tcb, c.tcb, d + 12345)
    assert c.tcb.snd_una > 0xFFFF0000 and s.tcb.rcv_nxt == c.tcb.snd_una
    n = 192 << 10
    ab, ba = _both_ways(bench, c, s, n, 10 ** 7)
    assert ab.ok() and ba.ok(), (ab.got, ab.bad, ba.got, ba.bad)
    bench.run(300)
    assert c.tcb.snd_una == (d + 1 + n) & 0xFFFFFFFF and c.tcb.snd_una < 1 << 20  # wrapped
    assert s.tcb.rcv_nxt == c.tcb.snd_una and c.tcb.rcv_nxt == s.tcb.snd_una
    st = bench.a.tcp.stats
    sb = bench.b.tcp.stats
    assert sum(i.lost for i in imps) > 0 and st.tx_retransmits + sb.tx_retransmits > 0
    assert st.rx_sack_blocks + sb.rx_sack_blocks > 0 and st.rx_ooo + sb.rx_ooo > 0
    assert st.sack_recoveries + sb.sack_recoveries > 0
    for i in imps:
        i.enabled = False
    _close(bench, c, s)


def test_a_listeners_keepalive_idle_time_alone_keeps_the_boards_interval_and_count():
    """A listener that sets SO_KEEPALIVE and TCP_KEEPIDLE only: its connections probe after
    that idle time, then every TCP_KEEPINTVL_MS, up to TCP_KEEPCNT probes (the options it
    did not set are the board's, as on Linux). The SYN path copied all three whenever
    TCP_KEEPIDLE was set - an interval and a count of 0: the connection timed out at its
    first idle deadline without one probe, an answering peer or not."""
    from ustack.core import socket as so
    from tests.unit.test_tcp_states import Net
    from tests.twostack import IP_B
    net = Net()
    ls = net.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.setsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE, 1)
    ls.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE, 10)
    ls.bind(("", 7))
    ls.listen(2)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = ls.accept()
    t = s.tcb
    tcp = net.b.tcp
    assert t.keep_idle == 10000 and t.keep_intvl == tcp.keep_intvl and \
        t.keep_cnt == tcp.keep_cnt, (t.keep_idle, t.keep_intvl, t.keep_cnt)
    assert s.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE) == 10       # inherited, as on Linux
    assert s.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPCNT) == tcp.keep_cnt
    net.jump(25000)
    assert tcp.stats.keepalive_probes == 1 and t.state == T.ESTABLISHED   # answered
    c.close()
    s.close()
    ls.close()
    net.jump(10 ** 6, lambda: not net.a.tcp.conns and not net.b.tcp.conns)
