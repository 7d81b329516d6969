"""A routing table of one address family: longest-prefix match over a fixed number of
entries. One table per family (Stack.routes_for): IPv4's is Stack.routes, with 4-byte
addresses; an IPv6 table is the same class with 16-byte ones (alen).

Connected routes come with each interface address; static routes and a default gateway are
added by the user (`Stack.add_route`). Lookups return an index so nothing is allocated;
the chosen next hop is written into `self.nexthop` (the gateway, or the destination itself).
Each route remembers where it came from (`source`, shown by `ustack route` as Linux's proto).

Every change to a table bumps its generation (`gen`): a connection's RouteCache (its route,
next hop and neighbour entry, filled by its first segment) is good while the generations it
was filled at are current, so a connection's segments skip the lookups (issue 13).
"""
from ustack.core.wire import ipv4 as ip4

# Where a route came from (`ustack route` shows it as Linux's "proto")
SRC_CONNECTED = "connected"   # an interface address's own network (Linux: proto kernel)
SRC_STATIC = "static"         # added by the user or the board
SRC_DHCP = "dhcp"             # a lease's router (RFC 2132 3.5)
SRC_RA = "ra"                 # a Router Advertisement (RFC 4861 6.3.4)
SRC_RIP = "rip"               # learned by core/rip.py (RFC 2453)

GEN_MASK = 0x3FFFFFFF  # generations wrap below 2**30: small ints on 32-bit MicroPython


class RouteCache:
    """One connection's way out: the interface and next hop its route gave at table
    generation `gen`, and the neighbour-cache entry of that next hop at the neighbour cache's
    generation `nb_gen` (-1: look up again). Made once per connection (setup path); the
    next hop is the destination object itself when on-link (no copy per connection)."""
    __slots__ = ("gen", "iface", "nexthop", "nb_gen", "nb_idx")

    def __init__(self):
        self.gen = -1
        self.iface = None
        self.nexthop = None
        self.nb_gen = -1
        self.nb_idx = -1

    def fill(self, gen, iface, nh, dst):
        """After a lookup: iface and the next hop nh (a scratch buffer) for dst."""
        n = len(dst)
        i = 0
        while i < n and nh[i] == dst[i]:
            i += 1
        self.nexthop = dst if i == n else bytes(nh)  # a gateway: copied once per change
        self.iface = iface
        self.gen = gen
        self.nb_gen = -1  # maybe another link, another neighbour


def prefix_mask(prefix, alen):
    """The netmask of a prefix length as alen bytes (setup paths only)."""
    m = bytearray(alen)
    i = 0
    while i < alen:
        bits = prefix - 8 * i
        m[i] = 0xFF if bits >= 8 else (0 if bits <= 0 else (0xFF << (8 - bits)) & 0xFF)
        i += 1
    return bytes(m)


