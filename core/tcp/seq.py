"""Sequence number arithmetic modulo 2**32 (RFC 9293 3.4; RFC 1982 serial comparison), and
the conversion between wire values and a connection's relative ones.

All comparisons of sequence numbers, acknowledgments and timestamps go through here.

Small ints on 32-bit MCUs: MicroPython's small ints there are 31-bit (|v| < 2**30); anything
larger is a heap object, and so is the result of any operation with such an operand (x & MASK
allocates even when x is small). So a connection keeps every sequence number, ACK number and
timestamp RELATIVE to a per-connection base - its ISS for our sequence space, the peer's IRS
for the peer's, our first TSval and the peer's first TSval for timestamps - with the bases
kept as 16-bit halves (hi, lo). Relative values start near 0 and stay small ints for the
first 2**30 bytes (1 GiB) moved in each direction (2**30 ms, 12 days, for timestamps). Past
that they are big ints (heap objects on such ports) but every result stays correct: all the
helpers are exact modulo 2**32. Conversion happens only at the wire boundary, in 16-bit
halves read and written by byte indexing (rel_at, put_rel): no 32-bit value is formed.

Every helper first tries a fast path in which all operands and results are small ints (both
values relative and close together: the normal case) and falls back to the general
modulo-2**32 arithmetic otherwise."""
from ustack.core.compat import const

M32 = const(0xFFFFFFFF)  # a C constant under Cython (seq.pxd); MASK for importers
MASK = M32
HALF = const(0x80000000)
SMALL = const(0x3FFFFFFF)  # the largest small int on a 32-bit MicroPython port


def seq_add(a, n):
    r = a + n
    if 0 <= r <= SMALL:
        return r
    return r & M32


def seq_sub(a, b):
    """Distance from b forward to a (0 .. 2**32-1)."""
    d = a - b
    if 0 <= d <= SMALL:
        return d
    return d & M32


def seq_diff(a, b):
    """Signed distance a - b in (-2**31, 2**31]."""
    d = a - b
    if -SMALL <= d <= SMALL:
        return d
    d &= M32
    if d >= HALF:
        return d - 0x100000000
    return d


def seq_lt(a, b):
    d = a - b
    if -SMALL <= d <= SMALL:
        return d < 0
    return a != b and ((b - a) & M32) < HALF


def seq_le(a, b):
    d = a - b
    if -SMALL <= d <= SMALL:
        return d <= 0
    return ((b - a) & M32) < HALF


def seq_gt(a, b):
    d = a - b
    if -SMALL <= d <= SMALL:
        return d > 0
    return a != b and ((a - b) & M32) < HALF


def seq_ge(a, b):
    d = a - b
    if -SMALL <= d <= SMALL:
        return d >= 0
    return ((a - b) & M32) < HALF


def seq_max(a, b):
    return b if seq_lt(a, b) else a


def seq_min(a, b):
    return a if seq_lt(a, b) else b


def seq_between(lo, x, hi):
    """lo <= x < hi."""
    d = x - lo
    n = hi - lo
    if 0 <= n <= SMALL and -SMALL <= d <= SMALL:
        # x before lo: its forward distance is at least 2**32 - 2**30 > n
        return 0 <= d < n
    return ((x - lo) & M32) < ((hi - lo) & M32)


def seq_in(x, lo, n):
    """(x - lo) mod 2**32 < n: x within the n sequence numbers from lo (0 <= n < 2**30)."""
    d = x - lo
    if 0 <= d <= SMALL:
        return d < n
    if -SMALL <= d < 0:
        return False  # forward distance 2**32 + d > 3 * 2**30 > n
    return (d & M32) < n


# ---- the wire boundary: 16-bit halves ----------------------------------------------------------
def rel_at(b, o, bhi, blo):
    """The 32-bit big-endian value at b[o:o+4] minus the base bhi:blo, modulo 2**32, computed
    in 16-bit halves (a small int while the result is below 2**30)."""
    lo = ((b[o + 2] << 8) | b[o + 3]) - blo
    hi = ((b[o] << 8) | b[o + 1]) - bhi
    if lo < 0:
        lo += 0x10000
        hi -= 1
    return ((hi & 0xFFFF) << 16) | lo


def hi_minus_1(b, o):
    """The high 16 bits of (the 32-bit big-endian value at b[o:o+4]) - 1, modulo 2**32: it
    borrows only from a low half of 0 (an ISN from SEG.SEQ - 1 or SEG.ACK - 1, RFC 4987 3.6)."""
    hi = (b[o] << 8) | b[o + 1]
    if b[o + 2] == 0 and b[o + 3] == 0:
        return (hi - 1) & 0xFFFF
    return hi


def lo_minus_1(b, o):
    """The low 16 bits of (the 32-bit big-endian value at b[o:o+4]) - 1."""
    return (((b[o + 2] << 8) | b[o + 3]) - 1) & 0xFFFF


def put_rel(b, o, rel, bhi, blo):
    """Write base bhi:blo + rel (modulo 2**32) big-endian at b[o:o+4], in 16-bit halves."""
    lo = blo + (rel & 0xFFFF)
    hi = bhi + (rel >> 16) + (lo >> 16)
    b[o] = (hi >> 8) & 0xFF
    b[o + 1] = hi & 0xFF
    b[o + 2] = (lo >> 8) & 0xFF
    b[o + 3] = lo & 0xFF


def wire_value(rel, bhi, blo):
    """base + rel as one 32-bit int (may be a big int: diagnostics, tests, not the hot path)."""
    return (((bhi << 16) | blo) + rel) & MASK
