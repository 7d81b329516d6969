"""The network layer drops what cannot be for us (issue 8): martian forwarding (RFC 1812
5.3.7), unicast IP in link-layer broadcasts (RFC 1122 3.3.6), 802.1Q tags of other VLANs,
LAND, ping of death, teardrop and other overlapping fragments, tiny fragments (RFC 1858), a
full reassembly table, ARP poisoning beyond RFC 826/5227, ICMP redirects, predictable IP
Identifications (RFC 7739), ARP re-validation timers and the ARP pending queue.

Every drop is asserted by its own counter, and no drop leaks a packet buffer."""
import struct

import pytest

from ustack.core import socket as so
from ustack.core.stack import Stack
from tests import frames as F
from tests.feed import Fed, FeedDriver, Router, FAR_IP, FAR_MAC
from tests.twostack import Bench, IP_B
from tests.unit_ref import csum

BCAST_MAC = b"\xff" * 6
MCAST_MAC = bytes.fromhex("01005e000001")
ETH_IP = 0x0800
ETH_ARP = 0x0806


# ---- helpers -------------------------------------------------------------------------------
def ip_frame(ip, dst_mac=F.STACK_MAC, src_mac=F.HOST_MAC):
    return F.eth(dst_mac, src_mac, ETH_IP, ip)


def echo_ip(src=F.HOST_IP, dst=F.STACK_IP, ident=0x1234, seq=1, data=b"ping!ping"):
    return F.ipv4(src, dst, 1, F.icmp_echo(ident, seq, data))


def tagged(vid, etype, payload, dst=F.STACK_MAC, src=F.HOST_MAC, pcp=0):
    """An IEEE 802.1Q tagged frame: TPID 0x8100, TCI = PCP(3) DEI(1) VID(12)."""
    return dst + src + struct.pack("!HHH", 0x8100, (pcp << 13) | vid, etype) + payload


def is_echo_reply(frame, off=14):
    return len(frame) > off + 20 and frame[off + 9] == 1 and frame[off + 20] == 0


def fragments(src, dst, proto, payload, sizes, ident=0x5151, offsets=None, last_mf=False):
    """payload cut in pieces of the given sizes (all but the last multiples of 8), each an
    IPv4 fragment; offsets (bytes) may be given to make overlaps."""
    out = []
    pos = 0
    for i, n in enumerate(sizes):
        o = pos if offsets is None else offsets[i]
        mf = 0x2000 if (i < len(sizes) - 1 or last_mf) else 0
        out.append(F.ipv4(src, dst, proto, payload[o:o + n], ident=ident, frag=mf | (o >> 3)))
        pos += n
    return out


def ip_of(frame, off=14):
    tot = struct.unpack("!H", frame[off + 2:off + 4])[0]
    return frame[off:off + tot]


def udp_ip(src, dst, data=b"transit!", ttl=64):
    return F.ipv4(src, dst, 17, F.udp(src, dst, 40000, 9, data), ttl=ttl)


@pytest.fixture
def fed():
    f = Fed()
    yield f
    assert f.stack.pool.full(), "a packet buffer leaked"


# ---- RFC 1812 5.3.7: martians are never forwarded --------------------------------------
@pytest.mark.parametrize("dst", [
    bytes([0, 1, 2, 3]),          # 0/8 ("this network")
    bytes([127, 0, 0, 1]),        # 127/8 (loopback)
    bytes([240, 0, 0, 9]),        # 240/4 (reserved)
], ids=["zero_net", "loopback", "reserved"])
def test_router_does_not_forward_to_martian_destinations(dst):
    r = Router()
    assert r.feed(udp_ip(F.HOST_IP, dst)) == ([], [])
    c = r.counters()
    assert c["ip.fwd_martian"] == 1
    assert "ip.fwd_packets" not in c and "icmp.tx_errors" not in c
    assert r.feed(udp_ip(F.HOST_IP, FAR_IP))[1] != []   # control: a sane one goes through
    assert r.stack.pool.full()


@pytest.mark.parametrize("src", [bytes(4), bytes([0, 9, 9, 9])], ids=["zero", "zero_net"])
def test_router_does_not_forward_from_martian_sources(src):
    """RFC 1812 5.3.7: nor from 0.0.0.0 or 0/8 (dropped on input as bad sources)."""
    r = Router()
    assert r.feed(udp_ip(src, FAR_IP)) == ([], [])
    c = r.counters()
    assert c["ip.rx_bad_src"] == 1 and "ip.fwd_packets" not in c and "icmp.tx_errors" not in c


# ---- RFC 1122 3.3.6: unicast IP in a link-layer broadcast is discarded -------------------
@pytest.mark.parametrize("mac", [BCAST_MAC, MCAST_MAC], ids=["broadcast", "multicast"])
def test_unicast_datagram_in_a_link_layer_group_frame_is_silently_dropped(fed, mac):
    assert fed.feed(ip_frame(echo_ip(), dst_mac=mac)) == []
    c = fed.counters()
    assert c["ip.rx_link_bcast_unicast"] == 1 and "icmp.rx_packets" not in c
    assert len(fed.feed(ip_frame(echo_ip()))) == 1      # control: unicast frame answered


