"""CPU cost per frame of the receive path, in process, without a TAP: what one flood frame
costs the core (compiled or pure), measured as process CPU time over N frames fed through
Stack.poll by a driver that hands out prebuilt frames and throws replies away.

    python -m benchmarks.syn_cpu [--n 50000]          # the core as imported (compiled?)
    USTACK_PURE=1 python -m benchmarks.syn_cpu        # the pure-Python core

Cases: a SYN to a listener whose SYN queue is full (as under hping3 -S -p 80 --flood: one
source, the source port counting up) answered with a SYN cookie, the same SYN with Linux's
options (MSS, SACK-permitted, timestamps, window scale), the SYN dropped past the poll's
cookie budget (TCP_SYNCOOKIE_BUDGET), the default budget's mix; an ACK to the listener
(cookie checked, then a RST, rate-limited), the RST Linux answers a cookie for a SYN it
never sent, a frame for another MAC (dropped at Ethernet) and a UDP datagram to a closed
port (ICMP error, rate-limited) as baselines.

Then the step before: hal/tap.py's reader, what it costs to take one frame of a flood from
a TAP of 8 queues whose 7 others are empty (datagram socket pairs stand in for the queues),
with the steering program's reader (one poll() a round, then the queue that holds frames)
and without it (the kernel's steering: the first queue, then the others in turn, each empty
one an EAGAIN read)."""
import argparse
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ustack  # noqa: E402
from ustack.core.stack import Stack  # noqa: E402
from ustack.hal import Driver  # noqa: E402
from tests import frames as F  # noqa: E402

LINUX_SYN_OPTS = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0x10, 0, 0, 0, 0, 0, 1, 3, 3, 7])
PC_TAP = {"PBUF_COUNT": 256, "SOCKETS": 512, "TCP_MAX_CONNS": 512, "TCP_BACKLOG": 256,
          "TCP_SYN_QUEUE": 256}


class Replay(Driver):
    """Hands out frames[i % len] n times; counts what is sent."""

    def __init__(self):
        self.mac = F.STACK_MAC
        self.mtu = 1500
        self.frames = []
        self.left = 0
        self.i = 0
        self.sent = 0

    def recv_into(self, buf):
        if self.left <= 0:
            return 0
        f = self.frames[self.i]
        self.i += 1
        if self.i == len(self.frames):
            self.i = 0
        self.left -= 1
        n = len(f)
        buf[0:n] = f
        return n

    def send(self, buf, n):
        self.sent += 1
        return True


def syn_frames(k, opts=b"", flags=0x02, dport=80):
    out = []
    for i in range(k):
        out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
            F.HOST_IP, F.STACK_IP, 6, F.tcp(F.HOST_IP, F.STACK_IP, 1024 + i, dport,
                                            0x10000 * i + 77, 0, flags, options=opts))))
    return out


def make(config=None):
    drv = Replay()
    cfg = dict(PC_TAP)
    cfg.update(config or {})
    st = Stack(cfg)
    t = [1000]
    st.clock = lambda: t[0]
    iface = st.add_interface("eth0", drv, ip="192.0.2.2/24")
    iface.arp.add_static(F.HOST_IP, F.HOST_MAC)
    ls = st.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(256)
    st.poll(t[0])
    # fill the SYN queue (from two other hosts): from now on every SYN to port 80 is the
    # cookie path's
    drv.frames = [F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
        bytes([192, 0, 2, 100 + (i >> 8)]), F.STACK_IP, 6,
        F.tcp(bytes([192, 0, 2, 100 + (i >> 8)]), F.STACK_IP, 2000 + i, 80, 5, 0, 0x02)))
        for i in range(300)]
    iface.arp.add_static(bytes([192, 0, 2, 100]), F.HOST_MAC)
    iface.arp.add_static(bytes([192, 0, 2, 101]), F.HOST_MAC)
    drv.left = 300
    while drv.left:
        st.poll(t[0])
    return st, drv, t


def measure(st, drv, t, frames, n):
    drv.frames = frames
    drv.i = 0
    drv.left = n
    drv.sent = 0
    c0 = time.process_time()
    while drv.left:
        t[0] += 1
        st.poll(t[0])
    c1 = time.process_time()
    return (c1 - c0) * 1e6 / n, drv.sent


ALL_COOKIES = {"TCP_SYNCOOKIE_BUDGET": 0}
NO_COOKIES = {"TCP_SYNCOOKIE_BUDGET": 1}  # 1 cookie in each poll of 32 frames: 31 dropped

CASES = (
    ("syn, no options (hping3 -S): cookie", ALL_COOKIES, lambda: syn_frames(4096)),
    ("syn, Linux options: cookie", ALL_COOKIES, lambda: syn_frames(4096, LINUX_SYN_OPTS)),
    ("syn, no options: over budget, dropped (31/32)", NO_COOKIES, lambda: syn_frames(4096)),
    ("syn, default cookie budget, polls of 32", {}, lambda: syn_frames(4096)),
    ("ack to the listener (RST, rate-limited)", {}, lambda: syn_frames(4096, flags=0x10)),
    ("rst to the listener (Linux's answer to a cookie)", {},
     lambda: syn_frames(4096, flags=0x04)),
    ("udp to a closed port (ICMP, rate-limited)", {},
     lambda: [F.udp_frame(9999, b"x" * 18, sport=1024 + i) for i in range(4096)]),
    ("frame for another MAC (dropped)", {},
     lambda: [F.eth(bytes.fromhex("02000000abcd"), F.HOST_MAC, 0x0800, f[14:])
              for f in syn_frames(64)]),
)


class _Fake:
    """hal/tapsteer.py's Steering, as far as the reader uses it."""

    def rotate(self, now_ns):
        pass


def reader_cost(steered, flood_q, n):
    """us of process time per frame recv_into takes, a flood on queue flood_q of 8."""
    import socket
    from ustack.hal.tap import Tap
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(8)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    tap = Tap.__new__(Tap)
    tap._queues([a.fileno() for a, _ in pairs], F.STACK_MAC, 1500)
    if steered:
        tap._steered(_Fake())
    buf = bytearray(64)
    frame = bytes(60)
    spent = 0.0
    got = 0
    try:
        while got < n:
            for _ in range(200):
                pairs[flood_q][1].send(frame)
            c0 = time.process_time()
            while tap.recv_into(buf):
                got += 1
            spent += time.process_time() - c0
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    return spent * 1e6 / got


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    a = ap.parse_args(argv)
    print("core compiled: %s" % ustack.compiled)
    for name, cfg, mk in CASES:
        st, drv, t = make(cfg)
        frames = mk()
        measure(st, drv, t, frames, min(a.n, 2000))  # warm up
        us, sent = measure(st, drv, t, frames, a.n)
        c = st.counters()
        print("%-50s %6.2f us/frame  sent %d/%d" % (name, us, sent, a.n))
    for name, steered, q in (("tap reader, steered: a flood on the SYN queue", True, 6),
                             ("tap reader, kernel steering: flood on queue 6", False, 6),
                             ("tap reader, kernel steering: flood on queue 0", False, 0)):
        print("%-50s %6.2f us/frame" % (name, reader_cost(steered, q, min(a.n, 20000))))


if __name__ == "__main__":
    main()
