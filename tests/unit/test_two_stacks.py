"""Two stacks on the in-memory wire with a virtual clock: ARP, ping, UDP, routing."""
import errno

import pytest

from ustack.core import socket as so
from ustack.core.compat import Timeout
from tests.twostack import Bench, udp, IP_A, IP_B, MAC_B


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close_all()


def test_arp_resolves_and_first_packet_waits_for_it(bench):
    p = bench.a.icmp.pinger(IP_B)
    p.send(0, bench.t)
    assert bench.ia.arp.lookup(bytes([192, 0, 2, 11])) is None
    bench.pump()
    assert bench.ia.arp.lookup(bytes([192, 0, 2, 11])) == MAC_B
    assert p.received == 1
    assert bench.a.counters()["a0.arp.pending_sent"] == 1


def test_ping_collects_rtts(bench):
    p = bench.a.ping(IP_B, count=5, interval_ms=10)
    assert (p.sent, p.received) == (5, 5)
    assert len(p.rtts) == 5 and all(r >= 0 for r in p.rtts)


def test_arp_request_retries_then_times_out(bench):
    bench.pb.up = False  # B's link down: nobody answers
    p = bench.a.icmp.pinger("192.0.2.99")
    p.send(0, bench.t)
    bench.run(500)
    c = bench.a.counters()
    assert c["a0.arp.tx_requests"] >= 2
    bench.run(5000)
    c = bench.a.counters()
    cfg = bench.a.config
    assert c["a0.arp.tx_requests"] == 1 + 1 + cfg["ARP_MAX_RETRIES"]  # gratuitous + first + retries
    assert c["a0.arp.timeouts"] == 1
    assert c["a0.arp.pending_dropped"] == 1
    assert bench.a.pool.full()


def test_arp_entry_ages_and_is_revalidated(bench):
    bench.a.ping(IP_B, count=1)
    before = bench.a.counters()["a0.arp.tx_requests"]
    bench.run(bench.a.config["ARP_MAX_AGE_MS"] + 10, step=1000)
    p = bench.a.ping(IP_B, count=1)
    assert p.received == 1
    assert bench.a.counters()["a0.arp.tx_requests"] == before + 1


def test_udp_both_ways(bench):
    srv = udp(bench.b, 7)
    cli = udp(bench.a)
    cli.sendto(b"ping", (IP_B, 7))
    bench.pump()
    data, addr = srv.recvfrom(100)
    assert data == b"ping" and addr[0] == IP_A
    srv.sendto(b"pong", addr)
    bench.pump()
    assert cli.recvfrom(100) == (b"pong", (IP_B, 7))


def test_udp_recv_into_and_truncation(bench):
    srv = udp(bench.b, 7)
    cli = udp(bench.a)
    cli.sendto(b"0123456789", (IP_B, 7))
    bench.pump()
    buf = bytearray(4)
    assert srv.recv_into(buf) == 4 and buf == b"0123"
    assert srv.qlen == 0  # the rest of the datagram is discarded


def test_udp_large_datagram_is_fragmented_and_reassembled(bench):
    bench.a.ping(IP_B)  # resolved first: an unresolved neighbour holds only one packet
    srv = udp(bench.b, 7)
    cli = udp(bench.a)
    payload = bytes(i % 251 for i in range(6000))
    cli.sendto(payload, (IP_B, 7))
    bench.pump()
    assert srv.recv(65535) == payload
    assert bench.a.counters()["ip.tx_fragments"] == 5
    assert bench.b.counters()["reass.reassembled"] == 1


def test_fragment_timeout_frees_the_slot():
    """RFC 791 / RFC 1122 3.3.2: a datagram whose last fragment never comes is dropped when
    the reassembly timer runs out, its slot comes back, and - fragment zero having come - the
    source gets ICMP Time Exceeded, code 1 (fragment reassembly time exceeded)."""
    b = Bench(config_b={"REASS_SLOTS": 1})
    b.a.ping(IP_B)  # ARP resolved first: an unresolved neighbour would hold only one packet
    srv = udp(b.b, 7)
    cli = udp(b.a)
    arrive = b.pb._arrive
    lost = []

    def lose_last_fragment(frame):
        if frame[12:14] == b"\x08\x00":
            fr = (frame[20] << 8) | frame[21]
            if not fr & 0x2000 and fr & 0x1FFF:  # MF clear, offset not zero: the last one
                lost.append(frame)
                return
        arrive(frame)
    b.pb._arrive = lose_last_fragment
    cli.sendto(bytes(3000), (IP_B, 7))  # three fragments: 1480 + 1480 + 48
    b.pump()
    b.pb._arrive = arrive
    assert len(lost) == 1
    assert b.b.counters()["reass.fragments"] == 2 and srv.qlen == 0
    # (a new datagram would evict it: test_full_reassembly_table_evicts_its_oldest_datagram)
    b.run(b.b.config["REASS_TIMEOUT_MS"] + 100, step=500)
    c = b.b.counters()
    assert c["reass.timeouts"] == 1
    assert c["icmp.tx_errors"] == 1 and b.a.counters()["icmp.rx_time_exceeded"] == 1
    assert b.pools_full()
    # the slot is free again: a complete datagram is reassembled in it
    payload = bytes(i % 251 for i in range(4000))
    cli.sendto(payload, (IP_B, 7))
    b.pump()
    assert srv.recv(65535) == payload
    assert b.b.counters()["reass.reassembled"] == 1
    srv.close()
    cli.close()
    b.pump()
    assert b.pools_full()


