"""IPv4, ICMP and ARP rules that are easy to break silently: when ICMP errors are not sent
(RFC 1122 3.2.2), forwarding TTL handling (RFC 1812 5.3.1), the header fields we originate,
gratuitous ARP (RFC 5227), the ARP cache's eviction policy, and the UDP/ICMP header layouts.

Frames are built independently (tests/frames.py, struct) and compared with what the stack puts
on the wire; counters say which path a frame took."""
import struct

import pytest

from ustack.core import socket as so
from ustack.core.stack import Stack
from ustack.core.wire import fields, icmp4, udp as wudp
from ustack.hal.loopback import Wire
from tests import frames as F
from tests.feed import Fed, FeedDriver, Router, R1_MAC, FAR_IP, FAR_MAC
from tests.twostack import Bench, IP_A, IP_B, MAC_A, MAC_B
from tests.unit_ref import csum

BCAST_MAC = b"\xff" * 6
ETH_IP = 0x0800
ETH_ARP = 0x0806


# ---- helpers -------------------------------------------------------------------------------
def icmp_msg(t, code, body, rest=0):
    """An ICMP message with a correct checksum (rest: the 32-bit field after the checksum)."""
    h = struct.pack("!BBHI", t, code, 0, rest) + body
    return h[:2] + struct.pack("!H", ~csum(h) & 0xFFFF) + h[4:]


def quote_of(ip_datagram):
    """What an ICMP error quotes: the IP header and the first 8 bytes of its payload."""
    ihl = (ip_datagram[0] & 0x0F) * 4
    return ip_datagram[:ihl + 8]


def ip_of(frame):
    """The IPv4 datagram in an Ethernet frame (padding cut off by the total length)."""
    assert frame[12:14] == b"\x08\x00"
    tot = struct.unpack("!H", frame[16:18])[0]
    return frame[14:14 + tot]


def icmp_of(frame):
    ip = ip_of(frame)
    assert ip[9] == 1
    icmp = ip[(ip[0] & 0x0F) * 4:]
    assert csum(icmp) == 0xFFFF, "bad ICMP checksum"
    return icmp


def is_ipv4(frame):
    return frame[12:14] == b"\x08\x00"


def tap(port):
    """Record every frame arriving at a wire port (what the other stacks sent)."""
    seen = []
    arrive = port._arrive

    def record(frame):
        seen.append(bytes(frame))
        arrive(frame)
    port._arrive = record
    return seen


# A router between two fed links: the near host F.HOST_IP (192.0.2.1) on e0, the far host on e1.
R0_IP = F.STACK_IP                       # 192.0.2.2, the router on e0 (MAC F.STACK_MAC)
NOWHERE = bytes([203, 0, 113, 5])        # no route


def udp_ip(dst, ttl=64, ident=0x4242, frag=0, src=F.HOST_IP, data=b"transit!"):
    return F.ipv4(src, dst, 17, F.udp(src, dst, 40000, 9, data), ttl=ttl, ident=ident, frag=frag)


# An ICMP error the near host sends on, quoting a UDP datagram the far host once sent it.
QUOTED = F.ipv4(FAR_IP, F.HOST_IP, 17, F.udp(FAR_IP, F.HOST_IP, 53, 40000, b"answer"))
ICMP_ERRORS = {
    "dest_unreach": icmp_msg(3, 3, quote_of(QUOTED)),
    "source_quench": icmp_msg(4, 0, quote_of(QUOTED)),
    "redirect": icmp_msg(5, 1, quote_of(QUOTED), rest=0xC0000201),
    "time_exceeded": icmp_msg(11, 0, quote_of(QUOTED)),
    "param_problem": icmp_msg(12, 0, quote_of(QUOTED), rest=0x08000000),
}


# ---- what a router sends no ICMP error about (RFC 1122 3.2.2, RFC 1812 4.3.2.7) ---------
def test_datagram_expiring_in_transit_gets_time_exceeded():
    r = Router()
    sent = udp_ip(FAR_IP, ttl=1)
    e0, e1 = r.feed(sent)
    assert e1 == []
    assert len(e0) == 1
    icmp = icmp_of(e0[0])
    assert (icmp[0], icmp[1]) == (11, 0)
    assert icmp[8:8 + 28] == quote_of(sent)


