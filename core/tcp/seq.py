"""Sequence number arithmetic modulo 2**32 (RFC 9293 3.4; RFC 1982 serial comparison).

All comparisons of sequence numbers, acknowledgments and timestamps go through here, so a
port can specialise them (e.g. keep them below 2**30 on 32-bit MCUs) in one place."""
from ustack.core.compat import const

MASK = const(0xFFFFFFFF)
HALF = const(0x80000000)


def seq_add(a, n):
    return (a + n) & MASK


def seq_sub(a, b):
    """Distance from b forward to a (0 .. 2**32-1)."""
    return (a - b) & MASK


def seq_diff(a, b):
    """Signed distance a - b in (-2**31, 2**31]."""
    d = (a - b) & MASK
    if d >= HALF:
        return d - 0x100000000
    return d


def seq_lt(a, b):
    return a != b and ((b - a) & MASK) < HALF


def seq_le(a, b):
    return ((b - a) & MASK) < HALF


def seq_gt(a, b):
    return a != b and ((a - b) & MASK) < HALF


def seq_ge(a, b):
    return ((a - b) & MASK) < HALF


def seq_max(a, b):
    return b if seq_lt(a, b) else a


def seq_min(a, b):
    return a if seq_lt(a, b) else b


def seq_between(lo, x, hi):
    """lo <= x < hi."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)
