"""DNS messages (RFC 1035 section 4): the header, names, the question, resource records.

                                    1  1  1  1  1  1
      0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |                      ID                       |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |        QDCOUNT / ANCOUNT / NSCOUNT / ARCOUNT  |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+

Names are handled in wire form (length-prefixed labels, ending with the root's zero byte),
ASCII-lowercased (RFC 4343: comparisons ignore case), in caller-owned buffers. Reading a
compressed name follows a pointer only strictly backwards (RFC 1035 4.1.4: a pointer names
"a prior occurrence of the same name"), so a hostile loop of pointers ends, and the result
never exceeds MAX_NAME bytes. No function here allocates.
"""
from ustack.core.compat import const

HDR_LEN = const(12)
OFF_ID = const(0)
OFF_FLAGS = const(2)
OFF_QDCOUNT = const(4)
OFF_ANCOUNT = const(6)
OFF_NSCOUNT = const(8)

# flags (RFC 1035 4.1.1)
QR = const(0x8000)
OPCODE_MASK = const(0x7800)  # 0: a standard query
TC = const(0x0200)
RD = const(0x0100)
RCODE_MASK = const(0x000F)

RCODE_NOERROR = const(0)
RCODE_FORMERR = const(1)
RCODE_SERVFAIL = const(2)
RCODE_NXDOMAIN = const(3)  # "Name Error": the name does not exist
RCODE_NOTIMP = const(4)
RCODE_REFUSED = const(5)

TYPE_A = const(1)
TYPE_CNAME = const(5)
TYPE_SOA = const(6)
TYPE_AAAA = const(28)   # RFC 3596
CLASS_IN = const(1)

MAX_LABEL = const(63)   # RFC 1035 2.3.4
MAX_NAME = const(255)   # octets in wire form, the root's zero byte included
UDP_MAX = const(512)    # RFC 1035 4.2.1: a UDP message without EDNS0
PORT = const(53)


def u16(b, o):
    return (b[o] << 8) | b[o + 1]


def put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def encode_name(out, o, name):
    """The dotted ASCII name (one trailing dot allowed) in wire form, lowercased, at out[o];
    returns the offset after it, or -1 when it is no valid host name: an empty label, a
    label over 63 octets, over 255 octets in all, a non-ASCII character (RFC 1035 2.3.4)."""
    start = o
    n = len(name)
    if n == 0 or name == ".":
        return -1
    if name[n - 1] == ".":
        n -= 1
    i = 0
    while i <= n:
        j = i
        while j < n and name[j] != ".":
            j += 1
        ln = j - i
        if ln == 0 or ln > MAX_LABEL or (o - start) + 1 + ln + 1 > MAX_NAME:
            return -1
        out[o] = ln
        o += 1
        while i < j:
            c = ord(name[i])
            if c > 126 or c <= 32:
                return -1
            if 65 <= c <= 90:
                c += 32
            out[o] = c
            o += 1
            i += 1
        i = j + 1
    out[o] = 0
    return o + 1


def skip_name(b, o, end):
    """The offset just after the (possibly compressed) name at b[o], or -1 if it runs past
    end or holds a label type other than 0 and pointer (RFC 1035 4.1.4; RFC 6891's
    extended labels are obsolete)."""
    while o < end:
        c = b[o]
        if c == 0:
            return o + 1
        if c & 0xC0 == 0xC0:
            return o + 2 if o + 2 <= end else -1
        if c & 0xC0:
            return -1
        o += 1 + c
    return -1


def read_name(b, o, end, out):
    """The name at b[o] uncompressed into out (wire form, lowercased); returns its length or
    -1 when malformed: running past end, a pointer that does not point strictly backwards
    (a loop), a reserved label type, over MAX_NAME octets."""
    n = 0
    limit = o  # a pointer must point before the label that holds it
    while True:
        if o >= end:
            return -1
        c = b[o]
        if c & 0xC0 == 0xC0:
            if o + 1 >= end:
                return -1
            p = ((c & 0x3F) << 8) | b[o + 1]
            if p >= limit:
                return -1
            o = p
            limit = p
            continue
        if c & 0xC0:
            return -1
        if n + 1 + c > MAX_NAME:
            return -1
        out[n] = c
        n += 1
        if c == 0:
            return n
        if o + 1 + c > end:
            return -1
        i = 0
        while i < c:
            x = b[o + 1 + i]
            if 65 <= x <= 90:
                x += 32
            out[n] = x
            n += 1
            i += 1
        o += 1 + c


def name_eq(a, an, b, bn):
    """Two wire-form lowercased names (a[0:an], b[0:bn]) equal?"""
    if an != bn:
        return False
    i = 0
    while i < an:
        if a[i] != b[i]:
            return False
        i += 1
    return True


def build_query(out, o, qid, name, nlen, qtype):
    """A recursive query (RD, RFC 1035 4.1.1) for the wire-form name[0:nlen] at out[o];
    returns its length."""
    put16(out, o + OFF_ID, qid)
    put16(out, o + OFF_FLAGS, RD)
    put16(out, o + OFF_QDCOUNT, 1)
    i = 6
    while i < HDR_LEN:
        out[o + i] = 0
        i += 1
    p = o + HDR_LEN
    i = 0
    while i < nlen:
        out[p + i] = name[i]
        i += 1
    p += nlen
    put16(out, p, qtype)
    put16(out, p + 2, CLASS_IN)
    return p + 4 - o


def to_text(name, n):
    """A wire-form name as dotted text (for messages and the cache's callers)."""
    parts = []
    i = 0
    while i < n and name[i]:
        ln = name[i]
        parts.append(bytes(name[i + 1:i + 1 + ln]).decode())
        i += 1 + ln
    return ".".join(parts)
