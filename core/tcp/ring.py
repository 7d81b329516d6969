"""A fixed byte ring: a connection's send or receive buffer.

`count` bytes from `head` are the live data. The receive side also stores out-of-order
bytes *beyond* `count` (write_at), where they wait until the hole before them fills (ooo.py
tracks which ranges are there) - so out-of-order data costs no packet buffers. Copies go
through wire.fields.copy: one memmove on CPython, no temporaries on MicroPython.

A ring from a RingPool holds its bytes only while it has data: `ensure(pool, want)` takes
storage from the pool, `trim(pool)` gives it back once the ring is empty (the caller knows no
out-of-order bytes wait). An idle connection holds no ring of its own either: its TCB points
at the pool's shared empty ring of its cap (RingPool.get), which is never written to: a
writer first takes a ring of its own (`pool.own`, before ensure), and `pool.shed` gives it
back with the storage once empty. Storage grows with use: held() bytes (the pool's first size, doubled as data needs
it, up to `cap`), so a 1 MB receive window costs 1 MB only while the bytes are there, and
growth past the first size comes from one budget for all rings (RingPool, TCP_MEM): a peer
that parks one byte at the edge of every connection's window gets nothing beyond it. The ring keeps no reference to its pool (the caller passes TCP.rings): compiled, a
ring is then three C ints and a bytearray, 40 bytes the garbage collector does not track
(issue 13: 80 with a pool and GC header). Invariant: buf is None => count == 0 and nothing
stored beyond it; held() == len(buf) (0 without storage)."""
from ustack.core.wire import fields as F   # F.copy (compiled: wire/memcopy_c.pxd's)


class Ring:
    def __init__(self, size, lazy=False):
        self.cap = size    # the most it may hold (the window offered is based on it)
        self.head = 0
        self.count = 0
        self.buf = None if lazy else bytearray(size)  # lazy: a RingPool's, storage later

    def reset(self):
        self.head = 0
        self.count = 0

    def held(self):
        """Bytes of storage held now (len(buf); no field of its own: a fifth attribute
        doubles a MicroPython instance's attribute table, 64 bytes a ring)."""
        b = self.buf
        return 0 if b is None else len(b)

    def ensure(self, pool, want=-1):
        """Storage for logical offsets below want (-1: all of cap), from pool (a RingPool):
        the first size, doubled until it covers want. True when the ring has storage (maybe
        less than want: the budget or the heap refused the growth; callers use held()); False
        when it has none at all."""
        cap = self.cap
        if want < 0 or want > cap:
            want = cap
        old = self.buf
        size = 0 if old is None else len(old)
        if size >= want and old is not None:
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
            return old is not None
        if old is not None:
            # the whole old ring in logical order (out-of-order bytes beyond count too)
            self.peek_into(b, 0, 0, size)
            pool.give(old)
        self.buf = b
        self.head = 0
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
        """Append up to n bytes of src[so:]; returns how many fitted in the storage held (0
        while the ring has none: ensure() first)."""
        b = self.buf
        if b is None:
            return 0
        free = len(b) - self.count
        if n > free:
            n = free
        if n > 0:
            self.write_at(self.count, src, so, n)
            self.count += n
        return n

    def write_at(self, off, src, so, n):
        """Store n bytes at logical offset off (off + n <= held()); count is unchanged. The
        ring must have that storage (ensure())."""
        cap = len(self.buf)
        p = self.head + off
        if p >= cap:
            p -= cap
        first = cap - p
        if first >= n:
            F.copy(self.buf, p, src, so, n)
        else:
            F.copy(self.buf, p, src, so, first)
            F.copy(self.buf, 0, src, so + first, n - first)

    def peek_into(self, dst, do, off, n):
        """Copy n bytes from logical offset off to dst[do:] (no consumption)."""
        cap = len(self.buf)
        p = self.head + off
        if p >= cap:
            p -= cap
        first = cap - p
        if first >= n:
            F.copy(dst, do, self.buf, p, n)
        else:
            F.copy(dst, do, self.buf, p, first)
            F.copy(dst, do + first, self.buf, 0, n - first)

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
        if n > 0:
            cap = len(self.buf)
            if h >= cap:
                h -= cap
        self.head = h  # not reset when empty: out-of-order bytes may wait beyond count
        return n


