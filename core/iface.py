"""An interface: one driver, its MAC and IPv4 address, its ARP cache and counters.

RX: `input(pb, n)` demultiplexes the Ethernet frame in pb.buf[0:n] by EtherType to ARP or
IPv4. TX: `output(pb, nexthop)` prepends the Ethernet header (resolving nexthop through ARP)
and hands the frame to the driver.

802.1Q: an interface belongs to one LAN. Without a VLAN ID (`vlan=0`) it takes untagged and
priority-tagged (VID 0) frames only; with one it takes only frames tagged with that VID and
tags every frame it sends. Frames of other VLANs and 802.1ad (QinQ) frames are dropped and
counted: answering them untagged would leak across VLANs.

Offloads (issue 13) are driver capabilities: `driver.caps` (the CAP_* bits below; 0 or
absent: none, as on every MCU driver). A driver offering CAP_CSUM_RX says per frame (its
`rx_offload`, PacketBuffer.offload bits) whether the transport checksum needs no check; one
offering CAP_CSUM_TX/CAP_TSO4/CAP_TSO6 gets frames whose pb.offload asks it to complete the
checksum or to cut a large TCP segment into segments of the size it names
(`send_offload(buf, n, offload)`); one offering CAP_GRO may hand over TCP super-frames larger
than a packet buffer, read into the pool's large buffers (core/offload.py `recv_large`:
only a stack with such a driver imports it, and no MCU build ships it).
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.wire import ethernet as eth
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire.fields import copy
from ustack.core.arp import ArpCache
from ustack.core.buf import OFL_GSO_SHIFT

# driver capabilities (Driver.caps), named here only
CAP_CSUM_TX = const(1)   # completes a TCP/UDP checksum left as the pseudo-header sum
CAP_CSUM_RX = const(2)   # vouches for received TCP/UDP checksums (driver.rx_offload)
CAP_TSO4 = const(4)      # cuts TCP/IPv4 segments larger than the MTU (TSO/GSO)
CAP_TSO6 = const(8)      # the same for TCP/IPv6
CAP_GRO = const(16)      # may hand over TCP super-frames larger than the MTU (GRO/LRO)
# no offload: the driver takes one frame a call, but the stack may build TCP/IPv4 segments of
# many MSS and cut them itself just in front of it (software GSO, core/offload.py gso_send,
# as Linux does ahead of a driver without TSO): TCP and IP output run once a burst, not once
# a frame; each frame leaves whole, its checksums computed (issue 13)
CAP_GSO_SOFT = const(32)

IFACE_COUNTERS = (
    "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
    "rx_too_short", "rx_not_for_us", "rx_unknown_ethertype", "rx_vlan",
    "rx_vlan_other", "rx_vlan_untagged", "rx_bad_src_mac",
    "tx_busy", "tx_too_big", "tx_no_buffer",
    "rx_no_buffer",   # polls that found no receive buffer free (the frame waits in the driver)
    "rx_budget_hit",  # polls that read RX_BATCH frames and left the rest for the next one
    "rx_gro_frames",  # super-frames (larger than a packet buffer) a CAP_GRO driver handed over
    "rx_no_large",    # polls that found no large buffer free for a CAP_GRO driver
    "tx_tso_frames",  # TCP segments larger than the MTU the driver cut up (CAP_TSO4/6)
    "tx_gso_frames",  # TCP segments larger than the MTU the stack cut up (CAP_GSO_SOFT)
)

L2_ETHERNET = const(1)
L2_NONE = const(0)  # SLIP/TUN: IP packets with no link header
MIN_MTU = const(68)  # RFC 791 section 3.2: 60-byte header + an 8-byte fragment


class Interface:
    def __init__(self, stack, name, driver, ip=None, prefix=24, gateway=None, mac=None, mtu=None,
                 vlan=None):
        self.stack = stack
        self.name = name
        self.driver = driver
        m = mac if mac is not None else getattr(driver, "mac", b"")
        self.mac = bytes(m)
        self.l2 = L2_ETHERNET if len(self.mac) == 6 else L2_NONE
        self.hlen = eth.HDR_LEN if self.l2 == L2_ETHERNET else 0
        self.mtu = mtu or getattr(driver, "mtu", 1500)
        if self.mtu < MIN_MTU:
            raise ValueError("interface %s: MTU %d is under 68 (RFC 791: every link must carry "
                             "a 68-byte datagram)" % (name, self.mtu))
        self.mtu6 = self.mtu  # IPv6's link MTU: an RA's MTU option may lower it (core/ipv6.py)
        self.stats = Counters(IFACE_COUNTERS)
        self.caps = getattr(driver, "caps", 0)  # the driver's offloads (CAP_*)
        self.rx_large = None  # CAP_GRO: the large buffer the next frame is read into
        if vlan is None:
            vlan = stack.config["ETH_VLAN"]
        if not 0 <= vlan <= 4094:
            raise ValueError("VLAN ID must be 1..4094 (0: untagged)")
        self.vlan = vlan if self.l2 == L2_ETHERNET else 0  # SLIP/TUN carry no tags
        self.ip = ip4.ANY
        self.prefix = 0
        self.mask = ip4.ANY
        self.net = ip4.ANY
        self.bcast = ip4.BROADCAST
        self.gateway = None
        self.arp = ArpCache(self, stack.config) if self.l2 == L2_ETHERNET else None
        self.up = False
        self.loop = None  # the LoopDriver when this is "lo" (core/loop.py)
        self.nd = None    # IPv6's neighbour cache (core/ipv6.py attach)
        self.mld = None   # IPv6's multicast listener state (core/mld.py)
        self.slaac = None  # IPv6's view of Router Advertisements (core/slaac.py)
        if ip is not None:
            self.set_address(ip, prefix, gateway)

    def set_address(self, ip, prefix, gateway=None):
        self.ip = ip4.aton(ip)
        self.prefix = prefix
        self.mask = ip4.prefix_mask(prefix)
        self.net = bytes(self.ip[i] & self.mask[i] for i in range(4))
        self.bcast = bytes(self.net[i] | (~self.mask[i] & 0xFF) for i in range(4))
        self.gateway = ip4.aton(gateway) if gateway else None

    # ---- RX -------------------------------------------------------------------------------
    def input(self, pb, n):
        """Takes ownership of pb (frees it, or hands it on)."""
        st = self.stats
        st.rx_packets += 1
        st.rx_bytes += n
        pb.n = n
        if self.caps & CAP_CSUM_RX:
            pb.offload = self.driver.rx_offload  # the driver checked (or vouches for) it
        if self.l2 == L2_NONE:
            if n < 1:
                st.rx_too_short += 1
                self.stack.free(pb)
                return
            v = pb.buf[0] >> 4
            if v == 4:
                self.stack.ipv4.input(self, pb, 0, n)
            elif v == 6 and self.stack.ipv6 is not None:
                self.stack.ipv6.input(self, pb, 0, n)
            else:
                st.rx_unknown_ethertype += 1
                self.stack.free(pb)
            return
        b = pb.buf
        if n < eth.HDR_LEN:
            st.rx_too_short += 1
            self.stack.free(pb)
            return
        # Destination: ours, broadcast or multicast (group bit); a promiscuous driver (TAP,
        # AF_PACKET) hands us everything on the segment.
        if not (b[0] & 1):
            m = self.mac
            if b[0] != m[0] or b[1] != m[1] or b[2] != m[2] or b[3] != m[3] or \
                    b[4] != m[4] or b[5] != m[5]:
                st.rx_not_for_us += 1
                self.stack.free(pb)
                return
        if b[6] & 1:
            # IEEE 802.3: a source address is never a group address; replies would go to
            # the whole segment
            st.rx_bad_src_mac += 1
            self.stack.free(pb)
            return
        et = (b[12] << 8) | b[13]
        off = eth.HDR_LEN
        if et == eth.ETH_P_VLAN or et == eth.ETH_P_QINQ:
            if n < eth.HDR_LEN + eth.VLAN_LEN:
                st.rx_too_short += 1
                self.stack.free(pb)
                return
            # IEEE 802.1Q: VID 0 is a priority tag on the untagged LAN
            if et == eth.ETH_P_QINQ or (((b[14] & 0x0F) << 8) | b[15]) != self.vlan:
                st.rx_vlan_other += 1
                self.stack.free(pb)
                return
            st.rx_vlan += 1
            et = (b[16] << 8) | b[17]
            off = eth.HDR_LEN + eth.VLAN_LEN
        elif self.vlan:
            st.rx_vlan_untagged += 1
            self.stack.free(pb)
            return
        if et == eth.ETH_P_IPV4:
            self.stack.ipv4.input(self, pb, off, n - off)
        elif et == eth.ETH_P_ARP:
            pb.offload = 0  # a reply is built in place: it leaves plain
            self.arp.input(pb, off, n - off)
        elif et == eth.ETH_P_IPV6 and self.stack.ipv6 is not None:
            self.stack.ipv6.input(self, pb, off, n - off)   # RFC 2464 3
        else:
            st.rx_unknown_ethertype += 1
            self.stack.free(pb)

    # ---- TX -------------------------------------------------------------------------------
    def output(self, pb, nexthop, rc=None):
        """Send the IPv4 packet at pb.buf[pb.off:pb.off+pb.n] to nexthop (4 bytes). Takes
        ownership of pb. rc: the sending connection's route.RouteCache (ARP's entry)."""
        if self.l2 == L2_NONE:
            self.transmit(pb)
            return
        off = pb.off - eth.HDR_LEN
        pb.off = off
        pb.n += eth.HDR_LEN
        b = pb.buf
        n0 = nexthop[0]
        if n0 == 255 and nexthop[1] == 255 and nexthop[2] == 255 and nexthop[3] == 255:
            eth.write_header(b, off, eth.BROADCAST, self.mac, eth.ETH_P_IPV4)
        elif self._is_bcast(nexthop):
            eth.write_header(b, off, eth.BROADCAST, self.mac, eth.ETH_P_IPV4)
        elif n0 >= 224 and n0 < 240:
            # RFC 1112 section 6.4: 01:00:5e + low 23 bits of the group address
            b[off] = 0x01
            b[off + 1] = 0x00
            b[off + 2] = 0x5E
            b[off + 3] = nexthop[1] & 0x7F
            b[off + 4] = nexthop[2]
            b[off + 5] = nexthop[3]
            i = 0
            while i < 6:
                b[off + 6 + i] = self.mac[i]
                i += 1
            b[off + 12] = 0x08
            b[off + 13] = 0x00
        else:
            b[off + 12] = 0x08
            b[off + 13] = 0x00
            if not self.arp.resolve(pb, nexthop, rc):
                return  # queued (or dropped) pending resolution
        self.transmit(pb)

    def _is_bcast(self, a):
        c = self.bcast  # the last byte first: a host's address differs there (one compare)
        return self.prefix < 31 and a[3] == c[3] and a[2] == c[2] and a[1] == c[1] and a[0] == c[0]

    def transmit(self, pb):
        """Hand the complete frame at pb.buf[pb.off:] to the driver and free pb."""
        n = pb.n
        if pb.off != 0:
            # Frames are laid out to start at offset 0 (transports reserve exactly the headers'
            # room); anything else is moved down once.
            copy(pb.buf, 0, pb.buf, pb.off, n)
            pb.off = 0
        if self.l2 == L2_ETHERNET and n < eth.MIN_FRAME:
            b = pb.buf
            i = n
            while i < eth.MIN_FRAME:
                b[i] = 0
                i += 1
            n = eth.MIN_FRAME
        st = self.stats
        if self.vlan and not (pb.buf[12] == 0x81 and pb.buf[13] == 0):
            # IEEE 802.1Q: the tag goes between the source MAC and the EtherType (a reply
            # built in place from a tagged frame already carries it)
            b = pb.buf
            if n + eth.VLAN_LEN > pb.size:
                st.tx_too_big += 1
                self.stack.free(pb)
                return
            copy(b, 16, b, 12, n - 12)   # a move up (memmove), no slice load
            b[12] = eth.ETH_P_VLAN >> 8
            b[13] = eth.ETH_P_VLAN & 0xFF
            b[14] = self.vlan >> 8
            b[15] = self.vlan & 0xFF
            n += eth.VLAN_LEN
        stack = self.stack
        ofl = pb.offload
        if ofl >> OFL_GSO_SHIFT and self.caps & CAP_GSO_SOFT:
            stack.offload.gso_send(self, pb, n)  # cut here: each frame counted and captured
            stack.free(pb)
            return
        if stack.capture is not None:
            stack.capture(self, pb.buf, n, True)
        if self.loop is not None:
            # loopback: the buffer itself waits for the next poll (core/loop.py), no copy
            pb.n = n
            if self.loop.put(pb):
                st.tx_packets += 1
                st.tx_bytes += n
            else:
                st.tx_busy += 1
                stack.free(pb)
            return
        if ofl and self.caps:
            ok = self.driver.send_offload(pb.buf, n, ofl)
            if ok and ofl >> OFL_GSO_SHIFT and n > self.mtu + self.hlen:
                st.tx_tso_frames += 1
        else:
            ok = self.driver.send(pb.buf, n)
        if ok:
            st.tx_packets += 1
            st.tx_bytes += n
        else:
            st.tx_busy += 1
        stack.free(pb)

    def is_local(self, b, o):
        a = self.ip  # the last byte first: a neighbour's address differs there (one compare)
        return b[o + 3] == a[3] and b[o + 2] == a[2] and b[o + 1] == a[1] and b[o] == a[0]

    def on_link(self, b, o):
        """Is the address at b[o] on this interface's subnet?"""
        m = self.mask
        nt = self.net
        return (b[o] & m[0]) == nt[0] and (b[o + 1] & m[1]) == nt[1] and \
            (b[o + 2] & m[2]) == nt[2] and (b[o + 3] & m[3]) == nt[3]

    def _is_bcast_at(self, b, o):
        """Subnet-directed broadcast for this interface (not on /31 and /32 links)."""
        c = self.bcast  # the last byte first, as _is_bcast
        return self.prefix < 31 and self.ip[0] != 0 and b[o + 3] == c[3] and \
            b[o + 2] == c[2] and b[o + 1] == c[1] and b[o] == c[0]
