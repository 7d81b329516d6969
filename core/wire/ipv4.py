"""IPv4 header (RFC 791 section 3.1).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""
from ustack.core.compat import const
from ustack.core.checksum import csum

VER_IHL = const(0)
TOS = const(1)
TOTLEN = const(2)
IDENT = const(4)
FRAG = const(6)
TTL = const(8)
PROTO = const(9)
CSUM = const(10)
SRC = const(12)
DST = const(16)
HDR_LEN = const(20)
MAX_HDR_LEN = const(60)

FLAG_DF = const(0x4000)
FLAG_MF = const(0x2000)
FRAG_OFF_MASK = const(0x1FFF)

# options (RFC 791 3.1): type octets
OPT_EOL = const(0)
OPT_NOP = const(1)
OPT_LSRR = const(131)
OPT_SSRR = const(137)

PROTO_ICMP = const(1)
PROTO_TCP = const(6)
PROTO_UDP = const(17)

ANY = b"\x00\x00\x00\x00"
BROADCAST = b"\xff\xff\xff\xff"


def write_header(b, o, total_len, ident, frag, ttl, proto, src, dst):
    """A 20-byte header (no options) with its checksum: the ones' complement sum of its
    16-bit words (RFC 1071) added up from the values written, not read back (issue 13).
    Returns the pseudo-header's sum without the length (RFC 768, RFC 9293 3.1: addresses and
    protocol, folded to 16 bits), what csum(b, o + SRC, 8, proto) gives, for the transport's
    checksum."""
    ident &= 0xFFFF
    b[o] = 0x45
    b[o + 1] = 0
    b[o + 2] = total_len >> 8
    b[o + 3] = total_len & 0xFF
    b[o + 4] = ident >> 8
    b[o + 5] = ident & 0xFF
    b[o + 6] = frag >> 8
    b[o + 7] = frag & 0xFF
    b[o + 8] = ttl
    b[o + 9] = proto
    a = src[0]
    c = src[1]
    b[o + 12] = a
    b[o + 13] = c
    p = (a << 8) | c
    a = src[2]
    c = src[3]
    b[o + 14] = a
    b[o + 15] = c
    p += (a << 8) | c
    a = dst[0]
    c = dst[1]
    b[o + 16] = a
    b[o + 17] = c
    p += (a << 8) | c
    a = dst[2]
    c = dst[3]
    b[o + 18] = a
    b[o + 19] = c
    p += (a << 8) | c
    s = 0x4500 + total_len + ident + frag + ((ttl << 8) | proto) + p
    s = (s & 0xFFFF) + (s >> 16)   # under 2**20: two folds carry every bit back
    s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    b[o + 10] = s >> 8
    b[o + 11] = s & 0xFF
    p += proto
    p = (p & 0xFFFF) + (p >> 16)
    return (p & 0xFFFF) + (p >> 16)


def pseudo_sum(b, o, proto, l4len):
    """Sum of the RFC 793/768 pseudo-header for the IPv4 header at b[o]."""
    return csum(b, o + SRC, 8, proto + l4len)


def aton(s):
    """'192.0.2.1' -> b'\\xc0\\x00\\x02\\x01' (setup paths only)."""
    if isinstance(s, (bytes, bytearray)) and len(s) == 4:
        return bytes(s)
    parts = s.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address %r" % (s,))
    out = bytearray(4)
    for i in range(4):
        v = int(parts[i])
        if not 0 <= v <= 255:
            raise ValueError("bad IPv4 address %r" % (s,))
        out[i] = v
    return bytes(out)


def ntoa(b, o=0):
    return "%d.%d.%d.%d" % (b[o], b[o + 1], b[o + 2], b[o + 3])


def prefix_mask(prefix):
    m = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF if prefix else 0
    return bytes(((m >> 24) & 0xFF, (m >> 16) & 0xFF, (m >> 8) & 0xFF, m & 0xFF))


def parse_cidr(s):
    """'192.0.2.2/24' -> (addr bytes, prefix)."""
    if "/" in s:
        a, p = s.split("/")
        p = int(p)
        if not 0 <= p <= 32:
            raise ValueError("bad prefix length in %r" % (s,))
        return aton(a), p
    return aton(s), 32