def test_echo_request_expiring_in_transit_gets_time_exceeded():
    """ICMP queries are not errors: traceroute with ping works."""
    r = Router()
    e0, e1 = r.feed(F.ipv4(F.HOST_IP, FAR_IP, 1, F.icmp_echo(7, 1, b"trace"), ttl=1))
    assert e1 == [] and len(e0) == 1
    assert icmp_of(e0[0])[:2] == b"\x0b\x00"


@pytest.mark.parametrize("kind", sorted(ICMP_ERRORS))
def test_icmp_error_expiring_in_transit_gets_no_time_exceeded(kind):
    r = Router()
    e0, e1 = r.feed(F.ipv4(F.HOST_IP, FAR_IP, 1, ICMP_ERRORS[kind], ttl=1))
    assert (e0, e1) == ([], [])
    c = r.counters()
    assert c["ip.fwd_ttl_exceeded"] == 1
    assert c["icmp.tx_suppressed"] == 1 and "icmp.tx_errors" not in c


def test_datagram_to_unreachable_network_gets_net_unreachable():
    r = Router()
    sent = udp_ip(NOWHERE)
    e0, e1 = r.feed(sent)
    assert e1 == [] and len(e0) == 1
    icmp = icmp_of(e0[0])
    assert (icmp[0], icmp[1]) == (3, 0)
    assert icmp[8:8 + 28] == quote_of(sent)
    assert r.counters()["ip.fwd_no_route"] == 1


@pytest.mark.parametrize("kind", sorted(ICMP_ERRORS))
def test_icmp_error_to_unreachable_network_gets_no_net_unreachable(kind):
    r = Router()
    e0, e1 = r.feed(F.ipv4(F.HOST_IP, NOWHERE, 1, ICMP_ERRORS[kind]))
    assert (e0, e1) == ([], [])
    c = r.counters()
    assert c["ip.fwd_no_route"] == 1 and c["icmp.tx_suppressed"] == 1


@pytest.mark.parametrize("case", ["non_initial_fragment", "unspecified_source", "link_broadcast"])
def test_no_time_exceeded_about_fragments_unspecified_sources_or_link_broadcasts(case):
    """RFC 1122 3.2.2: nor about a non-initial fragment, a source that names no single host,
    or a datagram that came as a link-layer broadcast. (The last two are not even forwarded:
    RFC 1812 5.3.7 and RFC 1122 3.3.6 drop them on input, before any ICMP decision.)"""
    r = Router()
    if case == "non_initial_fragment":
        e0, e1 = r.feed(udp_ip(FAR_IP, ttl=1, frag=185))
        counter = "icmp.tx_suppressed"
    elif case == "unspecified_source":
        e0, e1 = r.feed(udp_ip(FAR_IP, ttl=1, src=bytes(4)))
        counter = "ip.rx_bad_src"
    else:
        e0, e1 = r.feed(udp_ip(FAR_IP, ttl=1), eth_dst=BCAST_MAC)
        counter = "ip.rx_link_bcast_unicast"
    assert (e0, e1) == ([], [])
    c = r.counters()
    assert c[counter] == 1 and "icmp.tx_errors" not in c


def test_no_time_exceeded_about_a_directed_broadcast_to_an_attached_subnet():
    """RFC 1122 3.2.2, RFC 1812 4.3.2.7: nor about a datagram to an IP broadcast address;
    the router knows 198.51.100.255 is the broadcast address of its e1 subnet."""
    r = Router()
    assert r.feed(udp_ip(bytes([198, 51, 100, 255]), ttl=1)) == ([], [])
    assert r.counters()["icmp.tx_suppressed"] == 1


def test_directed_broadcasts_are_not_forwarded_unless_configured():
    """RFC 2644: a router drops datagrams for the broadcast address of an attached subnet by
    default (they amplify smurf attacks); IP_FORWARD_DIRECTED_BCAST turns forwarding on."""
    r = Router()
    assert r.feed(udp_ip(bytes([198, 51, 100, 255]))) == ([], [])
    assert r.counters()["ip.fwd_directed_bcast"] == 1
    assert r.feed(udp_ip(FAR_IP))[1] != []         # control: unicast goes through
    r = Router(IP_FORWARD_DIRECTED_BCAST=True)
    e0, e1 = r.feed(udp_ip(bytes([198, 51, 100, 255])))
    assert e0 == [] and len(e1) == 1 and e1[0][:6] == BCAST_MAC
    assert ip_of(e1[0])[8] == 63


