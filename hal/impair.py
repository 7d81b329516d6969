"""An impairment wrapper around any driver: seeded loss, duplication, reordering, corruption
and delay of the frames it sends (wrap both ends to impair both directions).

    Impair(Tap(...), loss=0.05, seed=7)
    Impair(port, loss=0.05, dup=0.01, reorder=0.02, corrupt=0.001, delay_ms=5,
           jitter_ms=2, clock=bench.clock, seed=1)

Delay, jitter and reordering are measured against `clock()` (milliseconds; pass a virtual
clock in tests): a delayed frame is handed to the wrapped driver from send/recv_into/
service once its time has come. Without a clock, reordering holds a frame back until the
next one has been sent (a swap). `drop` is an optional predicate drop(frame) -> bool for
targeted, deterministic losses. The generator is xorshift32, so a seed gives the same
impairment sequence on CPython and MicroPython. Counters: sent, lost, duplicated,
reordered, corrupted, delayed, passed, bursts.

Bursty loss (`burst=B`, B > 1, with loss=p): a Gilbert-Elliott two-state chain instead of
independent drops. In the Good state nothing is lost; in the Bad state every frame is. Each
frame first steps the chain (one seeded draw): Bad -> Good with probability r = 1/B, so a
burst lasts B frames on average (geometric); Good -> Bad with q = p*r/(1-p), so the chain
spends p of its time in Bad and the average loss stays p. `bursts` counts Good -> Bad
transitions. burst=0 (default) keeps the independent drops and their seeded sequence."""

from ustack.core.compat import xorshift32


class Impair:
    def __init__(self, driver, loss=0.0, dup=0.0, reorder=0.0, corrupt=0.0, delay_ms=0,
                 jitter_ms=0, reorder_ms=3, seed=1, clock=None, drop=None, burst=0):
        if (delay_ms or jitter_ms) and clock is None:
            raise ValueError("delay and jitter need a clock")
        if burst and (burst <= 1 or not 0 <= loss < 1):
            raise ValueError("burst needs a mean burst length > 1 and 0 <= loss < 1")
        self.driver = driver
        self.mac = driver.mac
        self.mtu = driver.mtu
        self.loss = loss
        self.dup = dup
        self.reorder = reorder
        self.corrupt = corrupt
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.reorder_ms = reorder_ms
        self.clock = clock
        self.drop = drop
        self.burst = burst
        self.bad = False   # Gilbert-Elliott state (burst mode only)
        if burst:
            self.p_bad_good = 1.0 / burst
            self.p_good_bad = loss * self.p_bad_good / (1.0 - loss)
        self.enabled = True
        self._x = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
        self.q = []        # [release_ms, order, frame], sorted
        self.held = None   # clockless reordering: the frame waiting for the next one
        self._order = 0
        self.sent = 0
        self.lost = 0
        self.duplicated = 0
        self.reordered = 0
        self.corrupted = 0
        self.delayed = 0
        self.passed = 0
        self.bursts = 0

    def _rand(self):
        self._x = x = xorshift32(self._x)
        return x

    def _chance(self, p):
        return p > 0 and self._rand() < p * 4294967296.0

    def _lose(self):
        """One frame's loss decision: independent, or the Gilbert-Elliott chain's state."""
        if not self.burst:
            return self._chance(self.loss)
        if self.bad:
            if self._chance(self.p_bad_good):
                self.bad = False
        elif self._chance(self.p_good_bad):
            self.bad = True
            self.bursts += 1
        return self.bad

    # ---- driver interface -----------------------------------------------------------------
    def send(self, buf, n):
        self.sent += 1
        self._release()
        if not self.enabled:
            return self._out(buf, n)
        frame = bytes(buf[0:n])
        if (self.drop is not None and self.drop(frame)) or self._lose():
            self.lost += 1
            return True
        if self._chance(self.corrupt):
            b = bytearray(frame)
            i = self._rand() % n
            b[i] ^= 1 << (self._rand() & 7)
            frame = bytes(b)
            self.corrupted += 1
        copies = 1
        if self._chance(self.dup):
            copies = 2
            self.duplicated += 1
        while copies:
            copies -= 1
            self._schedule(frame)
        return True

    def _schedule(self, frame):
        late = self._chance(self.reorder)
        if late:
            self.reordered += 1
        if self.clock is None:
            if late and self.held is None:
                self.held = frame
                return
            self._out(frame, len(frame))
            if self.held is not None:
                h = self.held
                self.held = None
                self._out(h, len(h))
            return
        d = self.delay_ms
        if self.jitter_ms:
            d += self._rand() % (self.jitter_ms + 1)
        if late:
            d += self.reorder_ms
        if d <= 0 and not self.q:
            self._out(frame, len(frame))
            return
        self.delayed += 1
        t = self.clock() + d
        self._order += 1
        e = [t, self._order, frame]
        q = self.q
        i = len(q)
        while i > 0 and q[i - 1][0] > t:
            i -= 1
        q.insert(i, e)

    def _out(self, buf, n):
        self.passed += 1
        return self.driver.send(buf, n)

    def _release(self):
        q = self.q
        if not q:
            return
        now = self.clock()
        while q and q[0][0] <= now:
            e = q.pop(0)
            self._out(e[2], len(e[2]))

    def flush(self):
        """Send everything still held back, now."""
        while self.q:
            e = self.q.pop(0)
            self._out(e[2], len(e[2]))
        if self.held is not None:
            h = self.held
            self.held = None
            self._out(h, len(h))

    def next_release(self):
        """When the earliest delayed frame is due (ms), 0 when none waits."""
        return self.q[0][0] if self.q else 0

    def pending(self):
        return len(self.q) + (1 if self.held is not None else 0)

    def recv_into(self, buf):
        self._release()
        return self.driver.recv_into(buf)

    def recv_split(self, buf, spill, at):
        self._release()
        return self.driver.recv_split(buf, spill, at)

    def poll_obj(self):
        return self.driver.poll_obj()

    def service(self):
        self._release()
        self.driver.service()

    def link_up(self):
        return self.driver.link_up()

    def close(self):
        self.q = []
        self.held = None
        self.driver.close()

    def __getattr__(self, name):
        return getattr(self.driver, name)
