"""IPv6 end to end between two stacks on the in-memory wire (issue 9): link-locals from the
MACs and configured global addresses under DAD, neighbour resolution by NS/NA, echo, UDP and
TCP over 16-byte addresses, errors by kind."""
from ustack.core import socket as so
from ustack.core import addr6
from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from tests.twostack import MAC_A, MAC_B

GA = "2001:db8::a"
GB = "2001:db8::b"
LL_A = "fe80::ff:fe00:a"   # modified EUI-64 of 02:00:00:00:00:0a (RFC 4291 appendix A)
LL_B = "fe80::ff:fe00:b"


class Bench6:
    """Two IPv6 stacks on a wire and a virtual clock; DAD has run when it returns."""

    def __init__(self, config=None, dad=True):
        cfg = {"IPV6": True}
        if config:
            cfg.update(config)
        self.t = 1000
        self.wire = Wire()
        self.a = Stack(cfg)
        self.b = Stack(cfg)
        for s in (self.a, self.b):
            s.clock = self.clock
            s.idle = self.advance
            s.now = self.t
        self.ia = self.a.add_interface("a0", self.wire.port(MAC_A), ip="192.0.2.10/24")
        self.ib = self.b.add_interface("b0", self.wire.port(MAC_B), ip="192.0.2.11/24")
        self.a.add_address6(self.ia, GA + "/64")
        self.b.add_address6(self.ib, GB + "/64")
        if dad:
            self.run(3000)

    def clock(self):
        return self.t

    def advance(self, ms=1):
        self.t += ms
        self.a.poll(self.t)
        self.b.poll(self.t)

    def run(self, ms, step=1):
        end = self.t + ms
        while self.t < end:
            self.advance(step)

    def until(self, cond, limit_ms=5000):
        end = self.t + limit_ms
        while not cond():
            if self.t >= end:
                return False
            self.advance(1)
        return True


def ping6(bench, src_stack, dst_text, ident=7, seq=1):
    """An Echo Request from src_stack through a raw frame-free path: a UDP-less ICMPv6
    message sent by the IPv6 layer itself; returns True when the reply came back."""
    from ustack.core.wire import icmp6 as wi
    v6 = src_stack.ipv6
    pb = v6.alloc_tx()
    b = pb.buf
    o = pb.off
    b[o] = wi.ECHO_REQUEST
    b[o + 1] = 0
    b[o + 4] = 0
    b[o + 5] = ident
    b[o + 6] = 0
    b[o + 7] = seq
    i = 0
    while i < 8:
        b[o + 8 + i] = 0x41 + i
        i += 1
    pb.n = 16
    before = src_stack.icmp6.stats.rx_echo_reply
    assert v6.output(pb, 58, None, addr6.pton(dst_text), 2) == 0
    return bench.until(lambda: src_stack.icmp6.stats.rx_echo_reply > before, 3000)


def test_link_local_address_comes_from_the_mac_and_dad_makes_both_usable():
    bench = Bench6()
    assert bench.a.ipv6.addresses() == [(LL_A, 64, ""), (GA, 64, "")]
    assert bench.b.ipv6.addresses() == [(LL_B, 64, ""), (GB, 64, "")]
    # RFC 4862 5.4.2: one probe per address (ND_DAD_TRANSMITS 1), from ::
    assert bench.a.ipv6.dad.stats.dad_probes == 2
    assert bench.a.ipv6.dad.stats.dad_succeeded == 2


def test_mldv2_reports_the_solicited_node_groups_from_the_link_local_address():
    bench = Bench6(dad=False)
    frames = []
    before = bench.a.counters()["a0.mld.tx_reports"]   # the first went out at the join
    bench.a.capture = lambda iface, buf, n, out: out and frames.append(bytes(buf[:n]))
    bench.run(3000)
    reports = [f for f in frames if f[12:14] == b"\x86\xdd" and
               f[14 + 24:14 + 40] == addr6.pton("ff02::16")]
    assert reports and all(f[:6] == b"\x33\x33\x00\x00\x00\x16" for f in reports)
    group = addr6.pton("ff02::1:ff00:a")   # both addresses end in ::a: one group
    assert all(group in f for f in reports)
    # RFC 3810 5.2.13: from :: while the link-local is tentative, from it afterwards
    srcs = set(f[14 + 8:14 + 24] for f in reports)
    assert srcs <= {bytes(16), addr6.pton(LL_A)}
    assert bench.a.counters()["a0.mld.tx_reports"] == before + len(reports)
    # the peer hears a report to ff02::16 as not for it, and nothing breaks
    assert bench.b.ipv6.stats.rx_not_for_us >= 1


def test_tentative_address_is_not_a_source_until_dad_ends():
    bench = Bench6(dad=False)
    assert bench.a.ipv6.addresses()[1] == (GA, 64, "tentative")
    assert bench.a.ipv6.source_for(addr6.pton(GB), 0, bench.ia) < 0
    bench.run(3000)
    assert bench.a.ipv6.source_for(addr6.pton(GB), 0, bench.ia) >= 0


