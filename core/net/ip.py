"""The network layer as transports see it (issue 9): address families, the per-packet
metadata the IP layer fills before it hands a datagram up, helpers for addresses of 4 or 16
bytes (compared and hashed by index: nothing allocated), the transport checksum over a
pseudo-header sum the family provides, and one output call for both families.

A transport never reads an IP header. IPv4 input (core/ipv4.py) fills `IP.meta` - where
the source and destination addresses are in the buffer and how long they are, where the
transport header starts and how long the transport message is, the arriving interface,
the pseudo-header's partial sum - and calls the transport with (pb, meta). ICMP fills
`IP.quote` the same way for the datagram an error quotes. Both are one preallocated
object each per stack, valid for the duration of that call only: a transport that keeps a
datagram (a socket queue) keeps the offsets it needs in the packet buffer (pb.tag,
pb.family), never the metadata object.
"""
from ustack.core.compat import const, EAFNOSUPPORT
from ustack.core import checksum as ck  # ck.csum: compiled, checksum_c.pxd's inline sum
from ustack.core.net.pmtu import PmtuCache
from ustack.core.buf import OFL_CSUM

AF_INET = const(2)
AF_INET6 = const(10)
ALEN4 = const(4)     # an IPv4 address (RFC 791)
ALEN6 = const(16)    # an IPv6 address (RFC 4291)
IPV4_HDR = const(20)  # RFC 791 3.1: the header without options
IPV6_HDR = const(40)  # RFC 8200 3: the fixed header
PROTO_ICMP = const(1)
PROTO_TCP = const(6)
PROTO_UDP = const(17)


class Meta:
    """What the network layer knows about the datagram it hands up (or an error quotes).
    Offsets index the packet buffer; src and dst are adjacent in both families' headers
    (RFC 791 3.1, RFC 8200 3), which the pseudo-header sum relies on."""

    def __init__(self):
        self.family = AF_INET
        self.hdr = 0        # the network header
        self.src = 0        # the source address (alen bytes)
        self.dst = 0        # the destination address (alen bytes)
        self.alen = ALEN4
        self.l4 = 0         # the transport header
        self.l4len = 0      # the transport message: header and payload
        self.proto = 0      # the transport protocol (IPv4 Protocol, IPv6 Next Header)
        # RFC 768, RFC 9293 3.1, RFC 8200 8.1: the pseudo-header's sum over the addresses
        # and the protocol; the transport adds its length (UDP's is its own length field)
        self.psum = 0
        self.ecn = 0        # RFC 3168 5: the ECN field (IPv4 TOS / IPv6 traffic class)
        self.iface = None   # the arriving interface
        self.bcast = False  # sent to a broadcast or multicast address
        self.csum_ok = False  # the driver vouched for the transport checksum (CAP_CSUM_RX)
        self.partial = False  # ... which holds only the pseudo-header sum (complete_csum)


def hdr_len(alen):
    """The network header a datagram between addresses of alen bytes carries (no options)."""
    return IPV4_HDR if alen == ALEN4 else IPV6_HDR


def family_of(a):
    return AF_INET if len(a) == ALEN4 else AF_INET6


def addr_eq(b, o, a, alen):
    """b[o:o+alen] == a, without slicing."""
    i = 0
    while i < alen:
        if b[o + i] != a[i]:
            return False
        i += 1
    return True


def addr_hash(b, o, alen):
    """A small int (below 2**30: no bignum on 32-bit MicroPython) mixing the address at b[o]:
    for 4 bytes the connection table's historic mix; 16 bytes fold four 4-byte words in."""
    h = 0
    i = 0
    while i < alen:
        h = ((h * 31) ^ (b[o + i] << 22) ^ (b[o + i + 1] << 15) ^ (b[o + i + 2] << 8) ^
             b[o + i + 3]) & 0x3FFFFFFF
        i += 4
    return h


def is_any(a):
    """The unspecified address (0.0.0.0 or ::) of either family."""
    i = len(a) - 1
    while i >= 0:
        if a[i]:
            return False
        i -= 1
    return True


