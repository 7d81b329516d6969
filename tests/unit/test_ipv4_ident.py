"""The IPv4 Identification of every datagram sent (RFC 7739 5.3, core/ipv4.py next_ident):
its hash in C integers when compiled (ipv4.pxd, issue 13) gives exactly what the Python
arithmetic gives, on both cores, and next_ident still counts per bucket."""
import random

from ustack.core import ipv4
from ustack.core.stack import Stack


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
