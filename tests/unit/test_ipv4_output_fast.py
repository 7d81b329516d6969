"""What IPv4 output computes for every datagram, moved to C integers when compiled (issue 13):
the Identification (RFC 7739 5.3, core/ipv4.py next_ident, ipv4.pxd) and the header with its
checksum (core/wire/ipv4.py write_header, summed from the values written) give exactly what
the Python arithmetic and the checksum routine give, on both cores."""
import random

from ustack.core import ipv4
from ustack.core.checksum import csum
from ustack.core.stack import Stack
from ustack.core.wire import ipv4 as w


def reference(f, g, src, dst, proto):
    """The hash as written before it moved into ident_hash (Python ints)."""
    for i in range(9):
        x = proto if i == 8 else (src[i] if i < 4 else dst[i - 4])
        f = ((f ^ x) * 0x9E5) & 0x3FFFF
        f ^= f >> 7
        g = ((g ^ x) * 0x6B3) & 0x3FFFF
        g ^= g >> 9
    return f & 0xFFFF, (g >> 4) & (ipv4.ID_BUCKETS - 1)


def test_ident_hash_is_the_python_arithmetic_for_any_keys_and_addresses():
    r = random.Random(13)
    for _ in range(2000):
        f, g = r.getrandbits(16), r.getrandbits(16)
        src = bytes(r.getrandbits(8) for _ in range(4))
        dst = bytearray(r.getrandbits(8) for _ in range(4))
        proto = r.choice((1, 6, 17, 255))
        lo, k = reference(f, g, src, dst, proto)
        assert ipv4.ident_hash(f, g, src, dst, proto) == lo | (k << 16)
    assert ipv4.ident_hash(0xFFFF, 0xFFFF, b"\xff" * 4, b"\xff" * 4, 255) < 1 << 22


def test_next_ident_counts_up_per_destination_bucket():
    st = Stack()
    ip = st.ipv4
    a, b, c = b"\xc0\x00\x02\x02", b"\xc0\x00\x02\x01", b"\xc6\x33\x64\x07"
    first = ip.next_ident(a, b, 6)
    lo, k = reference(ip.id_key1, ip.id_key2, a, b, 6)
    assert first == lo
    assert [ip.next_ident(a, b, 6) for _ in range(3)] == [(lo + i) & 0xFFFF for i in (1, 2, 3)]
    lo2, k2 = reference(ip.id_key1, ip.id_key2, a, c, 17)
    assert ip.next_ident(a, c, 17) == (lo2 + (4 if k2 == k else 0)) & 0xFFFF


def test_next_ident_follows_every_flow_whatever_came_before():
    """Interpreted, next_ident keeps the last datagram's flow and hash (issue 13): a flow
    after another, the same flow in a reused buffer whose bytes changed, another protocol,
    addresses of other types, and secrets drawn anew all give the hash of their own flow
    and their bucket's next count, as the hash computed afresh every time does."""
    st = Stack()
    ip = st.ipv4
    r = random.Random(5)
    reused = bytearray(b"\xc0\x00\x02\x01")
    flows = [(b"\xc0\x00\x02\x02", b"\xc0\x00\x02\x01", 6),
             (b"\xc0\x00\x02\x02", b"\xc0\x00\x02\x01", 17),
             (bytearray(b"\xc0\x00\x02\x02"), memoryview(b"\xc6\x33\x64\x07"), 6),
             (b"\xc0\x00\x02\x02", reused, 17)]
    ip.next_ident(b"\0\0\0\0", b"\0\0\0\0", 1)   # the secrets drawn
    counts = {}
    for i in range(400):
        if i == 200:
            ip.id_key1, ip.id_key2 = r.getrandbits(16), r.getrandbits(16)   # as drawn anew
            ip.id_proto = -1
            ip.id_count = [0] * ipv4.ID_BUCKETS
            counts = {}
        src, dst, proto = flows[r.randrange(len(flows))]
        if dst is reused:
            reused[3] = r.randrange(1, 4)   # the same buffer, another address
        lo, k = reference(ip.id_key1, ip.id_key2, src, dst, proto)
        c = counts.get(k, 0)
        assert ip.next_ident(src, dst, proto) == (lo + c) & 0xFFFF, (i, src, bytes(dst), proto)
        counts[k] = c + 1


def test_write_header_is_every_field_and_a_checksum_that_verifies():
    r = random.Random(7)
    for _ in range(3000):
        tot = r.choice((20, 40, 84, 1500, 65535, r.randrange(20, 65536)))
        ident = r.getrandbits(16) | r.choice((0, 1 << 16))   # bits above 16 are not written
        frag = r.choice((0, w.FLAG_DF, w.FLAG_MF | r.getrandbits(13), r.getrandbits(13)))
        ttl = r.randrange(256)
        proto = r.randrange(256)
        src = bytes(r.getrandbits(8) for _ in range(4))
        dst = bytearray(r.getrandbits(8) for _ in range(4))
        b = bytearray(r.getrandbits(8) for _ in range(30))
        o = r.randrange(0, 10)
        ps = w.write_header(b, o, tot, ident, frag, ttl, proto, src, dst)
        h = b[o:o + 20]
        # what it returns: the pseudo-header's sum over the addresses and the protocol
        assert ps == csum(h, 12, 8, proto)
        assert h[0] == 0x45 and h[1] == 0
        assert (h[2] << 8 | h[3], h[4] << 8 | h[5], h[6] << 8 | h[7]) == (tot, ident & 0xFFFF,
                                                                          frag)
        assert (h[8], h[9], bytes(h[12:16]), bytes(h[16:20])) == (ttl, proto, src, bytes(dst))
        assert csum(h, 0, 20, 0) == 0xFFFF   # RFC 1071: the header sums to all ones
        # and the field is what the checksum routine gives over the header with it zeroed
        z = bytearray(h)
        z[10] = z[11] = 0
        assert (h[10] << 8 | h[11]) == ~csum(z, 0, 20, 0) & 0xFFFF