def test_bind_conflict_is_eaddrinuse_unless_both_reuse(bench):
    udp(bench.b, 5000)
    s = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    with pytest.raises(OSError) as e:
        s.bind(("", 5000))
    assert e.value.errno == errno.EADDRINUSE
    r1 = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    r2 = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    for r in (r1, r2):
        r.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        r.bind(("", 5001))


def test_broadcast_needs_so_broadcast_and_reaches_every_reuse_socket(bench):
    cli = udp(bench.a)
    with pytest.raises(OSError) as e:
        cli.sendto(b"x", ("255.255.255.255", 6000))
    assert e.value.errno == errno.EACCES
    rx = []
    for _ in range(2):
        r = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
        r.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        r.bind(("", 6000))
        r.setblocking(False)
        rx.append(r)
    cli.setsockopt(so.SOL_SOCKET, so.SO_BROADCAST, 1)
    cli.sendto(b"all", ("<broadcast>", 6000))
    cli.sendto(b"subnet", ("192.0.2.255", 6000))
    bench.pump()
    for r in rx:
        assert r.recv(10) == b"all"
        assert r.recv(10) == b"subnet"


def test_connected_socket_sees_econnrefused_from_port_unreachable(bench):
    cli = udp(bench.a)
    cli.connect((IP_B, 9))
    cli.send(b"anyone?")
    bench.pump()
    with pytest.raises(OSError) as e:
        cli.recv(10)
    assert e.value.errno == errno.ECONNREFUSED
    assert bench.b.counters()["udp.rx_no_port"] == 1


def test_connect_binds_a_wildcard_udp_socket_to_the_routed_source_address(bench):
    # Linux (ip4_datagram_connect): connect() fixes the source address the route picks, so
    # getsockname() names it, and datagrams to another of our addresses no longer match
    cli = udp(bench.a)
    cli.connect((IP_B, 7))
    assert cli.getsockname()[0] == IP_A
    port = cli.getsockname()[1]
    lo = udp(bench.a)
    lo.connect(("127.0.0.1", port))
    assert lo.getsockname()[0] == "127.0.0.1"
    bound = udp(bench.a, 7001)
    bound.connect((IP_B, 7))
    assert bound.getsockname() == (IP_A, 7001)


def test_nonblocking_recv_is_eagain_and_timeout_raises_timeout(bench):
    s = udp(bench.a, 7000)
    with pytest.raises(OSError) as e:
        s.recv(10)
    assert e.value.errno == errno.EAGAIN
    s.settimeout(0.5)
    t0 = bench.t
    with pytest.raises(Timeout):
        s.recv(10)
    assert bench.t - t0 >= 500


def test_blocking_recv_drives_the_stack_until_data_arrives(bench):
    srv = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    srv.bind(("", 7))
    cli = udp(bench.a)
    cli.sendto(b"wake", (IP_B, 7))
    srv.settimeout(2)
    assert srv.recv(10) == b"wake"


def test_oversized_datagram_is_emsgsize(bench):
    s = udp(bench.a)
    with pytest.raises(OSError) as e:
        s.sendto(bytes(65508), (IP_B, 7))
    assert e.value.errno == errno.EMSGSIZE


def test_no_route_is_enetunreach(bench):
    s = udp(bench.a)
    with pytest.raises(OSError) as e:
        s.sendto(b"x", ("203.0.113.5", 7))
    assert e.value.errno == errno.ENETUNREACH


def test_receive_queue_overflow_is_counted(bench):
    srv = udp(bench.b, 7)
    srv.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1 << 20)  # the datagram count limit first
    cli = udp(bench.a)
    n = bench.b.config["UDP_RX_QUEUE"] + 5
    for i in range(n):
        cli.sendto(b"%d" % i, (IP_B, 7))
        bench.pump(2)
    assert srv.qlen == bench.b.config["UDP_RX_QUEUE"]
    assert bench.b.counters()["udp.rx_queue_full"] == 5