def test_dad_finds_an_address_the_peer_already_holds():
    bench = Bench6()
    bench.b.add_address6(bench.ib, GA + "/64")   # B claims A's address: A defends it
    bench.run(3000)
    assert (GA, 64, "duplicate") in bench.b.ipv6.addresses()
    assert bench.b.ipv6.stats.addr_duplicate == 1
    assert bench.a.icmp6.stats.tx_na >= 1   # A answered B's probe (RFC 4861 7.2.4)


def test_ping6_resolves_the_neighbour_and_gets_the_echo_reply():
    bench = Bench6()
    assert ping6(bench, bench.a, GB)
    assert bench.b.icmp6.stats.rx_echo_request == 1
    assert bench.b.icmp6.stats.tx_echo_reply == 1
    assert bench.a.icmp6.stats.tx_ns >= 1 + 2     # two DAD probes, one resolution
    assert bench.b.icmp6.stats.tx_na >= 1
    assert bench.a.counters().get("a0.nd.resolved") == 1


def test_ping6_to_the_link_local_address():
    bench = Bench6()
    assert ping6(bench, bench.a, LL_B)


def test_ping6_to_all_nodes_is_answered_from_a_unicast_address():
    bench = Bench6()
    assert ping6(bench, bench.a, "ff02::1")
    assert bench.b.icmp6.stats.tx_echo_reply == 1


def test_packet_to_an_address_nobody_answers_is_dropped_after_three_solicitations():
    bench = Bench6()
    assert not ping6(bench, bench.a, "2001:db8::99")
    assert bench.a.ipv6.stats.nd_unreachable == 1
    assert bench.a.counters()["a0.nd.solicits_mcast"] == 3   # MAX_MULTICAST_SOLICIT


def test_udp6_datagram_and_reply():
    bench = Bench6()
    srv = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.bind(("", 7))
    srv.setblocking(False)
    cli = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    cli.setblocking(False)
    cli.sendto(b"hello six", (GB, 7))
    assert bench.until(lambda: srv.readable())
    data, peer = srv.recvfrom(100)
    assert data == b"hello six"
    assert peer[0] == GA and len(peer) == 4
    srv.sendto(b"back", peer)
    assert bench.until(lambda: cli.readable())
    data, peer = cli.recvfrom(100)
    assert (data, peer) == (b"back", (GB, 7, 0, 0))


def test_udp6_to_a_closed_port_gets_port_unreachable():
    bench = Bench6()
    cli = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    cli.setblocking(False)
    cli.sendto(b"x", (GB, 9))
    assert bench.until(lambda: bench.a.icmp6.stats.rx_errors == 1)
    assert bench.b.icmp6.stats.tx_errors == 1


def test_port_unreachable_reaches_the_connected_udp6_socket():
    bench = Bench6()
    cli = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    cli.setblocking(False)
    cli.connect((GB, 9))
    cli.send(b"x")
    assert bench.until(lambda: bench.a.icmp6.stats.rx_errors == 1)
    try:
        cli.recv(10)
    except OSError as e:
        assert e.args[0] == 111   # ECONNREFUSED (RFC 4443 2.4 (a), RFC 1122 4.1.3.3)
    else:
        assert False, "the error was not reported"


def test_tcp6_connect_echo_and_names():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 8080))
    ls.listen(1)
    ls.setblocking(False)
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect((GB, 8080))
    except OSError:
        pass   # EINPROGRESS
    conn = []

    def accepted():
        try:
            conn.append(ls.accept())
            return True
        except OSError:
            return False
    assert bench.until(accepted)
    s, peer = conn[0]
    assert peer[0] == GA
    assert c.getpeername() == (GB, 8080, 0, 0)
    assert s.getsockname() == (GB, 8080, 0, 0)
    c.send(b"over six")
    assert bench.until(lambda: s.readable())
    assert s.recv(100) == b"over six"
    s.send(b"ok")
    assert bench.until(lambda: c.readable())
    assert c.recv(100) == b"ok"


def test_ipv6_frames_are_dropped_when_ipv6_is_off():
    w = Wire()
    a = Stack({"IPV6": True})
    b = Stack()
    ia = a.add_interface("a0", w.port(MAC_A))
    b.add_interface("b0", w.port(MAC_B))
    assert b.ipv6 is None
    a.now = b.now = 1000
    for t in range(1000, 3000):
        a.poll(t)
        b.poll(t)
    assert ia.stats.tx_packets >= 1                 # A's DAD probe went out
    assert b.counters()["b0.rx_unknown_ethertype"] >= 1


def test_ipv4_and_ipv6_listeners_share_a_port_when_the_ipv6_one_is_v6only():
    # as on Linux: a dual :: holds the IPv4 port too, so the services of `ustack up
    # --serve` set IPV6_V6ONLY on their IPv6 sockets to listen on both families
    bench = Bench6()
    for typ in (so.SOCK_STREAM, so.SOCK_DGRAM):
        s4 = bench.b.socket(so.AF_INET, typ)
        s4.bind(("", 7))
        s6 = bench.b.socket(so.AF_INET6, typ)
        s6.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
        s6.bind(("", 7))
        if typ == so.SOCK_STREAM:
            s4.listen(1)
            s6.listen(1)
        assert s6.getsockname() == ("::", 7, 0, 0)


