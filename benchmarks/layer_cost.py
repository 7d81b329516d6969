"""The per-frame cost of the lower layers alone (issue 13), no TAP and no kernel: IPv4 output
of a 1448-byte TCP segment through a connection's route cache, ARP and the interface to a
driver that takes the frame and does nothing; the same for a segment of 44 MSS cut by the
stack's software GSO (core/offload.py gso_send, a driver offering CAP_GSO_SOFT), per frame;
and interface input of a 1514-byte TCP frame through IPv4 up to delivery (a filter_in hook
takes it there). Microseconds per frame, best
of --rounds; run it beside another build of the package (PYTHONPATH=DIR, DIR/ustack) for a
before/after of a change to iface/ipv4/route/arp/net.ip on the same machine load.

    python -m benchmarks.layer_cost [--frames 200000] [--rounds 3]"""
import argparse
import time

GSO_SEGS = 44   # MSS-sized segments in one software-GSO output (64 KB, as TSO_MAX allows)


class NullDriver:
    """Takes every frame and drops it; never has one to read."""
    mac = b"\x02\x00\x00\x00\x00\x02"
    mtu = 1500
    caps = 0

    def __init__(self):
        self.sent = 0

    def send(self, buf, n):
        self.sent += 1
        return True

    def recv_into(self, buf):
        return 0


def measure(frames):
    """(output us/segment, input us/frame, frames the driver took)."""
    from ustack.core.stack import Stack
    from ustack.core.route import RouteCache
    from ustack.core.wire import ipv4 as w4
    from ustack.core.buf import OFL_GSO_SHIFT
    from ustack.core.iface import CAP_GSO_SOFT
    st = Stack()
    drv = NullDriver()
    iface = st.add_interface("eth0", drv, ip="192.0.2.2", prefix=24)
    host = bytes((192, 0, 2, 1))
    me = bytes((192, 0, 2, 2))
    iface.arp.add_static(host, b"\x02\x00\x00\x00\x00\x01")
    rc = RouteCache()
    ip = st.ip
    sent0 = drv.sent  # setup's own frames (a gratuitous ARP)

    def out_once():
        pb = ip.alloc_tx(host)
        pb.n = 20 + 1448
        ip.output(pb, 6, me, host, 16, 64, 0, True, None, rc)
    for _ in range(1000):
        out_once()
    t = time.perf_counter()
    for _ in range(frames):
        out_once()
    t_out = (time.perf_counter() - t) / frames * 1e6
    # software GSO: one IPv4 output of 44 segments' payload, cut into frames before the driver
    st_g = Stack()
    drv_g = NullDriver()
    drv_g.caps = CAP_GSO_SOFT
    ig = st_g.add_interface("eth0", drv_g, ip="192.0.2.2", prefix=24)
    ig.arp.add_static(host, b"\x02\x00\x00\x00\x00\x01")
    rc_g = RouteCache()
    ip_g = st_g.ip
    gsent0 = drv_g.sent  # setup's own frames (a gratuitous ARP)

    def gso_once():
        pb = ip_g.alloc_tx_large(host)
        pb.n = 20 + 1448 * GSO_SEGS
        pb.buf[pb.off + 12] = 5 << 4     # a TCP header of 20 bytes
        pb.offload = 1448 << OFL_GSO_SHIFT
        ip_g.output(pb, 6, me, host, 16, 64, 0, True, None, rc_g)
    for _ in range(20):
        gso_once()
    g0 = drv_g.sent
    t = time.perf_counter()
    for _ in range(max(1, frames // GSO_SEGS)):
        gso_once()
    t_gso = (time.perf_counter() - t) / (drv_g.sent - g0) * 1e6
    frame = bytearray(1514)
    frame[0:6] = NullDriver.mac
    frame[6:12] = b"\x02\x00\x00\x00\x00\x01"
    frame[12:14] = b"\x08\x00"
    w4.write_header(frame, 14, 1500, 1, 0x4000, 64, 6, host, me)
    delivered = [0]

    def take(i, b, o, n):
        delivered[0] += 1
        return False
    st.filter_in = take
    pool = st.pool

    def in_once():
        pb = pool.alloc_rx()
        pb.buf[:1514] = frame
        iface.input(pb, 1514)
    for _ in range(1000):
        in_once()
    t = time.perf_counter()
    for _ in range(frames):
        in_once()
    t_in = (time.perf_counter() - t) / frames * 1e6
    assert pool.full(), "a buffer leaked"
    assert st_g.pool.full(), "a buffer leaked"
    return t_out, t_in, drv.sent - sent0, delivered[0], t_gso, drv_g.sent - gsent0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=200000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    import ustack
    best = None
    for _ in range(a.rounds):
        r = measure(a.frames)
        best = r if best is None else (min(best[0], r[0]), min(best[1], r[1]), r[2], r[3],
                                       min(best[4], r[4]), r[5])
    print("ustack %s compiled=%s: IPv4 output %.2f us/segment, software GSO %.2f us/frame, "
          "input %.2f us/frame" % (ustack.__file__.rsplit("/", 1)[0], ustack.compiled, best[0],
                                   best[4], best[1]))
    return {"output_us": best[0], "input_us": best[1], "sent": best[2], "delivered": best[3],
            "gso_us": best[4], "gso_sent": best[5]}


if __name__ == "__main__":
    main()