def test_first_fragment_expiring_in_transit_gets_time_exceeded():
    r = Router()
    e0, e1 = r.feed(udp_ip(FAR_IP, ttl=1, frag=0x2000))  # MF, offset 0
    assert e1 == [] and len(e0) == 1 and icmp_of(e0[0])[:2] == b"\x0b\x00"


def test_icmp_error_with_a_truncated_quote_is_counted_and_dropped():
    fed = Fed()
    inner = F.ipv4(F.STACK_IP, F.HOST_IP, 17, b"\0" * 8)
    err = icmp_msg(3, 3, inner[:4])  # the quote is cut short
    out = fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP, F.ipv4(F.HOST_IP, F.STACK_IP, 1, err)))
    assert out == []
    c = fed.counters()
    assert c["icmp.rx_dest_unreach"] == 1 and c["icmp.rx_errors_bad_quote"] == 1
    assert fed.stack.pool.full()


# ---- no ICMP error about broadcasts (RFC 1122 3.2.2) -------------------------------------
LIMITED = b"\xff\xff\xff\xff"
SUBNET = bytes([192, 0, 2, 255])
ALL_HOSTS = bytes([224, 0, 0, 1])
BROADCASTS = {
    # name: (IP destination, Ethernet destination)
    "limited": (LIMITED, BCAST_MAC),
    "limited_in_unicast_frame": (LIMITED, F.STACK_MAC),
    "subnet": (SUBNET, BCAST_MAC),
    "subnet_in_unicast_frame": (SUBNET, F.STACK_MAC),
    "all_hosts_multicast": (ALL_HOSTS, bytes.fromhex("01005e000001")),
}


def to_closed_udp_port(dst, eth_dst):
    return F.eth(eth_dst, F.HOST_MAC, ETH_IP,
                 F.ipv4(F.HOST_IP, dst, 17, F.udp(F.HOST_IP, dst, 40000, 9999, b"anyone?")))


def unknown_protocol(dst, eth_dst):
    return F.eth(eth_dst, F.HOST_MAC, ETH_IP, F.ipv4(F.HOST_IP, dst, 99, b"z" * 12))


def test_udp_to_closed_port_at_our_address_gets_port_unreachable():
    fed = Fed()
    frame = to_closed_udp_port(F.STACK_IP, F.STACK_MAC)
    out = fed.feed(frame)
    assert len(out) == 1 and ip_of(out[0])[16:20] == F.HOST_IP
    icmp = icmp_of(out[0])
    assert (icmp[0], icmp[1]) == (3, 3)
    assert icmp[8:8 + 28] == quote_of(ip_of(frame))


@pytest.mark.parametrize("name", sorted(BROADCASTS))
def test_udp_to_closed_port_at_broadcast_gets_no_port_unreachable(name):
    fed = Fed()
    assert fed.feed(to_closed_udp_port(*BROADCASTS[name])) == []
    c = fed.counters()
    assert c["udp.rx_no_port"] == 1 and "icmp.tx_errors" not in c


def test_unknown_protocol_at_our_address_gets_protocol_unreachable():
    fed = Fed()
    out = fed.feed(unknown_protocol(F.STACK_IP, F.STACK_MAC))
    assert len(out) == 1 and icmp_of(out[0])[:2] == b"\x03\x02"


@pytest.mark.parametrize("name", sorted(BROADCASTS))
def test_unknown_protocol_at_broadcast_gets_no_protocol_unreachable(name):
    fed = Fed()
    assert fed.feed(unknown_protocol(*BROADCASTS[name])) == []
    c = fed.counters()
    assert c["ip.rx_unknown_proto"] == 1 and "icmp.tx_errors" not in c


# ---- forwarding: TTL (RFC 1812 5.3.1) ----------------------------------------------------
def _ident_for_checksum_at_least(floor):
    """An Identification that makes the UDP datagram's header checksum >= floor, where a
    sloppy incremental update (RFC 1141 without the end-around carry) goes wrong."""
    for ident in range(0x10000):
        if struct.unpack("!H", udp_ip(FAR_IP, ident=ident)[10:12])[0] >= floor:
            return ident
    raise AssertionError("no such ident")