def test_router_does_not_forward_unicast_received_in_a_link_broadcast():
    r = Router()
    assert r.feed(udp_ip(F.HOST_IP, FAR_IP), eth_dst=BCAST_MAC) == ([], [])
    c = r.counters()
    assert c["ip.rx_link_bcast_unicast"] == 1 and "ip.fwd_packets" not in c


def test_broadcast_datagram_in_a_link_broadcast_is_still_delivered(fed):
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 67))
    s.setblocking(False)
    ip = F.ipv4(F.HOST_IP, b"\xff" * 4, 17, F.udp(F.HOST_IP, b"\xff" * 4, 68, 67, b"hello"))
    fed.feed(ip_frame(ip, dst_mac=BCAST_MAC))
    assert s.recv(100) == b"hello"
    s.close()


def test_a_subnet_broadcast_reaches_sockets_bound_to_it_or_to_any_not_to_the_unicast(fed):
    bcast = bytes([192, 0, 2, 255])
    socks = {}
    for name, host, port in (("any", "", 5000), ("bcast", "192.0.2.255", 5001),
                             ("unicast", "192.0.2.2", 5002)):
        s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
        s.bind((host, port))
        s.setblocking(False)
        socks[name] = s
    for port in (5000, 5001, 5002):
        ip = F.ipv4(F.HOST_IP, bcast, 17, F.udp(F.HOST_IP, bcast, 68, port, b"to all"))
        fed.feed(ip_frame(ip, dst_mac=BCAST_MAC))
    assert socks["any"].recv(100) == b"to all"
    assert socks["bcast"].recv(100) == b"to all"
    with pytest.raises(OSError):
        socks["unicast"].recv(100)
    assert fed.counters()["udp.rx_no_port"] == 1
    for s in socks.values():
        s.close()


def test_a_frame_from_a_group_source_mac_is_dropped(fed):
    assert fed.feed(ip_frame(echo_ip(), src_mac=bytes.fromhex("030000000001"))) == []
    assert fed.counters()["eth0.rx_bad_src_mac"] == 1


# ---- 802.1Q: tagged frames only on an interface configured for that VLAN ----------------
def vlan_stack(vlan):
    drv = FeedDriver()
    st = Stack()
    st.clock = lambda: 1000
    iface = st.add_interface("eth0", drv, ip="192.0.2.2/24", vlan=vlan)
    iface.arp.add_static(F.HOST_IP, F.HOST_MAC)
    st.poll(1000)
    drv.tx.clear()

    def feed(frame):
        drv.rx.append(frame)
        st.poll(1000)
        out = drv.tx[:]
        drv.tx.clear()
        return out
    return st, iface, feed


def test_tagged_frames_are_dropped_on_an_untagged_interface(fed):
    assert fed.feed(tagged(5, ETH_IP, echo_ip())) == []
    assert fed.feed(tagged(5, ETH_ARP, F.arp(1, F.HOST_MAC, F.HOST_IP, bytes(6),
                                             F.STACK_IP), dst=BCAST_MAC)) == []
    qinq = F.STACK_MAC + F.HOST_MAC + struct.pack("!HHHHH", 0x88A8, 7, 0x8100, 5, ETH_IP) + \
        echo_ip()
    assert fed.feed(qinq) == []
    c = fed.counters()
    assert c["eth0.rx_vlan_other"] == 3 and "icmp.rx_packets" not in c


def test_priority_tagged_frames_belong_to_the_untagged_lan(fed):
    """IEEE 802.1Q: VID 0 carries only a priority; the frame is on the native LAN."""
    out = fed.feed(tagged(0, ETH_IP, echo_ip(), pcp=5))
    assert len(out) == 1 and is_echo_reply(out[0])


def test_vlan_interface_answers_its_vlan_tagged_and_drops_the_rest():
    st, iface, feed = vlan_stack(5)
    out = feed(tagged(5, ETH_IP, echo_ip()))
    assert len(out) == 1
    assert out[0][12:16] == b"\x81\x00\x00\x05" and out[0][16:18] == b"\x08\x00"
    assert is_echo_reply(out[0], 18) and out[0][:6] == F.HOST_MAC
    assert csum(ip_of(out[0], 18)[:20]) == 0xFFFF
    assert feed(tagged(6, ETH_IP, echo_ip())) == []
    assert feed(ip_frame(echo_ip())) == []
    c = st.counters()
    assert c["eth0.rx_vlan_other"] == 1 and c["eth0.rx_vlan_untagged"] == 1
    assert c["icmp.tx_echo_replies"] == 1
    assert st.pool.full()


