"""MicroPython's random plus random.Random (seeded instances), for the unit tests under the
unix port. Shadows the built-in module (MicroPython lets a file extend a built-in)."""
import sys

_path = sys.path
sys.path = []
import random as _r  # noqa: E402 - the built-in one
sys.path = _path

getrandbits = _r.getrandbits
randint = _r.randint
randrange = _r.randrange
random = _r.random
seed = _r.seed
choice = _r.choice
uniform = _r.uniform


def shuffle(x):
    for i in range(len(x) - 1, 0, -1):
        j = _r.randrange(i + 1)
        x[i], x[j] = x[j], x[i]


def randbytes(n):
    return bytes(_r.getrandbits(8) for _ in range(n))


class Random:
    """xorshift64*: deterministic per seed (not CPython's sequence; tests only need
    reproducibility)."""

    def __init__(self, s=None):
        self.seed(s)

    def seed(self, s=None):
        if s is None:
            s = _r.getrandbits(30)
        if isinstance(s, (str, bytes, bytearray)):
            h = 0xCBF29CE484222325
            for c in (s.encode() if isinstance(s, str) else s):
                h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            s = h
        self._x = (int(s) & 0xFFFFFFFFFFFFFFFF) or 0x9E3779B97F4A7C15

    def _next(self):
        x = self._x
        x ^= x >> 12
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 27
        self._x = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def getrandbits(self, k):
        out = 0
        got = 0
        while got < k:
            out = (out << 32) | (self._next() >> 32)
            got += 32
        return out >> (got - k)

    def randbelow(self, n):
        if n <= 0:
            raise ValueError("empty range")
        k = 1
        while (1 << k) < n:
            k += 1
        while True:
            v = self.getrandbits(k)
            if v < n:
                return v

    def randrange(self, start, stop=None, step=1):
        if stop is None:
            start, stop = 0, start
        n = (stop - start + step - 1) // step if step > 0 else (start - stop - step - 1) // -step
        if n <= 0:
            raise ValueError("empty range for randrange()")
        return start + step * self.randbelow(n)

    def randint(self, a, b):
        return a + self.randbelow(b - a + 1)

    def random(self):
        return self.getrandbits(53) / 9007199254740992.0

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def choice(self, seq):
        return seq[self.randbelow(len(seq))]

    def shuffle(self, x):
        for i in range(len(x) - 1, 0, -1):
            j = self.randbelow(i + 1)
            x[i], x[j] = x[j], x[i]

    def sample(self, population, k):
        pool = list(population)
        self.shuffle(pool)
        return pool[:k]

    def randbytes(self, n):
        return bytes(self.getrandbits(8) for _ in range(n))
