"""A stack with a receiver open on every path a frame can take, and the bookkeeping that says
where every received frame went. Shared by the property tests (tests/property) and the
fuzzer (tests/fuzz): both push frames in through the driver, then check `accounting()`,
`close()` everything and check that the pool is full again.

Open on the stack at 192.0.2.2 (tests/frames.py addresses):
    UDP socket on port 7, TCP listener on port 80, raw sockets for ICMP and protocol 253,
    one ESTABLISHED TCP connection 192.0.2.1:PEER_PORT -> :80 (timestamps, window scale,
    SACK negotiated; sequence numbers fixed so frames can be built for it in advance),
    one connection the stack is opening (SYN-SENT) to 192.0.2.1:CLIENT_DPORT.
"""
import struct

from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed
from tests.unit_ref import csum

UDP_PORT = 7
TCP_PORT = 80
PEER_PORT = 40001
CLIENT_DPORT = 9000
CLIENT_PORT = 50000     # the SYN-SENT connection's own port: bound, since ephemeral ports
                        # are random (RFC 6056) and seeds are built for it in advance
RAW_PROTO = 253       # RFC 3692 experimental: only the raw socket takes it
STACK_ISS = 0x10000000  # the stack's initial sequence numbers (isn_hook)
PEER_ISS = 0x20000000   # the established connection's peer ISN
PEER_TS = 5000          # the peer's first TSval
ETH_IP = 0x0800
ETH_ARP = 0x0806

SYN_OPTS = bytes([2, 4, 0x05, 0xB4,          # MSS 1460
                  4, 2,                      # SACK permitted
                  8, 10]) + struct.pack("!II", PEER_TS, 0) + bytes([1, 3, 3, 7])  # TS, WS 7


def tcp_to(dport, flags, seq, ack, data=b"", options=b"", sport=PEER_PORT, window=65535):
    """A TCP frame from the host to the stack."""
    return F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP,
                 F.ipv4(F.HOST_IP, F.STACK_IP, 6,
                        F.tcp(F.HOST_IP, F.STACK_IP, sport, dport, seq, ack, flags, data,
                              window=window, options=options)))


def ts_opt(val, ecr):
    return bytes([1, 1, 8, 10]) + struct.pack("!II", val, ecr)


class Rig:
    def __init__(self, config=None):
        self.fed = Fed(config)
        self.stack = st = self.fed.stack
        self.drv = self.fed.drv
        st.tcp.isn_hook = lambda lip, lport, rip, rport: STACK_ISS
        st.tcp.ts_hook = lambda lip, lport, rip, rport: 0
        self.udp = st.socket(so.AF_INET, so.SOCK_DGRAM)
        self.udp.bind(("", UDP_PORT))
        self.udp.setblocking(False)
        self.lsock = st.socket(so.AF_INET, so.SOCK_STREAM)
        self.lsock.bind(("", TCP_PORT))
        self.lsock.listen(4)
        self.lsock.setblocking(False)
        self.raws = []
        for proto in (1, RAW_PROTO):
            r = st.socket(so.AF_INET, so.SOCK_RAW, proto)
            r.setblocking(False)
            self.raws.append(r)
        # the established connection: SYN, SYN-ACK, ACK, accept
        self.feed(tcp_to(TCP_PORT, 0x02, PEER_ISS, 0, options=SYN_OPTS))
        self.feed(tcp_to(TCP_PORT, 0x10, PEER_ISS + 1, STACK_ISS + 1,
                         options=ts_opt(PEER_TS + 1, self.fed.t)))
        self.conn, _ = self.lsock.accept()
        self.conn.setblocking(False)
        self.accepted = [self.conn]
        # a connection being opened by the stack (SYN-SENT)
        self.client = st.socket(so.AF_INET, so.SOCK_STREAM)
        self.client.setblocking(False)
        self.client.bind(("", CLIENT_PORT))
        self.client.connect_ex(("192.0.2.1", CLIENT_DPORT))
        self.fed.drv.tx.clear()
        self.received = 0

    # ---- input ----------------------------------------------------------------------------
    def feed(self, frame):
        """One frame in through the driver, one poll; returns the frames sent in reply. Like
        a real driver, a frame longer than a packet buffer arrives cut to the buffer."""
        return self.fed.feed(frame[:self.stack.pool.size])

    def feed_many(self, frames):
        """Frames queued in the driver together and drained by polls (RX_BATCH per poll)."""
        for f in frames:
            self.drv.rx.append(bytes(f[:self.stack.pool.size]))
        while self.drv.rx:
            self.stack.poll(self.fed.t)
        out = self.drv.tx[:]
        self.drv.tx.clear()
        return out

    def advance(self, ms):
        self.fed.t += ms
        self.stack.poll(self.fed.t)
        self.drv.tx.clear()

    # ---- the application ------------------------------------------------------------------
    def read_all(self):
        """Everything queued for the application: datagrams, raw copies, accepted
        connections and stream bytes (socket errors are the application's business)."""
        for s in [self.udp] + self.raws:
            while s.qlen:
                s.recv(70000)
                self.received += 1
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                break
            c.setblocking(False)
            self.accepted.append(c)
        for c in self.accepted + [self.client]:
            if c.closed:
                continue
            try:
                while c.recv(70000):
                    pass
            except OSError:
                pass

    def close(self):
        """Close every socket and let every timer (retransmissions, TIME-WAIT, ARP retries,
        reassembly) run out on the virtual clock."""
        self.read_all()
        for s in list(self.stack.sockets):
            s.close()
        for _ in range(40):
            self.advance(30000)
        self.drv.tx.clear()

    def accounting(self):
        return accounting(self.stack)


