"""Fragmented echo requests into a ustack instance under MicroPython with
micropython.heap_lock() held after a warm-up: N rounds of a SIZE-byte ping in two fragments,
sent in order, in reverse order, and with the first fragment repeated (an identical overlap),
each reassembled and answered (a reply bigger than a packet buffer fragmented on the way out,
a smaller one copied into one and routed); then N ICMP errors quoting TCP segments, each
demultiplexed by TCP. A peer stack on a memory
link answers ARP during the warm-up only. Prints one JSON line of results.

    micropython frag_heaplock.py LIB [N] [SIZE]
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
import gc
import json
import micropython
from memlink import pair
from ustack.core.stack import Stack
from ustack.core.checksum import csum
from ustack.core.wire import fields

N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
SIZE = int(sys.argv[3]) if len(sys.argv) > 3 else 2000   # echo data bytes
MAC_A = b"\x02\0\0\0\0\x0a"
MAC_B = b"\x02\0\0\0\0\x0b"
IP_A = bytes([192, 0, 2, 10])
IP_B = bytes([192, 0, 2, 11])
# fragment zero's payload: a multiple of 8 that fills a 1500-byte MTU, or about half of a
# smaller message (whose reply fits one packet buffer and is routed, not fragmented)
FIRST = 1480 if SIZE + 8 > 1480 else ((SIZE + 8) // 2) & ~7

la, lb = pair(MAC_A, MAC_B)
a = Stack(None)
b = Stack(None)
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")


class Frags:
    """The echo request (ICMP message) and its two fragment frames, rewritten in place."""

    def __init__(self):
        self.msg = bytearray(8 + SIZE)
        self.msg[0] = 8
        for i in range(SIZE):
            self.msg[8 + i] = (i * 13 + 1) & 0xFF
        self.f = [bytearray(1536), bytearray(1536)]
        self.n = [14 + 20 + FIRST, 14 + 20 + len(self.msg) - FIRST]
        self.pong = bytearray(1536)
        self.t = 1000
        self.pongs = 0
        self.phase = 0

    def build(self, seq):
        m = self.msg
        m[2] = 0
        m[3] = 0
        m[6] = (seq >> 8) & 0xFF
        m[7] = seq & 0xFF
        c = ~csum(m, 0, len(m), 0) & 0xFFFF
        m[2] = c >> 8
        m[3] = c & 0xFF
        for k in range(2):
            f = self.f[k]
            fields.copy(f, 0, MAC_B, 0, 6)
            fields.copy(f, 6, MAC_A, 0, 6)
            f[12] = 0x08
            f[13] = 0x00
            plen = self.n[k] - 34
            fo = 0 if k == 0 else FIRST
            f[14] = 0x45
            f[15] = 0
            fields.put16(f, 16, 20 + plen)
            fields.put16(f, 18, seq)          # Identification: one per datagram
            fields.put16(f, 20, (0x2000 if k == 0 else 0) | (fo >> 3))
            f[22] = 64
            f[23] = 1
            f[24] = 0
            f[25] = 0
            fields.copy(f, 26, IP_A, 0, 4)
            fields.copy(f, 30, IP_B, 0, 4)
            c = ~csum(f, 14, 20, 0) & 0xFFFF
            f[24] = c >> 8
            f[25] = c & 0xFF
            fields.copy(f, 34, m, fo, plen)

    def step(self):
        self.t += 1
        b.poll(self.t)

    def take(self, seq):
        pong = self.pong
        while True:
            n = la.rx.get(pong)
            if not n:
                break
            # the reply's fragment zero: ICMP echo reply with our sequence number
            if n >= 42 and pong[23] == 1 and (pong[20] & 0x1F) == 0 and pong[21] == 0 and \
                    pong[34] == 0 and pong[40] == (seq >> 8) & 0xFF and pong[41] == seq & 0xFF:
                self.pongs += 1

    def round(self, seq, order):
        self.build(seq)
        f = self.f
        n = self.n
        if order == 0:
            lb.rx.put(f[0], n[0])
            lb.rx.put(f[1], n[1])
        elif order == 1:
            lb.rx.put(f[1], n[1])
            lb.rx.put(f[0], n[0])
        else:
            lb.rx.put(f[0], n[0])
            lb.rx.put(f[0], n[0])   # a retransmitted fragment: identical overlap
            lb.rx.put(f[1], n[1])
        self.step()
        self.take(seq)

    def icmp_error(self, i):
        """Destination unreachable (fragmentation needed) quoting a TCP segment b sent: the
        TCP demultiplexing of ICMP errors (RFC 1122 4.2.3.9) by index, without copies."""
        e = self.err
        fields.put16(e, 64, 1000 + (i & 0xFF))   # the quoted TCP destination port
        e[36] = 0
        e[37] = 0
        c = ~csum(e, 34, 36, 0) & 0xFFFF
        e[36] = c >> 8
        e[37] = c & 0xFF
        lb.rx.put(e, 70)
        self.step()

    def build_error(self):
        e = bytearray(70)
        fields.copy(e, 0, MAC_B, 0, 6)
        fields.copy(e, 6, MAC_A, 0, 6)
        e[12] = 0x08
        hdr = bytes([0x45, 0, 0, 56, 0, 7, 0, 0, 64, 1, 0, 0])
        fields.copy(e, 14, hdr, 0, 12)
        fields.copy(e, 26, IP_A, 0, 4)
        fields.copy(e, 30, IP_B, 0, 4)
        c = ~csum(e, 14, 20, 0) & 0xFFFF
        e[24] = c >> 8
        e[25] = c & 0xFF
        e[34] = 3    # destination unreachable
        e[35] = 4    # fragmentation needed
        fields.put16(e, 40, 576)
        q = 42       # the quote: our IPv4 header to a, then 8 bytes of TCP
        qh = bytes([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0])
        fields.copy(e, q, qh, 0, 12)
        fields.copy(e, q + 12, IP_B, 0, 4)
        fields.copy(e, q + 16, IP_A, 0, 4)
        fields.put16(e, q + 20, 7)
        self.err = e

    def workload(self, n, seq0):
        self.phase = 1
        for i in range(n):
            self.round(seq0 + i, i % 3)
        self.phase = 2
        for i in range(n):
            self.icmp_error(i)
        self.phase = 3


fr = Frags()
fr.build_error()
# warm-up, unlocked: b resolves a's MAC (a answers), first calls, timers
for i in range(6):
    fr.build(i)
    lb.rx.put(fr.f[0], fr.n[0])
    lb.rx.put(fr.f[1], fr.n[1])
    for _ in range(4):
        fr.t += 1
        b.poll(fr.t)
        a.poll(fr.t)
while la.rx.get(fr.pong):
    pass
fr.workload(9, 100)
warm = fr.pongs
fr.pongs = 0
gc.collect()
err = None
micropython.heap_lock()
try:
    fr.workload(N, 1000)
except MemoryError as e:
    err = e   # nothing more under the lock: formatting allocates
micropython.heap_unlock()
failure = None
if err is not None:
    failure = "MemoryError in phase %d" % fr.phase
    sys.print_exception(err, sys.stderr)
c = b.counters()
print(json.dumps({"failure": failure, "warm_pongs": warm, "pongs": fr.pongs,
                  "reassembled": c.get("reass.reassembled", 0),
                  "tcp_icmp_errors": c.get("tcp.icmp_errors", 0),
                  "reass_drops": sum(c.get("reass." + k, 0) for k in (
                      "no_slot", "too_big", "malformed", "oversize", "overlap_conflict",
                      "tiny", "evicted", "timeouts")),
                  "pool_b": [b.pool.nfree, b.pool.count]}))
