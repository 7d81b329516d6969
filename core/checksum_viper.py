"""MicroPython machine-code hot paths: the Internet checksum and a byte copy.

Imported only on MicroPython, by core/checksum.py (`csum`) and core/wire/fields.py (`copy`);
both fall back to the pure-Python versions when this module cannot be imported (a port built
without the native emitter raises SyntaxError/ImportError on the decorator). Same semantics
as the pure code, checked against it on random data by tests/micropython/test_viper.py:

    csum(buf, off, n, acc) -> 16-bit one's complement sum (not inverted) of buf[off:off+n],
                              added to acc (itself a 16-bit sum); odd n pads with a zero byte.
    copy(dst, do, src, so, n)  dst[do:do+n] = src[so:so+n]; overlapping ranges in one buffer
                              behave like memmove (as the slice assignment does on CPython).

Viper ints are machine words (32 bits on the MCUs), so the sum is folded every 16384 words:
16384 * 0xFFFF + 0xFFFF stays below 2**31. Nothing here allocates.

Viper pointers have no bounds checks, so both functions check the range against len() first
and raise IndexError like the pure code's indexing would: a caller's bad length must not
become silent memory corruption on a board.
"""
import micropython

# ptr8 and uint are viper built-ins (not Python names): flake8 is told with noqa F821


@micropython.viper
def csum(buf, off: int, n: int, acc: int) -> int:
    if off < 0 or n < 0 or off + n > int(len(buf)):
        raise IndexError("csum range")
    p = ptr8(buf)  # noqa: F821
    s = acc
    i = off
    end = off + (n & -2)
    while i < end:
        stop = i + 32768  # 16384 words per fold
        if stop > end:
            stop = end
        while i < stop:
            s += (p[i] << 8) | p[i + 1]
            i += 2
        s = (s & 0xFFFF) + (s >> 16)
    if n & 1:
        s += p[end] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@micropython.viper
def copy(dst, do: int, src, so: int, n: int):
    if n <= 0:
        return
    if do < 0 or so < 0 or do + n > int(len(dst)) or so + n > int(len(src)):
        raise IndexError("copy range")
    d = ptr8(dst)  # noqa: F821
    s = ptr8(src)  # noqa: F821
    da = uint(d) + uint(do)  # noqa: F821
    sa = uint(s) + uint(so)  # noqa: F821
    if da > sa and da < sa + uint(n):  # noqa: F821
        # overlapping, destination above the source: copy from the end down
        i = n - 1
        while i >= 0:
            d[do + i] = s[so + i]
            i -= 1
        return
    i = 0
    while i < n:
        d[do + i] = s[so + i]
        i += 1