def scratch(layer, room, l4len, index):
    """The family layer's one scratch buffer for a datagram bigger than a packet buffer
    (fragmented on output): REASS_SIZE after `room` bytes of headers, made on first use
    (layer.big), taken at pb.off = room; None if l4len won't fit or it is in use."""
    size = layer.stack.config["REASS_SIZE"] + room
    if room + l4len > size:
        return None
    pb = layer.big
    if pb is None:
        from ustack.core.buf import PacketBuffer
        pb = layer.big = PacketBuffer(size, index)
    if pb.in_use:
        return None
    pb.in_use = True
    pb.off = room
    pb.n = 0
    return pb


def link_mtu(iface, alen):
    """The MTU of iface for the family of alen-byte addresses: IPv6's own (RFC 4861 6.3.4:
    an RA's MTU option may lower it below the link's), else the link's."""
    return iface.mtu6 if alen == ALEN6 else iface.mtu


def is_multicast(a):
    """A group address of either family: 224/4 (RFC 5771) or ff00::/8 (RFC 4291 2.7)."""
    return a[0] == 0xFF if len(a) == 16 else (a[0] & 0xF0) == 0xE0


def pseudo_sum(b, src, alen, proto):
    """The pseudo-header's partial sum over the source and destination at b[src] (adjacent,
    alen bytes each) and the protocol: the transport adds its length to it."""
    return ck.csum(b, src, alen + alen, proto)


def fill_csum(b, lo, l4, co, psum, proto):
    """Fill the transport checksum at b[co] over the l4 bytes at b[lo], starting from the
    family's pseudo-header sum psum (0: none, as ICMPv4)."""
    b[co] = 0
    b[co + 1] = 0
    c = ~ck.csum(b, lo, l4, psum + l4 if psum else 0) & 0xFFFF
    if c == 0 and proto == PROTO_UDP:
        c = 0xFFFF  # RFC 768 (and RFC 8200 8.1): a computed zero is sent as all ones
    b[co] = c >> 8
    b[co + 1] = c & 0xFF


def partial_csum(pb, b, co, s):
    """CAP_CSUM_TX: leave the pseudo-header sum s (addresses, protocol, length) folded, not
    inverted, in the checksum field at b[co] and mark the frame: the driver (virtio-net
    NEEDS_CSUM, completed by the kernel or the NIC) adds the message and inverts it."""
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    b[co] = s >> 8
    b[co + 1] = s & 0xFF
    pb.offload |= OFL_CSUM


def complete_csum(b, lo, l4, psum, proto):
    """A received TCP/UDP message whose checksum a local sender left partial (OFL_PARTIAL:
    the driver vouched for the data) gets its whole checksum before it leaves again - quoted
    by an ICMP error or forwarded - as the kernel completes it before a wire."""
    if proto == PROTO_TCP:
        fill_csum(b, lo, l4, lo + 16, psum, proto)
    elif proto == PROTO_UDP:
        fill_csum(b, lo, l4, lo + 6, psum, proto)


