"""Baseline peer for benchmarks: the Linux kernel itself behind the same kind of TAP.

Two TAPs, one per namespace, joined by this relay (a minimal user-space loop copying frames
both ways). The far namespace's kernel answers as the "stack", so a measurement through it
costs TAP + one Python process hop + Linux, the same path ustack's numbers take."""
import select
import sys

from ustack.hal.tap import Tap


def main(a, b):
    ta = Tap(a)
    tb = Tap(b)
    print("relay ready", flush=True)
    buf = bytearray(65536)
    p = select.poll()
    p.register(ta.fd, select.POLLIN)
    p.register(tb.fd, select.POLLIN)
    while True:
        for fd, _ in p.poll(1000):
            src, dst = (ta, tb) if fd == ta.fd else (tb, ta)
            while True:
                n = src.recv_into(buf)
                if not n:
                    break
                dst.send(buf, n)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
