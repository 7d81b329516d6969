"""Software GSO (issue 13): a driver with no offloads that offers CAP_GSO_SOFT (hal/tap.py
without the virtio-net header) lets TCP build segments of many MSS once - one pass through
TCP and IPv4 output for a burst - and the stack cuts them just in front of the driver
(core/offload.py gso_send), as Linux's GSO does ahead of a driver without TSO. What reaches
the wire is what a stack without GSO would send: frames up to the MTU with whole IPv4 and TCP
checksums (checked here by RFC 1071's definition, independently of the stack's code),
contiguous sequence numbers, FIN and PSH on a burst's last frame only, CWR on its first only
(RFC 3168 6.1.2)."""
from ustack.core.buf import OFL_GSO_SHIFT
from ustack.core.iface import CAP_GSO_SOFT
from tests.twostack import Bench, MAC_A
from tests.twostack import pair
from tests.unit.test_offload import ones_sum, tcp_sum_ok, pattern, move, CFG

MTU = 1500


def ip_sum_ok(f):
    return ones_sum(f[14:14 + ((f[14] & 0x0F) << 2)]) == 0xFFFF


class PlainLink:
    """A plain driver (one whole frame a send) that offers software GSO and keeps what it
    sent: every frame goes through."""

    def __init__(self, port):
        self.port = port
        self.mac = port.mac
        self.mtu = port.mtu
        self.caps = CAP_GSO_SOFT
        self.frames = []

    def send(self, buf, n):
        self.frames.append(bytes(buf[0:n]))
        return self.port.send(buf, n)

    def __getattr__(self, name):
        return getattr(self.port, name)


def plain_bench():
    """Two stacks whose A side's driver offers no offloads (PlainLink): software GSO; and the
    list that gets the wrapped link."""
    links = []

    def wrap(port, bench):
        if port.mac == MAC_A:
            k = PlainLink(port)
            links.append(k)
            return k
        return port
    return Bench(config=CFG, wrap=wrap), links


def test_a_plain_driver_with_soft_gso_gets_whole_checksummed_frames_cut_from_large_segments():
    b, links = plain_bench()
    try:
        assert b.ia.caps == CAP_GSO_SOFT and b.a.pool.large == b.a.config["OFFLOAD_BUFS"]
        s, conn, ls = pair(b)
        assert s.tcb.flags & 0x100000  # F_TSO: the route's driver takes segments of many MSS
        data = pattern(300000)
        assert move(b, s, conn, data) == data
        ca = b.a.counters()
        cb = b.b.counters()
        # TCP and IPv4 ran once a burst: far fewer segments built than frames sent
        assert ca["a0.tx_gso_frames"] > 0 and ca["tcp.tx_tso_segments"] == ca["a0.tx_gso_frames"]
        mss = s.tcb.mss
        tcp = [f for f in links[0].frames if f[12:14] == b"\x08\x00" and f[23] == 6]
        seg = [f for f in tcp if not f[47] & 0x02 and
               ((f[16] << 8) | f[17]) > 20 + ((f[46] >> 4) << 2)]   # the data frames
        assert len(seg) >= len(data) // mss
        assert ca["tcp.tx_segments"] < len(seg) // 2, (ca["tcp.tx_segments"], len(seg))
        assert all(len(f) <= 14 + MTU and ip_sum_ok(f) and tcp_sum_ok(f) for f in tcp)
        assert cb.get("tcp.rx_bad_csum", 0) == 0 and cb.get("ip.rx_bad_csum", 0) == 0
        # no frame lost or sent twice on this clean wire: contiguous sequence numbers
        seqs = [int.from_bytes(f[38:42], "big") for f in seg]
        lens = [((f[16] << 8) | f[17]) - 20 - ((f[46] >> 4) << 2) for f in seg]
        assert all(seqs[i] + lens[i] == seqs[i + 1] for i in range(len(seg) - 1))
        assert sum(lens) == len(data)
        assert b.a.pool.full()
        s.close()
        conn.close()
        ls.close()
    finally:
        b.close_all()


