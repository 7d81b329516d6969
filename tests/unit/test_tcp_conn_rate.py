"""The connection-rate path (issue 13): opening and closing connections costs the same whether
the table is empty or full - a table full of TIME-WAIT (a server that closes first) gives
its oldest to a new connection without a walk over the table."""
import random

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.tcp import proto
from tests.unit.test_tcp_states import Net, IP_B, listener, close_all

CONNS = proto.TW_QUEUE_CONNS  # the smallest table that queues its TIME-WAIT connections


class Walks(list):
    """A connection table that counts the walks over it."""
    walks = 0

    def __iter__(self):
        Walks.walks += 1
        return iter(self[:])  # a plain list's iterator (MicroPython's list has no __iter__)


def server_closes_first(net, srv):
    """One connection to srv's port 7 that the server closes first (it ends in TIME-WAIT
    there): its server-side TCB."""
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = srv.accept()
    t = s.tcb
    s.sendall(b"x")
    s.close()
    assert c.recv(10) == b"x" and c.recv(10) == b""
    c.close()
    net.jump(50, lambda: t.state == T.TIME_WAIT and not net.a.tcp.conns)
    assert t.state == T.TIME_WAIT
    return t


def test_full_table_recycles_the_oldest_time_wait_without_walking_the_table():
    cfg = {"TCP_MAX_CONNS": CONNS, "SOCKETS": 2 * CONNS}
    net = Net(cfg)
    srv = listener(net.b, backlog=8)
    tcp = net.b.tcp
    waiting = [server_closes_first(net, srv) for _ in range(CONNS)]
    assert len(tcp.conns) == CONNS and tcp.tw is not None
    slots = len(tcp.tw.q)
    tcp.conns = Walks(tcp.conns)
    for i in range(3 * CONNS):
        Walks.walks = 0
        t = server_closes_first(net, srv)
        assert Walks.walks == 0, "a new connection walked the table"
        # the one longest in TIME-WAIT made room, the others wait on
        gone = waiting.pop(0)
        assert gone.state == T.CLOSED and gone not in tcp.conns
        assert all(w.state == T.TIME_WAIT for w in waiting)
        waiting.append(t)
        assert len(tcp.conns) == CONNS
    assert len(tcp.tw.q) == slots  # fixed slots, made once
    tcp.conns = list(tcp.conns)
    close_all(net)


def test_time_wait_connections_that_ended_are_skipped():
    """Those that left TIME-WAIT (2*MSL over, a new SYN took the 4-tuple: dropped) are not
    recycled again: the next oldest still waiting is."""
    net = Net({"TCP_MAX_CONNS": CONNS, "SOCKETS": 2 * CONNS})
    srv = listener(net.b, backlog=8)
    tcp = net.b.tcp
    waiting = [server_closes_first(net, srv) for _ in range(CONNS)]
    for t in waiting[:5]:
        tcp.drop(t, 0)  # what their 2*MSL timer does
    for t in waiting[:5]:
        assert t.state == T.CLOSED
    waiting = waiting[5:]
    for _ in range(6):
        server_closes_first(net, srv)
    assert waiting[0].state == T.CLOSED and all(w.state == T.TIME_WAIT for w in waiting[1:])
    close_all(net)


def test_small_table_keeps_no_queue_and_still_recycles():
    """A board's table (below TW_QUEUE_CONNS) spends nothing on the queue; it finds the
    oldest TIME-WAIT by a short walk."""
    net = Net({"TCP_MAX_CONNS": 4})
    srv = listener(net.b, backlog=2)
    assert net.b.tcp.tw is None
    first = [server_closes_first(net, srv) for _ in range(4)]
    server_closes_first(net, srv)
    assert first[0].state == T.CLOSED and all(t.state == T.TIME_WAIT for t in first[1:])
    close_all(net)