def test_unread_socket_takes_only_its_share_and_the_stack_recovers():
    """Issue 8 hole 3: an unread socket used to hold every buffer of B. Now it holds what
    its share of the pool allows, the rest is dropped and counted, B keeps answering ping,
    and the socket gets datagrams again once read."""
    b = Bench(config={"PBUF_COUNT": 8, "UDP_RX_QUEUE": 64})
    b.a.ping(IP_B)
    srv = udp(b.b, 7)
    srv.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1 << 20)
    cli = udp(b.a)
    for i in range(20):
        cli.sendto(b"x%d" % i, (IP_B, 7))
        b.pump(2)
    share = b.b.config["SOCK_QUEUE_PBUFS"]
    assert srv.qlen == share and b.b.pool.nfree == 8 - share
    c = b.b.counters()  # the socket's SO_RCVBUF is at most the queues' share of the pool
    assert c["udp.rx_rcvbuf"] == 20 - share and c["pbuf.queued"] == share
    assert b.a.ping(IP_B, count=2, interval_ms=10).received == 2
    got = []
    while srv.qlen:
        got.append(srv.recv(10))
    assert got == [b"x%d" % i for i in range(share)]
    cli.sendto(b"again", (IP_B, 7))
    b.pump(2)
    assert srv.recv(10) == b"again"
    srv.close()
    b.pump()
    assert b.pools_full()


def test_gateway_route_sends_to_gateway_mac():
    b = Bench()
    b.a.add_route("0.0.0.0", 0, gateway=IP_B)
    p = b.a.icmp.pinger("203.0.113.9")
    p.send(0, b.t)
    b.pump()
    # B is not a router: it drops the packet, but it got it at its MAC
    assert b.b.counters()["ip.fwd_disabled"] == 1


def test_longest_prefix_wins():
    from ustack.core.route import RouteTable
    from ustack.core.wire.ipv4 import aton

    class I:
        def __init__(self, n):
            self.name = n
    t = RouteTable(8)
    t.add("0.0.0.0", 0, "192.0.2.1", I("default"))
    t.add("198.51.100.0", 24, None, I("lan"))
    t.add("198.51.100.128", 25, "192.0.2.7", I("half"))
    assert t.iface[t.lookup(aton("198.51.100.200"), 0)].name == "half"
    assert bytes(t.nexthop) == aton("192.0.2.7")
    assert t.iface[t.lookup(aton("198.51.100.5"), 0)].name == "lan"
    assert bytes(t.nexthop) == aton("198.51.100.5")
    assert t.iface[t.lookup(aton("203.0.113.1"), 0)].name == "default"


def test_forwarding_router_between_two_wires():
    from ustack.core.stack import Stack
    from ustack.hal.loopback import Wire
    w1, w2 = Wire(), Wire()
    t = [0]
    h1, r, h2 = Stack(), Stack({"IP_FORWARD": True}), Stack()
    for s in (h1, r, h2):
        s.clock = lambda: t[0]
    h1.add_interface("e0", w1.port(b"\x02\0\0\0\1\1"), ip="192.0.2.10/24", gateway="192.0.2.1")
    r.add_interface("e0", w1.port(b"\x02\0\0\0\1\2"), ip="192.0.2.1/24")
    r.add_interface("e1", w2.port(b"\x02\0\0\0\2\2"), ip="198.51.100.1/24")
    h2.add_interface("e0", w2.port(b"\x02\0\0\0\2\1"), ip="198.51.100.10/24", gateway="198.51.100.1")

    def idle(ms):
        t[0] += ms
        for s in (h1, r, h2):
            s.poll(t[0])
    for s in (h1, r, h2):
        s.idle = idle
    p = h1.ping("198.51.100.10", count=3, interval_ms=5)
    assert p.received == 3
    assert r.counters()["ip.fwd_packets"] == 6


def test_icmp_errors_are_rate_limited(bench):
    bench.a.ping(IP_B)
    bench.b.ping(IP_A)
    cli = udp(bench.a)
    burst = bench.b.config["ICMP_BURST"]
    for i in range(burst + 10):
        cli.sendto(b"x", (IP_B, 1000 + i))
    bench.pump(3)
    c = bench.b.counters()
    assert c["icmp.tx_errors"] == burst
    assert c["icmp.tx_rate_limited"] == 10


def test_big_ping_is_fragmented_both_ways(bench):
    bench.a.ping(IP_B)
    p = bench.a.ping(IP_B, count=3, size=4000, interval_ms=5)
    assert p.received == 3
    assert bench.a.counters()["ip.tx_fragments"] == 9
    assert bench.b.counters()["reass.reassembled"] == 3
    assert bench.a.counters()["reass.reassembled"] == 3
