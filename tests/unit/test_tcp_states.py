"""TCP between two stacks on the in-memory wire, virtual clock: every state transition,
simultaneous open and close, RTO backoff, zero-window probing, Nagle, keepalive, fast
retransmit, errors as Python's socket module raises them."""
import errno
import struct
import sys

import pytest


class raises_eagain:
    """pytest.raises(BlockingIOError), also where (MicroPython) EAGAIN is a plain OSError."""

    def __enter__(self):
        return self

    def __exit__(self, t, v, tb):
        assert t is not None and issubclass(t, OSError) and v.errno == errno.EAGAIN, \
            "expected EAGAIN"
        return True

from ustack.core import socket as so
from ustack.core.compat import Timeout
from ustack.core.tcp import tcb as T
from ustack.core.tcp.seq import wire_value
from ustack.core.wire import tcp as w
from ustack.hal.impair import Impair
from tests.twostack import Bench, IP_A, IP_B


class Net(Bench):
    """Bench + a filter on A's and B's output (drop(frame) -> bool), a trace of the TCP
    segments on the wire and a clock that jumps over idle time."""

    def __init__(self, config=None, config_b=None):
        self.drop_a = None
        self.drop_b = None
        self.trace = []
        Bench.__init__(self, config, config_b, wrap=self._wrap)

    def _wrap(self, d, bench):
        side = "a" if d is self.pa else "b"
        net = self

        def drop(f):
            fn = net.drop_a if side == "a" else net.drop_b
            seg = _seg(f)
            if seg is not None:
                net.trace.append((net.t, side) + seg)
            return fn is not None and seg is not None and fn(seg)
        return Impair(d, drop=drop)

    def jump(self, ms, cond=None):
        """Advance up to ms of virtual time, skipping idle stretches; stop early on cond()."""
        end = self.t + ms
        while self.t < end:
            if cond is not None and cond():
                return True
            if not (self.pa.pending() or self.pb.pending()):
                nd = [s.next_timer for s in (self.a, self.b) if s.next_timer]
                t = min(nd) if nd else end
                if t > end:
                    t = end
                if t > self.t + 1:
                    self.t = t - 1
            self.advance(1)
        return cond is not None and cond()

    def segs(self, side=None, since=0):
        return [s for s in self.trace if s[0] >= since and (side is None or s[1] == side)]


def _seg(f):
    """(flags string, seq, ack, payload length, window) of a TCP frame, or None."""
    if f[12:14] != b"\x08\x00" or f[23] != 6:
        return None
    ihl = (f[14] & 15) * 4
    o = 14 + ihl
    tot = (f[16] << 8) | f[17]
    seq, ack = struct.unpack("!II", f[o + 4:o + 12])
    hl = (f[o + 12] >> 4) * 4
    return (w.flag_names(f[o + 13]), seq, ack, tot - ihl - hl, (f[o + 14] << 8) | f[o + 15])


@pytest.fixture
def net():
    n = Net()
    yield n
    close_all(n)


def close_all(n):
    for s in list(n.a.sockets) + list(n.b.sockets):
        s.close()
    n.jump(10 ** 7, lambda: not n.a.tcp.conns and not n.b.tcp.conns)
    n.pump()
    assert not n.a.tcp.conns and not n.b.tcp.conns
    assert n.pools_full(), "packet buffers leaked"
    assert n.a.tcp.rings.out == 0 and n.b.tcp.rings.out == 0, "rings not returned"


def first_dropped(pred):
    """A drop_a/drop_b hook losing only the first segment pred() picks."""
    seen = []

    def drop(seg):
        if pred(seg) and not seen:
            seen.append(seg)
            return True
        return False
    return drop


def recv_all(net, s, n, step=100, limit=60000):
    """Run the wire until n bytes reached s (at most `limit` virtual ms); the count read."""
    got = 0
    end = net.t + limit
    while got < n and net.t < end:
        net.jump(step, lambda: s.readable())
        if s.readable():
            got += len(s.recv(2 * n))
    return got


def listener(stack, port=7, backlog=4):
    s = stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.listen(backlog)
    return s


def connected(net, port=7):
    srv = listener(net.b, port)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, port))
    s, addr = srv.accept()
    srv.close()
    return c, s


def states(tcb, net, cond, ms=10 ** 6):
    seen = [tcb.state_name()]

    def watch():
        if tcb.state_name() != seen[-1]:
            seen.append(tcb.state_name())
        return cond()
    net.jump(ms, watch)
    return seen


