"""The loopback interface's driver: what the stack sends to 127.0.0.0/8 or to one of its own
addresses is queued here and comes back in through the next poll, as if received.

RFC 1122 3.2.1.3: 127/8 is internal host loopback and never appears on a network; RFC 1122
3.3.4.2 lets a host address itself. Delivery is deferred to the poll, never done inside the
send, so a TCP segment never re-enters TCP while TCP is still sending (the reply would nest
a stack frame per segment). The buffer itself is queued, chained through pb.next, nothing
copied: at most LOOPBACK_QUEUE wait, more are refused (the interface counts tx_busy).
"""
LO_NAME = "lo"
LO_ADDR = b"\x7f\x00\x00\x01"  # 127.0.0.1, the conventional address of "lo"
LO_PREFIX = 8


class LoopDriver:
    """Owns the buffers it queues until the poll takes them (Stack._held lists them)."""

    mac = b""  # no link header: the Interface treats it like SLIP/TUN (L2_NONE)

    def __init__(self, stack, limit, mtu):
        self.stack = stack
        self.limit = limit
        self.mtu = mtu
        self.head = None
        self.tail = None
        self.count = 0

    def put(self, pb):
        """Queue the datagram at pb.buf[0:pb.n]; False (pb not taken) when the queue is full."""
        if self.count >= self.limit:
            return False
        pb.next = None
        if self.tail is None:
            self.head = pb
        else:
            self.tail.next = pb
        self.tail = pb
        self.count += 1
        st = self.stack
        # wake the poll loop at once: a runner sleeping until its next deadline, or a socket
        # waiting in another thread, sees the deadline "now"
        st.timer_at(st.now if st.now > 0 else 1)
        return True

    def take(self):
        pb = self.head
        if pb is None:
            return None
        self.head = pb.next
        if self.head is None:
            self.tail = None
        pb.next = None
        self.count -= 1
        return pb

    def held(self, out):
        pb = self.head
        while pb is not None:
            out.append(pb)
            pb = pb.next

    def drop_all(self):
        pb = self.take()
        while pb is not None:
            self.stack.free(pb)
            pb = self.take()

    # the driver surface an Interface expects; lo is never polled through it
    def recv_into(self, buf):
        return 0

    def send(self, buf, n):
        return False

    def service(self):
        pass

    def poll_obj(self):
        return None

    def link_up(self):
        return True

    def close(self):
        self.drop_all()


def make(stack, l2_reserve):
    """The "lo" Interface of a stack, or None when config LOOPBACK is off."""
    cfg = stack.config
    if not cfg["LOOPBACK"]:
        return None
    from ustack.core.iface import Interface
    # as large as a packet buffer allows (Linux's lo: 64 KB; ours is bound by PBUF_SIZE)
    mtu = cfg["PBUF_SIZE"] - l2_reserve
    drv = LoopDriver(stack, cfg["LOOPBACK_QUEUE"], mtu)
    lo = Interface(stack, LO_NAME, drv, None, LO_PREFIX, None, b"", mtu, 0)
    lo.set_address(LO_ADDR, LO_PREFIX)
    lo.loop = drv
    lo.up = True
    return lo
