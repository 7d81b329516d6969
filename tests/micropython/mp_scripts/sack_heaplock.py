"""TCP loss recovery heap-locked under MicroPython: two ustack instances on the memory link
losing every LOSE_EVERY-th frame in both directions; after an unlocked warm-up with the same
loss (connection, rings, SACK scoreboard), TCP_BYTES go through the TCP echo with
micropython.heap_lock() held - SACK blocks, the scoreboard, RFC 6675 recovery with PRR and
the tail loss probe must allocate nothing, and so must the SACK blocks the echo's data
segments carry while their sender holds the other direction's data out of order (RFC 2018
4; sack_on_data counts them on the link). CONFIG (JSON) adds board settings, e.g.
{"TCP_CC": "cubic"} for CUBIC's congestion avoidance between the losses; SWAP_EVERY > 0
delivers every SWAP_EVERY-th frame after the next one (reordering), so RACK (RFC 8985) sees
reordering and takes over loss detection, its reordering timer included. Prints one JSON line.

    micropython sack_heaplock.py LIB [TCP_BYTES] [LOSE_EVERY] [CONFIG] [SWAP_EVERY]
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
import gc
import json
import micropython
from memlink import pair
from ustack.core.stack import Stack
import heaplock_bench

TCP_BYTES = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 20
LOSE_EVERY = int(sys.argv[3]) if len(sys.argv) > 3 else 50
MAC_A = b"\x02\0\0\0\0\x0a"
MAC_B = b"\x02\0\0\0\0\x0b"
CFG = {"TCP_MAX_RETRIES": 30}
if len(sys.argv) > 4:
    CFG.update(json.loads(sys.argv[4]))
SWAP_EVERY = int(sys.argv[5]) if len(sys.argv) > 5 else 0

la, lb = pair(MAC_A, MAC_B)
a = Stack(CFG)
b = Stack(CFG)
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")
bench = heaplock_bench.Bench(a, b, bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11]), MAC_A,
                             MAC_B, lambda f, n: lb.rx.put(f, n), la.rx.get)
SACK_DATA = [0]  # TCP segments with payload and a SACK option (RFC 2018 4), counted while


def sack_on_data(buf, n):
    """Does frame buf[:n] carry TCP data and a SACK option? Indexing only: no allocation."""
    if n < 54 or buf[12] != 8 or buf[13] != 0 or buf[23] != 6:
        return False
    ihl = (buf[14] & 15) * 4
    t = 14 + ihl
    hl = (buf[t + 12] >> 4) * 4
    if ((buf[16] << 8) | buf[17]) - ihl - hl <= 0:
        return False
    i = t + 20
    while i < t + hl:
        k = buf[i]
        if k == 0:
            return False
        if k == 1:
            i += 1
            continue
        if k == 5:
            return True
        i += buf[i + 1] if buf[i + 1] > 1 else 1
    return False


def counting(put):
    def put2(buf, n):
        if sack_on_data(buf, n):
            SACK_DATA[0] += 1
        return put(buf, n)
    return put2


la.tx.put = counting(la.tx.put)
lb.tx.put = counting(lb.tx.put)
la.tx.lose_every = LOSE_EVERY
lb.tx.lose_every = LOSE_EVERY
la.tx.swap_every = SWAP_EVERY   # data one way (the echo sends it back: both ways)
lb.tx.swap_every = SWAP_EVERY
bench.tcp_pump(256 << 10)          # warm-up, unlocked, with the same loss
recv0 = bench.recvd
K = ("sack_recoveries", "rx_sack_blocks", "tx_retransmits", "tlp_probes", "rto_expired",
     "cubic_epochs", "rack_reordering", "rack_reo_timeouts", "spurious_recoveries")
before = [getattr(a.tcp.stats, k) + getattr(b.tcp.stats, k) for k in K]
lost0 = la.tx.lost + lb.tx.lost
sack_data0 = SACK_DATA[0]
swapped0 = la.tx.swapped + lb.tx.swapped
failure = None  # every global exists before the lock: a new one would grow the dict
gc.collect()
micropython.heap_lock()
try:
    bench.tcp_pump(TCP_BYTES)
except MemoryError:
    failure = "MemoryError"
micropython.heap_unlock()
res = {"failure": failure, "tcp_bytes_echoed": bench.recvd - recv0,
       "tcp_mismatches": bench.mismatches, "lost": la.tx.lost + lb.tx.lost - lost0,
       "swapped": la.tx.swapped + lb.tx.swapped - swapped0,
       "sack_on_data": SACK_DATA[0] - sack_data0}
i = 0
for k in K:  # what happened while locked
    res[k] = getattr(a.tcp.stats, k) + getattr(b.tcp.stats, k) - before[i]
    i += 1
print(json.dumps(res))
