"""A driver fed by the test: frames in, frames out, nothing else."""
from ustack.core.stack import Stack
from ustack.hal import Driver
from tests import frames as F


class FeedDriver(Driver):
    def __init__(self, mac=F.STACK_MAC, mtu=1500):
        self.mac = mac
        self.mtu = mtu
        self.rx = []
        self.tx = []

    def recv_into(self, buf):
        if not self.rx:
            return 0
        f = self.rx.pop(0)
        buf[0:len(f)] = f
        return len(f)

    def send(self, buf, n):
        self.tx.append(bytes(buf[0:n]))
        return True


class Fed:
    """A stack at 192.0.2.2 on a FeedDriver; the host 192.0.2.1 is already in its ARP cache."""

    def __init__(self, config=None):
        self.drv = FeedDriver()
        self.t = 1000
        self.stack = Stack(config)
        self.stack.clock = lambda: self.t
        self.stack.idle = self.advance
        self.iface = self.stack.add_interface("eth0", self.drv, ip="192.0.2.2/24")
        self.iface.arp.add_static(F.HOST_IP, F.HOST_MAC)
        self.stack.poll(self.t)
        self.drv.tx.clear()

    def advance(self, ms=1):
        self.t += ms
        self.stack.poll(self.t)

    def feed(self, frame):
        self.drv.rx.append(bytes(frame))
        self.stack.poll(self.t)
        out = self.drv.tx[:]
        self.drv.tx.clear()
        return out

    def counters(self):
        return self.stack.counters()
