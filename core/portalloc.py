"""Ephemeral ports (RFC 6335 dynamic range), handed out in turn from a random start
(RFC 6056 algorithm 1-like: enough to avoid reusing a just-closed port)."""
from ustack.core.compat import EADDRINUSE, oserror


class Ephemeral:
    def __init__(self, lo, hi, start):
        self.lo = lo
        self.hi = hi
        self.next = lo + (start % (hi - lo + 1))

    def pick(self, used):
        """The next port p for which used(p) is false; EADDRINUSE when the range is full."""
        for _ in range(self.hi - self.lo + 1):
            p = self.next
            self.next = p + 1 if p < self.hi else self.lo
            if not used(p):
                return p
        raise oserror(EADDRINUSE)