class RouteTable:
    def __init__(self, size, alen=4):
        self.size = size
        self.alen = alen              # 4 (IPv4) or 16 (IPv6): the family's address length
        self.count = 0
        self.net = [bytearray(alen) for _ in range(size)]
        self.mask = [bytearray(alen) for _ in range(size)]
        self.prefix = [0] * size
        self.gw = [None] * size       # bytes(alen) or None for on-link
        self.iface = [None] * size
        self.metric = [0] * size
        self.source = [None] * size
        self.nexthop = bytearray(alen)
        self.gen = 0                  # bumped by every change (RouteCache)

    def _addr(self, a):
        """An address of the table's family as bytes (IPv4's also from its text form)."""
        if self.alen == 4:
            return ip4.aton(a)
        if isinstance(a, (bytes, bytearray)) and len(a) == self.alen:
            return bytes(a)
        raise ValueError("bad address %r for a table of %d-byte addresses" % (a, self.alen))

    def add(self, net, prefix, gateway, iface, metric=0, source=SRC_STATIC):
        """Add or replace a route. A connected route is one per link (fe80::/64 is on every
        link, RFC 4291 2.5.6, and two links may share a prefix, as Linux keeps one per
        device): it replaces only a route to the prefix on its own link. Other routes
        replace any route to the prefix but another link's connected one."""
        alen = self.alen
        net = self._addr(net)
        mask = prefix_mask(prefix, alen)
        conn = source == SRC_CONNECTED
        masked = bytes(net[k] & mask[k] for k in range(alen))
        for i in range(self.count):
            if self.prefix[i] == prefix and bytes(self.net[i]) == masked and \
                    (self.iface[i] is iface or not (conn or self.source[i] == SRC_CONNECTED)):
                self._set(i, net, mask, prefix, gateway, iface, metric, source)
                return i
        if self.count >= self.size:
            raise OSError(28, "route table full")  # ENOSPC
        i = self.count
        self.count += 1
        self._set(i, net, mask, prefix, gateway, iface, metric, source)
        return i

    def find(self, net, prefix, iface=None, source=None):
        """Index of the route to exactly net/prefix (on that link, of that source, when
        given), or -1."""
        net = self._addr(net)
        for i in range(self.count):
            if self.prefix[i] == prefix and bytes(self.net[i]) == net and \
                    (iface is None or self.iface[i] is iface) and \
                    (source is None or self.source[i] == source):
                return i
        return -1

    def _set(self, i, net, mask, prefix, gateway, iface, metric, source):
        self.gen = (self.gen + 1) & GEN_MASK
        for k in range(self.alen):
            self.net[i][k] = net[k] & mask[k]
            self.mask[i][k] = mask[k]
        self.prefix[i] = prefix
        self.gw[i] = self._addr(gateway) if gateway else None
        self.iface[i] = iface
        self.metric[i] = metric
        self.source[i] = source

    def remove(self, net, prefix, iface=None, source=None):
        """Remove the route to net/prefix (on that link, of that source, when given)."""
        i = self.find(net, prefix, iface, source)
        if i < 0:
            return False
        self.remove_at(i)
        return True

    def remove_at(self, i):
        last = self.count - 1
        for k in range(self.alen):
            self.net[i][k] = self.net[last][k]
            self.mask[i][k] = self.mask[last][k]
        self.prefix[i] = self.prefix[last]
        self.gw[i] = self.gw[last]
        self.iface[i] = self.iface[last]
        self.metric[i] = self.metric[last]
        self.source[i] = self.source[last]
        self.iface[last] = None
        self.count = last
        self.gen = (self.gen + 1) & GEN_MASK

    def remove_iface(self, iface):
        i = 0
        while i < self.count:
            if self.iface[i] is iface:
                self.remove_at(i)
            else:
                i += 1

    def lookup(self, b, o):
        """Index of the best route to the address at b[o], or -1. Sets self.nexthop."""
        if self.alen != 4:
            return self._lookup_n(b, o)
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

    def _lookup_n(self, b, o):
        """lookup() for addresses longer than IPv4's: every byte under the mask."""
        alen = self.alen
        best = -1
        bp = -1
        i = 0
        while i < self.count:
            m = self.mask[i]
            nt = self.net[i]
            k = 0
            while k < alen and (b[o + k] & m[k]) == nt[k]:
                k += 1
            if k == alen:
                p = self.prefix[i]
                if p > bp or (p == bp and self.metric[i] < self.metric[best]):
                    best = i
                    bp = p
            i += 1
        if best >= 0:
            g = self.gw[best]
            nh = self.nexthop
            k = 0
            while k < alen:
                nh[k] = b[o + k] if g is None else g[k]
                k += 1
        return best

    def table(self):
        fmt = ip4.ntoa if self.alen == 4 else _hex
        return [(fmt(self.net[i]), self.prefix[i],
                 fmt(self.gw[i]) if self.gw[i] else None,
                 self.iface[i].name if self.iface[i] else None) for i in range(self.count)]


def _hex(a):
    """An address of another family, 16-bit groups in hex (its own text form comes with it)."""
    return ":".join("%x" % ((a[i] << 8) | a[i + 1]) for i in range(0, len(a), 2))
