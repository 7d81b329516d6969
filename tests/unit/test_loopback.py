"""The loopback interface: 127.0.0.0/8 and the stack's own addresses are delivered inside the
stack (RFC 1122 3.2.1.3: 127/8 never leaves a host), so a program talks to itself as on any
OS; ARP giving up on a neighbour reports EHOSTUNREACH to whoever was waiting for it."""
import errno

import pytest

from ustack.core import socket as so
from ustack.core.stack import Stack
from tests.twostack import Bench, IP_A

LO = "127.0.0.1"


@pytest.fixture
def bench():
    b = Bench()
    yield b
    for s in list(b.a.sockets) + list(b.b.sockets):
        s.close()
    b.run(200)
    assert b.pools_full(), "packet buffers leaked"


def wire_frames(bench):
    """Frames stack A put on the wire so far."""
    return bench.a.counters().get("a0.tx_packets", 0)


def udp(stack, port=None, ip=""):
    s = stack.socket(so.AF_INET, so.SOCK_DGRAM)
    if port is not None:
        s.bind((ip, port))
    s.settimeout(2.0)
    return s


def echo_over_tcp(bench, server_ip, client_ip):
    a = bench.a
    ls = a.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind((server_ip, 7000))
    ls.listen(2)
    ls.settimeout(2.0)
    c = a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((client_ip, 7000)) == errno.EINPROGRESS
    s, peer = ls.accept()
    s.settimeout(2.0)
    c.settimeout(2.0)
    assert c.getpeername() == (client_ip, 7000)
    assert peer == c.getsockname()
    data = bytes(range(256)) * 40  # 10 KB: several segments each way
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        got += s.recv(4096)
    assert got == data
    s.sendall(got)
    back = b""
    while len(back) < len(data):
        back += c.recv(4096)
    assert back == data
    c.close()
    assert s.recv(100) == b""
    s.close()
    ls.close()
    return peer


def test_every_stack_has_a_loopback_interface_named_lo(bench):
    lo = bench.a.iface("lo")
    assert lo.ip == bytes([127, 0, 0, 1]) and lo.prefix == 8
    assert lo not in bench.a.ifaces  # not a link: the ports' wait lists and ifaces[0] ignore it


def test_udp_to_127_0_0_1_is_delivered_inside_the_stack(bench):
    a = bench.a
    before = wire_frames(bench)
    r = udp(a, 5000, LO)
    s = udp(a)
    s.sendto(b"hello", (LO, 5000))
    data, src = r.recvfrom(100)
    assert data == b"hello"
    assert src[0] == LO and src[1] == s.getsockname()[1]
    r.sendto(b"back", src)
    assert s.recvfrom(100) == (b"back", (LO, 5000))
    assert wire_frames(bench) == before, "loopback traffic went out on the wire"
    c = a.counters()
    assert c["lo.tx_packets"] == 2 and c["lo.rx_packets"] == 2


def test_any_127_address_is_ours(bench):
    a = bench.a
    r = udp(a, 5001)
    s = udp(a)
    s.sendto(b"x", ("127.1.2.3", 5001))
    data, src = r.recvfrom(100)
    assert data == b"x" and src[0] == LO  # RFC 1122 3.3.4.3: source is lo's own address


def test_udp_to_own_address_never_asks_arp_and_comes_from_that_address(bench):
    a = bench.a
    arp_before = a.counters().get("a0.arp.tx_requests", 0)
    before = wire_frames(bench)
    r = udp(a, 5002)
    s = udp(a)
    s.sendto(b"me", (IP_A, 5002))
    data, src = r.recvfrom(100)
    assert data == b"me" and src[0] == IP_A
    assert wire_frames(bench) == before
    assert a.counters().get("a0.arp.tx_requests", 0) == arp_before
    assert bench.ia.arp.entries() == []


def test_tcp_echo_over_127_0_0_1(bench):
    before = wire_frames(bench)
    peer = echo_over_tcp(bench, LO, LO)
    assert peer[0] == LO
    bench.run(50)  # the last ACKs of the close
    assert wire_frames(bench) == before
    c = bench.a.counters()
    assert c["lo.rx_packets"] == c["lo.tx_packets"] > 10


