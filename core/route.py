"""IPv4 routing table: longest-prefix match over a fixed number of entries.

Connected routes come with each interface address; static routes and a default gateway are
added by the user (`Stack.add_route`). Lookups return an index so nothing is allocated;
the chosen next hop is written into `self.nexthop` (the gateway, or the destination itself).
"""
from ustack.core.wire import ipv4 as ip4


class RouteTable:
    def __init__(self, size):
        self.size = size
        self.count = 0
        self.net = [bytearray(4) for _ in range(size)]
        self.mask = [bytearray(4) for _ in range(size)]
        self.prefix = [0] * size
        self.gw = [None] * size       # bytes(4) or None for on-link
        self.iface = [None] * size
        self.metric = [0] * size
        self.nexthop = bytearray(4)

    def add(self, net, prefix, gateway, iface, metric=0):
        net = ip4.aton(net)
        mask = ip4.prefix_mask(prefix)
        # replace an existing route to the same prefix
        for i in range(self.count):
            if self.prefix[i] == prefix and bytes(self.net[i]) == bytes(net[k] & mask[k] for k in range(4)):
                self._set(i, net, mask, prefix, gateway, iface, metric)
                return i
        if self.count >= self.size:
            raise OSError(28, "route table full")  # ENOSPC
        i = self.count
        self.count += 1
        self._set(i, net, mask, prefix, gateway, iface, metric)
        return i

    def _set(self, i, net, mask, prefix, gateway, iface, metric):
        for k in range(4):
            self.net[i][k] = net[k] & mask[k]
            self.mask[i][k] = mask[k]
        self.prefix[i] = prefix
        self.gw[i] = ip4.aton(gateway) if gateway else None
        self.iface[i] = iface
        self.metric[i] = metric

    def remove(self, net, prefix):
        net = ip4.aton(net)
        for i in range(self.count):
            if self.prefix[i] == prefix and bytes(self.net[i]) == net:
                last = self.count - 1
                for k in range(4):
                    self.net[i][k] = self.net[last][k]
                    self.mask[i][k] = self.mask[last][k]
                self.prefix[i] = self.prefix[last]
                self.gw[i] = self.gw[last]
                self.iface[i] = self.iface[last]
                self.metric[i] = self.metric[last]
                self.iface[last] = None
                self.count = last
                return True
        return False

    def remove_iface(self, iface):
        i = 0
        while i < self.count:
            if self.iface[i] is iface:
                self.remove(bytes(self.net[i]), self.prefix[i])
            else:
                i += 1

    def lookup(self, b, o):
        """Index of the best route to the address at b[o], or -1. Sets self.nexthop."""
        best = -1
        bp = -1
        i = 0
        while i < self.count:
            m = self.mask[i]
            nt = self.net[i]
            if (b[o] & m[0]) == nt[0] and (b[o + 1] & m[1]) == nt[1] and \
                    (b[o + 2] & m[2]) == nt[2] and (b[o + 3] & m[3]) == nt[3]:
                p = self.prefix[i]
                if p > bp or (p == bp and self.metric[i] < self.metric[best]):
                    best = i
                    bp = p
            i += 1
        if best >= 0:
            g = self.gw[best]
            nh = self.nexthop
            if g is None:
                nh[0] = b[o]
                nh[1] = b[o + 1]
                nh[2] = b[o + 2]
                nh[3] = b[o + 3]
            else:
                nh[0] = g[0]
                nh[1] = g[1]
                nh[2] = g[2]
                nh[3] = g[3]
        return best

    def table(self):
        return [(ip4.ntoa(self.net[i]), self.prefix[i],
                 ip4.ntoa(self.gw[i]) if self.gw[i] else None,
                 self.iface[i].name if self.iface[i] else None) for i in range(self.count)]