def test_vlan_interface_answers_arp_and_sends_tagged():
    st, iface, feed = vlan_stack(5)
    req = F.arp(1, FAR_MAC, bytes([192, 0, 2, 9]), bytes(6), F.STACK_IP)
    out = feed(tagged(5, ETH_ARP, req, dst=BCAST_MAC, src=FAR_MAC))
    assert len(out) == 1
    assert out[0][:6] == FAR_MAC and out[0][12:18] == b"\x81\x00\x00\x05\x08\x06"
    assert out[0][18 + 6:18 + 8] == b"\x00\x02"
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"x" * 10, ("192.0.2.1", 9))           # resolved: one tagged UDP datagram
    s.sendto(b"y" * 10, ("192.0.2.77", 9))          # unresolved: a tagged ARP request
    s.close()
    sent = iface.driver.tx
    assert len(sent) == 2
    udp, arpreq = sent
    assert udp[12:18] == b"\x81\x00\x00\x05\x08\x00" and udp[18 + 9] == 17
    assert udp[18 + 28:18 + 38] == b"x" * 10
    assert arpreq[:6] == BCAST_MAC and arpreq[12:18] == b"\x81\x00\x00\x05\x08\x06"
    assert arpreq[18 + 24:18 + 28] == bytes([192, 0, 2, 77])


def test_vlan_id_comes_from_config_when_not_given():
    st = Stack({"ETH_VLAN": 7})
    iface = st.add_interface("eth0", FeedDriver(), ip="192.0.2.2/24")
    assert iface.vlan == 7
    with pytest.raises(ValueError):
        Stack({"ETH_VLAN": 4095})


# ---- LAND and impossible sources (RFC 1122 3.2.1.3) --------------------------------------
def test_land_datagram_with_our_address_as_source_is_dropped_unanswered(fed):
    lst = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    lst.bind(("", 80))
    lst.listen(2)
    syn = F.tcp(F.STACK_IP, F.STACK_IP, 80, 80, 1000, 0, 0x02)
    assert fed.feed(ip_frame(F.ipv4(F.STACK_IP, F.STACK_IP, 6, syn))) == []
    assert fed.feed(ip_frame(echo_ip(src=F.STACK_IP))) == []
    c = fed.counters()
    assert c["ip.rx_src_is_ours"] == 2 and "tcp.rx_segments" not in c
    lst.close()
    fed.advance(1)


@pytest.mark.parametrize("src", [bytes([0, 0, 0, 0]), bytes([0, 1, 2, 3])])
def test_unicast_from_an_unspecified_or_this_network_source_is_dropped(fed, src):
    """{0, 0} is only a source during initialization (DHCP, to a broadcast); {0, host} is
    not to be used. Nothing to answer either way."""
    assert fed.feed(ip_frame(echo_ip(src=src))) == []
    assert fed.counters()["ip.rx_bad_src"] == 1


def test_broadcast_from_the_unspecified_source_is_delivered(fed):
    """A DHCP client's DISCOVER: 0.0.0.0 -> 255.255.255.255 (RFC 2131 4.1)."""
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 67))
    s.setblocking(False)
    ip = F.ipv4(bytes(4), b"\xff" * 4, 17, F.udp(bytes(4), b"\xff" * 4, 68, 67, b"discover"))
    fed.feed(ip_frame(ip, dst_mac=BCAST_MAC))
    assert s.recv(100) == b"discover"
    s.close()


# ---- fragments: ping of death, teardrop, overlaps, tiny fragments -----------------------
ECHO_72 = F.icmp_echo(0x4444, 1, bytes(i & 0xFF for i in range(64)))  # 72 bytes of ICMP


def test_fragmented_echo_is_reassembled_and_answered(fed):
    frames = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [24, 24, 24])
    out = []
    for ip in frames:
        out += fed.feed(ip_frame(ip))
    assert len(out) == 1 and is_echo_reply(out[0]) and ip_of(out[0])[28:] == ECHO_72[8:]


def test_fragment_reaching_beyond_65535_bytes_is_dropped_as_ping_of_death(fed):
    """RFC 791: a datagram is at most 65535 bytes; a fragment at offset 65528 with 16 bytes
    could only make a bigger one (the "ping of death")."""
    tail = F.ipv4(F.HOST_IP, F.STACK_IP, 1, bytes(16), ident=0x5151, frag=8191)
    fed.feed(ip_frame(fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [24], last_mf=True)[0]))
    assert fed.feed(ip_frame(tail)) == []
    c = fed.counters()
    assert c["reass.oversize"] == 1 and "reass.too_big" not in c


def test_ping_of_death_is_caught_even_with_the_largest_reassembly_size():
    f = Fed({"REASS_SIZE": 65515, "REASS_SLOTS": 1})
    tail = F.ipv4(F.HOST_IP, F.STACK_IP, 1, bytes(16), ident=0x5151, frag=8191)
    assert f.feed(ip_frame(tail)) == []
    assert f.counters()["reass.oversize"] == 1
    ok = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [24, 24, 24], ident=9)
    out = []
    for ip in ok:
        out += f.feed(ip_frame(ip))
    assert len(out) == 1