# ---- handshake, data, close ------------------------------------------------------------------
def test_handshake_data_both_ways_and_active_close_walk_every_state(net):
    srv = listener(net.b)
    assert srv.state() == "LISTEN"
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    with pytest.raises(OSError) as e:
        c.connect((IP_B, 7))
    assert e.value.errno == errno.EINPROGRESS
    ct = c.tcb
    assert ct.state == T.SYN_SENT
    net.jump(5, lambda: srv.readable())
    s, addr = srv.accept()
    assert addr == c.getsockname() and s.getpeername() == c.getsockname()
    assert c.getpeername() == (IP_B, 7) and c.state() == s.state() == "ESTABLISHED"
    assert [x[2] for x in net.segs()][:3] == ["S", "S.", "."]
    c.setblocking(True)
    s.setblocking(True)
    c.sendall(b"ping" * 1000)
    got = b""
    while len(got) < 4000:
        got += s.recv(65536)
    assert got == b"ping" * 1000
    s.sendall(b"pong")
    assert c.recv(10) == b"pong"
    st = s.tcb
    c.close()
    seen_c = states(ct, net, lambda: ct.state == T.FIN_WAIT_2)
    assert seen_c == ["FIN_WAIT_1", "FIN_WAIT_2"]
    assert st.state == T.CLOSE_WAIT and s.recv(10) == b""
    s.sendall(b"late data is still delivered? no: client closed")  # peer closed: RST comes back
    net.jump(10)
    assert st.state == T.CLOSED
    assert ct.state == T.CLOSED  # data to a closed socket aborts it (RFC 9293 3.10.7.4)


def test_orderly_close_reaches_time_wait_for_2msl(net):
    c, s = connected(net)
    ct, st = c.tcb, s.tcb
    c.shutdown(so.SHUT_WR)
    net.jump(5)
    assert ct.state == T.FIN_WAIT_2 and st.state == T.CLOSE_WAIT
    assert s.recv(5) == b""
    s.sendall(b"bye")
    s.close()
    seen = states(ct, net, lambda: ct.state == T.TIME_WAIT)
    assert seen[-1] == "TIME_WAIT" and st.state == T.CLOSED
    assert c.recv(10) == b"bye" and c.recv(10) == b""
    t0 = net.t
    c.close()
    net.jump(10 ** 6, lambda: ct.state == T.CLOSED)
    msl = net.a.config["TCP_MSL_MS"]
    # at least 2*MSL (RFC 9293 3.10.7.4); expiries share 1024 ms ticks, so at most ~1 s more
    assert 2 * msl - 5 <= net.t - t0 <= 2 * msl + 1024 + 5


def test_simultaneous_close_goes_through_closing(net):
    c, s = connected(net)
    ct, st = c.tcb, s.tcb
    c.shutdown(so.SHUT_WR)
    s.shutdown(so.SHUT_WR)  # both FINs cross on the wire
    assert ct.state == st.state == T.FIN_WAIT_1
    sc = states(ct, net, lambda: ct.state == T.TIME_WAIT, 50)
    assert sc == ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    assert st.state == T.TIME_WAIT


def test_simultaneous_open():
    net = Net()
    a = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    b = net.b.socket(so.AF_INET, so.SOCK_STREAM)
    a.bind(("", 5000))
    b.bind(("", 6000))
    a.setblocking(False)
    b.setblocking(False)
    assert a.connect_ex((IP_B, 6000)) == errno.EINPROGRESS
    assert b.connect_ex((IP_A, 5000)) == errno.EINPROGRESS
    ta, tb = a.tcb, b.tcb
    sa = states(ta, net, lambda: ta.state == T.ESTABLISHED and tb.state == T.ESTABLISHED, 50)
    assert sa == ["SYN_SENT", "SYN_RECEIVED", "ESTABLISHED"]
    assert [x[2] for x in net.segs()][:4] == ["S", "S", "S.", "S."]
    assert a.connect_ex((IP_B, 6000)) == 0
    assert a.connect_ex((IP_B, 6000)) == errno.EISCONN
    a.send(b"hi")
    net.jump(5)
    assert b.recv(5) == b"hi"
    close_all(net)


def test_connect_to_closed_port_is_refused(net):
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        c.connect((IP_B, 9))
    assert e.value.errno == errno.ECONNREFUSED
    assert net.a.tcp.stats.conn_refused == 1


def test_connect_ex_and_nonblocking_errors(net):
    srv = listener(net.b)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((IP_B, 7)) == errno.EINPROGRESS
    assert c.connect_ex((IP_B, 7)) == errno.EALREADY
    assert not c.writable()
    net.jump(5, c.writable)
    assert c.writable()
    assert c.connect_ex((IP_B, 7)) == 0
    assert c.connect_ex((IP_B, 7)) == errno.EISCONN
    with raises_eagain():
        c.recv(10)
    srv.close()