def test_tcp_echo_to_own_address_from_any(bench):
    before = wire_frames(bench)
    peer = echo_over_tcp(bench, "", IP_A)
    assert peer[0] == IP_A  # the connection's source is the address it was made to
    assert wire_frames(bench) == before


def test_connect_to_closed_port_on_loopback_is_refused(bench):
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(2.0)
    assert c.connect_ex((LO, 7999)) == errno.ECONNREFUSED


def test_udp_to_closed_port_on_loopback_reports_refused_to_a_connected_socket(bench):
    s = udp(bench.a)
    s.connect((LO, 5999))
    s.send(b"anyone?")
    bench.run(10)
    with pytest.raises(OSError) as e:
        s.recv(100)
    assert e.value.errno == errno.ECONNREFUSED


def test_ping_to_self(bench):
    a = bench.a
    before = wire_frames(bench)
    for dst in (LO, IP_A):
        p = a.ping(dst, count=3, interval_ms=10)
        assert (p.sent, p.received) == (3, 3)
    assert wire_frames(bench) == before
    c = a.counters()
    assert c["icmp.tx_echo_replies"] == 6
    assert c["lo.rx_packets"] == 12


def test_127_from_the_wire_is_still_dropped(bench):
    # RFC 1122 3.2.1.3: 127/8 "MUST NOT appear outside a host"; B sends to A's 127.0.0.1
    r = udp(bench.a, 5003)
    r.setblocking(False)
    s = udp(bench.b)
    bench.b.add_route("127.0.0.0", 8, IP_A)
    s.sendto(b"spoof", (LO, 5003))
    bench.run(50)
    with pytest.raises(OSError):
        r.recvfrom(100)


def test_loopback_queue_is_bounded_and_its_drops_counted():
    st = Stack({"LOOPBACK_QUEUE": 2})
    r = st.socket(so.AF_INET, so.SOCK_DGRAM)
    r.bind((LO, 5004))
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    for _ in range(4):
        s.sendto(b"x", (LO, 5004))  # nobody polls in between: only 2 wait
    c = st.counters()
    assert c["lo.tx_packets"] == 2 and c["lo.tx_busy"] == 2
    st.poll(1)
    r.setblocking(False)
    assert r.recvfrom(10)[0] == b"x" and r.recvfrom(10)[0] == b"x"
    s.close()
    r.close()
    assert st.pool.full()


def test_loopback_can_be_left_out():
    st = Stack({"LOOPBACK": False})
    with pytest.raises(KeyError):
        st.iface("lo")
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    with pytest.raises(OSError) as e:
        s.sendto(b"x", (LO, 9))
    assert e.value.errno == errno.ENETUNREACH
    s.close()


def test_packets_queued_on_lo_survive_a_handler_exception_elsewhere(bench):
    # buffers waiting on lo are owned: a handler's exception never reclaims them
    a = bench.a
    r = udp(a, 5005, LO)
    s = udp(a)
    s.sendto(b"kept", (LO, 5005))
    assert a.loop.driver.count == 1
    held = a._held()
    assert a.loop.driver.head in held


# ---- ARP gives up: EHOSTUNREACH to the sockets waiting on it (Linux: ~3 s, not 2 min) -----

def test_connect_to_silent_on_link_host_fails_with_ehostunreach_after_arp_gives_up(bench):
    a = bench.a
    c = a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    t0 = bench.t
    assert c.connect_ex(("192.0.2.99", 80)) == errno.EINPROGRESS
    cfg = a.config
    give_up = cfg["ARP_RETRY_MS"] * (cfg["ARP_MAX_RETRIES"] + 1)
    # like a non-blocking connect under select(): writable once it is decided
    assert bench.until(c.writable, give_up + 500)
    assert bench.t - t0 <= give_up + 500
    assert c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.EHOSTUNREACH
    assert a.counters()["a0.arp.host_unreach"] >= 1


def test_blocking_connect_to_silent_host_raises_ehostunreach(bench):
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(30.0)
    t0 = bench.t
    with pytest.raises(OSError) as e:
        c.connect(("192.0.2.99", 80))
    assert e.value.errno == errno.EHOSTUNREACH
    assert bench.t - t0 < 6000