def test_gso_send_cuts_one_super_frame_into_exact_wire_frames():
    """One TCP/IPv4 frame of 3 MSS and a bit, with timestamps, flags CWR|ECE|PSH|FIN|ACK:
    four frames; each carries its part of the payload behind the same headers, Total
    Length, Identification + k, sequence number + offset, whole checksums; CWR on the
    first only, PSH and FIN on the last only, ECE and ACK on all."""
    b, links = plain_bench()
    try:
        mss = 1000
        data = pattern(3 * mss + 123)
        hl = 14 + 20 + 32
        pb = b.a.pool.alloc_large()
        f = pb.buf
        f[0:6] = b"\x02\x00\x00\x00\x00\x0b"
        f[6:12] = MAC_A
        f[12:14] = b"\x08\x00"
        tot = 20 + 32 + len(data)
        f[14:34] = bytes([0x45, 0, tot >> 8, tot & 0xFF, 0xFF, 0xFE, 0x40, 0, 64, 6, 0, 0,
                          192, 0, 2, 10, 192, 0, 2, 11])
        f[34:38] = b"\x1f\x90\x04\xd2"               # ports 8080 -> 1234
        f[38:42] = (0xFFFFF000).to_bytes(4, "big")    # wraps past 2**32 in the third frame
        f[42:46] = (0x01020304).to_bytes(4, "big")
        f[46] = 8 << 4
        f[47] = 0x80 | 0x40 | 0x10 | 0x08 | 0x01
        f[48:50] = b"\x10\x00"
        f[50:54] = b"\x00\x00\x00\x00"
        f[54:66] = b"\x01\x01\x08\x0a" + bytes(range(8))
        f[hl:hl + len(data)] = data
        pb.off = 0
        pb.n = hl + len(data)
        pb.offload = mss << OFL_GSO_SHIFT
        del links[0].frames[:]
        sent = b.ia.stats.tx_packets
        b.a.offload.gso_send(b.ia, pb, pb.n)
        b.a.free(pb)
        out = links[0].frames
        assert len(out) == 4 and b.ia.stats.tx_packets == sent + 4
        assert b.ia.stats.tx_gso_frames == 1
        got = b""
        for k, g in enumerate(out):
            m = mss if k < 3 else 123
            assert len(g) == hl + m
            assert g[0:16] == f[0:16] and g[20:24] == f[20:24] and g[26:38] == f[26:38]
            assert (g[16] << 8) | g[17] == 20 + 32 + m
            assert (g[18] << 8) | g[19] == (0xFFFE + k) & 0xFFFF
            assert int.from_bytes(g[38:42], "big") == (0xFFFFF000 + k * mss) & 0xFFFFFFFF
            assert g[42:47] == f[42:47] and g[48:50] == f[48:50] and g[54:66] == f[54:66]
            fl = g[47]
            assert fl & 0x50 == 0x50                     # ECE, ACK: on every frame
            assert bool(fl & 0x80) == (k == 0)           # CWR: the first only
            assert bool(fl & 0x09) == (k == 3) and (fl & 0x09 in (0, 0x09))
            assert ip_sum_ok(g) and tcp_sum_ok(g)
            got += g[hl:]
        assert got == data
        assert b.a.pool.full()
    finally:
        b.close_all()


def _super_frame(b, mss, data):
    """A TCP/IPv4 super-frame without options (ports 8080 -> 1234, ACK|PSH) holding data,
    to be cut into mss-sized frames."""
    pb = b.a.pool.alloc_large()
    f = pb.buf
    f[0:6] = b"\x02\x00\x00\x00\x00\x0b"
    f[6:12] = MAC_A
    f[12:14] = b"\x08\x00"
    tot = 20 + 20 + len(data)
    f[14:34] = bytes([0x45, 0, tot >> 8, tot & 0xFF, 0, 1, 0x40, 0, 64, 6, 0, 0,
                      192, 0, 2, 10, 192, 0, 2, 11])
    f[34:38] = b"\x1f\x90\x04\xd2"
    f[38:46] = bytes(range(1, 9))
    f[46] = 5 << 4
    f[47] = 0x18
    f[48:54] = b"\x10\x00\x00\x00\x00\x00"
    f[54:54 + len(data)] = data
    pb.off = 0
    pb.n = 54 + len(data)
    pb.offload = mss << OFL_GSO_SHIFT
    return pb


def test_gso_send_pads_a_short_last_frame_with_zeros_after_full_ones():
    """The frames are written in turn into one buffer: a last frame shorter than Ethernet's
    60 bytes is padded with zeros, not with what the frame before it left there."""
    b, links = plain_bench()
    try:
        data = bytes([0xAB]) * 800 + b"xyz"
        pb = _super_frame(b, 400, data)
        del links[0].frames[:]
        b.a.offload.gso_send(b.ia, pb, pb.n)
        b.a.free(pb)
        out = links[0].frames
        assert [len(g) for g in out] == [454, 454, 60]
        assert out[2][54:57] == b"xyz" and out[2][57:60] == b"\x00\x00\x00"
        assert all(ip_sum_ok(g) and tcp_sum_ok(g) for g in out)
        assert b.a.pool.full()
    finally:
        b.close_all()


def test_gso_send_without_a_free_pool_buffer_sends_nothing_and_counts_it():
    b, links = plain_bench()
    try:
        pb = _super_frame(b, 400, bytes(1000))
        held = []
        while True:
            x = b.a.pool.alloc()
            if x is None:
                break
            held.append(x)
        del links[0].frames[:]
        nb = b.ia.stats.tx_no_buffer
        b.a.offload.gso_send(b.ia, pb, pb.n)
        assert links[0].frames == [] and b.ia.stats.tx_no_buffer == nb + 1
        for x in held:
            b.a.free(x)
        b.a.free(pb)
        assert b.a.pool.full()
    finally:
        b.close_all()
