"""A service's answer carries the ACK of what it answers (issue 13: one segment, not a pure ACK
first and the answer after it). Stack.poll runs its burst_hook once the burst it read is
processed and before the burst's ACKs go (TCP.flush_acks); the ACK of a FIN waits for that
point too (RFC 1122 4.2.3.2 lets an ACK wait, RFC 9293 3.10.7.4 asks for one), so an
application that closes as soon as it reads the end of the stream sends one FIN+ACK."""
from ustack.core import socket as so
from tests.unit.test_tcp_segments import Peer, tcp_frame, Seg, ACK, FIN, PSH


def poll_burst(p, frames):
    """The frames read by one poll; the stack's TCP segments sent during it."""
    drv = p.fed.drv
    for f in frames:
        drv.rx.append(f)
    p.stack.poll(p.fed.t)
    out = drv.tx[:]
    drv.tx.clear()
    return [Seg(f) for f in out if f[12:14] == b"\x08\x00" and f[23] == 6]


def connected():
    p = Peer()
    p.sa = p.connect()
    return p


def closer(p, seen):
    """A burst hook that reads the stream and closes at its end, as the echo service does."""
    def hook():
        s = p.sock
        while s is not None and s.readable():
            d = s.recv(100)
            seen.append(d)
            if d == b"":
                s.close()
                p.sock = s = None
    return hook


def test_a_fin_answered_by_a_close_in_the_same_poll_gets_one_fin_ack():
    p = connected()
    seen = []
    p.stack.burst_hook = closer(p, seen)
    fin = tcp_frame(p.seq, p.rnxt, FIN | ACK, opts=p.tsopt(p.sa))
    r = poll_burst(p, [fin])
    assert seen == [b""]
    # one segment: our FIN, acknowledging theirs (no pure ACK before it)
    assert [(s.f, s.ack) for s in r] == [("F.", p.seq + 1)], r
    assert p.tcp.stats.burst_acks == 0  # a FIN's ACK is not a burst of full segments


def test_data_and_fin_in_one_burst_are_answered_by_one_segment_each_way():
    p = connected()
    seen = []
    p.stack.burst_hook = closer(p, seen)
    data = tcp_frame(p.seq, p.rnxt, PSH | ACK, b"abc", opts=p.tsopt(p.sa))
    fin = tcp_frame(p.seq + 3, p.rnxt, FIN | ACK, opts=p.tsopt(p.sa))
    r = poll_burst(p, [data, fin])
    assert seen == [b"abc", b""], seen
    assert [(s.f, s.ack) for s in r] == [("F.", p.seq + 4)], r


def test_without_an_answer_the_fin_is_acked_by_the_same_poll():
    """Nobody closes: the ACK goes at the end of the poll that read the FIN, not later."""
    p = connected()
    fin = tcp_frame(p.seq, p.rnxt, FIN | ACK, opts=p.tsopt(p.sa))
    r = poll_burst(p, [fin])
    assert [(s.f, s.ack) for s in r] == [(".", p.seq + 1)], r
    assert p.tcb().state == 7  # CLOSE_WAIT
    assert p.advance(p.stack.config["TCP_DELACK_MS"] + 5) == []  # nothing more owed


def test_a_fin_fed_outside_a_poll_is_acked_by_the_delayed_ack_timer():
    """Input outside Stack.poll (no burst end): the delayed-ACK timer still sends it."""
    p = connected()
    iface = p.fed.iface
    pb = p.stack.pool.alloc_rx()
    f = tcp_frame(p.seq, p.rnxt, FIN | ACK, opts=p.tsopt(p.sa))
    pb.buf[0:len(f)] = f
    iface.input(pb, len(f))
    assert p.tcb().state == 7
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [(s.f, s.ack) for s in r] == [(".", p.seq + 1)], r


def test_an_echo_answered_in_the_burst_hook_carries_its_ack():
    """A request answered in the hook: one segment with the data and the ACK, and no pure
    ACK later from the delayed-ACK timer."""
    p = connected()

    def echo():
        s = p.sock
        if s.readable():
            s.send(s.recv(100))
    p.stack.burst_hook = echo
    req = tcp_frame(p.seq, p.rnxt, PSH | ACK, b"x" * 64, opts=p.tsopt(p.sa))
    r = poll_burst(p, [req])
    assert [(s.f, s.ack, s.data) for s in r] == [("P.", p.seq + 64, b"x" * 64)], r
    assert p.advance(p.stack.config["TCP_DELACK_MS"] + 5) == []


def reader(p, chunk, seen):
    """A burst hook that reads all it can in chunks, as a service draining its socket does."""
    def hook():
        s = p.sock
        while s.readable():
            d = s.recv(chunk)
            if not d:
                break
            seen.append(len(d))
    return hook


