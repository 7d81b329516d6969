"""A driver fed by the test: frames in, frames out, nothing else."""
from ustack.core.stack import Stack
from ustack.hal import Driver
from tests import frames as F

# a Router between two fed links: the near host F.HOST_IP on e0, the far host on e1
R1_MAC = bytes.fromhex("020000000003")
FAR_IP = bytes([198, 51, 100, 10])
FAR_MAC = bytes.fromhex("020000000004")
ETH_IP = 0x0800


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


class Router:
    """A forwarding stack on two fed links, both neighbours already in its ARP caches."""

    def __init__(self, forward=True, **config):
        self.t = 1000
        self.e0 = FeedDriver(mac=F.STACK_MAC)
        self.e1 = FeedDriver(mac=R1_MAC)
        config["IP_FORWARD"] = forward
        self.stack = Stack(config)
        self.stack.clock = lambda: self.t
        i0 = self.stack.add_interface("e0", self.e0, ip="192.0.2.2/24")
        i1 = self.stack.add_interface("e1", self.e1, ip="198.51.100.1/24")
        i0.arp.add_static(F.HOST_IP, F.HOST_MAC)
        i1.arp.add_static(FAR_IP, FAR_MAC)
        self.stack.poll(self.t)
        self.e0.tx.clear()
        self.e1.tx.clear()

    def feed(self, ip, eth_dst=F.STACK_MAC):
        """The near host sends this IP datagram to the router. Returns (frames out of e0,
        frames out of e1)."""
        self.e0.rx.append(F.eth(eth_dst, F.HOST_MAC, ETH_IP, ip))
        self.t += 1
        self.stack.poll(self.t)
        out = (self.e0.tx[:], self.e1.tx[:])
        self.e0.tx.clear()
        self.e1.tx.clear()
        return out

    def counters(self):
        return self.stack.counters()