# distinct caps with a shared empty ring: the board's TCP_SND_BUF/TCP_RCV_BUF and a few
# socket buffer sizes; other caps get rings of their own (bounded memory)
EMPTY_CAPS = 8


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

    def __init__(self, keep, first=0, budget=0, shared=True):
        # cap -> the shared empty ring of that cap (EMPTY_CAPS of them); None: every
        # connection its own rings (a board's few connections: the table would cost more)
        self.empty = {} if shared else None
        self.idle = []
        self.spare = []
        self.keep = keep
        self.out = 0
        self.held = 0
        self.first = first
        self.budget = budget
        self.big = 0

    def share(self, size):
        """A connection's ring of cap size at open: the shared empty one of that cap (made
        once; past EMPTY_CAPS caps a ring of its own, get). `own` gives the connection one
        of its own before data is stored, `shed` takes it back once empty: an idle
        connection holds no ring object (issue 13: 96 bytes each)."""
        empty = self.empty
        if empty is None:
            return self.get(size)
        e = empty.get(size)
        if e is None:
            if len(empty) >= EMPTY_CAPS:
                return self.get(size)
            e = Ring(size, True)
            empty[size] = e
        self.out += 1
        return e

    def own(self, r):
        """The ring to store into in place of r: r itself, or for a shared empty ring one of
        the connection's own (the caller puts it in the TCB); None when the heap is out."""
        empty = self.empty
        if r.buf is not None or empty is None or empty.get(r.cap) is not r:
            return r
        try:
            r = self.get(r.cap)
        except MemoryError:
            return None
        self.out -= 1   # get counted it; the shared ring it replaces was counted
        return r

    def reserve(self, r, want=-1):
        """The ring to store logical offsets below want into (-1: all of its cap), in place
        of r: r, or for the shared empty ring one of the connection's own (the caller puts
        it in the TCB), with its storage grown toward want (Ring.ensure: the budget may give
        less). With no storage at all (the heap is out) it holds none: held() == 0."""
        o = self.own(r)
        if o is None:
            return r
        if not o.ensure(self, want) and o is not r:
            return self.shed(o)   # no storage after all: the shared ring again
        return o

    def shed(self, r):
        """r's storage back once r holds nothing (trim), and r itself for the shared empty
        ring of its cap: what the TCB keeps. Receive rings: only with no out-of-order bytes
        waiting beyond count (the caller checks)."""
        r.trim(self)
        empty = self.empty
        if r.buf is not None or r.count or empty is None:
            return r
        e = empty.get(r.cap)
        if e is None or e is r:
            return r
        r.reset()
        if len(self.idle) < self.keep:
            self.idle.append(r)
        return e

    def get(self, size):
        """A ring of its own (an idle one of that cap, else a new one)."""
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
        empty = self.empty
        if r.buf is None and empty is not None and empty.get(r.cap) is r:
            return  # the shared empty ring stays
        if r.buf is not None:
            self.give(r.buf)
            r.buf = None
        r.reset()
        if len(self.idle) < self.keep:
            self.idle.append(r)

    def limit(self, r):
        """The most ring r can hold now: its cap, or its storage when the budget refuses to
        grow it (a writer waits for that room to drain)."""
        size = r.held()
        if size == 0 or size >= r.cap:
            return r.cap
        new = size * 2
        if new > r.cap:
            new = r.cap
        return r.cap if self._fits(new) else size

    def _fits(self, size):
        """Whether a buffer of size bytes is within the budget: one of the first size always
        is (every ring gets that much), a larger one while `big` leaves room for it."""
        return size <= self.first or not self.budget or self.big + size <= self.budget

    def take(self, size):
        """A buffer of size bytes: a spare one, else a new one; None when the heap is out,
        or when it is larger than `first` and the budget is spent."""
        if not self._fits(size):
            return None
        b = self._take(size)
        if b is not None and size > self.first:
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
