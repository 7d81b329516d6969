"""TCP.tick visits only the connections that may have a timer armed (TCP.timed, issue 13): an
idle ESTABLISHED connection leaves the list at the first tick that finds none, so 100 000
idle connections cost a tick nothing; whatever arms a timer later (a segment, a send, a socket
option, close) puts the connection back first, and its timer fires as before."""
from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from tests.unit.test_tcp_states import Net, close_all, connected, listener
from tests.twostack import IP_B


def watched(st):
    tcp = st.tcp
    assert tcp.timed[tcp.ntimed:] == [None] * (len(tcp.timed) - tcp.ntimed)
    return tcp.timed[:tcp.ntimed]


def _idle(net):
    net.jump(2000)  # handshakes done, delayed ACKs sent: nothing armed
    for st in (net.a, net.b):
        assert watched(st) == [], [t.state_name() for t in watched(st)]
        for t in st.tcp.conns:
            assert not (t.flags & T.F_TIMED) and t.next_deadline() == 0


def test_idle_connections_leave_the_timed_list_and_a_sending_one_comes_back():
    net = Net({"TCP_MAX_CONNS": 64, "SOCKETS": 64})
    srv = listener(net.b, 7)
    pairs = []
    for _ in range(20):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = srv.accept()
        pairs.append((c, s))
    srv.close()
    _idle(net)
    assert len(net.a.tcp.conns) == 20
    assert net.a.tcp.tick(net.t) == 0
    c, s = pairs[7]
    c.send(b"hello")
    # only the sender is watched: its retransmission timer is armed
    assert watched(net.a) == [c.tcb] and c.tcb.t_rexmt
    net.jump(50)
    assert s.recv(10) == b"hello"
    _idle(net)
    close_all(net)


def test_keepalive_switched_on_for_an_idle_connection_fires():
    net = Net()
    c, s = connected(net)
    _idle(net)
    c.setsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE, 1)
    c.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE, 10)
    c.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPINTVL, 2)
    assert watched(net.a) == [c.tcb]
    net.jump(23000)     # answered at 10 s and 20 s (each 10 s after the last segment)
    assert net.a.tcp.stats.keepalive_probes == 2 and c.tcb.state == T.ESTABLISHED
    close_all(net)


def test_an_orphan_in_fin_wait_2_still_times_out_and_time_wait_ends():
    net = Net({"TCP_FIN_TIMEOUT_MS": 5000, "TCP_MSL_MS": 1000})
    c, s = connected(net)
    _idle(net)
    tcb = c.tcb
    c.close()                # B never closes: A waits in FIN-WAIT-2, an orphan
    net.jump(1000)
    assert tcb.state == T.FIN_WAIT_2 and tcb in watched(net.a)
    net.jump(6000)
    assert tcb.state == T.CLOSED and net.a.tcp.stats.fin_wait2_timeouts == 1
    assert tcb not in watched(net.a) and not (tcb.flags & T.F_TIMED)
    c2, s2 = connected(net, 9)
    _idle(net)
    tcb2 = c2.tcb
    c2.close()
    s2.close()               # both closed: A ends in TIME-WAIT, 2*MSL
    net.jump(500)
    assert tcb2.state == T.TIME_WAIT and tcb2 in watched(net.a)
    net.jump(4000)
    assert tcb2.state == T.CLOSED and watched(net.a) == []
    close_all(net)


def test_connections_dropped_between_ticks_leave_their_slots():
    """Connections reset before any tick leave the watched list when its TCP_MAX_CONNS + 1
    fixed slots are full (or at the next tick): connections coming and going faster than the
    ticks never overflow it, and nothing is allocated for it."""
    net = Net({"TCP_MAX_CONNS": 4, "SOCKETS": 16})
    srv = listener(net.b, 7)
    for _ in range(12):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = srv.accept()
        assert c.tcb in watched(net.a)
        c.setsockopt(so.SOL_SOCKET, so.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()           # linger 0: a RST, the TCB dropped at once
        s.close()
        assert net.a.tcp.ntimed <= 5 and len(net.a.tcp.timed) == 5
        assert len([t for t in watched(net.a) if t.state != T.CLOSED]) <= 4
    srv.close()
    net.jump(5000)
    _idle(net)
    assert net.a.tcp.conns == [] and len(net.a.tcp.timed) == 5
    close_all(net)