def test_socket_errors_match_python():
    net = Net()
    s = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        s.send(b"x")
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        s.recv(1)
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        s.shutdown(so.SHUT_WR)
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        s.accept()
    assert e.value.errno == errno.EINVAL
    s.bind(("", 7))
    t = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        t.bind(("", 7))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        t.bind(("192.0.2.99", 8))
    assert e.value.errno == errno.EADDRNOTAVAIL
    s.close()
    t.bind(("", 7))
    t.close()
    s = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    s.close()
    with pytest.raises(OSError) as e:
        s.send(b"x")
    assert e.value.errno == errno.EBADF
    close_all(net)


def test_send_after_shutdown_is_epipe_and_peer_reads_eof(net):
    c, s = connected(net)
    c.shutdown(so.SHUT_WR)
    with pytest.raises(OSError) as e:
        c.send(b"x")
    assert e.value.errno == errno.EPIPE
    assert s.recv(10) == b""
    s.sendall(b"still flowing the other way")
    assert c.recv(100) == b"still flowing the other way"


def test_reset_by_peer_raises_econnreset_then_epipe(net):
    c, s = connected(net)
    s.setsockopt(so.SOL_SOCKET, so.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    net.jump(5)
    assert c.readable()
    with pytest.raises(OSError) as e:
        c.recv(10)
    assert e.value.errno == errno.ECONNRESET
    with pytest.raises(OSError) as e:
        c.send(b"x")
    assert e.value.errno == errno.EPIPE


def test_reuseaddr_allows_rebinding_while_time_wait(net):
    c, s = connected(net)
    port = c.getsockname()[1]
    c.close()
    s.close()
    net.jump(10)
    assert [t.state for t in net.a.tcp.conns] == [T.TIME_WAIT]
    x = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        x.bind(("", port))
    assert e.value.errno == errno.EADDRINUSE
    x.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
    x.bind(("", port))


def test_blocking_connect_with_timeout_raises_timeout():
    net = Net()
    net.drop_a = lambda seg: True  # a black hole
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(2.5)
    t0 = net.t
    with pytest.raises(Timeout):
        c.connect((IP_B, 7))
    assert 2500 <= net.t - t0 <= 2600
    close_all(net)


# ---- retransmission ------------------------------------------------------------------------
def test_syn_retransmits_with_exponential_backoff_then_etimedout():
    net = Net()
    net.drop_a = lambda seg: True
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 7))
    t = c.tcb
    net.jump(10 ** 6, lambda: t.state == T.CLOSED)
    syns = [x[0] for x in net.segs("a") if x[2] == "S"]
    gaps = [b - a for a, b in zip(syns, syns[1:])]
    n = net.a.config["TCP_SYN_RETRIES"]
    # TCP_SYN_RETRIES, and more while under 3 minutes (RFC 9293 3.8.3, test_tcp_rfc_details)
    assert len(syns) >= n + 1
    # RFC 6298 2.1, 5.5 and 2.5 (the first SYN waited a moment for ARP)
    cap = net.a.config["TCP_RTO_MAX_MS"]
    assert 990 <= gaps[0] <= 1000 and \
        gaps[1:] == [min(1000 * 2 ** i, cap) for i in range(1, len(gaps))]
    assert c.connect_ex((IP_B, 7)) == errno.ETIMEDOUT
    close_all(net)


def test_data_rto_backs_off_and_connection_times_out():
    net = Net({"TCP_MAX_RETRIES": 5})
    c, s = connected(net)
    net.jump(10)
    rto = c.tcb.rto
    assert rto == net.a.config["TCP_RTO_MIN_MS"]  # tiny RTTs: RFC 6298 2.4 floor
    net.drop_a = lambda seg: seg[3] > 0
    t0 = net.t
    c.send(b"lost" * 10)
    ct = c.tcb
    net.jump(10 ** 6, lambda: ct.state == T.CLOSED)
    sends = [x[0] for x in net.segs("a", t0) if x[5] > 0]
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert gaps == [rto * 2 ** i for i in range(5)]
    assert net.a.tcp.stats.rto_expired == 5 and net.a.tcp.stats.conn_timeout == 1
    with pytest.raises(OSError) as e:
        c.recv(10)
    assert e.value.errno == errno.ETIMEDOUT
    close_all(net)