def test_teardrop_fragment_inside_an_earlier_one_drops_the_datagram(fed):
    """The classic teardrop: the last fragment ends inside data already received (offset 24,
    8 bytes, after 0..48): lengths that contradict each other, the whole datagram goes."""
    frames = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [48, 8], offsets=[0, 24])
    out = []
    for ip in frames:
        out += fed.feed(ip_frame(ip))
    assert out == []
    c = fed.counters()
    assert c["reass.malformed"] == 1 and "reass.reassembled" not in c
    assert not any(s.busy for s in fed.stack.ipv4.reass.slots)


def test_overlapping_fragments_with_the_same_data_are_accepted(fed):
    frames = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [32, 24, 32], offsets=[0, 16, 40])
    out = []
    for ip in frames:
        out += fed.feed(ip_frame(ip))
    assert len(out) == 1 and ip_of(out[0])[28:] == ECHO_72[8:]


def test_overlapping_fragments_with_different_data_drop_the_whole_datagram(fed):
    first, rest = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [32, 48])
    forged = bytearray(ECHO_72)
    forged[20] ^= 0xFF                            # inside bytes 16..32, already received
    (over,) = fragments(F.HOST_IP, F.STACK_IP, 1, bytes(forged), [16], offsets=[16],
                        last_mf=True)
    out = fed.feed(ip_frame(first)) + fed.feed(ip_frame(over)) + fed.feed(ip_frame(rest))
    assert out == []
    c = fed.counters()
    assert c["reass.overlap_conflict"] == 1 and "reass.reassembled" not in c


def _fragments_with_ecn(codepoints, proto=253, data=bytes(range(48)), ident=0x6161):
    """data cut in len(codepoints) fragments of 16 bytes, each with its own ECN field."""
    out = []
    for i, ecn in enumerate(codepoints):
        mf = 0x2000 if i < len(codepoints) - 1 else 0
        out.append(F.ipv4(F.HOST_IP, F.STACK_IP, proto, data[i * 16:i * 16 + 16], ident=ident,
                          frag=mf | (i * 2), tos=ecn))
    return out


@pytest.mark.parametrize("codepoints,want", [
    ((2, 2, 2), 2),      # all ECT(0): ECT(0)
    ((2, 3, 2), 3),      # one CE among ECT: the datagram is CE, the mark must survive
    ((3, 1, 1), 3),
    ((0, 0, 0), 0),      # all Not-ECT: Not-ECT
], ids=["ect0", "ce_among_ect0", "ce_among_ect1", "not_ect"])
def test_reassembly_merges_the_ecn_field_of_its_fragments(fed, codepoints, want):
    """RFC 3168 5.3: a CE mark on any fragment marks the reassembled datagram CE (a
    congestion signal lost in reassembly would hide congestion from the transport)."""
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 253)
    r.setblocking(False)
    for ip in _fragments_with_ecn(codepoints):
        fed.feed(ip_frame(ip))
    got = r.recv(200)
    assert got[1] & 3 == want and got[20:] == bytes(range(48))
    r.close()


def test_fragments_mixing_not_ect_with_ect_are_dropped(fed):
    """RFC 3168 5.3: a datagram whose fragments mix Not-ECT with ECT or CE MUST be dropped
    (it was split after a marking router or tampered with)."""
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 253)
    r.setblocking(False)
    for ip in _fragments_with_ecn((2, 0, 3)):
        fed.feed(ip_frame(ip))
    with pytest.raises(OSError):
        r.recv(200)
    c = fed.counters()
    assert c["reass.ecn_mixed"] == 1 and "reass.reassembled" not in c
    assert not any(s.busy for s in fed.stack.ipv4.reass.slots)
    r.close()


def test_tcp_fragment_at_offset_8_bytes_is_dropped_rfc1858(fed):
    """RFC 1858 3.2: a TCP fragment with offset 1 can only rewrite the header's flags."""
    ip = F.ipv4(F.HOST_IP, F.STACK_IP, 6, bytes(16), ident=7, frag=0x2000 | 1)
    assert fed.feed(ip_frame(ip)) == []
    assert fed.counters()["reass.tiny"] == 1


def test_first_tcp_fragment_shorter_than_a_tcp_header_is_dropped_rfc1858(fed):
    """RFC 1858 3.1: the first fragment must hold the whole transport header."""
    ip = F.ipv4(F.HOST_IP, F.STACK_IP, 6, bytes(8), ident=7, frag=0x2000)
    assert fed.feed(ip_frame(ip)) == []
    c = fed.counters()
    assert c["reass.tiny"] == 1
    assert not any(s.busy for s in fed.stack.ipv4.reass.slots)


