"""A fixed byte ring: a connection's send or receive buffer.

`count` bytes from `head` are the live data. The receive side also stores out-of-order
bytes *beyond* `count` (write_at), where they wait until the hole before them fills (ooo.py
tracks which ranges are there) - so out-of-order data costs no packet buffers. Copies go
through wire.fields.copy: one memmove on CPython, no temporaries on MicroPython.

A ring from a RingPool holds its bytes only while it has data: `ensure(pool)` takes storage
from the pool, `trim(pool)` gives it back once the ring is empty (the caller knows no
out-of-order bytes wait), so an idle connection costs two small ring objects, not two
buffers. The ring keeps no reference to its pool (the caller passes TCP.rings): compiled, a
ring is then three C ints and a bytearray, 40 bytes the garbage collector does not track
(issue 13: 80 with a pool and GC header). Invariant: buf is None => count == 0 and nothing
stored beyond it."""
from ustack.core.wire.fields import copy


class Ring:
    def __init__(self, size, lazy=False):
        self.cap = size
        self.head = 0
        self.count = 0
        self.buf = None if lazy else bytearray(size)  # lazy: a RingPool's, storage later

    def reset(self):
        self.head = 0
        self.count = 0

    def ensure(self, pool):
        """True when the ring has storage (taking it from pool, a RingPool, now if needed);
        False when the pool has none and the heap cannot make any."""
        if self.buf is None:
            b = pool.take(self.cap)
            if b is None:
                return False
            self.buf = b
        return True

    def trim(self, pool):
        """Storage back to pool when the ring holds nothing. Receive rings: only when the
        out-of-order table is empty (bytes may wait beyond count)."""
        if self.count == 0 and self.buf is not None:
            pool.give(self.buf)
            self.buf = None
            self.head = 0

    def space(self):
        return self.cap - self.count

    def write(self, src, so, n):
        """Append up to n bytes of src[so:]; returns how many fitted (0 also while the ring
        has no storage: ensure() first)."""
        free = self.cap - self.count
        if n > free:
            n = free
        if n > 0:
            if self.buf is None:
                return 0
            self.write_at(self.count, src, so, n)
            self.count += n
        return n

    def write_at(self, off, src, so, n):
        """Store n bytes at logical offset off (off + n <= cap); count is unchanged. The ring
        must have storage (ensure())."""
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
    """Ring objects and their storage. A ring is handed out when a connection opens and
    taken back when it closes; its storage (a bytearray of the ring's size) only while the
    ring holds data. Both are reused by size, so an MCU's heap does not churn: at most `keep`
    idle ring objects and `keep` spare buffers are retained. `out` counts rings handed out,
    `held` buffers in use."""

    def __init__(self, keep):
        self.idle = []
        self.spare = []
        self.keep = keep
        self.out = 0
        self.held = 0

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
        r = Ring(size, True)
        self.out += 1
        return r

    def put(self, r):
        if r is None:
            return
        self.out -= 1
        if r.buf is not None:
            self.give(r.buf)
            r.buf = None
        r.reset()
        if len(self.idle) < self.keep:
            self.idle.append(r)

    def take(self, size):
        """A buffer of size bytes: a spare one, else a new one; None when the heap is out."""
        spare = self.spare
        i = 0
        while i < len(spare):
            if len(spare[i]) == size:
                self.held += 1
                return spare.pop(i)
            i += 1
        try:
            b = bytearray(size)
        except MemoryError:
            return None
        self.held += 1
        return b

    def give(self, b):
        self.held -= 1
        if len(self.spare) < self.keep:
            self.spare.append(b)