class IP:
    """The family-neutral entry points: the metadata objects, buffers laid out for a
    destination's family, and output dispatching on the destination's family."""

    def __init__(self, stack, l2_reserve):
        self.stack = stack
        self.pool = stack.pool
        self.l2_reserve = l2_reserve  # link header room in front of every datagram we send
        self.v4 = None        # the IPv4 layer (core/ipv4.py), set by the stack once it exists
        self.v6 = None        # the IPv6 layer (core/ipv6.py) when config IPV6 is on
        self.meta = Meta()    # the datagram being delivered (filled by IPv4 input)
        self.quote = Meta()   # the datagram an ICMP error quotes (filled by ICMP)
        self.pmtu = PmtuCache(stack.config)   # RFC 1191 / RFC 8201, both families

    def path_mtu(self, b, o, alen, link_mtu):
        """The MTU towards the address at b[o] (alen bytes) leaving by a link of link_mtu:
        what Path MTU Discovery learnt, if less (core/net/pmtu.py)."""
        return self.pmtu.lookup(b, o, alen, link_mtu, self.stack.now)

    def learn_pmtu(self, b, o, alen, mtu):
        """A Packet Too Big / Fragmentation Needed says the path to b[o] holds mtu bytes
        (RFC 1191 / RFC 8201). Returns the lowered path MTU, or 0 if nothing changed."""
        iface = self.route_out(b, o, alen)
        if iface is None:
            return 0
        pm = self.pmtu
        now = self.stack.now
        return pm.learn(b, o, alen, mtu, now, pm.lookup(b, o, alen, link_mtu(iface, alen), now))

    def output(self, pb, proto, src, dst, csum_off=-1, ttl=0, tos=0, df=False, iface=None,
               rc=None):
        """Send the transport message at pb.buf[pb.off:pb.off+pb.n] to dst (4 or 16 bytes):
        the family's output prepends its header and fills the checksum at csum_off (relative
        to pb.off, -1 none) over its pseudo-header sum. Takes pb; returns 0 or an errno.
        rc: the connection's route.RouteCache (either family), saving the route and
        neighbour lookups while neither table changed."""
        if len(dst) == ALEN4:
            return self.v4.output(pb, proto, src, dst, csum_off, ttl, tos, df, iface, rc)
        if self.v6 is not None:
            return self.v6.output(pb, proto, src, dst, csum_off, ttl, tos, iface, False, rc)
        self.stack.free(pb)
        return EAFNOSUPPORT

    def local_iface(self, b, o, alen):
        """The interface owning the address at b[o] (alen bytes: its family), or None."""
        if alen == ALEN4:
            return self.stack.local_iface(b, o)
        if self.v6 is not None:
            return self.v6.local_iface(b, o)
        return None

    def route_out(self, b, o, alen):
        """The interface a datagram to the address at b[o] (alen bytes) leaves by, its next
        hop written into that family's routing table (Stack.routes_for); None without a
        route. Allocates nothing."""
        if alen == ALEN4:
            return self.stack.route_out(b, o)
        if self.v6 is not None:
            return self.v6.route_out(b, o)
        return None

    def alloc_tx(self, dst):
        """A buffer whose pb.off leaves room for dst's family header and a link header, so
        the finished frame starts at offset 0 (no move in Interface.transmit)."""
        if len(dst) != ALEN4:
            if self.v6 is None:
                return None  # config IPV6 off
            pb = self.pool.alloc()
            if pb is not None:
                pb.off = self.l2_reserve + IPV6_HDR
            return pb
        pb = self.pool.alloc()
        if pb is not None:
            pb.off = self.l2_reserve + IPV4_HDR
        return pb

    def alloc_tx_large(self, dst):
        """alloc_tx's layout in one of the pool's large buffers (a TSO segment), or None."""
        pb = self.pool.alloc_large()
        if pb is not None:
            pb.off = self.l2_reserve + (IPV4_HDR if len(dst) == ALEN4 else IPV6_HDR)
        return pb

    def alloc_big(self, dst, l4len):
        """The scratch buffer for a message bigger than a packet buffer (fragmented on
        output), or None."""
        if len(dst) == ALEN4:
            return self.v4.alloc_big(l4len)
        if self.v6 is not None:
            return self.v6.alloc_big(l4len)
        return None

    def error(self, pb, m, kind, arg):
        """Tell the sender of the datagram m describes about it (an ICMP error of kind,
        core/net/errors.py; arg the MTU for ERR_PKT_TOO_BIG). pb is not consumed."""
        if m.partial:
            complete_csum(pb.buf, m.l4, m.l4len, m.psum, m.proto)  # the quote shows it whole
            m.partial = False
        if m.family == AF_INET:
            self.stack.icmp.error_kind(m.iface, pb, m.hdr, kind, arg)
        elif self.v6 is not None:
            self.stack.icmp6.error(pb, m, kind, arg)
