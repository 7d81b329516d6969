"""The MicroPython side of benchmarks/mpy_cpu.py: two stacks in one micropython process on an
in-memory link (tests/micropython/mp_scripts/memlink.py), `b` the stack under test with the
MicroPython app's own services (ports/micropython/tcpserv.py, app.UdpService), `a` its client.
Only b's work is timed (its poll and its services' step, in process CPU time), per
operation; prints one JSON line.

    micropython mpy_work.py LIB MEMLINK_DIR ROW N [CONFIG_FILE]

(CONFIG_FILE: the stack's config as JSON; a file, since the unix port dies on a long argument.)

ROW: bulk_in (a sends to b's discard, µs per MB b takes in), bulk_out (b's chargen to a, µs
per MB), echo (64-byte TCP echo, µs per round trip), udp (64-byte UDP echo, µs per round
trip), cps (connect, 1 byte echoed, close, until b holds no connection: µs per connection),
http (a keep-alive GET / of the app's HTTP service, µs per request), ping (an ICMP echo
request put on b's wire, µs per reply).
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import json
import time
from memlink import pair
from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.core.checksum import csum
from ustack.ports.micropython.tcpserv import TcpService
from ustack.ports.micropython.app import UdpService

ROW = sys.argv[3]
N = int(sys.argv[4])
CFG = {}
if len(sys.argv) > 5:
    with open(sys.argv[5]) as f:
        CFG = json.load(f)
MAC_A = b"\x02\0\0\0\0\x0a"
MAC_B = b"\x02\0\0\0\0\x0b"
# process CPU time (the unix port's time.clock is C's clock()): the stack's own work, not the
# time it waited for a core on a busy machine
clock = time.clock

la, lb = pair(MAC_A, MAC_B)
a = Stack(dict(CFG) or None)
b = Stack(dict(CFG) or None)
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")
IPB = "192.0.2.11"


class W:
    def __init__(self):
        self.t = 1000
        self.us = 0
        self.svcs = []
        self.t0 = 0.0

    def start(self):
        self.us = 0
        self.t0 = clock()

    def step(self):
        self.t += 1
        a.poll(self.t)
        t0 = clock()
        b.poll(self.t)
        for s in self.svcs:
            s.step()
        self.us += clock() - t0


w = W()


def connect(port):
    s = a.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((IPB, port))
    for _ in range(50):
        w.step()
        if s.tcb is not None and s.tcb.state == 4:  # ESTABLISHED
            break
    return s


def bulk_in(mb):
    w.svcs.append(TcpService(b, 9, "discard", max_conns=2))
    s = connect(9)
    blk = bytearray(2048)
    total = mb * 1000000
    sent = 0
    w.start()
    spins = 0
    while sent < total or s.tcb.snd.count:
        if sent < total:
            try:
                sent += s.send(blk)
            except OSError:
                pass
        w.step()
        spins += 1
        if spins > 5000000:
            raise SystemExit("bulk_in stuck at %d" % sent)
    return sent


def bulk_out(mb):
    w.svcs.append(TcpService(b, 19, "chargen", max_conns=2))
    s = connect(19)
    buf = bytearray(8192)
    total = mb * 1000000
    got = 0
    w.start()
    spins = 0
    while got < total:
        w.step()
        while True:
            try:
                k = s.recv_into(buf)
            except OSError:
                break
            if not k:
                break
            got += k
        spins += 1
        if spins > 5000000:
            raise SystemExit("bulk_out stuck at %d" % got)
    return got


def requests(s, req, buf, want, n):
    """n request/answer rounds on s (after 20 unmeasured ones: w.start()), each answer at
    least `want` bytes within 20 steps; how many were answered."""
    done = 0
    for i in range(n + 20):
        if i == 20:
            w.start()
        s.send(req)
        got = 0
        for _ in range(20):
            w.step()
            try:
                got += s.recv_into(buf)
            except OSError:
                pass
            if got >= want:
                break
        if got >= want and i >= 20:
            done += 1
    return done


def echo(n):
    w.svcs.append(TcpService(b, 7, "echo", max_conns=2))
    return requests(connect(7), bytearray(64), bytearray(256), 64, n)


def udp(n):
    w.svcs.append(UdpService(b, 7, True))
    c = a.socket(so.AF_INET, so.SOCK_DGRAM)
    c.connect((IPB, 7))
    m = bytearray(64)
    buf = bytearray(256)
    done = 0
    for i in range(n + 20):
        if i == 20:
            w.start()
        c.send(m)
        for _ in range(5):
            w.step()
            if c.qlen:
                c.recv_into(buf)
                if i >= 20:
                    done += 1
                break
    return done


def cps(n):
    svc = TcpService(b, 7, "echo", max_conns=4)
    w.svcs.append(svc)
    buf = bytearray(16)
    done = 0
    for i in range(n + 10):
        if i == 10:
            w.start()
        s = connect(7)
        s.send(b"1")
        for _ in range(20):
            w.step()
            try:
                if s.recv_into(buf) == 1:
                    break
            except OSError:
                pass
        s.close()
        for _ in range(40):
            w.step()
            if not b.tcp.conns:
                break
        if i >= 10 and not b.tcp.conns:
            done += 1
    return done


def http(n):
    from ustack.ports.micropython.httpserv import HttpService
    w.svcs.append(HttpService(b, 80, None, max_conns=2))
    req = b"GET / HTTP/1.1\r\nHost: 192.0.2.11\r\n\r\n"
    return requests(connect(80), req, bytearray(2048), 150, n)   # the head and the 73-byte page


def ping(n):
    ping = bytearray(98)
    pong = bytearray(1536)
    for k in range(6):
        ping[k] = MAC_B[k]
        ping[6 + k] = MAC_A[k]
    ping[12] = 0x08
    hdr = bytes([0x45, 0, 0, 84, 0, 1, 0, 0, 64, 1, 0, 0])
    for k in range(12):
        ping[14 + k] = hdr[k]
    ping[26:30] = bytes([192, 0, 2, 10])
    ping[30:34] = bytes([192, 0, 2, 11])
    c = ~csum(ping, 14, 20, 0) & 0xFFFF
    ping[24] = c >> 8
    ping[25] = c & 0xFF
    ping[34] = 8
    # b learns a's address first (one UDP datagram a -> b)
    u = a.socket(so.AF_INET, so.SOCK_DGRAM)
    u.sendto(b"x", (IPB, 9))
    for _ in range(5):
        w.step()
    done = 0
    for i in range(n + 20):
        if i == 20:
            w.start()
        ping[40] = (i >> 8) & 0xFF
        ping[41] = i & 0xFF
        ping[36] = 0
        ping[37] = 0
        c = ~csum(ping, 34, 64, 0) & 0xFFFF
        ping[36] = c >> 8
        ping[37] = c & 0xFF
        lb.rx.put(ping, 98)
        w.t += 1
        t0 = clock()
        b.poll(w.t)
        w.us += clock() - t0
        while True:
            k = la.rx.get(pong)
            if not k:
                break
            if k >= 42 and pong[23] == 1 and pong[34] == 0 and i >= 20:
                done += 1
    return done


ops = {"bulk_in": bulk_in, "bulk_out": bulk_out, "echo": echo, "udp": udp, "cps": cps,
       "http": http, "ping": ping}[ROW](N)
# us: b's work per operation (per MB for bulk); all: the whole process's, both stacks and
# this driver
print(json.dumps({"row": ROW, "us": w.us * 1e6 / N, "all": (clock() - w.t0) * 1e6 / N,
                  "ops": ops}))
