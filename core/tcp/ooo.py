"""Out-of-order reassembly bookkeeping (RFC 9293 3.10.7.4, "segment text").

Data that arrives beyond RCV.NXT is copied into the receive ring at its place (ring.py
write_at); this fixed table remembers which sequence ranges [start, end) are there, merged
when they touch. TCP_OOO_SEGMENTS slots; a segment needing a new slot when all are taken is
dropped (the sender retransmits it). `latest` is the slot touched last: RFC 2018 puts the
block holding the most recent segment first in a SACK option."""
from ustack.core.tcp.seq import seq_lt, seq_le, seq_gt


class Ooo:
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
        """Record [s, e); False when it needed a slot and none was free."""
        st = self.start
        en = self.end
        i = 0
        while i < self.n:
            # overlapping or adjacent: grow this range, then absorb any others it now touches
            if seq_le(s, en[i]) and seq_le(st[i], e):
                if seq_lt(s, st[i]):
                    st[i] = s
                if seq_gt(e, en[i]):
                    en[i] = e
                self._absorb(i)
                return True
            i += 1
        if self.n >= self.slots:
            return False
        st[self.n] = s
        en[self.n] = e
        self.latest = self.n
        self.n += 1
        return True

    def _absorb(self, i):
        st = self.start
        en = self.end
        j = 0
        while j < self.n:
            if j != i and seq_le(st[j], en[i]) and seq_le(st[i], en[j]):
                if seq_lt(st[j], st[i]):
                    st[i] = st[j]
                if seq_gt(en[j], en[i]):
                    en[i] = en[j]
                last = self.n - 1
                self._remove(j)
                if i == last:
                    i = j  # range i was moved into the freed slot
                j = 0
                continue
            j += 1
        self.latest = i

    def _remove(self, j):
        last = self.n - 1
        if j != last:
            self.start[j] = self.start[last]
            self.end[j] = self.end[last]
            if self.latest == last:
                self.latest = j
        elif self.latest == j:
            self.latest = -1
        self.n = last

    def advance(self, nxt):
        """RCV.NXT reached nxt: consume ranges that now start at or before it; returns the
        new RCV.NXT (past every range that became contiguous)."""
        moved = True
        while moved:
            moved = False
            i = 0
            while i < self.n:
                if seq_le(self.start[i], nxt):
                    if seq_gt(self.end[i], nxt):
                        nxt = self.end[i]
                    self._remove(i)
                    moved = True
                    continue
                i += 1
        return nxt

    def highest(self, nxt):
        """End of the furthest stored range (nxt when empty)."""
        h = nxt
        i = 0
        while i < self.n:
            if seq_gt(self.end[i], h):
                h = self.end[i]
            i += 1
        return h
