"""Two ustack instances under MicroPython on an allocation-free memory link, both driven
with micropython.heap_lock() held after a warm-up: N UDP echo round trips (client and server
side), then TCP_BYTES through a TCP echo in both directions, then N pings answered (the
requests are built once and rewritten in place). Prints one JSON line of results.

    micropython twostack_heaplock.py LIB [N] [TCP_BYTES] [CONFIG_JSON]
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
import json
import micropython
import gc
from memlink import pair
from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.core.wire import fields
from ustack.ports.micropython.tcpserv import TcpService, _send_n
from ustack.ports.micropython.app import UdpService

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
TCP_BYTES = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 20
CFG = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}

la, lb = pair(b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b")
a = Stack(CFG or None)
b = Stack(CFG or None)
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")
T = [1000]


def step():
    T[0] += 1
    a.poll(T[0])
    b.poll(T[0])


res = {"phase": "setup"}
udp_srv = UdpService(b, 7, True)
tcp_srv = TcpService(b, 7, "echo", max_conns=2) if b.tcp is not None else None
cli = a.socket(so.AF_INET, so.SOCK_DGRAM)
cli.connect(("192.0.2.11", 7))
payload = bytearray(512)
rbuf = bytearray(2048)
got = [0, 0]


def udp_round(i):
    payload[0] = i & 0xFF
    cli.send(payload)
    step()
    udp_srv.step()
    step()
    while cli.qlen:
        n = cli.recv_into(rbuf)
        if n == len(payload) and rbuf[0] == (i & 0xFF):
            got[0] += 1


# ---- TCP client side, allocation-free after connect
tcp = None
if tcp_srv is not None:
    tcp = a.socket(so.AF_INET, so.SOCK_STREAM)
    tcp.setblocking(False)
    tcp.connect_ex(("192.0.2.11", 7))
    for _ in range(20):
        step()
        tcp_srv.step()
src = bytearray(4096)
for i in range(len(src)):
    src[i] = (i * 7 + 3) & 0xFF
chk = [0, 0, 0]  # bytes sent, bytes received back, mismatches


def tcp_pump(total):
    sent0 = chk[0]
    recv0 = chk[1]
    spins = 0
    while chk[1] - recv0 < total:
        tcb = tcp.tcb
        if chk[0] - sent0 < total:
            free = tcb.snd.cap - tcb.snd.count
            k = total - (chk[0] - sent0)
            off = chk[0] & 4095
            if k > 4096 - off:
                k = 4096 - off
            if k > len(rbuf):
                k = len(rbuf)
            if k > free:
                k = free
            if k > 0:
                fields.copy(rbuf, 0, src, off, k)
                chk[0] += _send_n(tcp, rbuf, k)
        step()
        tcp_srv.step()
        r = tcb.rcv
        while r.count:
            n = tcp.recv_into(rbuf, 2048)
            j = 0
            p = chk[1]
            while j < n:
                if rbuf[j] != src[(p + j) & 4095]:
                    chk[2] += 1
                j += 1
            chk[1] += n
        spins += 1
        if spins > 2000000:
            break


# ---- ICMP: echo requests built once by hand, rewritten in place (ident/seq, checksum)
from ustack.core.checksum import csum
ping = bytearray(98)
ping[0:6] = b"\x02\0\0\0\0\x0b"
ping[6:12] = b"\x02\0\0\0\0\x0a"
ping[12] = 0x08
ping[14:34] = bytes([0x45, 0, 0, 84, 0, 1, 0, 0, 64, 1, 0, 0, 192, 0, 2, 10, 192, 0, 2, 11])
c = ~csum(ping, 14, 20, 0) & 0xFFFF
ping[24] = c >> 8
ping[25] = c & 0xFF
ping[34] = 8
for i in range(56):
    ping[42 + i] = i
pongs = [0]
pong = bytearray(1536)


def ping_round(i):
    ping[40] = (i >> 8) & 0xFF
    ping[41] = i & 0xFF
    ping[36] = 0
    ping[37] = 0
    c = ~csum(ping, 34, 64, 0) & 0xFFFF
    ping[36] = c >> 8
    ping[37] = c & 0xFF
    lb.rx.put(ping, 98)          # as if it came off b's wire
    T[0] += 1
    b.poll(T[0])
    while la.rx.count:           # b's replies land in a's receive ring: take them here
        n = la.rx.get(pong)
        if n >= 42 and pong[34] == 0 and pong[40] == ping[40] and pong[41] == ping[41]:
            pongs[0] += 1


# warm-up (unlocked): ARP, first-call allocations, rings handed out
for i in range(20):
    udp_round(i)
if tcp is not None:
    tcp_pump(65536)
for i in range(20):
    ping_round(i)
la.rx.count = 0
got[0] = 0
pongs[0] = 0
gc.collect()
res["phase"] = "locked"
phase = [0]


def locked():
    """Everything under the lock runs in a function: a new module global would allocate."""
    micropython.heap_lock()
    try:
        phase[0] = 1
        for i in range(N):
            udp_round(i)
        phase[0] = 2
        if tcp is not None:
            tcp_pump(TCP_BYTES)
        phase[0] = 3
        for i in range(N):
            ping_round(i)
        phase[0] = 4
        r = None
    except MemoryError as e:
        r = e
    micropython.heap_unlock()
    return r


failure = locked()
res["failure"] = None if failure is None else ("MemoryError in phase %d" % phase[0])
res["udp_echoes"] = got[0]
res["tcp_bytes_echoed"] = chk[1] - 65536 if tcp is not None else 0
res["tcp_mismatches"] = chk[2]
res["pings"] = pongs[0]
res["pool_a"] = [a.pool.nfree, a.pool.count]
res["pool_b"] = [b.pool.nfree, b.pool.count]
res["tcp"] = tcp is not None
res["mem_peak"] = micropython.mem_peak()
print(json.dumps(res))