@pytest.mark.parametrize("ttl,ident", [(64, 0x4242), (2, 0x4242), (255, 0x0001),
                                       (64, _ident_for_checksum_at_least(0xFF00))])
def test_router_forwards_with_ttl_one_less_and_a_valid_header_checksum(ttl, ident):
    r = Router()
    sent = udp_ip(FAR_IP, ttl=ttl, ident=ident)
    e0, e1 = r.feed(sent)
    assert e0 == [] and len(e1) == 1
    frame = e1[0]
    assert frame[:12] == FAR_MAC + R1_MAC
    got = ip_of(frame)
    assert got[8] == ttl - 1
    assert csum(got[:20]) == 0xFFFF, "header checksum not valid after the TTL change"
    # nothing else changed: same header but TTL and checksum, same payload
    assert got[:8] + got[9:10] + got[12:] == sent[:8] + sent[9:10] + sent[12:]
    assert r.counters()["ip.fwd_packets"] == 1


@pytest.mark.parametrize("ttl", [1, 0])
def test_router_does_not_forward_ttl_1_or_0_and_sends_time_exceeded(ttl):
    r = Router()
    sent = udp_ip(FAR_IP, ttl=ttl)
    e0, e1 = r.feed(sent)
    assert e1 == [], "forwarded a datagram whose TTL ran out"
    assert len(e0) == 1
    assert e0[0][:12] == F.HOST_MAC + F.STACK_MAC
    ip = ip_of(e0[0])
    assert ip[12:16] == R0_IP and ip[16:20] == F.HOST_IP
    icmp = icmp_of(e0[0])
    assert (icmp[0], icmp[1]) == (11, 0)  # time to live exceeded in transit
    assert icmp[8:8 + 28] == quote_of(sent)  # quoted as received (TTL not decremented)
    c = r.counters()
    assert c["ip.fwd_ttl_exceeded"] == 1 and "ip.fwd_packets" not in c


def test_host_does_not_forward():
    r = Router(forward=False)
    assert r.feed(udp_ip(FAR_IP, ttl=1)) == ([], [])
    c = r.counters()
    assert c["ip.fwd_disabled"] == 1 and "ip.fwd_ttl_exceeded" not in c


# ---- header fields we originate (RFC 791, RFC 1122 3.2.1.7) ------------------------------
@pytest.fixture
def bench():
    b = Bench()
    b.a.ping(IP_B)  # both ARP caches resolved: nothing waits on a neighbour
    yield b
    b.close_all()


def udp_sock(stack, port):
    s = stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", port))
    s.setblocking(False)
    return s


def test_datagrams_we_originate_have_ttl_64(bench):
    at_a, at_b = tap(bench.pa), tap(bench.pb)
    ua, ub = udp_sock(bench.a, 7), udp_sock(bench.b, 7)
    ua.sendto(b"udp", (IP_B, 7))           # UDP
    bench.pump()
    ub.sendto(b"udp", (IP_A, 9))           # ICMP port unreachable back from A
    bench.pump()
    assert bench.a.ping(IP_B).received == 1  # echo request and echo reply
    ip_frames = [f for f in at_a + at_b if is_ipv4(f)]
    protos = sorted((ip_of(f)[9], ip_of(f)[20] if ip_of(f)[9] == 1 else 0) for f in ip_frames)
    assert protos == [(1, 0), (1, 3), (1, 8), (17, 0), (17, 0)]
    assert [ip_of(f)[8] for f in ip_frames] == [64] * 5
    assert bench.a.config["IP_TTL"] == 64


def test_identification_counts_up_per_datagram_and_per_stack(bench):
    at_a, at_b = tap(bench.pa), tap(bench.pb)
    ua, ub = udp_sock(bench.a, 7), udp_sock(bench.b, 7)
    for who in "AABABBA":
        if who == "A":
            ua.sendto(b"from a", (IP_B, 7))
        else:
            ub.sendto(b"from b", (IP_A, 7))
        bench.pump(2)
    from_a = [struct.unpack("!H", ip_of(f)[4:6])[0] for f in at_b if is_ipv4(f)]
    from_b = [struct.unpack("!H", ip_of(f)[4:6])[0] for f in at_a if is_ipv4(f)]
    assert len(from_a) == 4 and len(from_b) == 3
    # each stack's own counter: B's datagrams do not advance A's, and the other way round
    assert from_a == [from_a[0] + i for i in range(4)]
    assert from_b == [from_b[0] + i for i in range(3)]