def router_advert(src_mac, prefix, lifetime_s=1800):
    """A Router Advertisement frame from fe80::1 to ff02::1 (RFC 4861 4.2) with an on-link,
    autonomous /64 prefix and the router's link-layer address."""
    from ustack.core.wire import icmp6 as wi
    from ustack.core.wire import ipv6 as w
    b = bytearray(14 + 40 + 16 + 32 + 8)
    b[0:6] = b"\x33\x33\x00\x00\x00\x01"
    b[6:12] = src_mac
    b[12:14] = b"\x86\xdd"
    o = 54
    n = wi.write_ra(b, o, 64, 0, lifetime_s, 0, 0)
    n += wi.write_prefix_option(b, o + n, addr6.pton(prefix), 64,
                                wi.PI_FLAG_ONLINK | wi.PI_FLAG_AUTO, 86400, 14400)
    n += wi.write_lla_option(b, o + n, wi.OPT_SLLA, src_mac)
    w.write_header(b, 14, 0, 0, n, w.NH_ICMPV6, 255, addr6.pton("fe80::1"), addr6.ALL_NODES)
    wi.fill_checksum(b, 14, o, n)
    return b


def test_router_advertisement_gives_an_address_and_the_default_route():
    bench = Bench6()
    rmac = b"\x02\x00\x00\x00\x00\x01"
    router = bench.wire.port(rmac)
    frame = router_advert(rmac, "2001:db8:5::")
    router.send(frame, len(frame))
    bench.run(3000)   # the formed address goes through DAD
    got = "2001:db8:5::ff:fe00:a"   # the prefix and A's modified EUI-64 IID (RFC 4862 5.5.3)
    assert (got, 128, "") in bench.a.ipv6.addresses()
    assert bench.a.icmp6.stats.rx_ra == 1
    rt = bench.a.routes_for(so.AF_INET6)
    r = rt.lookup(addr6.pton("2001:db8:99::1"), 0)                  # the default route
    assert r >= 0 and rt.source[r] == "ra"                           # `ustack route`: proto ra
    assert bytes(rt.nexthop) == addr6.pton("fe80::1")
    assert rt.lookup(addr6.pton("2001:db8:5::77"), 0) >= 0
    assert bytes(rt.nexthop) == addr6.pton("2001:db8:5::77")       # on-link
    # a datagram off-link goes to the router's MAC, learned from the RA (no NS needed)
    s = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    s.sendto(b"out", ("2001:db8:99::1", 9))
    bench.run(5)
    seen = []
    while True:
        buf = bytearray(1600)
        n = router.recv_into(buf)
        if not n:
            break
        seen.append(bytes(buf[:n]))
    udp = [f for f in seen if f[12:14] == b"\x86\xdd" and f[20] == 17]
    assert udp and udp[-1][0:6] == rmac
    # RFC 6724 rule 8: of the global addresses the one sharing the longest prefix
    assert udp[-1][22:38] == addr6.pton(GA)


def test_tcp6_connect_to_a_closed_port_is_refused_by_rst():
    bench = Bench6()
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((GB, 8081)) == 115   # EINPROGRESS
    errs = []
    assert bench.until(lambda: errs.append(c.getsockopt(so.SOL_SOCKET, so.SO_ERROR)) or
                       errs[-1] != 0)
    assert errs[-1] == 111   # ECONNREFUSED: B's RST went back over IPv6 (RFC 9293 3.10.7.1)


def test_tcp6_connect_to_a_multicast_address_is_refused_without_a_syn():
    """RFC 1122 4.2.3.10 for IPv6 as Linux does it (tcp_v6_connect): ENETUNREACH, no SYN,
    no TCB; an address whose first byte merely looks like IPv4's class D is no multicast."""
    bench = Bench6()
    # a default route: multicast must be refused for what it is, not for want of a route
    bench.a.routes_for(so.AF_INET6).add(bytes(16), 0, addr6.pton(GB), bench.ia)
    for dst in ("ff02::1", "ff05::1:3"):
        c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
        c.setblocking(False)
        assert c.connect_ex((dst, 80)) == 101   # ENETUNREACH
        assert not bench.a.tcp.conns
        c.close()
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex(("e000::1", 80)) == 115   # EINPROGRESS: a SYN to the router
    assert bench.a.tcp.conns
    c.close()


def test_pinger6_sends_echo_requests_and_matches_the_replies():
    # what `ustack ping -6` drives (RFC 4443 4.1/4.2): replies matched by identifier
    bench = Bench6()
    p = bench.a.icmp6.pinger(GB, 100)
    for seq in range(3):
        assert p.send(seq, bench.t)
        assert bench.until(lambda: p.received == seq + 1)
    assert p.sent == 3 and p.duplicates == 0
    assert bench.b.icmp6.stats.tx_echo_reply == 3
    p.close()
    assert bench.a.icmp6.pingers == []