def accounting(stack):
    """Every received frame is accounted for by exactly one outcome. Returns a list of the
    balances that do not hold (empty when all do), each 'name: lhs != rhs'.

    iface   rx_packets = rx_too_short + rx_not_for_us + rx_bad_src_mac + rx_vlan_other
                         + rx_vlan_untagged + rx_unknown_ethertype
                         + frames to ARP + datagrams to IPv4
    ARP     frames = rx_requests + rx_replies + rx_malformed
    IPv4    rx_packets = integrity/sanity drops (rx_src_is_ours, rx_link_bcast_unicast too)
                         + forwarding outcomes (fwd_disabled on a host, fwd_martian, ...)
                         + rx_fragments + (rx_delivered - rx_reassembled)
            rx_delivered = tcp.rx_segments + udp.rx_datagrams + icmp.rx_packets
                           + rx_unknown_proto + rx_raw_only
            rx_fragments = reass.fragments
    ICMP    rx_packets = rx_too_short + rx_bad_csum + one of each message type's counters
    UDP     rx_datagrams = drops (rx_queue_full, rx_rcvbuf, rx_pool_share, rx_no_buffer for
                           a full queue) + rx_delivered (one socket per port: no broadcast
                           copies)
    TCP     rx_segments = integrity drops + rx_bcast + rx_no_conn + rx_listen_segments
                          + rx_conn_segments
    """
    bad = []

    def check(name, lhs, rhs):
        if lhs != rhs:
            bad.append("%s: %d != %d" % (name, lhs, rhs))

    ip = stack.ipv4.stats
    arp_in = 0
    eth_rx = 0
    eth_out = 0
    for i in stack.ifaces:
        s = i.stats
        eth_rx += s.rx_packets
        eth_out += s.rx_too_short + s.rx_not_for_us + s.rx_bad_src_mac + s.rx_vlan_other + \
            s.rx_vlan_untagged + s.rx_unknown_ethertype
        if i.arp is not None:
            a = i.arp.stats
            arp_in += a.rx_requests + a.rx_replies + a.rx_malformed
    check("iface rx_packets", eth_rx, eth_out + arp_in + ip.rx_packets)
    check("ip rx_packets", ip.rx_packets,
          ip.rx_too_short + ip.rx_bad_version + ip.rx_bad_ihl + ip.rx_bad_len + ip.rx_bad_csum +
          ip.rx_bad_src + ip.rx_src_is_ours + ip.rx_link_bcast_unicast +
          ip.rx_multicast_dropped + ip.rx_not_for_us +
          ip.fwd_disabled + ip.fwd_martian + ip.fwd_source_route +
          ip.fwd_packets + ip.fwd_ttl_exceeded + ip.fwd_no_route + ip.fwd_directed_bcast +
          ip.fwd_filtered + ip.rx_filtered +
          ip.rx_fragments + ip.rx_delivered - ip.rx_reassembled)
    tcp = stack.tcp.stats
    udp = stack.udp.stats
    icmp = stack.icmp.stats
    check("ip rx_delivered", ip.rx_delivered,
          tcp.rx_segments + udp.rx_datagrams + icmp.rx_packets + ip.rx_unknown_proto +
          ip.rx_raw_only)
    check("ip rx_fragments", ip.rx_fragments, stack.ipv4.reass.stats.fragments)
    check("icmp rx_packets", icmp.rx_packets,
          icmp.rx_too_short + icmp.rx_bad_csum + icmp.rx_echo_requests + icmp.rx_echo_replies +
          icmp.rx_dest_unreach + icmp.rx_time_exceeded + icmp.rx_redirects_ignored +
          icmp.rx_other)
    check("udp rx_datagrams", udp.rx_datagrams,
          udp.rx_too_short + udp.rx_bad_len + udp.rx_bad_csum + udp.rx_no_port +
          udp.rx_queue_full + udp.rx_rcvbuf + udp.rx_pool_share + udp.rx_no_buffer +
          udp.rx_delivered)
    check("tcp rx_segments", tcp.rx_segments,
          tcp.rx_too_short + tcp.rx_bad_off + tcp.rx_bad_csum + tcp.rx_bcast + tcp.rx_no_conn +
          tcp.rx_listen_segments + tcp.rx_conn_segments)
    return bad


