"""A fixed byte ring: a connection's send or receive buffer.

`count` bytes from `head` are the live data. The receive side also stores out-of-order
bytes *beyond* `count` (write_at), where they wait until the hole before them fills (ooo.py
tracks which ranges are there) - so out-of-order data costs no packet buffers. Copies go
through wire.fields.copy: one memmove on CPython, no temporaries on MicroPython.

A ring from a RingPool holds its bytes only while it has data: `ensure(pool, want)` takes
storage from the pool, `trim(pool)` gives it back once the ring is empty (the caller knows no
out-of-order bytes wait), so an idle connection costs two small ring objects, not two
buffers. Storage grows with use: `size` bytes (the pool's first size, doubled as data needs
it, up to `cap`), so a 1 MB receive window costs 1 MB only while the bytes are there, and
growth past the first size comes from one budget for all rings (RingPool, TCP_MEM): a peer
that parks one byte at the edge of every connection's window gets nothing beyond it. The ring keeps no reference to its pool (the caller passes TCP.rings): compiled, a
ring is then three C ints and a bytearray, 40 bytes the garbage collector does not track
(issue 13: 80 with a pool and GC header). Invariant: buf is None => count == 0 and nothing
stored beyond it; size == len(buf) (0 without storage)."""
from ustack.core.wire.fields import copy


class Ring:
    def __init__(self, size, lazy=False):
        self.cap = size    # the most it may hold (the window offered is based on it)
        self.head = 0
        self.count = 0
        self.size = 0 if lazy else size   # storage held now
        self.buf = None if lazy else bytearray(size)  # lazy: a RingPool's, storage later

    def reset(self):
        self.head = 0
        self.count = 0

    def ensure(self, pool, want=-1):
        """Storage for logical offsets below want (-1: all of cap), from pool (a RingPool):
        the first size, doubled until it covers want. True when the ring has storage (maybe
        less than want: the budget or the heap refused the growth; callers use size); False
        when it has none at all."""
        cap = self.cap
        if want < 0 or want > cap:
            want = cap
        size = self.size
        if size >= want and self.buf is not None:
            return True
        new = size * 2 if size else pool.first
        if new <= 0:
            new = cap
        while new < want:
            new *= 2
        if new > cap:
            new = cap
        b = pool.take(new)
        if b is None:
            # the budget is spent: one doubling (what RingPool.limit promises a writer), or
            # with no storage yet the first size, which every ring gets
            step = size * 2 if size else pool.first
            if step > cap:
                step = cap
            if 0 < step < new and step > size:
                new = step
                b = pool.take(new)
        if b is None:
            return self.buf is not None
        old = self.buf
        if old is not None:
            # the whole old ring in logical order (out-of-order bytes beyond count too)
            self.peek_into(b, 0, 0, size)
            pool.give(old)
        self.buf = b
        self.size = new
        self.head = 0
        return True

    def trim(self, pool):
        """Storage back to pool when the ring holds nothing. Receive rings: only when the
        out-of-order table is empty (bytes may wait beyond count)."""
        if self.count == 0 and self.buf is not None:
            pool.give(self.buf)
            self.buf = None
            self.size = 0
            self.head = 0

    def space(self):
        return self.cap - self.count

    def write(self, src, so, n):
        """Append up to n bytes of src[so:]; returns how many fitted in the storage held (0
        while the ring has none: ensure() first)."""
        free = self.size - self.count
        if n > free:
            n = free
        if n > 0:
            if self.buf is None:
                return 0
            self.write_at(self.count, src, so, n)
            self.count += n
        return n

    def write_at(self, off, src, so, n):
        """Store n bytes at logical offset off (off + n <= size); count is unchanged. The ring
        must have that storage (ensure())."""
        cap = self.size
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
        cap = self.size
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
        if h >= self.size:
            h -= self.size
        self.head = h  # not reset when empty: out-of-order bytes may wait beyond count
        return n


class RingPool:
    """Ring objects and their storage. A ring is handed out when a connection opens and
    taken back when it closes; its storage (a bytearray of the ring's size) only while the
    ring holds data. Both are reused by size, so an MCU's heap does not churn: at most `keep`
    idle ring objects and `keep` spare buffers are retained. `out` counts rings handed out,
    `held` buffers in use.

    A ring's storage starts at `first` bytes (0: its whole cap) and doubles as it fills;
    buffers larger than `first` come from `budget` bytes for all rings together (0: no
    limit; `big` is what they hold now), as Linux's tcp_mem bounds its sockets' memory:
    connections that park bytes they never let the application read stop at `first` each."""

    def __init__(self, keep, first=0, budget=0):
        self.idle = []
        self.spare = []
        self.keep = keep
        self.out = 0
        self.held = 0
        self.first = first
        self.budget = budget
        self.big = 0

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
            r.size = 0
        r.reset()
        if len(self.idle) < self.keep:
            self.idle.append(r)

    def limit(self, r):
        """The most ring r can hold now: its cap, or its storage when the budget refuses to
        grow it (a writer waits for that room to drain)."""
        size = r.size
        if size == 0 or size >= r.cap or not self.budget:
            return r.cap
        new = size * 2
        if new > r.cap:
            new = r.cap
        if new > self.first and self.big + new > self.budget:
            return size
        return r.cap

    def take(self, size):
        """A buffer of size bytes: a spare one, else a new one; None when the heap is out,
        or when it is larger than `first` and the budget is spent."""
        big = size > self.first
        if big and self.budget and self.big + size > self.budget:
            return None
        b = self._take(size)
        if b is not None and big:
            self.big += size
        return b

    def _take(self, size):
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
        if len(b) > self.first:
            self.big -= len(b)
        if len(self.spare) < self.keep:
            self.spare.append(b)