def test_full_reassembly_table_evicts_its_oldest_datagram():
    f = Fed({"REASS_SLOTS": 2})
    firsts = []
    rests = []
    for k in range(3):
        fr = fragments(F.HOST_IP, F.STACK_IP, 1, ECHO_72, [24, 48], ident=100 + k)
        firsts.append(fr[0])
        rests.append(fr[1])
    for k in range(3):
        f.t += 10
        assert f.feed(ip_frame(firsts[k])) == []
    c = f.counters()
    assert c["reass.evicted"] == 1 and "reass.no_slot" not in c
    assert len(f.feed(ip_frame(rests[1]))) == 1   # the two newest complete
    assert len(f.feed(ip_frame(rests[2]))) == 1
    assert f.feed(ip_frame(rests[0])) == []       # the oldest was evicted
    assert f.counters()["reass.reassembled"] == 2


# ---- ICMP: redirects change nothing ------------------------------------------------------
def redirect_from(src, gateway):
    quoted = F.ipv4(F.STACK_IP, FAR_IP, 17, F.udp(F.STACK_IP, FAR_IP, 40000, 53, b"q"))
    h = struct.pack("!BBH4s", 5, 1, 0, gateway) + quoted[:28]
    icmp = h[:2] + struct.pack("!H", ~csum(h) & 0xFFFF) + h[4:]
    return F.ipv4(src, F.STACK_IP, 1, icmp)


@pytest.mark.parametrize("src", [F.HOST_IP, bytes([192, 0, 2, 66])],
                         ids=["from_gateway", "from_a_non_gateway"])
def test_icmp_redirects_are_counted_and_change_nothing(src):
    f = Fed()
    f.stack.set_address(f.iface, "192.0.2.2", 24, gateway="192.0.2.1")
    before = f.stack.routes.table()
    out = f.feed(ip_frame(redirect_from(src, bytes([192, 0, 2, 99]))))
    assert out == []
    assert f.stack.routes.table() == before
    f.stack.routes.lookup(FAR_IP, 0)
    assert bytes(f.stack.routes.nexthop) == F.HOST_IP
    assert f.counters()["icmp.rx_redirects_ignored"] == 1


def test_icmp_errors_are_rate_limited_on_every_path(fed):
    """Port unreachable, protocol unreachable and reassembly timeouts share one bucket."""
    for k in range(30):
        fed.feed(F.udp_frame(9999, b"x"))
        fed.feed(ip_frame(F.ipv4(F.HOST_IP, F.STACK_IP, 99, b"z" * 8, ident=k)))
    c = fed.counters()
    burst = fed.stack.config["ICMP_BURST"]
    assert c["icmp.tx_errors"] == burst and c["icmp.tx_rate_limited"] == 60 - burst


# ---- ARP: not poisonable beyond RFC 826 / RFC 5227 ---------------------------------------
def arp_frame(op, sha, spa, tpa, tha=bytes(6), dst=BCAST_MAC):
    return F.eth(dst, sha, ETH_ARP, F.arp(op, sha, spa, tha, tpa))


NEIGH_IP = bytes([192, 0, 2, 30])
NEIGH_MAC = bytes.fromhex("020000000030")
EVIL_MAC = bytes.fromhex("02000000ee01")


def test_unsolicited_arp_reply_creates_no_entry(fed):
    assert fed.feed(arp_frame(2, NEIGH_MAC, NEIGH_IP, F.STACK_IP, F.STACK_MAC,
                              dst=F.STACK_MAC)) == []
    assert fed.iface.arp.lookup(NEIGH_IP) is None
    assert fed.counters()["eth0.arp.rx_unsolicited"] == 1


def test_solicited_arp_reply_resolves_the_waiting_packet(fed):
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"hi", ("192.0.2.30", 9))
    fed.stack.poll(fed.t)
    fed.drv.tx.clear()
    out = fed.feed(arp_frame(2, NEIGH_MAC, NEIGH_IP, F.STACK_IP, F.STACK_MAC, dst=F.STACK_MAC))
    assert len(out) == 1 and out[0][:6] == NEIGH_MAC
    assert fed.iface.arp.lookup(NEIGH_IP) == NEIGH_MAC
    s.close()


@pytest.mark.parametrize("op", [1, 2], ids=["request", "reply"])
def test_gratuitous_arp_does_not_overwrite_a_static_entry(fed, op):
    """RFC 5227 announcements (sender = target) update known entries, never PERMANENT ones."""
    fed.feed(arp_frame(op, EVIL_MAC, F.HOST_IP, F.HOST_IP))
    assert fed.iface.arp.lookup(F.HOST_IP) == F.HOST_MAC


@pytest.mark.parametrize("spa", [bytes([255, 255, 255, 255]), bytes([192, 0, 2, 255]),
                                 bytes([224, 0, 0, 1]), bytes([127, 0, 0, 1]),
                                 bytes([240, 0, 0, 1])],
                         ids=["limited_bcast", "subnet_bcast", "multicast", "loopback",
                              "reserved"])
