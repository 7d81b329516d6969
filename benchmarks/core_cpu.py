"""CPU cost of the core's hot paths, in process, on the in-memory wire (no TAP, no threads):
process CPU time split between the sending and the receiving stack.

    python -m benchmarks.core_cpu [--mb 20] [--echo 20000] [--runs 3]
    USTACK_PURE=1 python -m benchmarks.core_cpu       # the pure-Python core

Rows: TCP bulk a -> b, µs of CPU per data segment on the sending side (socket send, TCP
output, IPv4, driver, ACK input) and on the receiving side (driver, Ethernet, IPv4, TCP
input, ring, socket recv, ACKs); UDP echo, µs per round trip (both stacks). Best of --runs."""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ustack  # noqa: E402
from ustack.core import socket as so  # noqa: E402
from tests.twostack import Bench, IP_B  # noqa: E402

cpu = time.process_time


def tcp_bulk(mb):
    bench = Bench({"TCP_SND_BUF": 65536, "TCP_RCV_BUF": 65536})
    a, b = bench.a, bench.b
    ls = b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 9000))
    ls.listen(1)
    ls.setblocking(False)
    s = a.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((IP_B, 9000))
    bench.pump(20)
    conn, _ = ls.accept()
    conn.setblocking(False)
    blk = b"x" * 65536
    sink = bytearray(65536)
    total = mb * 1000 * 1000
    sent = got = 0
    ta = tb = 0.0
    seg0 = b.tcp.stats.rx_segments
    while got < total:
        bench.t += 1
        t0 = cpu()
        if sent < total:
            try:
                sent += s.send(blk)
            except OSError:
                pass
        a.poll(bench.t)
        t1 = cpu()
        b.poll(bench.t)
        while True:
            try:
                k = conn.recv_into(sink)
            except OSError:
                break
            if not k:
                break
            got += k
        t2 = cpu()
        ta += t1 - t0
        tb += t2 - t1
    segs = b.tcp.stats.rx_segments - seg0
    s.close()
    conn.close()
    ls.close()
    bench.pump(50)
    return ta * 1e6 / segs, tb * 1e6 / segs, segs


def udp_echo(n):
    bench = Bench()
    a, b = bench.a, bench.b
    srv = b.socket(so.AF_INET, so.SOCK_DGRAM)
    srv.bind(("", 7))
    srv.setblocking(False)
    cl = a.socket(so.AF_INET, so.SOCK_DGRAM)
    cl.setblocking(False)
    msg = b"r" * 64
    buf = bytearray(2048)
    cl.sendto(msg, (IP_B, 7))  # ARP first
    bench.pump(5)
    srv.recvfrom(2048)
    t0 = cpu()
    for _ in range(n):
        cl.sendto(msg, (IP_B, 7))
        a.poll(bench.t)
        b.poll(bench.t)
        k, addr = srv.recvfrom_into(buf)
        srv.sendto(memoryview(buf)[:k], addr)
        b.poll(bench.t)
        a.poll(bench.t)
        cl.recvfrom_into(buf)
    return (cpu() - t0) * 1e6 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--echo", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    o = ap.parse_args()
    best = None
    for _ in range(o.runs):
        snd, rcv, segs = tcp_bulk(o.mb)
        echo = udp_echo(o.echo)
        row = (snd, rcv, snd + rcv, echo)
        best = row if best is None else tuple(min(x, y) for x, y in zip(best, row))
    print("core compiled: %s" % ustack.compiled)
    print("TCP bulk, µs CPU per segment: send side %.2f, receive side %.2f, total %.2f "
          "(%d segments)" % (best[0], best[1], best[2], segs))
    print("UDP echo, µs CPU per round trip: %.2f" % best[3])


if __name__ == "__main__":
    main()
