"""The stack survives its own bugs (issue 8, holes 2 and 9).

Whatever a frame or a timer triggers, an exception escaping a protocol handler must not leave
Stack.poll: it is counted (stack.exceptions), logged as one line with the frame's first bytes,
the frame is dropped, every buffer the failed handler took and did not hand to a queue comes
back to the pool (stack.reclaimed), and the stack keeps answering. A timer armed while the
timers run is kept."""
import pytest

from ustack.core import socket as so
from tests import frames as F
from tests.twostack import Bench, udp, IP_A, IP_B


class Boom(Exception):
    pass


def logged(stack):
    lines = []
    stack.log = lines.append
    return lines


def raise_once(obj, name, before=None):
    """Make obj.name raise Boom on its next call (after before(*args) ran), then behave."""
    real = getattr(obj, name)
    calls = []

    def hook(*args):
        if not calls:
            calls.append(1)
            setattr(obj, name, real)
            if before is not None:
                before(*args)
            raise Boom("injected")
        return real(*args)
    setattr(obj, name, hook)
    return calls


def settle(b):
    b.pump(50)
    b.close_all()


def test_raising_udp_handler_is_counted_logged_once_and_the_stack_keeps_answering():
    b = Bench()
    lines = logged(b.b)
    srv = udp(b.b, 7)
    cli = udp(b.a)
    b.a.ping(IP_B)  # ARP settled both ways
    calls = raise_once(b.b.udp, "input")
    cli.sendto(b"first", (IP_B, 7))
    b.pump()
    assert calls == [1]
    c = b.b.counters()
    assert c["stack.exceptions"] == 1
    assert len(lines) == 1
    assert "Boom" in lines[0] and "injected" in lines[0] and "b0" in lines[0]
    # the frame's first bytes, in hex: it starts with the destination MAC (B's own)
    assert "02000000000b" in lines[0]
    with pytest.raises(OSError):
        srv.recv(100)  # the failed frame was dropped
    assert b.b.pool.full()
    # the stack keeps answering: ping and UDP
    assert b.a.ping(IP_B).received == 1
    cli.sendto(b"second", (IP_B, 7))
    b.pump()
    assert srv.recv(100) == b"second"
    assert len(lines) == 1
    assert b.b.counters()["stack.exceptions"] == 1
    settle(b)


def test_buffers_a_raising_handler_took_come_back_to_the_pool():
    b = Bench()
    logged(b.b)
    b.a.ping(IP_B)
    taken = []

    def grab(*args):
        taken.append(b.b.alloc())
        taken.append(b.b.alloc())
    raise_once(b.b.icmp, "input", grab)
    b.a.ping(IP_B, timeout_ms=50)
    b.pump()
    assert len(taken) == 2 and taken[0] is not None and taken[1] is not None
    c = b.b.counters()
    assert c["stack.exceptions"] == 1
    assert c["stack.reclaimed"] == 3  # the frame and the two it took
    assert b.b.pool.full()
    assert b.a.ping(IP_B).received == 1
    settle(b)


def test_a_datagram_queued_before_the_raise_stays_queued_and_is_freed_once():
    b = Bench()
    logged(b.b)
    srv = udp(b.b, 7)
    cli = udp(b.a)
    b.a.ping(IP_B)
    # the handler delivers the datagram, then raises: the socket owns the frame's buffer
    raise_once(b.b.udp, "input", lambda *a: b.b.udp.__class__.input(b.b.udp, *a))
    cli.sendto(b"kept", (IP_B, 7))
    b.pump()
    assert b.b.counters()["stack.exceptions"] == 1
    assert "stack.reclaimed" not in b.b.counters()
    assert b.b.pool.nfree == b.b.pool.count - 1
    assert srv.recv(100) == b"kept"
    assert b.b.pool.full()
    settle(b)


def test_a_reassembled_datagram_whose_handler_raises_gives_its_slot_back():
    b = Bench()
    logged(b.b)
    srv = udp(b.b, 7)
    cli = udp(b.a)
    b.a.ping(IP_B)
    raise_once(b.b.udp, "input")
    cli.sendto(b"x" * 3000, (IP_B, 7))
    b.pump()
    assert b.b.counters()["stack.exceptions"] == 1
    assert b.b.counters()["reass.reassembled"] == 1
    for s in b.b.ipv4.reass.slots:
        assert not s.in_use and not s.busy
    cli.sendto(b"y" * 3000, (IP_B, 7))
    b.pump()
    assert srv.recv(4000) == b"y" * 3000
    settle(b)