def test_lost_segment_is_retransmitted_once_and_stream_intact(net):
    c, s = connected(net)
    dropped = []

    def drop_third(seg):
        n = len([x for x in net.segs("a") if x[5] > 0])
        if n == 3 and not dropped:
            dropped.append(seg)
            return True
        return False
    net.drop_a = drop_third
    c.setblocking(False)
    data = bytes(range(256)) * 200
    sent = c.send(data)
    got = b""
    s.setblocking(False)
    while len(got) < sent:
        net.jump(5)
        try:
            got += s.recv(100000)
        except OSError:
            pass
    assert got == data[:sent] and dropped
    st = net.a.tcp.stats
    assert st.fast_retransmits == 1 and st.rto_expired == 0  # RFC 5681 3.2
    assert net.b.tcp.stats.rx_ooo > 0


def test_karn_no_rtt_sample_from_retransmitted_segments():
    """A 1 ms RTO floor makes every 1-byte send (ACK delayed 200 ms) retransmit: without
    timestamps Karn's rule keeps SRTT at the handshake sample; with timestamps (RFC 7323 4)
    the delayed ACKs are measured."""
    for ts in (False, True):
        net = Net({"TCP_TIMESTAMPS": ts, "TCP_RTO_MIN_MS": 1, "TCP_DELACK_MS": 200})
        c, s = connected(net)
        srtt0 = c.tcb.srtt8 >> 3
        for i in range(4):
            c.send(b"x")
            net.jump(300)
            s.recv(10)
        t = c.tcb
        st = net.a.tcp.stats
        if ts:
            # the delayed ACK echoes the original's TSval: each timeout is found spurious (RFC
            # 3522) and the RTO adapted to the sample (RFC 4015 3), so they become fewer
            assert st.rto_expired >= 1 and st.spurious_rtos == st.rto_expired
            assert t.srtt8 >> 3 > srtt0 + 5
        else:
            assert st.rto_expired >= 4
            assert t.srtt8 >> 3 == srtt0 and srtt0 < 10
        close_all(net)


# ---- flow control ------------------------------------------------------------------------------
def test_zero_window_probes_back_off_then_transfer_resumes():
    net = Net({"TCP_RCV_BUF": 4096, "TCP_SND_BUF": 65536})
    c, s = connected(net)
    c.setblocking(False)
    data = bytes(range(256)) * 64
    n = c.send(data)
    net.jump(60000)
    una = wire_value(c.tcb.snd_una, c.tcb.iss_hi, c.tcb.iss_lo)  # snd_* are relative (tcb.py)
    probes = [x[0] for x in net.segs("a") if x[5] == 0 and x[3] == (una - 1) & 0xFFFFFFFF]
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert len(probes) >= 4 and net.a.tcp.stats.persist_probes >= len(probes)
    assert all(g2 == 2 * g1 or g2 == net.a.config["TCP_RTO_MAX_MS"] for g1, g2 in zip(gaps, gaps[1:]))
    assert s.tcb.rcv.count == 4096 and s.tcb.state == T.ESTABLISHED
    got = b""
    s.setblocking(False)
    while len(got) < n:
        try:
            got += s.recv(65536)
        except OSError:
            pass
        net.jump(5)
    assert got == data[:n]


def test_nagle_coalesces_small_writes_and_nodelay_does_not(net):
    c, s = connected(net)
    net.jump(300)
    t0 = net.t
    for i in range(5):
        c.send(b"x")
    net.jump(1)
    assert len([x for x in net.segs("a", t0) if x[5] > 0]) == 1  # RFC 896: one in flight
    net.jump(500)
    assert len([x for x in net.segs("a", t0) if x[5] > 0]) == 2  # the rest after the ACK
    assert s.recv(10) == b"xxxxx"
    c.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    assert c.getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY) == 1
    t1 = net.t
    for i in range(5):
        c.send(b"y")
    assert len([x for x in net.segs("a", t1) if x[5] > 0]) == 5


def test_send_buffer_bounds_send_and_receive_window_bounds_peer():
    # TCP_ACK_BURST 2: the fifth segment's ACK is a delayed one (with the default, one ACK
    # at the burst's end covers all five and frees the Nagle-held piece at once)
    net = Net({"TCP_SND_BUF": 8192, "TCP_RCV_BUF": 8192, "TCP_DELACK_MS": 200,
               "TCP_ACK_BURST": 2})
    c, s = connected(net)
    c.setblocking(False)
    assert c.send(b"z" * 100000) == 8192
    with raises_eagain():
        c.send(b"z")
    net.jump(50)
    # Nagle holds the last sub-MSS piece while a full segment is unacknowledged...
    assert s.tcb.rcv.count < 8192 and c.tcb.snd_nxt != c.tcb.snd_una
    net.jump(500)  # ...until the (delayed) ACK comes back
    assert s.tcb.rcv.count == 8192 and c.tcb.snd.count == 0
    assert c.send(b"z" * 100000) == 8192
    net.jump(500)
    assert c.tcb.snd.count == 8192 and c.tcb.snd_wnd == 0  # the peer's buffer is full
    assert len(s.recv(100000)) == 8192
    net.jump(500)
    assert s.tcb.rcv.count == 8192 and c.tcb.snd.count == 0
    close_all(net)


