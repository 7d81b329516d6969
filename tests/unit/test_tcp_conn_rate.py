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