def test_fragments_of_one_datagram_share_its_identification(bench):
    at_b = tap(bench.pb)
    ua = udp_sock(bench.a, 7)
    udp_sock(bench.b, 7)  # a listener: no port unreachable comes back
    ua.sendto(b"small", (IP_B, 7))
    ua.sendto(bytes(3000), (IP_B, 7))
    ua.sendto(b"small", (IP_B, 7))
    bench.pump()
    ids = [struct.unpack("!H", ip_of(f)[4:6])[0] for f in at_b if is_ipv4(f)]
    assert len(ids) == 5
    assert ids == [ids[0]] + [ids[0] + 1] * 3 + [ids[0] + 2]


# ---- gratuitous ARP on bring-up (RFC 5227 section 3) -------------------------------------
def test_bring_up_announces_the_address_with_a_gratuitous_arp_request():
    w = Wire()
    sniffer = w.port(b"\x02\0\0\0\0\x99")
    st = Stack()
    st.add_interface("a0", w.port(MAC_A), ip=IP_A, prefix=24)
    ip = bytes([192, 0, 2, 10])
    # broadcast request: sender and target protocol address both ours, sender MAC ours,
    # target MAC zero (RFC 5227: ignored, set to zero), padded to the Ethernet minimum
    want = F.eth(BCAST_MAC, MAC_A, ETH_ARP, F.arp(1, MAC_A, ip, b"\0" * 6, ip))
    assert sniffer.q == [want + bytes(60 - len(want))]
    assert st.counters()["a0.arp.gratuitous_sent"] == 1


def test_no_gratuitous_arp_when_disabled_or_without_an_address():
    w = Wire()
    sniffer = w.port(b"\x02\0\0\0\0\x99")
    Stack({"ARP_GRATUITOUS": False}).add_interface("a0", w.port(MAC_A), ip=IP_A, prefix=24)
    Stack().add_interface("b0", w.port(MAC_B))  # no address yet (DHCP)
    assert sniffer.q == []


# ---- ARP: not for us; the cache's eviction policy ----------------------------------------
def host(n):
    return bytes([192, 0, 2, 20 + n]), bytes([2, 0, 0, 0, 1, 0x20 + n])


def arp_request_from(n, target=F.STACK_IP):
    ip, mac = host(n)
    return F.eth(BCAST_MAC, mac, ETH_ARP, F.arp(1, mac, ip, b"\0" * 6, target))


def test_arp_request_for_another_address_gets_no_reply_and_teaches_nothing():
    fed = Fed()
    assert fed.feed(arp_request_from(1, target=bytes([192, 0, 2, 77]))) == []
    c = fed.counters()
    assert c["eth0.arp.rx_requests"] == 1 and c["eth0.arp.rx_not_for_us"] == 1
    assert "eth0.arp.tx_replies" not in c
    assert fed.iface.arp.lookup(host(1)[0]) is None  # RFC 826: merge only, no new entry
    out = fed.feed(arp_request_from(1))  # control: a request for our address is answered
    assert len(out) == 1 and out[0][:6] == host(1)[1] and out[0][20:22] == b"\x00\x02"


