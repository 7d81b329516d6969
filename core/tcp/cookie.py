"""SYN cookies (RFC 4987 3.6): when the SYN queue is full, the SYN-ACK's ISN carries all the
listener needs to rebuild the connection from the peer's ACK, and nothing is kept.

    ISN = MAC(secret; peer addr, our addr, ports, peer ISN, t) with its 2 low bits XORed
          with the MSS index (MSS_TABLE, as Linux's msstab)
    t   = now >> 16: a 65.5 s counter; a cookie from the current or the previous count is
          accepted (RFC 4987: a cookie is valid for a bounded time, Linux allows 2 minutes)

The MAC leaves 30 bits to guess for a forged ACK. When the peer offers timestamps, window
scale and SACK-permitted travel in the low 6 bits of our TSval (which the peer echoes in
every segment, as Linux does): bits 0-3 the peer's window scale (15: none), bit 4 SACK
permitted, bit 5 set (timestamps). Without timestamps only the MSS survives the round trip,
and the connection goes without window scaling and SACK (RFC 4987 3.6's known cost).

The MAC is Speck32/64 (Beaulieu et al. 2013: 16-bit words, 64-bit key, 22 rounds) as a
CBC-MAC over 16-bit words: every value stays a small int on a 32-bit MicroPython and
nothing is allocated per cookie."""
from ustack.core.compat import const
from ustack.core.tcp.seq import hi_minus_1, lo_minus_1

MSS_TABLE = (536, 1300, 1440, 1460)  # RFC 4987 3.6: a few common values, 2 bits
T_SHIFT = const(16)                  # the time counter: now >> 16 (65.5 s)
TS_MASK = const(0x3F)
TS_WS_NONE = const(15)
TS_SACK = const(0x10)
TS_ON = const(0x20)
ROUNDS = const(22)                   # Speck32/64


def schedule(k0, k1, k2, k3):
    """Speck32/64 round keys from four 16-bit key words (k0 the first round key)."""
    rk = [0] * ROUNDS
    ls = [k1, k2, k3]
    k = k0
    i = 0
    while i < ROUNDS:
        rk[i] = k
        v = ls[i % 3]
        v = (((((v >> 7) | (v << 9)) & 0xFFFF) + k) & 0xFFFF) ^ i
        ls[i % 3] = v
        k = (((k << 2) | (k >> 14)) & 0xFFFF) ^ v
        i += 1
    return rk


class Mac:
    """The CBC-MAC state: two 16-bit lanes (x, y), absorbed a 32-bit block at a time. Under
    Cython (cookie.pxd) an extension type whose round keys are a C array and whose rounds
    run on C ints: a cookie costs well under a microsecond, not the ~16 us of Python-object
    arithmetic it costs untyped (one per cookie SYN-ACK, two per ACK while cookies are in
    use)."""

    def __init__(self, rk):
        self.rk = rk
        self.x = 0
        self.y = 0

    def reset(self):
        self.x = 0
        self.y = 0

    def block(self, hi, lo):
        x = self.x ^ hi
        y = self.y ^ lo
        for k in self.rk:
            x = ((((x >> 7) | (x << 9)) & 0xFFFF) + y) & 0xFFFF
            x ^= k
            y = (((y << 2) | (y >> 14)) & 0xFFFF) ^ x
        self.x = x
        self.y = y


def mss_index(mss):
    """The largest table entry not above the peer's MSS (536 if it is smaller still)."""
    i = 3
    while i > 0 and MSS_TABLE[i] > mss:
        i -= 1
    return i


def compute(m, b, src, dst, alen, o, ihi, ilo, t):
    """MAC of the segment at b (its addresses at b[src] and b[dst], alen bytes each, TCP
    header at o) for the peer's ISN ihi:ilo and time count t, over the peer's address, both
    ports and our address: m.x is the cookie's high half, m.y its low half before the MSS
    index goes in."""
    m.reset()
    i = 0
    while i < alen:
        m.block((b[src + i] << 8) | b[src + i + 1], (b[src + i + 2] << 8) | b[src + i + 3])
        i += 4
    m.block((b[o] << 8) | b[o + 1], (b[o + 2] << 8) | b[o + 3])
    i = 0
    while i < alen:
        m.block((b[dst + i] << 8) | b[dst + i + 1], (b[dst + i + 2] << 8) | b[dst + i + 3])
        i += 4
    m.block(ihi, ilo)
    m.block(t & 0xFFFF, 0x5C0C)


def check(m, b, src, dst, alen, o, now):
    """The ACK at b answers one of our cookies: its MSS index, or -1. The peer's ISN is
    SEG.SEQ - 1, our ISN SEG.ACK - 1 (16-bit halves with borrow); the cookie must be from
    the current or the previous time count."""
    ihi = hi_minus_1(b, o + 4)
    ilo = lo_minus_1(b, o + 4)
    ahi = hi_minus_1(b, o + 8)
    alo = lo_minus_1(b, o + 8)
    t = now >> T_SHIFT
    d = 0
    while d < 2:
        compute(m, b, src, dst, alen, o, ihi, ilo, t - d)
        if m.x == ahi and (m.y ^ alo) & 0xFFFC == 0:
            return (m.y ^ alo) & 3
        d += 1
    return -1
