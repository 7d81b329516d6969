"""The IPv4 header checksum and the pseudo-header sum computed from fields and by index
(issue 13: no buffer view per datagram) agree with the RFC 1071 sum over the bytes
(core/checksum.py csum) for every field value: seeded pseudo-random headers, the extremes,
and what a header written into a buffer at an odd offset verifies to."""
from ustack.core.checksum import csum
from ustack.core.wire import ipv4 as w
from ustack.core import ipv4


def _rand(seed):
    """A small LCG (MicroPython has no random.Random); its state stays below 2**30."""
    x = seed
    while True:
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        yield x >> 8


def _fields(r):
    return (next(r) & 0xFFFF, next(r) & 0xFFFF, next(r) & 0xFFFF, next(r) & 0xFF,
            next(r) & 0xFF, bytes(next(r) & 0xFF for _ in range(4)),
            bytes(next(r) & 0xFF for _ in range(4)))


def test_a_written_header_verifies_for_random_and_extreme_fields():
    r = _rand(13)
    cases = [_fields(r) for _ in range(400)]
    cases.append((0xFFFF, 0xFFFF, 0xFFFF, 0xFF, 0xFF, b"\xff\xff\xff\xff", b"\xff\xff\xff\xff"))
    cases.append((20, 0, 0, 0, 0, b"\x00\x00\x00\x00", b"\x00\x00\x00\x00"))
    for tot, ident, frag, ttl, proto, src, dst in cases:
        for o in (0, 7, 14):
            b = bytearray(o + 20)
            w.write_header(b, o, tot, ident, frag, ttl, proto, src, dst)
            assert csum(b, o, 20, 0) == 0xFFFF, (tot, ident, frag, ttl, proto, src, dst, o)
            # the checksum field is what RFC 1071 gives over the header with it zeroed
            c = (b[o + 10] << 8) | b[o + 11]
            b[o + 10] = 0
            b[o + 11] = 0
            assert c == ~csum(b, o, 20, 0) & 0xFFFF
            assert bytes(b[o + 12:o + 16]) == src and bytes(b[o + 16:o + 20]) == dst


def test_the_pseudo_header_sum_by_index_is_the_sum_over_the_addresses():
    r = _rand(7)
    for k in range(400):
        b = bytearray(34)
        for i in range(34):
            b[i] = next(r) & 0xFF
        if k == 0:
            for i in range(26, 34):
                b[i] = 0xFF   # the largest sum: folded twice
        proto = next(r) & 0xFF
        assert ipv4._pseudo_sum(b, 14, proto) == csum(b, 26, 8, proto), k