# ---- timers: keepalive, delayed ACK ----------------------------------------------------------
def test_keepalive_probes_then_times_out_dead_peer(net):
    c, s = connected(net)
    c.setsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE, 1)
    c.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE, 10)
    c.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPINTVL, 2)
    c.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPCNT, 3)
    net.jump(25000)
    assert net.a.tcp.stats.keepalive_probes == 2 and c.tcb.state == T.ESTABLISHED  # answered
    net.drop_b = lambda seg: True  # the peer dies
    ct = c.tcb
    t0 = ct.last_rx
    net.jump(10 ** 6, lambda: ct.state == T.CLOSED)
    assert 10000 + 3 * 2000 <= net.t - t0 <= 10000 + 3 * 2000 + 5
    with pytest.raises(OSError) as e:
        c.recv(1)
    assert e.value.errno == errno.ETIMEDOUT


# ---- listen queues -------------------------------------------------------------------------
def test_accept_queue_is_bounded_by_backlog(net):
    srv = listener(net.b, backlog=1)
    cs = []
    for i in range(3):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((IP_B, 7))
        cs.append(c)
        net.jump(5)
    assert len(srv.acc_q) == 1
    assert net.b.tcp.stats.accept_queue_full >= 2
    s, _ = srv.accept()
    net.jump(5000, lambda: len(srv.acc_q) == 1)  # a retried SYN finds room now
    assert len(srv.acc_q) == 1


def test_closing_listener_resets_unaccepted_connections(net):
    srv = listener(net.b)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    srv.close()
    net.jump(5)
    with pytest.raises(OSError) as e:
        c.recv(1)
    assert e.value.errno == errno.ECONNRESET


# ---- footprint ------------------------------------------------------------------------------
def test_idle_tcb_is_small_and_buffers_go_back_at_close(net):
    c, s = connected(net)
    t = c.tcb
    if hasattr(sys, "getsizeof"):  # CPython: the TCB and its congestion controller
        assert sys.getsizeof(t) + sys.getsizeof(t.cc) < 1024
    pa, pb = net.a.tcp.rings, net.b.tcp.rings
    assert pa.out == 2 and pa.held == 0 and pb.held == 0  # idle: ring objects, no buffers
    c.sendall(b"x" * 5000)
    assert pa.held == 1                                    # the send buffer, while it holds data
    net.jump(300)
    assert pb.held == 1                                    # the peer's receive buffer until read
    assert s.recv(10000) == b"x" * 5000
    net.jump(300)
    assert pa.held == 0 and pb.held == 0                   # acknowledged and read: both back
    s.sendall(b"y" * 10)
    net.jump(300)
    assert pb.held == 0 and pa.held == 1 and c.recv(100) == b"y" * 10 and pa.held == 0
    c.close()
    s.close()
    net.jump(10)
    assert t.state == T.TIME_WAIT and t.snd is None and t.rcv is None
    assert pa.out == 0 and pb.out == 0 and pa.held == 0 and pb.held == 0


def test_connection_limit_recycles_time_wait():
    net = Net({"TCP_MAX_CONNS": 2})
    srv = listener(net.b)
    for i in range(4):
        c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = srv.accept()
        c.close()
        s.close()
        net.jump(10)
        assert len(net.a.tcp.conns) <= 2
    close_all(net)


def test_no_memory_for_connection_buffers_is_a_counted_reset_not_an_exception():
    """On a small heap the rings of a new connection may not fit: the handshake is answered
    with RST and counted, and poll() carries on."""
    from tests.twostack import Bench, IP_B
    from ustack.core import socket as so
    b = Bench()
    ls = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(2)
    ls.setblocking(False)

    def no_memory(size):
        raise MemoryError
    b.b.tcp.rings.share = no_memory
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 80))
    b.pump(50)
    assert b.b.tcp.stats.no_memory == 1
    assert c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.ECONNRESET
    c.close()
    ls.close()
    b.pump()
    assert b.pools_full()