def test_connected_udp_socket_learns_ehostunreach_when_arp_gives_up(bench):
    s = udp(bench.a)
    s.connect(("192.0.2.99", 9))
    s.send(b"anyone?")
    bench.run(6000, step=10)
    assert s.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.EHOSTUNREACH
    assert bench.a.counters()["a0.arp.host_unreach"] == 1


def test_so_reuseport_reads_back_its_own_value_not_so_reuseaddrs():
    # CPython's test_socket CreateServerTest.test_reuse_port over lo: create_server sets
    # SO_REUSEADDR only, and SO_REUSEPORT must still read 0
    st = Stack()
    s = st.socket(so.AF_INET, so.SOCK_STREAM)
    s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
    assert s.getsockopt(so.SOL_SOCKET, so.SO_REUSEPORT) == 0
    s.setsockopt(so.SOL_SOCKET, so.SO_REUSEPORT, 1)
    s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 0)
    assert s.getsockopt(so.SOL_SOCKET, so.SO_REUSEPORT) == 1
    assert s.getsockopt(so.SOL_SOCKET, so.SO_REUSEADDR) == 0
    assert s.reuse_opts  # binding: either option lets the port be shared, as before
    s.close()


def test_connect_again_after_a_refused_connect_starts_a_new_attempt(bench):
    # Linux: a failed connect() reports its error once, then the socket may connect again
    # (asyncio's test_sock_client_connect_racing retries so)
    a = bench.a
    c = a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((LO, 7100)) == errno.EINPROGRESS
    bench.run(5)
    assert c.connect_ex((LO, 7100)) == errno.ECONNREFUSED
    ls = a.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind((LO, 7100))
    ls.listen(1)
    assert c.connect_ex((LO, 7100)) == errno.EINPROGRESS
    bench.run(5)
    assert c.connect_ex((LO, 7100)) == 0  # done (Linux: 0 once, then EISCONN)
    assert c.connect_ex((LO, 7100)) == errno.EISCONN
    s, _ = ls.accept()
    c.send(b"again")
    bench.run(5)
    assert s.recv(10) == b"again"
    for x in (s, c, ls):
        x.close()


def test_raw_hdrincl_datagram_to_own_address_goes_through_lo_not_arp(bench):
    from tests import frames as F
    a = bench.a
    arp_before = a.counters().get("a0.arp.tx_requests", 0)
    r = udp(a, 5006)
    me = bytes([192, 0, 2, 10])
    raw = a.socket(so.AF_INET, so.SOCK_RAW, 255)  # IPPROTO_RAW: IP_HDRINCL
    raw.sendto(F.ipv4(me, me, 17, F.udp(me, me, 4000, 5006, b"raw")), (IP_A, 0))
    assert r.recvfrom(100) == (b"raw", (IP_A, 4000))
    assert a.counters().get("a0.arp.tx_requests", 0) == arp_before
    raw.close()


def test_ping_to_self_larger_than_a_buffer_is_fragmented_over_lo_and_answered(bench):
    a = bench.a
    before = wire_frames(bench)
    for dst in (LO, IP_A):
        p = a.ping(dst, count=1, size=3000)
        assert (p.sent, p.received) == (1, 1), dst
    assert wire_frames(bench) == before
    assert a.counters()["ip.rx_reassembled"] == 4  # both requests and both replies


def test_no_second_interface_may_be_called_lo(bench):
    with pytest.raises(ValueError):
        bench.a.add_interface("lo", bench.wire.port(b"\x02\0\0\0\0\x0c"), ip="198.51.100.1/24")


def test_every_packet_waiting_for_arp_is_held_not_just_the_first(bench):
    # Stack._held() lists what owners keep across a handler's exception; ARP keeps a chain
    # per neighbour, and a packet behind the first one must not be reclaimed (then sent)
    a = bench.a
    s = udp(a)
    for k in range(3):
        s.sendto(b"w%d" % k, ("192.0.2.99", 9))
    i = bench.ia.arp.find(bytes([192, 0, 2, 99]), 0)
    waiting = []
    pb = bench.ia.arp.pending[i]
    while pb is not None:
        waiting.append(pb)
        pb = pb.next
    assert len(waiting) == 3
    held = a._held()
    assert all(w in held for w in waiting)
    bench.run(6000, step=10)  # ARP gives up: the packets go back to the pool
