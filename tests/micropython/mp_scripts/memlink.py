"""An allocation-free in-memory link for MicroPython tests: each direction is a ring of
preallocated frame slots; frames are copied in and out with wire.fields.copy."""
from ustack.core.wire import fields
from ustack.hal import Driver


class Ring:
    def __init__(self, depth=64, size=1536):
        self.bufs = [bytearray(size) for _ in range(depth)]
        self.lens = [0] * depth
        self.depth = depth
        self.head = 0
        self.count = 0
        self.dropped = 0
        self.lose_every = 0  # > 0: every lose_every-th frame put is lost (seeded-free loss)
        self.puts = 0
        self.lost = 0
        # > 0: every swap_every-th frame put is held back and delivered after the next one
        # (reordering, allocation-free: one preallocated slot)
        self.swap_every = 0
        self.swaps = 0
        self.swapped = 0
        self.held = bytearray(size)
        self.held_n = 0

    def put(self, buf, n):
        if self.lose_every:
            self.puts += 1
            if self.puts % self.lose_every == 0:
                self.lost += 1
                return True  # sent, and lost on the wire
        if self.swap_every and not self.held_n:
            self.swaps += 1
            if self.swaps % self.swap_every == 0:
                fields.copy(self.held, 0, buf, 0, n)
                self.held_n = n
                self.swapped += 1
                return True  # delivered after the next frame
        if not self._put(buf, n):
            return False
        if self.held_n:
            n = self.held_n
            self.held_n = 0
            self._put(self.held, n)
        return True

    def _put(self, buf, n):
        if self.count >= self.depth:
            self.dropped += 1
            return False
        i = self.head + self.count
        if i >= self.depth:
            i -= self.depth
        fields.copy(self.bufs[i], 0, buf, 0, n)
        self.lens[i] = n
        self.count += 1
        return True

    def get(self, buf):
        if not self.count:
            return 0
        i = self.head
        n = self.lens[i]
        fields.copy(buf, 0, self.bufs[i], 0, n)
        i += 1
        self.head = 0 if i == self.depth else i
        self.count -= 1
        return n


class MemLink(Driver):
    def __init__(self, mac, rx, tx, mtu=1500):
        self.mac = mac
        self.mtu = mtu
        self.caps = 0
        self.rx = rx
        self.tx = tx

    def recv_into(self, buf):
        return self.rx.get(buf)

    def send(self, buf, n):
        return self.tx.put(buf, n)


def pair(mac_a, mac_b, depth=64):
    ab = Ring(depth)
    ba = Ring(depth)
    return MemLink(mac_a, ba, ab), MemLink(mac_b, ab, ba)