def test_time_wait_queue_against_a_model():
    """Pushes, pops and endings in any mix: the queue pops in entry order, skipping those
    that ended, and never grows (squeezed in place, the ring wrapping anywhere)."""
    rnd = random.Random(13)
    for n in (64, 100, 257):
        q = proto.TimeWaitQueue(n)
        slots = len(q.q)
        model = []   # live TIME-WAIT TCBs in entry order
        for step in range(20 * n):
            r = rnd.random()
            if r < 0.5 and len(model) < n:
                t = T.TCB()
                t.state = T.TIME_WAIT
                q.push(t)
                model.append(t)
            elif r < 0.75 and model:
                t = model.pop(rnd.randrange(len(model)))
                t.state = T.CLOSED  # it ended (expired, reused)
            else:
                got = q.pop()
                want = model.pop(0) if model else None
                assert got is want, step
                if got is not None:
                    got.state = T.CLOSED  # the table recycled it
            assert len(q.q) == slots and q.n <= slots


def test_one_secret_hash_gives_a_connection_its_iss_and_timestamp_offset():
    """RFC 6528 3's F(4-tuple, secret) is computed once per connection, both ends: the ISS
    is the 4-microsecond clock plus it, our TSval offset a mix of it (RFC 7323 5.4)."""
    net = Net()
    srv = listener(net.b)
    calls = []
    for st in (net.a, net.b):
        tcp = st.tcp
        f = tcp._hash

        def counted(lip, lport, rip, rport, f=f, tcp=tcp):
            calls.append(tcp)
            return f(lip, lport, rip, rport)
        tcp._hash = counted
    t0 = net.t
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = srv.accept()
    # the client's other F picks its port (RFC 6056 algorithm 4)
    assert calls.count(net.a.tcp) == 2 and calls.count(net.b.tcp) == 1
    for sock, tcp in ((c, net.a.tcp), (s, net.b.tcp)):
        t = sock.tcb
        f = tcp._hash(t.local_ip, t.local_port, t.remote_ip, t.remote_port)
        m = (((t.iss_hi << 16) | t.iss_lo) - f) & proto.MASK
        assert m % 250 == 0 and t0 * 250 <= m <= net.t * 250
        ts = (proto._fmix(f ^ tcp.key[1]) + t.ts_start) & proto.MASK
        assert (t.ts_hi, t.ts_lo) == (ts >> 16, ts & 0xFFFF)
    c.close()
    s.close()
    srv.close()
    close_all(net)


def test_isn_hook_still_picks_the_iss():
    net = Net()
    srv = listener(net.b)
    net.b.tcp.isn_hook = lambda lip, lport, rip, rport: 0x12345678
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = srv.accept()
    assert (s.tcb.iss_hi, s.tcb.iss_lo) == (0x1234, 0x5678)
    c.close()
    s.close()
    srv.close()
    close_all(net)


def test_accept_conn_is_accept_without_the_peer_address():
    import errno
    import pytest
    net = Net()
    srv = listener(net.b)
    srv.setblocking(False)
    with pytest.raises(OSError) as e:
        srv.accept_conn()
    assert e.value.errno == errno.EAGAIN
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    net.pump()
    s = srv.accept_conn()
    assert s.getpeername() == c.getsockname() and s.getsockname() == c.getpeername()
    assert s in net.b.sockets and s.tcb.sock is s and s.tcb.listener is None
    c.sendall(b"hi")
    net.pump()
    assert s.recv(10) == b"hi"
    other = net.b.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        other.accept_conn()
    assert e.value.errno == errno.EINVAL  # not listening, as accept()
    for x in (c, s, srv, other):
        x.close()
    close_all(net)


def _short(net, srv, n):
    """n connections to srv's port 7, each server side sending a byte (its first data: the
    connection makes its scoreboard) and holding the client's byte unread: [(client,
    server)] once both bytes have arrived."""
    pairs = []
    for _ in range(n):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = srv.accept()
        c.sendall(b"c")
        s.sendall(b"s")
        pairs.append((c, s))
    net.jump(50, lambda: all(c.readable() and s.readable() for c, s in pairs))
    return pairs


