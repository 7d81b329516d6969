"""Ephemeral ports (RFC 6335 dynamic range EPHEMERAL_LOW..HIGH), randomised as RFC 6056 says.

With a keyed hash of the connection's endpoints (TCP's connect: F and G of RFC 6056 3.3.4,
keyed with the stack's secret) it is algorithm 4, double-hash port selection: the port is
F + table[G mod TABLE_LENGTH], so different destinations use unrelated port sequences, and
each bucket's counter advances by a random step (as Linux does since CVE-2022-32296), so
even the ports used towards one destination are not consecutive. Without (UDP, bind to port
0) it is algorithm 1, simple randomisation: a random port. Either way the search from there
walks the whole range once, so a free port is always found and a full range always raises.

Connection setup only (bind/connect): these may allocate."""
from ustack.core.compat import EADDRINUSE, oserror, urandom, xorshift32

TABLE_LENGTH = 16  # RFC 6056 3.3.4: buckets of the per-destination counters
MAX_STEP = 8       # a bucket advances by 1..MAX_STEP after each port handed out


class Ephemeral:
    def __init__(self, lo, hi, seed):
        self.lo = lo
        self.hi = hi
        self.n = hi - lo + 1
        self.table = [0] * TABLE_LENGTH
        self._x = (seed & 0xFFFFFFFF) or 0x2545F491
        k = _urandom32()
        if k:
            self._x ^= k
        if not self._x:
            self._x = 0x2545F491

    def random(self):
        """xorshift32, seeded from os.urandom where the port has it."""
        self._x = xorshift32(self._x)
        return self._x

    def pick(self, used, f=-1, g=0):
        """A port p for which used(p) is false; EADDRINUSE when the whole range is taken.
        f, g: RFC 6056 algorithm 4 (F and G of the caller's keyed hash); f < 0: algorithm 1."""
        n = self.n
        if f < 0:
            start = self.random() % n
            i = -1
        else:
            i = g % TABLE_LENGTH
            start = (f + self.table[i]) % n
        k = 0
        while k < n:
            p = self.lo + (start + k) % n
            if not used(p):
                if i >= 0:
                    self.table[i] = (self.table[i] + k + 1 + self.random() % MAX_STEP) % n
                return p
            k += 1
        raise oserror(EADDRINUSE)


def _urandom32():
    b = urandom(4)
    return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) if b else 0
