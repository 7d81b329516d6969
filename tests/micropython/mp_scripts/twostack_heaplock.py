"""Two ustack instances under MicroPython on an allocation-free memory link, both driven
with micropython.heap_lock() held after a warm-up (heaplock_bench.run): N UDP echo round
trips (client and server side), TCP_BYTES through a TCP echo in both directions, N pings.
Prints one JSON line of results.

    micropython twostack_heaplock.py LIB [N] [TCP_BYTES] [CONFIG_JSON]
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
import json
from memlink import pair
from ustack.core.stack import Stack
import heaplock_bench

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
TCP_BYTES = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 20
CFG = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
MAC_A = b"\x02\0\0\0\0\x0a"
MAC_B = b"\x02\0\0\0\0\x0b"

la, lb = pair(MAC_A, MAC_B)
a = Stack(CFG or None)
b = Stack(CFG or None)
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")


def inject(frame, n):
    lb.rx.put(frame, n)


def take(buf):
    return la.rx.get(buf)


res = heaplock_bench.run(a, b, bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11]), MAC_A, MAC_B,
                         inject, take, N, TCP_BYTES)
if b.tcp is not None:  # idle connections' shared empty rings (ring.py), the caps in use
    e = getattr(b.tcp.rings, "empty", None)
    res["shared_ring_caps"] = -1 if e is None else len(e)
if b.packet_filter is not None:  # a FILTER config: what b's rules matched (test_filter_mpy.py)
    res["filter_pkts"] = b.packet_filter.rs.pkts
    res["filter_ct_used"] = b.packet_filter.ct.used
print(json.dumps(res))