def test_tcp_connection_survives_an_exception_in_tcp_input():
    b = Bench()
    lines = logged(b.b)
    lst = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    lst.bind(("", 7))
    lst.listen(1)
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 7))
    s, _ = lst.accept()
    raise_once(b.b.tcp, "input")
    c.send(b"lost-then-retransmitted")
    assert b.until(s.readable, 5000)
    assert b.b.counters()["stack.exceptions"] == 1
    assert len(lines) == 1
    assert s.recv(100) == b"lost-then-retransmitted"
    s.send(b"reply")
    assert b.until(c.readable, 5000)
    assert c.recv(100) == b"reply"
    c.close()
    s.close()
    lst.close()
    assert b.until(lambda: not b.a.tcp.conns and not b.b.tcp.conns, 10 ** 6, step=100)
    settle(b)


def test_a_raising_timer_is_counted_and_the_other_timers_still_run():
    b = Bench()
    lines = logged(b.a)
    b.a.ping(IP_B)
    raise_once(b.a.ipv4.reass, "tick")
    # a pending ARP retry (tick before reassembly) and TCP timers must keep running
    p = b.a.icmp.pinger("192.0.2.99")
    p.send(0, b.t)
    b.run(5000)
    p.close()
    c = b.a.counters()
    assert c["stack.exceptions"] == 1
    assert len(lines) == 1 and "Boom" in lines[0]
    assert c["a0.arp.timeouts"] == 1  # retried and timed out: the timers kept running
    assert b.a.ping(IP_B).received == 1
    settle(b)


def test_a_timer_armed_while_the_timers_run_is_kept():
    b = Bench()
    reass = b.a.ipv4.reass
    real = reass.tick
    want = []

    def tick(now):
        if not want:
            want.append(now + 500)
            b.a.timer_at(now + 500)  # e.g. an ICMP error whose next hop needs ARP
        return real(now)
    reass.tick = tick
    b.a.timer_at(b.t + 1)
    b.advance(1)
    b.advance(1)
    assert want
    assert b.a.next_timer == want[0]
    settle(b)


def test_reassembly_timeout_error_to_an_unresolved_source_retries_arp():
    """The Time Exceeded for an expired reassembly (RFC 1122 3.3.2) goes to a source not in
    the ARP cache: ARP arms its retry timer from inside the reassembly tick, and the retries
    must happen (else the error waits in the ARP queue, holding a buffer, for ever)."""
    b = Bench({"REASS_TIMEOUT_MS": 2000})
    ip = F.ipv4(bytes([192, 0, 2, 77]), bytes([192, 0, 2, 10]), 17, b"z" * 16, frag=0x2000)  # fragment zero, MF set
    b.pa._arrive(F.eth(b.ia.mac, b"\x02\x00\x00\x00\x00\x77", 0x0800, ip))
    b.advance(1)
    sent = b.ia.arp.stats.tx_requests
    b.run(2000 + 5000)
    c = b.a.counters()
    assert c["reass.timeouts"] == 1
    assert b.ia.arp.stats.tx_requests == sent + 4  # the first request and 3 retries
    assert c["a0.arp.timeouts"] == 1
    assert b.a.pool.full()
    settle(b)


def test_a_packet_waiting_for_arp_when_the_handler_raised_is_left_to_arp():
    """The failed handler had queued a datagram behind ARP resolution (an owner that keeps
    the buffer): the reclaim leaves it there; ARP frees it when resolution times out."""
    b = Bench()
    logged(b.b)

    def send_then_raise(*args):
        s = udp(b.b)
        s.sendto(b"queued behind ARP", ("192.0.2.50", 5000))  # nobody has that address
        s.close()
    raise_once(b.b.udp, "input", send_then_raise)
    cli = udp(b.a)
    cli.sendto(b"trigger", (IP_B, 7))
    b.pump(5)
    c = b.b.counters()
    assert c["stack.exceptions"] == 1
    assert c["stack.reclaimed"] == 1  # the frame only
    pending = [p for p in b.ib.arp.pending if p is not None]
    assert len(pending) == 1 and pending[0].in_use
    assert b.b.pool.nfree == b.b.pool.count - 1
    b.run(5000)
    assert b.b.counters()["b0.arp.timeouts"] == 1
    settle(b)
