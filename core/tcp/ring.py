"""A fixed byte ring: a connection's send or receive buffer.

`count` bytes from `head` are the live data. The receive side also stores out-of-order
bytes *beyond* `count` (write_at), where they wait until the hole before them fills (ooo.py
tracks which ranges are there) - so out-of-order data costs no packet buffers. Copies go
through wire.fields.copy: one memmove on CPython, no temporaries on MicroPython."""
from ustack.core.wire.fields import copy


class Ring:
    def __init__(self, size):
        self.buf = bytearray(size)
        self.cap = size
        self.head = 0
        self.count = 0

    def reset(self):
        self.head = 0
        self.count = 0

    def space(self):
        return self.cap - self.count

    def write(self, src, so, n):
        """Append up to n bytes of src[so:]; returns how many fitted."""
        free = self.cap - self.count
        if n > free:
            n = free
        if n > 0:
            self.write_at(self.count, src, so, n)
            self.count += n
        return n

    def write_at(self, off, src, so, n):
        """Store n bytes at logical offset off (off + n <= cap); count is unchanged."""
        cap = self.cap
        p = self.head + off
        if p >= cap:
            p -= cap
        first = cap - p
        if first >= n:
            copy(self.buf, p, src, so, n)
        else:
            copy(self.buf, p, src, so, first)
            copy(self.buf, 0, src, so + first, n - first)

    def peek_into(self, dst, do, off, n):
        """Copy n bytes from logical offset off to dst[do:] (no consumption)."""
        cap = self.cap
        p = self.head + off
        if p >= cap:
            p -= cap
        first = cap - p
        if first >= n:
            copy(dst, do, self.buf, p, n)
        else:
            copy(dst, do, self.buf, p, first)
            copy(dst, do + first, self.buf, 0, n - first)

    def read_into(self, dst, do, n):
        if n > self.count:
            n = self.count
        if n > 0:
            self.peek_into(dst, do, 0, n)
            self.discard(n)
        return n

    def discard(self, n):
        if n > self.count:
            n = self.count
        self.count -= n
        h = self.head + n
        if h >= self.cap:
            h -= self.cap
        self.head = h  # not reset when empty: out-of-order bytes may wait beyond count
        return n


class RingPool:
    """Rings handed out when a connection opens and taken back when it closes; a closed
    connection's rings are reused by the next one of the same size (no heap churn on MCUs).
    At most `keep` idle rings are retained."""

    def __init__(self, keep):
        self.idle = []
        self.keep = keep
        self.out = 0

    def get(self, size):
        idle = self.idle
        i = 0
        while i < len(idle):
            r = idle[i]
            if r.cap == size:
                idle.pop(i)
                r.reset()
                self.out += 1
                return r
            i += 1
        self.out += 1
        return Ring(size)

    def put(self, r):
        if r is None:
            return
        self.out -= 1
        if len(self.idle) < self.keep:
            self.idle.append(r)