def test_full_arp_cache_evicts_the_least_recently_used_entry():
    drv = FeedDriver()
    t = [1000]
    st = Stack({"ARP_ENTRIES": 4})
    st.clock = lambda: t[0]
    st.add_interface("eth0", drv, ip="192.0.2.2/24")

    def at(ms, frame=None):
        t[0] = ms
        if frame is not None:
            drv.rx.append(frame)
        st.poll(t[0])
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    s.setblocking(False)

    def send_to(n):
        drv.tx.clear()
        s.sendto(b"x", (".".join(str(x) for x in host(n)[0]), 9))
        assert len(drv.tx) == 1
        return drv.tx[0]
    for n in (1, 2, 3, 4):           # hosts 1..4 ask for us: learned, in this order
        at(1000 + n, arp_request_from(n))
    assert st.counters().get("eth0.arp.evicted", 0) == 0
    at(1010)
    assert send_to(1)[:6] == host(1)[1]  # host 1 used again: now host 2 is least recent
    at(1020, arp_request_from(5))    # a fifth host: the cache is full
    assert st.counters()["eth0.arp.evicted"] == 1
    for n in (1, 3, 4, 5):           # still known: sent straight to their MACs
        assert send_to(n)[:6] == host(n)[1]
    frame = send_to(2)               # forgotten: must be asked for again
    assert frame[:6] == BCAST_MAC and frame[12:14] == b"\x08\x06"
    assert frame[38:42] == host(2)[0]
    s.close()
    for ms in range(1500, 8000, 500):  # the unanswered request times out, its packet freed
        at(1020 + ms)
    assert st.counters()["eth0.arp.timeouts"] == 1
    assert st.pool.full()


def small_cache_stack(entries=2):
    drv = FeedDriver()
    st = Stack({"ARP_ENTRIES": entries})
    st.clock = lambda: 1000
    iface = st.add_interface("eth0", drv, ip="192.0.2.2/24")
    return st, iface, drv


def test_static_arp_entries_are_never_evicted_aged_or_overwritten():
    st, iface, drv = small_cache_stack(2)
    iface.arp.add_static(host(1)[0], host(1)[1])
    for n in (2, 3, 4):                        # learned hosts push each other out...
        drv.rx.append(arp_request_from(n))
        st.poll(1000 + n)
    assert iface.arp.lookup(host(1)[0]) == host(1)[1]  # ...never the static one
    assert st.counters()["eth0.arp.evicted"] == 2
    forged = F.eth(BCAST_MAC, host(9)[1], ETH_ARP, F.arp(1, host(9)[1], host(1)[0], b"\0" * 6,
                                                         F.STACK_IP))
    drv.rx.append(forged)                      # an ARP claiming host 1 at another MAC
    st.poll(2000)
    assert iface.arp.lookup(host(1)[0]) == host(1)[1]
    st.poll(10 ** 9)                           # far past any age: no re-validation request
    drv.tx.clear()
    st.poll(10 ** 9 + 1)
    assert iface.arp.lookup(host(1)[0]) == host(1)[1] and drv.tx == []


def test_a_table_of_static_entries_refuses_more_and_counts_unresolvable_packets():
    import errno
    st, iface, drv = small_cache_stack(2)
    iface.arp.add_static(host(1)[0], host(1)[1])
    iface.arp.add_static(host(2)[0], host(2)[1])
    with pytest.raises(OSError) as e:
        iface.arp.add_static(host(3)[0], host(3)[1])
    assert e.value.errno == errno.ENOSPC
    iface.arp.add_static(host(2)[0], host(4)[1])  # replacing one is fine
    assert iface.arp.lookup(host(2)[0]) == host(4)[1]
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    drv.tx.clear()
    s.sendto(b"x", ("192.0.2.23", 9))           # nowhere to keep its ARP state: dropped
    assert drv.tx == [] and st.counters()["eth0.arp.table_full"] == 2  # with the refusal
    s.close()
    assert st.pool.full()


# ---- UDP and ICMP wire formats against an independent encoding ---------------------------
def test_udp_header_layout_matches_rfc768():
    b = bytearray(wudp.HDR_LEN)
    fields.put16(b, wudp.SPORT, 40000)
    fields.put16(b, wudp.DPORT, 53)
    fields.put16(b, wudp.LEN, 8 + 5)
    fields.put16(b, wudp.CSUM, 0xBEEF)
    assert bytes(b) == struct.pack("!HHHH", 40000, 53, 13, 0xBEEF)
    assert wudp.HDR_LEN == struct.calcsize("!HHHH")
    ref = struct.pack("!HHHH", 1234, 65535, 4321, 0x0102)
    assert [fields.get16(ref, o) for o in (wudp.SPORT, wudp.DPORT, wudp.LEN, wudp.CSUM)] == \
        [1234, 65535, 4321, 0x0102]