# ---- checksums, so mutated frames get past the integrity checks ------------------------------
def fix_checksums(f):
    """Recompute the IPv4 header checksum and (unfragmented) ICMP, UDP and TCP checksums of
    the Ethernet frame in bytearray f, in place, as far as its lengths allow."""
    if len(f) < 14:
        return f
    off = 14
    et = (f[12] << 8) | f[13]
    if et in (0x8100, 0x88A8) and len(f) >= 18:
        et = (f[16] << 8) | f[17]
        off = 18
    if et != ETH_IP or len(f) < off + 20:
        return f
    ihl = (f[off] & 15) * 4
    if ihl < 20 or len(f) < off + ihl:
        return f
    f[off + 10:off + 12] = b"\0\0"
    struct.pack_into("!H", f, off + 10, ~csum(f[off:off + ihl]) & 0xFFFF)
    tot = (f[off + 2] << 8) | f[off + 3]
    if tot > len(f) - off:
        tot = len(f) - off
    frag = ((f[off + 6] << 8) | f[off + 7]) & 0x3FFF
    l4 = off + ihl
    n = tot - ihl
    if frag or n <= 0:
        return f
    proto = f[off + 9]
    if proto == 1 and n >= 4:
        f[l4 + 2:l4 + 4] = b"\0\0"
        struct.pack_into("!H", f, l4 + 2, ~csum(f[l4:l4 + n]) & 0xFFFF)
    elif proto == 17 and n >= 8:
        ulen = (f[l4 + 4] << 8) | f[l4 + 5]
        if 8 <= ulen <= n:
            f[l4 + 6:l4 + 8] = b"\0\0"
            ph = bytes(f[off + 12:off + 20]) + struct.pack("!BBH", 0, 17, ulen)
            c = ~csum(ph + bytes(f[l4:l4 + ulen])) & 0xFFFF
            struct.pack_into("!H", f, l4 + 6, c or 0xFFFF)
    elif proto == 6 and n >= 20:
        f[l4 + 16:l4 + 18] = b"\0\0"
        ph = bytes(f[off + 12:off + 20]) + struct.pack("!BBH", 0, 6, n)
        struct.pack_into("!H", f, l4 + 16, ~csum(ph + bytes(f[l4:l4 + n])) & 0xFFFF)
    return f
