"""Packet buffers: a fixed pool of preallocated bytearrays, each with a memoryview.

A PacketBuffer holds one frame. `off`/`n` mark where the live bytes are; transmit paths start
with `off = HEADROOM` and each layer *prepends* its header by moving `off` down (lwIP's
pbuf_header, Linux's skb_push). A buffer is owned by exactly one place at a time and goes back
to the pool with `free()`. An empty pool is a counted drop, never an allocation.

Receivers cannot starve the stack (issue 8, hole 3): receive-driven allocations (`alloc_rx`)
never take the last `reserve` buffers, which only transmit, ARP and ICMP replies may use; and
socket receive queues together hold at most `queue_cap` buffers (`queue_take`/`queue_give`).
Both limits count their hits, and `low_water` is the fewest free buffers ever seen.

Large buffers (issue 13): a driver with offloads (hal/tap.py's virtio-net header) moves TCP
segments of up to 64 KB at once - GRO super-frames in, TSO segments out. `add_large(k)` gives
the pool k more buffers of LARGE_SIZE (indices from `count` on, their own free stack), taken
with `alloc_large()`; `free` sends each buffer back to its own stack. Nothing else changes:
a stack whose drivers offer no offloads never adds any.
"""
from ustack.core.compat import const
from ustack.core.wire.fields import copy

HEADROOM = const(128)  # Ethernet(14) + VLAN(4) + IPv4/IPv6 with options(60) + TCP(60) - room to spare
# the largest frame an offloading driver moves: a 64 KB IP datagram (RFC 791 Total Length,
# RFC 8200 Payload Length: 16 bits) behind an Ethernet header and a VLAN tag, with headroom
LARGE_SIZE = const(65536 + HEADROOM + 128)
# PacketBuffer.offload: what the driver does or did for this frame (0: nothing)
OFL_CSUM = const(1)  # TX: the transport checksum holds only the pseudo-header sum, the driver
                     # (its peer) completes it; RX: the driver vouches for the data
OFL_PARTIAL = const(2)  # RX: ... and the checksum field holds only the pseudo-header sum (a
                        # local sender's, virtio NEEDS_CSUM): complete it before it is quoted
                        # or forwarded
OFL_GSO_SHIFT = const(2)  # offload >> OFL_GSO_SHIFT: the segment size of a TSO/GRO frame


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
        self.nbufs = 1    # on a chain's first buffer: how many buffers the chain has
        self.family = 2   # a queued datagram's address family (AF_INET; tag: its source)
        self.offload = 0  # OFL_* | segment size << OFL_GSO_SHIFT (drivers with caps only)


class Pool:
    def __init__(self, count, size, reserve=0, queue_cap=-1):
        self.count = count
        self.size = size
        self.bufs = [PacketBuffer(size, i) for i in range(count)]
        self._free = list(self.bufs)  # a stack; assignment by index, never append
        self.nfree = count
        self.alloc_fail = 0
        self.low_water = count
        self.epoch = 0  # bumped by the poll loop before each frame and each timer run
        self.reserve = reserve        # the last buffers: transmit, ARP and ICMP only
        self.rx_reserve_hit = 0
        self.queue_cap = count if queue_cap < 0 else queue_cap
        self.queued = 0               # buffers held by socket receive queues
        self.queue_cap_hit = 0
        self.large = 0                # large buffers (add_large), indices count..count+large-1
        self.large_free = []
        self.nlarge = 0               # of them free
        self.large_fail = 0           # alloc_large found none free

    def add_large(self, k):
        """k more buffers of LARGE_SIZE for offloading drivers (TSO out, GRO in); made once,
        at configuration time (bounded by config OFFLOAD_BUFS)."""
        for _ in range(k):
            pb = PacketBuffer(LARGE_SIZE, self.count + self.large)
            self.bufs.append(pb)
            self.large_free.append(pb)
            self.large += 1
            self.nlarge += 1

    def alloc_large(self):
        """A large buffer laid out like alloc()'s, or None (counted) when all are taken."""
        if self.nlarge == 0:
            self.large_fail += 1
            return None
        self.nlarge -= 1
        pb = self.large_free[self.nlarge]
        pb.in_use = True
        pb.off = HEADROOM
        pb.n = 0
        pb.next = None
        pb.epoch = self.epoch
        pb.nbufs = 1
        pb.offload = 0
        return pb

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
        pb.nbufs = 1
        pb.offload = 0
        if self.nfree < self.low_water:
            self.low_water = self.nfree
        return pb

    def rx_room(self, k):
        """True when receive may take k more buffers and still leave the reserve."""
        if self.nfree - k < self.reserve:
            self.rx_reserve_hit += 1
            return False
        return True

    def alloc_rx(self):
        """A buffer for something received (a frame, a copy for a socket): None rather than
        one of the reserved last buffers, so a receive flood or unread sockets can never
        stop the stack from transmitting, answering ARP and ping."""
        if self.nfree <= self.reserve:
            self.rx_reserve_hit += 1
            return None
        return self.alloc()

    def chain_in(self, src, so, n):
        """Copy src[so:so+n] into a chain of buffers (linked by next, each holding its bytes
        from offset 0, the first one's nbufs set): how a socket keeps a datagram bigger than
        one buffer. The caller checked rx_room(self.chain_len(n)) first, so this cannot run
        out of buffers."""
        size = self.size
        first = None
        last = None
        done = 0
        while done < n:
            c = self.alloc()
            k = n - done
            if k > size:
                k = size
            copy(c.buf, 0, src, so + done, k)
            c.off = 0
            c.n = k
            if first is None:
                first = c
            else:
                last.next = c
                first.nbufs += 1
            last = c
            done += k
        return first

    def chain_len(self, n):
        return (n + self.size - 1) // self.size

    def queue_take(self, k):
        """Socket receive queues want to keep k more buffers: True (and charged) when the
        queues' share of the pool allows it."""
        if self.queued + k > self.queue_cap:
            self.queue_cap_hit += 1
            return False
        self.queued += k
        return True

    def queue_give(self, k):
        self.queued -= k

    def free(self, pb):
        if not pb.in_use:
            raise RuntimeError("packet buffer freed twice")
        pb.in_use = False
        pb.next = None
        if pb.index >= self.count:
            self.large_free[self.nlarge] = pb
            self.nlarge += 1
            return
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
        return self.nfree == self.count and self.nlarge == self.large