def test_arp_from_an_impossible_sender_address_is_dropped(fed, spa):
    assert fed.feed(arp_frame(1, EVIL_MAC, spa, F.STACK_IP)) == []
    assert fed.counters()["eth0.arp.rx_bad_sender"] == 1
    assert fed.iface.arp.lookup(spa) is None


def test_arp_request_from_off_link_sender_is_answered_but_not_learned(fed):
    off_link = bytes([203, 0, 113, 9])
    out = fed.feed(arp_frame(1, NEIGH_MAC, off_link, F.STACK_IP))
    assert len(out) == 1 and out[0][:6] == NEIGH_MAC
    assert fed.iface.arp.lookup(off_link) is None
    assert fed.counters()["eth0.arp.rx_off_link"] == 1


# ---- ARP: a stale entry's re-validation runs on a timer (issue 8, hole 9) ---------------
def test_stale_entry_revalidation_is_retried_and_expires_on_a_timer():
    f = Fed({"ARP_MAX_AGE_MS": 1000, "ARP_RETRY_MS": 500, "ARP_MAX_RETRIES": 2})
    f.feed(arp_frame(1, NEIGH_MAC, NEIGH_IP, F.STACK_IP))       # learned (REACHABLE)
    f.advance(2000)
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"x", ("192.0.2.30", 9))                            # old: used, and re-asked
    s.close()
    assert f.stack.next_timer and f.stack.next_timer <= f.t + 500
    f.drv.tx.clear()
    for _ in range(10):
        f.advance(250)
    asks = [x for x in f.drv.tx if x[12:14] == b"\x08\x06" and x[38:42] == NEIGH_IP]
    assert len(asks) == 2                                         # the retries
    assert f.iface.arp.lookup(NEIGH_IP) is None                   # unanswered: forgotten
    assert f.counters()["eth0.arp.timeouts"] == 1


# ---- ARP pending queue: every fragment of a datagram waits for the reply ----------------
def test_first_big_ping_to_an_unresolved_neighbour_gets_its_reply():
    b = Bench()
    assert b.a.iface("a0").arp.lookup(bytes([192, 0, 2, 11])) is None
    p = b.a.ping(IP_B, size=4000)
    assert p.received == 1
    c = b.a.counters()
    assert "a0.arp.pending_dropped" not in c and c["a0.arp.pending_sent"] == 3
    b.pump()
    assert b.pools_full()


def test_arp_pending_queue_is_bounded_and_counts_what_it_drops():
    f = Fed({"ARP_QUEUE": 3})
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    for k in range(5):
        s.sendto(bytes([48 + k]), ("192.0.2.30", 9))
    s.close()
    c = f.counters()
    assert c["eth0.arp.pending_dropped"] == 2
    f.drv.tx.clear()
    out = f.feed(arp_frame(2, NEIGH_MAC, NEIGH_IP, F.STACK_IP, F.STACK_MAC, dst=F.STACK_MAC))
    assert [o[42] for o in out] == [ord("2"), ord("3"), ord("4")]  # oldest dropped first
    assert f.stack.pool.full()


def test_packets_to_ever_new_neighbours_never_push_out_a_resolved_one():
    # RFC 6583 7.1 (the IPv6 twin is in test_ipv6_nd.py): a SYN flood from random on-link
    # sources makes every SYN-ACK a new resolution; those take the oldest INCOMPLETE entry,
    # so the neighbours in use keep theirs and their connections never wait on ARP again
    f = Fed({"ARP_ENTRIES": 4})
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"hi", ("192.0.2.30", 9))
    f.stack.poll(f.t)
    f.feed(arp_frame(2, NEIGH_MAC, NEIGH_IP, F.STACK_IP, F.STACK_MAC, dst=F.STACK_MAC))
    assert f.iface.arp.lookup(NEIGH_IP) == NEIGH_MAC
    f.advance(10)
    for k in range(40, 60):
        s.sendto(b"x", ("192.0.2.%d" % k, 9))
        f.advance(1)
    assert f.iface.arp.lookup(NEIGH_IP) == NEIGH_MAC
    assert f.iface.arp.lookup(F.HOST_IP) == F.HOST_MAC      # the static entry too
    c = f.counters()
    assert c["eth0.arp.evicted"] >= 18, c
    s.close()
    for _ in range(20):
        f.advance(500)
    assert f.stack.pool.full()


def test_requests_from_ever_new_senders_never_push_out_a_neighbour_in_use():
    # RFC 826's merge adds the sender of a request for us; a flood of requests from random
    # on-link senders must not evict the neighbours the stack talks to. Each asker still
    # gets its reply (from the request itself), but it may only replace another asker
    # nobody has sent to yet
    f = Fed({"ARP_ENTRIES": 4})
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"hi", ("192.0.2.30", 9))
    f.stack.poll(f.t)
    f.feed(arp_frame(2, NEIGH_MAC, NEIGH_IP, F.STACK_IP, F.STACK_MAC, dst=F.STACK_MAC))
    f.advance(10)
    replies = f.counters().get("eth0.arp.tx_replies", 0)
    for k in range(40, 60):
        mac = bytes.fromhex("0200000001%02x" % k)
        f.feed(arp_frame(1, mac, bytes([192, 0, 2, k]), F.STACK_IP))
        assert f.iface.arp.lookup(NEIGH_IP) == NEIGH_MAC
        f.advance(1)
    assert f.iface.arp.lookup(F.HOST_IP) == F.HOST_MAC      # the static entry too
    assert f.iface.arp.lookup(bytes([192, 0, 2, 59])) is not None   # the newest asker
    c = f.counters()
    assert c["eth0.arp.tx_replies"] - replies == 20
    assert c["eth0.arp.evicted"] >= 17, c
    s.close()