def test_icmp_echo_header_layout_matches_rfc792():
    b = bytearray(icmp4.HDR_LEN)
    b[icmp4.TYPE] = icmp4.ECHO_REQUEST
    b[icmp4.CODE] = 0
    fields.put16(b, icmp4.CSUM, 0xF00D)
    fields.put16(b, icmp4.ID, 0x1234)
    fields.put16(b, icmp4.SEQ, 7)
    assert bytes(b) == struct.pack("!BBHHH", 8, 0, 0xF00D, 0x1234, 7)
    assert icmp4.HDR_LEN == struct.calcsize("!BBHHH")
    ref = F.icmp_echo(0xABCD, 0x0102, b"data", t=0)
    assert (ref[icmp4.TYPE], ref[icmp4.CODE], fields.get16(ref, icmp4.ID),
            fields.get16(ref, icmp4.SEQ)) == (icmp4.ECHO_REPLY, 0, 0xABCD, 0x0102)
    assert (icmp4.DEST_UNREACH, icmp4.SOURCE_QUENCH, icmp4.REDIRECT, icmp4.ECHO_REQUEST,
            icmp4.TIME_EXCEEDED, icmp4.PARAM_PROBLEM) == (3, 4, 5, 8, 11, 12)
    assert (icmp4.NET_UNREACH, icmp4.HOST_UNREACH, icmp4.PROTO_UNREACH, icmp4.PORT_UNREACH,
            icmp4.FRAG_NEEDED) == (0, 1, 2, 3, 4)


def test_only_error_types_are_icmp_errors():
    assert sorted(t for t in range(256) if icmp4.is_error(t)) == [3, 4, 5, 11, 12]


def test_udp_datagram_we_send_matches_independent_encoding():
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 40001))
    s.sendto(b"hello, wire", ("192.0.2.1", 5000))
    fed.stack.poll(fed.t)
    (frame,) = fed.drv.tx
    ip = ip_of(frame)
    assert ip[20:] == F.udp(F.STACK_IP, F.HOST_IP, 40001, 5000, b"hello, wire")
    s.close()


def test_echo_request_and_reply_match_independent_encoding():
    fed = Fed()
    p = fed.stack.icmp.pinger("192.0.2.1", size=16, ident=0x3344)
    p.send(0x0105, fed.t)
    (frame,) = fed.drv.tx
    fed.drv.tx.clear()
    assert ip_of(frame)[20:] == F.icmp_echo(0x3344, 0x0105, bytes(range(16)))
    out = fed.feed(F.echo_request_frame(size=16, ident=0x5566, seq=0x0209))
    assert ip_of(out[0])[20:] == F.icmp_echo(0x5566, 0x0209, bytes(range(16)), t=0)
    p.close()


# ---- reassembly timeout (RFC 1122 3.3.2, RFC 792) ----------------------------------------
def test_reassembly_timeout_sends_time_exceeded_code_1_quoting_fragment_zero():
    fed = Fed({"REASS_TIMEOUT_MS": 5000})
    ip = udp_ip(F.STACK_IP, ident=0x7777, frag=0x2000, data=b"A" * 16)  # MF, offset 0
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP, ip)) == []
    out = []
    for _ in range(7):
        fed.advance(1000)
        out += fed.drv.tx
        fed.drv.tx.clear()
    assert len(out) == 1
    icmp = icmp_of(out[0])
    assert icmp[:2] == b"\x0b\x01"                         # Time Exceeded, reassembly
    assert ip_of(out[0])[16:20] == F.HOST_IP and ip_of(out[0])[12:16] == F.STACK_IP
    quote = icmp[8:]
    assert quote[4:6] == b"\x77\x77" and quote[12:20] == bytes(ip[12:20])
    assert quote[20:28] == bytes(ip[20:28])                 # the first 8 bytes: UDP header
    assert fed.counters()["reass.timeouts"] == 1


def test_no_time_exceeded_when_fragment_zero_never_came():
    fed = Fed({"REASS_TIMEOUT_MS": 5000})
    later = udp_ip(F.STACK_IP, ident=0x7778, frag=0x2000 | 3)  # MF, offset 24 bytes
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP, later)) == []
    for _ in range(7):
        fed.advance(1000)
    assert fed.drv.tx == [] and fed.counters()["reass.timeouts"] == 1