def _end(net, pairs):
    for c, s in pairs:
        assert c.recv(10) == b"s" and s.recv(10) == b"c"
        c.close()
        s.close()
    net.jump(10 ** 6, lambda: not net.b.tcp.conns)
    assert not net.b.tcp.conns


def _slots(o):
    """o's fields but its parts (a scoreboard's range set and RACK) and RACK's run log,
    whose slots beyond its count n are not read."""
    return dict((k, getattr(o, k)) for k in type(o).__slots__
                if k not in ("rs", "rack", "seq", "ts", "freed"))


def test_short_connections_take_spare_scoreboards_back_as_new():
    """Issue 13: a connection makes its SACK scoreboard (seven objects) with its first data;
    where the table is large, those of closed connections serve the next ones, each reset
    to what a new one holds, whatever its last connection left in it."""
    from ustack.core.tcp.scoreboard import Scoreboard
    net = Net({"TCP_MAX_CONNS": CONNS, "SOCKETS": 2 * CONNS})
    srv = listener(net.b, backlog=16)
    tcp = net.b.tcp
    pairs = _short(net, srv, 16)
    boards = [s.tcb.sb for _, s in pairs]
    assert all(b is not None for b in boards) and len(set(map(id, boards))) == 16
    b = boards[0]  # left mid-recovery, SACKed ranges and RACK log in it
    b.in_recovery = True
    b.sacked = 100
    b.tlp_out = True
    b.rs.add(1000, 1100)
    b.rack.sent(5, 77)
    b.rack.reo_seen = True
    _end(net, pairs)
    assert len(tcp.sb_spare) == 16
    tcp.stack.now += 1  # a later poll
    new = Scoreboard(tcp.sack_slots, tcp.rack_slots)
    taken = []
    while tcp.sb_spare:
        t = T.TCB()
        t.flags |= T.F_SACK
        sb = tcp.scoreboard(t)
        assert t.sb is sb and any(sb is o for o in boards)
        assert _slots(sb) == _slots(new)
        assert (sb.rs.n, sb.rs.latest) == (new.rs.n, new.rs.latest)
        assert _slots(sb.rack) == _slots(new.rack)
        taken.append(t)
    assert len(taken) == 16
    for t in taken:
        tcp.release_buffers(t, True)
    assert len(tcp.sb_spare) == 16
    # in the poll that gave them back, a new connection gets a new one: the dropped
    # connection's own code (an ACK's processing whose socket event opened and fed this
    # one) may still hold its scoreboard
    t = T.TCB()
    t.flags |= T.F_SACK
    sb = tcp.scoreboard(t)
    assert sb is not None and not any(sb is o for o in boards) and len(tcp.sb_spare) == 16
    tcp.stack.now += 1
    t2 = T.TCB()
    t2.flags |= T.F_SACK
    sb2 = tcp.scoreboard(t2)
    assert any(sb2 is o for o in boards) and len(tcp.sb_spare) == 15
    tcp.release_buffers(t, True)
    tcp.release_buffers(t2, True)
    # bounded: no more spares than KEEP_MANY
    many = [T.TCB() for _ in range(proto.KEEP_MANY + 3)]
    for t in many:
        t.sb = Scoreboard(tcp.sack_slots, tcp.rack_slots)
        tcp.release_buffers(t, True)
    assert len(tcp.sb_spare) == proto.KEEP_MANY
    close_all(net)


def test_a_small_table_makes_each_connection_its_own_scoreboard():
    """Boards (tables below RING_SHARE_CONNS) keep no spares, as before."""
    net = Net()
    assert net.b.tcp.max_conns < proto.RING_SHARE_CONNS and net.b.tcp.sb_spare is None
    srv = listener(net.b)
    first = _short(net, srv, 1)
    b = first[0][1].tcb.sb
    _end(net, first)
    again = _short(net, srv, 1)
    assert again[0][1].tcb.sb is not b
    _end(net, again)
    close_all(net)