def test_a_timed_out_neighbour_frees_its_whole_queue():
    f = Fed({"ARP_QUEUE": 4})
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    for k in range(3):
        s.sendto(b"x", ("192.0.2.30", 9))
    s.close()
    for _ in range(20):
        f.advance(500)
    c = f.counters()
    assert c["eth0.arp.timeouts"] == 1 and c["eth0.arp.pending_dropped"] == 3
    assert f.stack.pool.full()


# ---- IP Identification (RFC 7739, RFC 6864) ----------------------------------------------
OTHER_IP = bytes([192, 0, 2, 40])
OTHER_MAC = bytes.fromhex("020000000040")


def ids_sent(f, plan):
    """Send one small UDP datagram per letter (A: to the host, B: to another neighbour);
    returns {letter: [Identification, ...]}."""
    f.iface.arp.add_static(OTHER_IP, OTHER_MAC)
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    f.drv.tx.clear()
    for who in plan:
        s.sendto(b"id?", ("192.0.2.1" if who == "A" else "192.0.2.40", 9))
    s.close()
    out = {"A": [], "B": []}
    for fr in f.drv.tx:
        ip = ip_of(fr)
        out["A" if ip[16:20] == F.HOST_IP else "B"].append(struct.unpack("!H", ip[4:6])[0])
    return out


def test_identifications_to_one_destination_do_not_reveal_traffic_to_another():
    """RFC 7739 5.3: per-destination counters. What A sees does not depend on how many
    datagrams went to B in between."""
    quiet = ids_sent(Fed(), "AAAA")["A"]
    busy = ids_sent(Fed(), "ABBBABBBABBBA")["A"]
    deltas = [(y - x) & 0xFFFF for x, y in zip(busy, busy[1:])]
    assert deltas == [(y - x) & 0xFFFF for x, y in zip(quiet, quiet[1:])]
    assert deltas == [1, 1, 1]


def test_identifications_of_two_destinations_are_not_one_sequence():
    got = ids_sent(Fed(), "ABABAB")
    d = (got["B"][0] - got["A"][0]) & 0xFFFF
    assert min(d, 0x10000 - d) > 16


def test_identifications_to_one_destination_do_not_repeat_within_a_window():
    got = ids_sent(Fed({"PBUF_COUNT": 16}), "A" * 2000)["A"]
    assert len(got) == 2000 and len(set(got)) == 2000


def test_identification_key_differs_between_seeded_stacks():
    a, b = Fed(), Fed()
    a.stack.seed(1)
    b.stack.seed(2)
    assert ids_sent(a, "A")["A"] != ids_sent(b, "A")["A"]


# ---- ICMP errors must be about our own datagrams, and come to us alone (RFC 5927) --------
def port_unreach_quoting(src, dst, sport, dport):
    quoted = F.ipv4(src, dst, 17, F.udp(src, dst, sport, dport, b"q"))
    h = struct.pack("!BBHI", 3, 3, 0, 0) + quoted[:28]
    return h[:2] + struct.pack("!H", ~csum(h) & 0xFFFF) + h[4:]


def connected_udp(f):
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 40001))
    s.connect(("192.0.2.1", 53))
    s.setblocking(False)
    return s


def test_icmp_error_quoting_someone_elses_datagram_is_dropped(fed):
    s = connected_udp(fed)
    other = bytes([192, 0, 2, 99])
    err = port_unreach_quoting(other, F.HOST_IP, 40001, 53)
    assert fed.feed(ip_frame(F.ipv4(F.HOST_IP, F.STACK_IP, 1, err))) == []
    c = fed.counters()
    assert c["icmp.rx_errors_not_ours"] == 1 and "udp.icmp_errors" not in c
    assert s.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    err = port_unreach_quoting(F.STACK_IP, F.HOST_IP, 40001, 53)     # control: ours
    fed.feed(ip_frame(F.ipv4(F.HOST_IP, F.STACK_IP, 1, err)))
    assert fed.counters()["udp.icmp_errors"] == 1
    s.close()


