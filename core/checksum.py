"""RFC 1071 Internet checksum and RFC 1624 incremental update.

`csum(buf, off, n, acc)` returns the 16-bit one's complement *sum* (not inverted) of n bytes
at buf[off:], added to `acc` (itself a 16-bit sum). Odd lengths pad with a zero byte
(RFC 1071 §4.1). Callers store `~s & 0xFFFF`. A received header whose sum, checksum field
included, is 0xFFFF is intact.

The loop below is what MicroPython and Cython run (Cython types it from checksum.pxd);
pure CPython swaps in `int.from_bytes` arithmetic (2**16 ≡ 1 mod 0xFFFF), about 25x faster.
"""


def csum(buf, off, n, acc):
    s = acc
    end = off + (n & ~1)
    i = off
    e8 = off + (n & ~7)
    while i < e8:
        # 8 bytes a turn and the carries folded once a block, so the inner loop has no test
        # but its bound (compiled, about 2.5x faster: issue 13, a 1448-byte payload's sum is
        # most of a frame's cost without offloads). A turn adds under 2**18, a block's 2048
        # turns under 2**29: s stays a small int on 32-bit MCUs
        lim = i + 16384
        if lim > e8:
            lim = e8
        while i < lim:
            s += ((buf[i] << 8) | buf[i + 1]) + ((buf[i + 2] << 8) | buf[i + 3]) + \
                ((buf[i + 4] << 8) | buf[i + 5]) + ((buf[i + 6] << 8) | buf[i + 7])
            i += 8
        s = (s & 0xFFFF) + (s >> 16)
    while i < end:
        s += (buf[i] << 8) | buf[i + 1]
        i += 2
    if n & 1:
        s += buf[end] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def add16(a, b):
    """One's complement sum of two 16-bit values."""
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def update16(old_csum, old_word, new_word):
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from old to new.
    Unlike RFC 1141's shortcut it never turns a checksum into 0xFFFF (RFC 1624 section 3)."""
    s = (~old_csum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _csum_frombytes(buf, off, n, acc):
    if n <= 0:
        return acc
    if n & 1:
        v = int.from_bytes(bytes(buf[off:off + n]) + b"\0", "big")
    else:
        v = int.from_bytes(buf[off:off + n], "big")
    s = v % 0xFFFF
    if s == 0 and v:
        s = 0xFFFF
    s += acc
    s = (s & 0xFFFF) + (s >> 16)
    return s


try:
    import cython
    _COMPILED = cython.compiled
except ImportError:
    _COMPILED = False

if not _COMPILED:
    try:
        import micropython  # noqa: F401
        try:
            from ustack.core.checksum_viper import csum  # noqa: F811
        except (ImportError, SyntaxError):
            pass
    except ImportError:
        csum = _csum_frombytes  # noqa: F811
