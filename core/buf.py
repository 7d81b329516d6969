"""Packet buffers: a fixed pool of preallocated bytearrays, each with a memoryview.

A PacketBuffer holds one frame. `off`/`n` mark where the live bytes are; transmit paths start
with `off = HEADROOM` and each layer *prepends* its header by moving `off` down (lwIP's
pbuf_header, Linux's skb_push). A buffer is owned by exactly one place at a time and goes back
to the pool with `free()`. An empty pool is a counted drop, never an allocation.
"""
from ustack.core.compat import const

HEADROOM = const(128)  # Ethernet(14) + VLAN(4) + IPv4/IPv6 with options(60) + TCP(60) - room to spare


class PacketBuffer:
    def __init__(self, size, index):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.size = size
        self.index = index
        self.off = 0
        self.n = 0
        self.in_use = False
        self.next = None  # for fixed queues (reassembly, TCP out-of-order, ARP pending)
        self.tag = 0      # owner-defined (e.g. arrival time)
        self.epoch = 0    # the pool's epoch when this buffer was taken (see Pool.reclaim)


class Pool:
    def __init__(self, count, size):
        self.count = count
        self.size = size
        self.bufs = [PacketBuffer(size, i) for i in range(count)]
        self._free = list(self.bufs)  # a stack; assignment by index, never append
        self.nfree = count
        self.alloc_fail = 0
        self.low_water = count
        self.epoch = 0  # bumped by the poll loop before each frame and each timer run

    def alloc(self):
        if self.nfree == 0:
            self.alloc_fail += 1
            return None
        self.nfree -= 1
        pb = self._free[self.nfree]
        pb.in_use = True
        pb.off = HEADROOM
        pb.n = 0
        pb.next = None
        pb.epoch = self.epoch
        if self.nfree < self.low_water:
            self.low_water = self.nfree
        return pb

    def free(self, pb):
        if not pb.in_use:
            raise RuntimeError("packet buffer freed twice")
        pb.in_use = False
        pb.next = None
        self._free[self.nfree] = pb
        self.nfree += 1

    def new_epoch(self):
        """Start a new epoch: buffers taken from now on carry it. Masked to stay a small int
        (no bignum on MicroPython); a wrapped epoch only matters to a buffer already leaked."""
        e = (self.epoch + 1) & 0x3FFFFFFF
        self.epoch = e
        return e

    def reclaim(self, epoch, held):
        """Free every buffer taken during `epoch` that is still in use but not in `held` (the
        buffers some owner keeps: socket queues, ARP pending). For a handler that raised:
        what it took and neither queued nor freed has no owner left. A buffer it queued
        stays where it is, one it freed is not in use: never a double free. Returns how
        many came back."""
        n = 0
        for pb in self.bufs:
            if pb.in_use and pb.epoch == epoch and pb not in held:
                self.free(pb)
                n += 1
        return n

    def full(self):
        return self.nfree == self.count
