"""Two CPython stacks joined by SLIP (RFC 1055) over a pty pair: ping, UDP, and a TCP transfer
checked by SHA-256. SLIP links carry bare IPv4 (no ARP, no Ethernet header)."""
import hashlib
import os
import pty
import time
import tty

import pytest

from ustack.core import socket as so
from ustack.core.stack import Stack
from ustack.hal.slip import FdUart, SlipLink


@pytest.fixture
def pair():
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    a, b = Stack({"TCP_SND_BUF": 32768, "TCP_RCV_BUF": 32768}), Stack()
    la, lb = SlipLink(FdUart(m, own=True)), SlipLink(FdUart(s, own=True))
    a.add_interface("sl0", la, ip="198.51.100.1", prefix=30)
    b.add_interface("sl0", lb, ip="198.51.100.2", prefix=30)

    def run_until(cond, limit=30.0):
        end = time.monotonic() + limit
        while not cond():
            if time.monotonic() > end:
                return False
            t = int(time.monotonic() * 1000)
            a.poll(t)
            b.poll(t)
        return True
    for st in (a, b):
        st.clock = lambda: int(time.monotonic() * 1000)
    yield a, b, run_until
    a.close()
    b.close()
    assert a.pool.full() and b.pool.full()


def test_ping_over_slip(pair):
    a, b, run_until = pair
    p = a.icmp.pinger("198.51.100.2")
    for i in range(20):
        p.send(i, a.clock())
        assert run_until(lambda: p.received == i + 1, 5)
    assert a.ifaces[0].l2 == 0 and a.ifaces[0].arp is None  # bare IP: no ARP on SLIP


def test_tcp_transfer_over_slip_keeps_every_byte(pair):
    a, b, run_until = pair
    ls = b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.setblocking(False)
    ls.bind(("", 5001))
    ls.listen(1)
    c = a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex(("198.51.100.2", 5001)) in (0, 115, 11)  # EINPROGRESS
    acc = []

    def accepted():
        try:
            acc.append(ls.accept()[0])
        except OSError:
            pass
        return bool(acc)
    assert run_until(accepted, 10)
    srv = acc[0]
    srv.setblocking(False)
    data = os.urandom(1 << 20)
    sent = [0]
    got = bytearray()

    def moved():
        if sent[0] < len(data):
            try:
                sent[0] += c.send(data[sent[0]:sent[0] + 65536])
            except OSError:
                pass
        try:
            d = srv.recv(65536)
            got.extend(d)
        except OSError:
            pass
        return len(got) >= len(data)
    assert run_until(moved, 60)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    c.close()
    srv.close()
    ls.close()
    run_until(lambda: False, 0.2)