def test_icmp_error_sent_to_a_broadcast_address_is_dropped(fed):
    s = connected_udp(fed)
    err = port_unreach_quoting(F.STACK_IP, F.HOST_IP, 40001, 53)
    bc = bytes([192, 0, 2, 255])
    assert fed.feed(ip_frame(F.ipv4(F.HOST_IP, bc, 1, err), dst_mac=BCAST_MAC)) == []
    c = fed.counters()
    assert c["icmp.rx_errors_to_bcast"] == 1 and "udp.icmp_errors" not in c
    s.close()


# ---- RFC 7126 4.3/4.4: source-routed datagrams are not forwarded (accept_source_route=0) --
@pytest.mark.parametrize("opt", [131, 137], ids=["lsrr", "ssrr"])
def test_router_does_not_forward_source_routed_datagrams(opt):
    r = Router()
    route = bytes([opt, 7, 4]) + bytes([203, 0, 113, 1]) + b"\x00"   # + EOL pad to 8
    ip = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 1, 9, b"sr"), options=route)
    assert r.feed(ip) == ([], [])
    c = r.counters()
    assert c["ip.fwd_source_route"] == 1 and "ip.fwd_packets" not in c
    nop = F.ipv4(F.HOST_IP, FAR_IP, 17, F.udp(F.HOST_IP, FAR_IP, 1, 9, b"sr"),
                 options=b"\x01\x01\x01\x00")
    assert r.feed(nop)[1] != []                  # control: harmless options are forwarded


# ---- RFC 5227 2.4: someone else claims our address --------------------------------------
def test_a_claim_on_our_address_is_defended_at_most_once_per_defend_interval(fed):
    """Our own entry cannot be poisoned; peers' caches are put right with one broadcast
    announcement, at most every DEFEND_INTERVAL (10 s)."""
    claim = arp_frame(2, EVIL_MAC, F.STACK_IP, F.STACK_IP)
    out = fed.feed(claim)
    assert len(out) == 1
    want = F.eth(BCAST_MAC, F.STACK_MAC, ETH_ARP, F.arp(1, F.STACK_MAC, F.STACK_IP, bytes(6),
                                                         F.STACK_IP))
    assert out[0][:42] == want
    fed.advance(5000)
    assert fed.feed(claim) == []                          # within 10 s: not again
    fed.advance(5000)
    assert len(fed.feed(claim)) == 1                      # 10 s on: defended again
    c = fed.counters()
    assert c["eth0.arp.rx_conflict"] == 3 and c["eth0.arp.defended"] == 2
    assert fed.iface.arp.lookup(F.STACK_IP) is None


def test_our_own_arp_coming_back_is_not_a_conflict(fed):
    own = arp_frame(1, F.STACK_MAC, F.STACK_IP, F.STACK_IP)
    assert fed.feed(own) == []
    c = fed.counters()
    assert "eth0.arp.rx_conflict" not in c and c["eth0.arp.rx_bad_sender"] == 1


# ---- RFC 791: nothing we send is longer than 65535 bytes ---------------------------------
def test_a_datagram_over_65535_bytes_is_refused_not_raised(fed):
    import errno
    from ustack.core.buf import PacketBuffer
    pb = PacketBuffer(65600, -7)          # a scratch buffer as big as a board could make one
    pb.in_use = True
    pb.off = 34
    pb.n = 65535 - 20 + 1                 # one byte too many once the IP header is on
    assert fed.stack.ipv4.output(pb, 17, None, F.HOST_IP) == errno.EMSGSIZE
    assert not pb.in_use and fed.drv.tx == []
    assert fed.counters()["ip.tx_too_big"] == 1


# ---- RFC 791: every link carries 68-byte datagrams unfragmented --------------------------
def test_an_mtu_under_68_is_refused_when_the_interface_is_made():
    with pytest.raises(ValueError) as e:
        Stack().add_interface("eth0", FeedDriver(mtu=60), ip="192.0.2.2/24")
    assert "68" in str(e.value)
    Stack().add_interface("eth0", FeedDriver(mtu=68), ip="192.0.2.2/24")


def test_fragmenting_for_an_mtu_lowered_below_68_later_drops_instead_of_looping(fed):
    fed.iface.mtu = 24                    # set behind the stack's back: no room for 8 bytes
    import errno
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    with pytest.raises(OSError) as e:
        s.sendto(bytes(100), ("192.0.2.1", 9))
    s.close()
    assert e.value.errno == errno.EMSGSIZE
    assert fed.drv.tx == [] and fed.counters()["ip.tx_too_big"] == 1


def test_a_stopping_stack_drops_and_counts_what_waits_for_a_neighbour():
    # the exit counters must show every buffer back: a packet waiting in an unanswered ARP
    # entry when the stack stops is dropped and counted, not left out of the pool (a CI run
    # stopped its stack beside a flood with pbuf.free one short)
    f = Fed()
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"hi", ("192.0.2.30", 9))
    f.stack.poll(f.t)
    s.close()
    assert f.stack.pool.nfree == f.stack.pool.count - 1
    f.stack.drop_pending()
    assert f.stack.pool.full()
    assert f.counters()["eth0.arp.pending_dropped"] == 1
