"""The heap-locked workload, shared by twostack_heaplock.py (memory link) and
board_heaplock.py (a board's driver on a virtual SPI chip): a client stack `a` and a server
stack `b` (the one under test, with the app's UDP and TCP echo services), warmed up, then
with micropython.heap_lock() held: N UDP echo round trips, TCP_BYTES through the TCP echo,
N pings answered by b. `inject(frame, n)` puts a frame on b's wire as if from the network;
`take(buf) -> n` takes one frame b sent (for the pings, which bypass a).

A class, not closures: calling a MicroPython closure with more than a handful of captured
variables plus arguments allocates its argument array on the heap."""
import micropython
import gc
from ustack.core import socket as so
from ustack.core.wire import fields
from ustack.core.checksum import csum
from ustack.ports.micropython.tcpserv import TcpService, _send_n
from ustack.ports.micropython.app import UdpService

LOCKED = [False]  # for wire models that must run unlocked (they are the network, not us)


class Bench:
    def __init__(self, a, b, ip_a, ip_b, mac_a, mac_b, inject, take):
        self.a = a
        self.b = b
        self.inject = inject
        self.take = take
        self.t = 1000
        self.udp_srv = UdpService(b, 7, True)
        self.tcp_srv = TcpService(b, 7, "echo", max_conns=2) if b.tcp is not None else None
        ipb = ".".join(str(x) for x in ip_b)
        self.cli = a.socket(so.AF_INET, so.SOCK_DGRAM)
        self.cli.connect((ipb, 7))
        self.payload = bytearray(512)
        self.rbuf = bytearray(2048)
        self.udp_got = 0
        self.tcp = None
        if self.tcp_srv is not None:
            self.tcp = a.socket(so.AF_INET, so.SOCK_STREAM)
            self.tcp.setblocking(False)
            self.tcp.connect_ex((ipb, 7))
            for _ in range(30):
                self.step()
                self.tcp_srv.step()
        self.src = bytearray(4096)
        for i in range(len(self.src)):
            self.src[i] = (i * 7 + 3) & 0xFF
        self.sent = 0
        self.recvd = 0
        self.mismatches = 0
        # echo request built once by hand, rewritten in place (sequence, checksum)
        ping = bytearray(98)
        for k in range(6):
            ping[k] = mac_b[k]
            ping[6 + k] = mac_a[k]
        ping[12] = 0x08
        hdr = bytes([0x45, 0, 0, 84, 0, 1, 0, 0, 64, 1, 0, 0])
        for k in range(12):
            ping[14 + k] = hdr[k]
        for k in range(4):
            ping[26 + k] = ip_a[k]
            ping[30 + k] = ip_b[k]
        c = ~csum(ping, 14, 20, 0) & 0xFFFF
        ping[24] = c >> 8
        ping[25] = c & 0xFF
        ping[34] = 8
        for i in range(56):
            ping[42 + i] = i
        self.ping = ping
        self.pong = bytearray(1536)
        self.pongs = 0
        self.phase = 0

    def step(self):
        self.t += 1
        self.a.poll(self.t)
        self.b.poll(self.t)

    def udp_round(self, i):
        p = self.payload
        p[0] = i & 0xFF
        self.cli.send(p)
        self.step()
        self.udp_srv.step()
        self.step()
        self.step()
        cli = self.cli
        rbuf = self.rbuf
        while cli.qlen:
            n = cli.recv_into(rbuf)
            if n == len(p) and rbuf[0] == (i & 0xFF):
                self.udp_got += 1

    def tcp_pump(self, total):
        tcp = self.tcp
        rbuf = self.rbuf
        src = self.src
        sent0 = self.sent
        recv0 = self.recvd
        spins = 0
        while self.recvd - recv0 < total:
            tcb = tcp.tcb
            if self.sent - sent0 < total:
                free = tcb.snd.cap - tcb.snd.count
                k = total - (self.sent - sent0)
                off = self.sent & 4095
                if k > 4096 - off:
                    k = 4096 - off
                if k > len(rbuf):
                    k = len(rbuf)
                if k > free:
                    k = free
                if k > 0:
                    fields.copy(rbuf, 0, src, off, k)
                    self.sent += _send_n(tcp, rbuf, k)
            self.step()
            self.tcp_srv.step()
            r = tcb.rcv
            while r.count:
                n = tcp.recv_into(rbuf, 2048)
                j = 0
                p = self.recvd
                while j < n:
                    if rbuf[j] != src[(p + j) & 4095]:
                        self.mismatches += 1
                    j += 1
                self.recvd += n
            spins += 1
            if spins > 2000000:
                break

    def ping_round(self, i):
        ping = self.ping
        pong = self.pong
        ping[40] = (i >> 8) & 0xFF
        ping[41] = i & 0xFF
        ping[36] = 0
        ping[37] = 0
        c = ~csum(ping, 34, 64, 0) & 0xFFFF
        ping[36] = c >> 8
        ping[37] = c & 0xFF
        self.inject(ping, 98)
        self.t += 1
        self.b.poll(self.t)
        while True:
            n = self.take(pong)
            if not n:
                break
            if n >= 42 and pong[23] == 1 and pong[34] == 0 and pong[40] == ping[40] and \
                    pong[41] == ping[41]:
                self.pongs += 1

    def workload(self, n, tcp_bytes):
        self.phase = 1
        for i in range(n):
            self.udp_round(i)
        self.phase = 2
        if self.tcp is not None:
            self.tcp_pump(tcp_bytes)
        self.phase = 3
        for i in range(n):
            self.ping_round(i)
        self.phase = 4

    def locked(self, n, tcp_bytes):
        micropython.heap_lock()
        LOCKED[0] = True
        try:
            self.workload(n, tcp_bytes)
            r = None
        except MemoryError as e:
            r = e
        LOCKED[0] = False
        micropython.heap_unlock()
        return r


def run(a, b, ip_a, ip_b, mac_a, mac_b, inject, take, N, TCP_BYTES):
    bench = Bench(a, b, ip_a, ip_b, mac_a, mac_b, inject, take)
    bench.workload(20, 65536)      # warm-up, unlocked: ARP, first calls, rings
    bench.udp_got = 0
    bench.pongs = 0
    recv0 = bench.recvd
    gc.collect()
    failure = bench.locked(N, TCP_BYTES)
    res = {"phase": "done"}
    res["failure"] = None if failure is None else ("MemoryError in phase %d" % bench.phase)
    res["udp_echoes"] = bench.udp_got
    res["tcp_bytes_echoed"] = bench.recvd - recv0 if bench.tcp is not None else 0
    res["tcp_mismatches"] = bench.mismatches
    res["pings"] = bench.pongs
    res["pool_a"] = [a.pool.nfree, a.pool.count]
    res["pool_b"] = [b.pool.nfree, b.pool.count]
    res["tcp"] = bench.tcp is not None
    res["mem_peak"] = micropython.mem_peak()
    return res
