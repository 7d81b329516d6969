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
    from tests.twostack import Bench, IP_B
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
