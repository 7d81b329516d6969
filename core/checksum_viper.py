"""MicroPython machine-code hot paths: the Internet checksum and a byte copy.

Imported only on MicroPython, by core/checksum.py (`csum`), core/wire/fields.py (`copy`) and
core/icmp.py (`echo_rewrite`, `mac_back`: a ping's reply made in place);
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


@micropython.viper
def echo_rewrite(b, off: int, ihl: int, tot: int, bcast, ip, ttl: int) -> int:
    # core/icmp.py echo_rewrite in machine code (a ping's byte work: ~11 us a request in
    # bytecode on x86-64's unix port): the same stores and checksums, nothing allocated
    if off < 0 or ihl < 20 or tot < ihl + 4 or off + tot > int(len(b)):
        raise IndexError("echo_rewrite range")
    p = ptr8(b)  # noqa: F821
    o = off + ihl
    # ICMP type 8 -> 0, its checksum updated (RFC 1624 eqn. 3, as checksum.update16)
    p[o] = 0
    code = p[o + 1]
    s = ((p[o + 2] << 8) | p[o + 3]) ^ 0xFFFF
    s += ((8 << 8) | code) ^ 0xFFFF
    s += code
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    c = s ^ 0xFFFF
    if c == 0:
        c = 0xFFFF
    p[o + 2] = c >> 8
    p[o + 3] = c & 0xFF
    a = off + 12
    if bcast:
        q = ptr8(ip)  # noqa: F821
        p[a + 4] = q[0]
        p[a + 5] = q[1]
        p[a + 6] = q[2]
        p[a + 7] = q[3]
    k = 0
    while k < 4:
        t = p[a + k]
        p[a + k] = p[a + 4 + k]
        p[a + 4 + k] = t
        k += 1
    if ihl > 20:
        # options are not echoed: the message moves up against a 20-byte header
        n = tot - ihl
        k = 0
        while k < n:
            p[off + 20 + k] = p[o + k]
            k += 1
        tot = n + 20
        p[off] = 0x45
        p[off + 2] = tot >> 8
        p[off + 3] = tot & 0xFF
    p[off + 8] = ttl
    p[off + 6] = 0
    p[off + 7] = 0
    p[off + 10] = 0
    p[off + 11] = 0
    s = 0
    k = 0
    while k < 20:
        s += (p[off + k] << 8) | p[off + k + 1]
        k += 2
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    s = s ^ 0xFFFF
    p[off + 10] = s >> 8
    p[off + 11] = s & 0xFF
    return tot


@micropython.viper
def mac_back(b, mac):
    # core/icmp.py mac_back in machine code: the frame goes back to its source, from mac
    if int(len(b)) < 12 or int(len(mac)) < 6:
        raise IndexError("mac_back range")
    p = ptr8(b)  # noqa: F821
    m = ptr8(mac)  # noqa: F821
    k = 0
    while k < 6:
        p[k] = p[6 + k]
        p[6 + k] = m[k]
        k += 1