def test_reads_in_one_poll_send_one_window_update_at_its_end():
    """A read that opens the window sends an update (RFC 9293 3.8.6.2.2), but a service that
    drains its socket in chunks within one poll sends one: the update waits for the burst's
    end as the burst's ACK does, carrying the window all the reads opened (not one segment
    per chunk: 16 identical ACKs with a growing window, seen against Linux)."""
    p = connected()
    mss = p.tcb().mss
    cap = p.tcb().rcv.cap
    n = cap // mss - 1
    frames = [tcp_frame(p.seq + i * mss, p.rnxt, ACK, b"x" * mss, opts=p.tsopt(p.sa))
              for i in range(n)]
    poll_burst(p, frames)            # the window nearly full, nothing read yet
    seen = []
    p.stack.burst_hook = reader(p, mss, seen)
    r = poll_burst(p, [])
    assert sum(seen) == n * mss and len(seen) > 4, seen
    assert [(s.f, s.ack) for s in r] == [(".", p.seq + n * mss)], [(s.f, s.ack, s.win) for s in r]
    ws = p.tcb().rcv_wscale
    assert r[0].win << ws >= cap - mss, (r[0].win << ws, cap)   # every read's space offered


def test_a_read_outside_a_poll_sends_its_window_update_at_once():
    """An application thread's read is not in a burst: its update goes out from the read."""
    p = connected()
    mss = p.tcb().mss
    cap = p.tcb().rcv.cap
    n = cap // mss - 1
    frames = [tcp_frame(p.seq + i * mss, p.rnxt, ACK, b"x" * mss, opts=p.tsopt(p.sa))
              for i in range(n)]
    poll_burst(p, frames)
    p.fed.drv.tx.clear()
    got = 0
    while got < n * mss:
        got += len(p.sock.recv(cap))
    r = [Seg(f) for f in p.fed.drv.tx]
    assert len(r) == 1 and r[0].f == "." and r[0].ack == p.seq + n * mss, r


def logged(p, log):
    """p's driver noting each read (the frame's length, 0: none left) and each send."""
    drv = p.fed.drv
    recv, send = drv.recv_into, drv.send

    def recv_into(buf):
        n = recv(buf)
        log.append("read %d" % n if n else "read none")
        return n

    def sent(buf, n):
        log.append("send")
        return send(buf, n)
    drv.recv_into, drv.send = recv_into, sent


def echoer(p, calls):
    def hook():
        calls.append(1)
        s = p.sock
        while s.readable():
            s.send(s.recv(4096))
    return hook


def test_a_lone_request_is_answered_before_the_poll_reads_again():
    """Issue 13, wall-clock latency: the hook runs once the poll's first frame is handled, so a
    request alone in its poll is answered before the driver is asked for another frame (on a
    TAP that ask is a poll() system call and Python calls, on the reply's path otherwise;
    lwIP's loop answers a frame before it reads the next too); no second run of the hook
    when nothing more came."""
    p = connected()
    calls, log = [], []
    p.stack.burst_hook = echoer(p, calls)
    logged(p, log)
    req = tcp_frame(p.seq, p.rnxt, PSH | ACK, b"x" * 64, opts=p.tsopt(p.sa))
    r = poll_burst(p, [req])
    assert log == ["read %d" % len(req), "send", "read none"], log
    assert calls == [1]
    assert [(s.f, s.ack, s.data) for s in r] == [("P.", p.seq + 64, b"x" * 64)], r
    assert p.advance(p.stack.config["TCP_DELACK_MS"] + 5) == []


def test_the_rest_of_a_burst_is_answered_at_its_end():
    """Requests after the poll's first frame wait for the burst's end, as before: the hook
    runs a second time there, and each answer carries its ACK (no pure ACK later). The
    socket has TCP_NODELAY, as the echo service's connections have: with Nagle the second
    answer would wait for the ACK of the first (RFC 896), a round trip or the peer's
    delayed ACK."""
    p = connected()
    p.sock.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    calls, log = [], []
    p.stack.burst_hook = echoer(p, calls)
    logged(p, log)
    reqs = [tcp_frame(p.seq + 64 * i, p.rnxt, PSH | ACK, bytes([65 + i]) * 64,
                      opts=p.tsopt(p.sa)) for i in range(3)]
    r = poll_burst(p, reqs)
    n = len(reqs[0])
    assert log == ["read %d" % n, "send", "read %d" % n, "read %d" % n, "read none", "send"], log
    assert calls == [1, 1]
    assert [(s.f, s.ack, s.data) for s in r] == [
        ("P.", p.seq + 64, b"A" * 64), ("P.", p.seq + 192, b"B" * 64 + b"C" * 64)], r
    assert p.advance(p.stack.config["TCP_DELACK_MS"] + 5) == []


def test_an_empty_poll_runs_the_hook_once():
    p = connected()
    calls = []
    p.stack.burst_hook = echoer(p, calls)
    assert poll_burst(p, []) == []
    assert calls == [1]
