"""A fixed-slot set of sequence ranges [start, end), kept sorted and merged when they touch:
the one range-set structure of TCP, used twice.

Receive side, out-of-order reassembly (RFC 9293 3.10.7.4, "segment text"): data that arrives
beyond RCV.NXT is copied into the receive ring at its place (ring.py write_at); an Ooo table
remembers which ranges are there. TCP_OOO_SEGMENTS slots; a segment needing a new slot when
all are taken is dropped (the sender retransmits it). `latest` is the slot touched last:
RFC 2018 puts the block holding the most recent segment first in a SACK option.

Send side, the SACK scoreboard (scoreboard.py): the ranges the peer's SACK blocks reported
above SND.UNA (RFC 6675 3), TCP_SACK_SLOTS slots.

Slots 0..n-1 are in sequence order (start[i] < start[i + 1], never touching), so the lowest
range is slot 0 and the highest slot n-1; inserting shifts the slots above (n is small)."""
from ustack.core.tcp.seq import seq_lt, seq_le, seq_gt, seq_sub


class RangeSet:
    # slots, not a dict: one per connection (and one in each SACK scoreboard), 290 bytes less
    # each under CPython; MicroPython ignores __slots__
    __slots__ = ("start", "end", "slots", "n", "latest")

    def __init__(self, slots):
        self.start = [0] * slots
        self.end = [0] * slots
        self.slots = slots
        self.n = 0
        self.latest = -1

    def clear(self):
        self.n = 0
        self.latest = -1

    def add(self, s, e):
        """Record [s, e) (s before e); False when it needed a slot and none was free."""
        st = self.start
        en = self.end
        n = self.n
        i = 0
        while i < n and seq_lt(en[i], s):
            i += 1  # ranges wholly below s (not even touching)
        if i < n and seq_le(st[i], e):
            # overlaps or touches range i: grow it, then absorb the ones above it now reaches
            if seq_lt(s, st[i]):
                st[i] = s
            if seq_gt(e, en[i]):
                en[i] = e
            j = i + 1
            while j < n and seq_le(st[j], en[i]):
                if seq_gt(en[j], en[i]):
                    en[i] = en[j]
                j += 1
            gone = j - i - 1
            if gone:
                k = i + 1
                while j < n:
                    st[k] = st[j]
                    en[k] = en[j]
                    k += 1
                    j += 1
                self.n = n - gone
            self.latest = i
            return True
        if n >= self.slots:
            return False
        j = n
        while j > i:
            st[j] = st[j - 1]
            en[j] = en[j - 1]
            j -= 1
        st[i] = s
        en[i] = e
        self.n = n + 1
        self.latest = i
        return True

    def _drop_first(self, k):
        """Forget slots 0..k-1 (the lowest k ranges)."""
        if k <= 0:
            return
        st = self.start
        en = self.end
        n = self.n
        j = k
        while j < n:
            st[j - k] = st[j]
            en[j - k] = en[j]
            j += 1
        self.n = n - k
        if self.latest >= k:
            self.latest -= k
        else:
            self.latest = -1

    def advance(self, nxt):
        """RCV.NXT reached nxt: consume ranges that now start at or before it; returns the
        new RCV.NXT (past every range that became contiguous)."""
        k = 0
        while k < self.n and seq_le(self.start[k], nxt):
            if seq_gt(self.end[k], nxt):
                nxt = self.end[k]
            k += 1
        self._drop_first(k)
        return nxt

    def cut(self, lo):
        """Forget everything below lo (SND.UNA moved there): ranges wholly below go, one
        straddling lo starts at lo."""
        k = 0
        while k < self.n and seq_le(self.end[k], lo):
            k += 1
        self._drop_first(k)
        if self.n and seq_lt(self.start[0], lo):
            self.start[0] = lo

    def highest(self, nxt):
        """End of the furthest stored range (nxt when empty)."""
        if self.n and seq_gt(self.end[self.n - 1], nxt):
            return self.end[self.n - 1]
        return nxt

    def total(self):
        """Bytes covered by all ranges."""
        t = 0
        i = 0
        while i < self.n:
            t += seq_sub(self.end[i], self.start[i])
            i += 1
        return t

    def covered(self, a, b):
        """Bytes of [a, b) the ranges cover."""
        t = 0
        i = 0
        st = self.start
        en = self.end
        while i < self.n:
            s = st[i]
            e = en[i]
            if seq_le(b, s):
                break
            if seq_gt(e, a):
                if seq_lt(s, a):
                    s = a
                if seq_gt(e, b):
                    e = b
                t += seq_sub(e, s)
            i += 1
        return t

    def overlap(self, a, b):
        """The first slot whose range shares bytes with [a, b), -1 when none does (the
        receiver's D-SACK, RFC 2883 4: which stored data a segment repeats)."""
        st = self.start
        en = self.end
        i = 0
        while i < self.n:
            if seq_le(b, st[i]):
                return -1
            if seq_gt(en[i], a):
                return i
            i += 1
        return -1

    def top_uncovered(self, a, b):
        """The end of the highest part of [a, b) no range covers (a when all of it is
        covered): the highest byte a SACK block or an ACK for [a, b) newly delivers, + 1."""
        st = self.start
        en = self.end
        i = self.n - 1
        while i >= 0 and seq_le(b, st[i]):
            i -= 1  # ranges wholly above
        while i >= 0 and seq_lt(a, b):
            if seq_lt(st[i], b):
                if seq_gt(en[i], b) or en[i] == b:
                    b = st[i]  # b inside (or at the end of) range i: below its start
                else:
                    return b  # the bytes from en[i] to b are not covered
            i -= 1
        return b if seq_gt(b, a) else a


Ooo = RangeSet  # the receive side's name for it