def test_sixteen_connections_at_once_reuse_their_ring_storage():
    """Issue 13: the bench's 16 connections in flight each hold receive and send storage for
    a moment; where the table is large the pool keeps enough spares for all of them, so the
    next 16 store into the same buffers instead of making new ones (a 64 KB bytearray each
    on a PC: 3 us and brk churn)."""
    net = Net({"TCP_MAX_CONNS": CONNS, "SOCKETS": 2 * CONNS})
    srv = listener(net.b, backlog=16)
    pool = net.b.tcp.rings
    pairs = _short(net, srv, 16)
    assert all(s.tcb.rcv.buf is not None for _, s in pairs)
    _end(net, pairs)
    assert len(pool.spare) >= 16
    kept = list(pool.spare)
    pairs = _short(net, srv, 16)
    for _, s in pairs:
        assert any(s.tcb.rcv.buf is u for u in kept), "new storage made"
    _end(net, pairs)
    close_all(net)


def _fmix_ref(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % (1 << 32)
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % (1 << 32)
    return h ^ (h >> 16)


def _word_ref(a):
    v = int.from_bytes(a[0:4], "big")
    for i in range(4, len(a), 4):
        v = _fmix_ref(v ^ int.from_bytes(a[i:i + 4], "big"))
    return v


def test_the_secret_hash_is_the_murmur3_mix_of_the_4_tuple_on_every_core():
    """RFC 6528 3's F in C integers (proto.pxd) gives what the mix written out in Python
    gives, for 32-bit values with the top bit set and IPv6 addresses too."""
    net = Net()
    tcp = net.b.tcp
    for h in (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678):
        assert proto._fmix(h) == _fmix_ref(h)
    tcp.key = (0xFFFFFFFF, 0x80000001, 0xDEADBEEF, 0x0BADF00D)
    k = tcp.key
    for lip, lport, rip, rport in (
            (bytes([192, 0, 2, 2]), 7, bytes([192, 0, 2, 1]), 40000),
            (bytes([255] * 4), 65535, bytes([203, 0, 113, 255]), 65535),
            (bytes.fromhex("20010db8000000000000000000000001"), 443,
             bytes.fromhex("20010db8ffffffffffffffffffffffff"), 1)):
        h = _fmix_ref(k[0] ^ _word_ref(lip))
        h = _fmix_ref(h ^ k[1] ^ _word_ref(rip))
        h = _fmix_ref(h ^ k[2] ^ ((lport << 16) | rport))
        assert tcp._hash(lip, lport, rip, rport) == _fmix_ref(h ^ k[3])
        assert tcp._hash(bytearray(lip), lport, bytearray(rip), rport) == _fmix_ref(h ^ k[3])


def test_lookup_compares_both_addresses_in_the_segment_in_place():
    """TCP.lookup reads the 4-tuple where the segment's buffer holds it (compiled: C reads,
    no buffer views): a chain of one bucket (same ports, same remote address: the key leaves
    the local one out) gives each connection only for its own local address, IPv6 as IPv4,
    and a remote address one byte off finds none."""
    tcp = Net({"TCP_MAX_CONNS": 16}).b.tcp
    for alen in (4, 16):
        rip = bytes(range(200, 200 + alen))
        lips = [bytes([10] * (alen - 1) + [k]) for k in (1, 2, 3)]
        made = [tcp.new_tcb(lip, 80, rip, 40000) for lip in lips]
        assert len({tcp._bucket(t) for t in made}) == 1   # one chain
        for lip, t in zip(lips, made):
            b = bytearray(8) + bytearray(rip) + bytearray(lip) + bytearray(8)
            assert tcp.lookup(b, 8, 8 + alen, alen, 40000, 80) is t
            assert tcp.lookup(b, 8, 8 + alen, alen, 40001, 80) is None
            assert tcp.lookup(b, 8, 8 + alen, alen, 40000, 81) is None
            for i in range(alen):   # any byte of either address off: not this connection
                for o in (8 + i, 8 + alen + i):
                    c = bytearray(b)
                    c[o] ^= 0x40
                    assert tcp.lookup(c, 8, 8 + alen, alen, 40000, 80) is not t
        wrong = bytearray(8 + 2 * (16 if alen == 4 else 4))
        assert tcp.lookup(wrong, 8, 8 + 20 - alen, 20 - alen, 40000, 80) is None


def test_remove_newest_takes_one_entry_out_by_identity_searching_from_the_end():
    """core/socket.remove_newest: the tables of sockets, bound sockets and connections lose
    a closed one from their newest end back (a short connection among many long-lived ones
    costs the few younger than it); the entry itself (identity, not equality), once, the
    rest in order; False, and nothing changed, for one not there."""
    class Same:
        def __eq__(self, other):
            return True     # list.remove would take the first of these

    xs = [Same() for _ in range(6)]
    lst = list(xs)
    assert so.remove_newest(lst, xs[4]) and lst == xs[:4] + xs[5:]
    assert all(a is b for a, b in zip(lst, xs[:4] + xs[5:]))
    assert so.remove_newest(lst, xs[0]) and [id(a) for a in lst] == [id(a) for a in xs[1:4] + xs[5:]]
    assert not so.remove_newest(lst, xs[0]) and len(lst) == 4
    assert not so.remove_newest([], xs[1])


def test_remove_newest_finds_the_oldest_entry_at_once_too():
    """A stack closing every connection in creation order (its shutdown with 100 000 idle
    ones) takes each from the table's oldest end: the search looks at both ends in turn, so
    neither the newest nor the oldest costs a walk of the table (searching from the newest
    end alone made that shutdown quadratic: it outlasted `ustack up`'s 20 s stop)."""
    class Counted:
        """A table that counts the search's looks (a sequence, as MicroPython's list
        subclasses cannot reach list's own __getitem__)."""
        looks = 0

        def __init__(self, xs):
            self.xs = list(xs)

        def __len__(self):
            return len(self.xs)

        def __getitem__(self, i):
            Counted.looks += 1
            return self.xs[i]

        def __delitem__(self, i):
            del self.xs[i]

    xs = [object() for _ in range(10000)]
    lst = Counted(xs)
    for k in range(100):      # oldest first
        Counted.looks = 0
        assert so.remove_newest(lst, xs[k]) and Counted.looks <= 2
    Counted.looks = 0
    assert so.remove_newest(lst, xs[-1]) and Counted.looks == 1   # the newest: one look
    assert lst.xs == xs[100:-1]


def test_a_short_connection_among_idle_ones_leaves_every_table_in_order():
    """A connection opened and closed while older ones stay open (a server's churn among its
    idle keep-alive connections) leaves the server's connection, bound-socket and socket
    tables as they were: only its own entries go (remove_newest), the others' order kept."""
    net = Net()
    srv = listener(net.b, backlog=8)
    idle = []
    for _ in range(4):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = srv.accept()
        idle.append((c, s))
    b = net.b
    before = (list(b.tcp.conns), list(b.tcp.bound), list(b.sockets))
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = srv.accept()
    t = s.tcb
    assert b.tcp.conns[-1] is t and b.tcp.bound[-1] is s and b.sockets[-1] is s
    c.close()
    s.close()
    net.jump(10 ** 5, lambda: t.state == T.CLOSED)
    after = (b.tcp.conns, b.tcp.bound, b.sockets)
    for x, y in zip(before, after):
        assert len(x) == len(y) and all(p is q for p, q in zip(x, y))
    close_all(net)
