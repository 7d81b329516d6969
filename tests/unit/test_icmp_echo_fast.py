"""The echo request turned into its reply in place (core/icmp.py echo_rewrite, C integers when
compiled: icmp.pxd, issue 13), against an independent construction of the reply, for random
requests with and without IP options, to a broadcast and not, on both cores."""
import random
import struct

from ustack.core import icmp
from tests.unit_ref import csum


def request(r, opts, payload):
    ihl = 20 + len(opts)
    body = bytearray(b"\x08\x00\x00\x00" + struct.pack("!HH", r.getrandbits(16),
                                                       r.getrandbits(16)) + payload)
    c = ~csum(bytes(body)) & 0xFFFF
    body[2:4] = struct.pack("!H", c)
    src = bytes(r.getrandbits(8) for _ in range(4))
    dst = bytes(r.getrandbits(8) for _ in range(4))
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl // 4, r.getrandbits(8),
                              ihl + len(body), r.getrandbits(16), r.choice((0, 0x4000)),
                              r.randrange(1, 256), 1, 0, src, dst) + opts)
    h[10:12] = struct.pack("!H", ~csum(bytes(h)) & 0xFFFF)
    return h + body, src, dst, bytes(body)


def test_echo_rewrite_builds_the_reply_an_independent_encoder_builds():
    r = random.Random(5)
    for i in range(1500):
        opts = b"" if i % 3 else b"\x01" * 4 * r.randrange(1, 11)
        payload = bytes(r.getrandbits(8) for _ in range(r.randrange(0, 200)))
        req, src, dst, body = request(r, opts, payload)
        bcast = i % 7 == 0
        ours = bytes(r.getrandbits(8) for _ in range(4))
        off = r.randrange(0, 20)
        b = bytearray(off) + req + bytearray(8)
        tot = icmp.echo_rewrite(b, off, 20 + len(opts), len(req), bcast, ours, 64)
        assert tot == 20 + len(body)
        h, m = b[off:off + 20], b[off + 20:off + tot]
        # ICMP: type 0, same code, identifier, sequence and data; a checksum that verifies
        assert m[0] == 0 and m[1] == 0 and bytes(m[4:]) == body[4:]
        assert csum(bytes(m)) == 0xFFFF
        # IP: 20 bytes, addresses swapped (ours when the request went to a broadcast),
        # TTL 64, not fragmented, a header checksum that verifies
        assert h[0] == 0x45 and (h[2] << 8 | h[3]) == tot
        assert bytes(h[12:16]) == (ours if bcast else dst) and bytes(h[16:20]) == src
        assert h[8] == 64 and h[6] == 0 and h[7] == 0 and h[9] == 1
        assert csum(bytes(h)) == 0xFFFF


def test_mac_back_swaps_the_ethernet_addresses():
    b = bytearray(range(14))
    icmp.mac_back(b, b"\xaa\xbb\xcc\xdd\xee\xff")
    assert bytes(b[:12]) == bytes(range(6, 12)) + b"\xaa\xbb\xcc\xdd\xee\xff"
    assert bytes(b[12:]) == bytes([12, 13])
