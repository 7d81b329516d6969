"""Dual-stack sockets (RFC 3493 3.7, Linux's bindv6only=0): an AF_INET6 socket without
IPV6_V6ONLY bound to :: serves IPv4 peers too, naming them ::ffff:a.b.c.d; it can connect
and send to a v4-mapped address; IPV6_V6ONLY=1 refuses all of that with Linux's errnos; a
dual :: and an IPv4 socket cannot share a port, a V6ONLY one can. Each errno here is what
CPython's socket module raises on Linux for the same call."""
from ustack.core import socket as so
from tests.unit.test_ipv6_two_stacks import Bench6

A4 = "192.0.2.10"
B4 = "192.0.2.11"
EINVAL = 22
EADDRINUSE = 98
ENETUNREACH = 101
ECONNREFUSED = 111
EINPROGRESS = 115
ENOPROTOOPT = 92


def oserr(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.args[0]
    return 0


def connected(bench, c, addr):
    c.setblocking(False)
    assert c.connect_ex(addr) == EINPROGRESS
    errs = []
    assert bench.until(lambda: errs.append(c.getsockopt(so.SOL_SOCKET, so.SO_ERROR)) or
                       errs[-1] != 0 or c.tcb is not None and c.tcb.state >= 4)
    return errs[-1]


def test_v6only_is_off_by_default_and_set_only_before_bind():
    bench = Bench6()
    s = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    assert s.getsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY) == 0
    s.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
    assert s.getsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY) == 1
    s.bind(("", 8000))
    assert oserr(s.setsockopt, so.IPPROTO_IPV6, so.IPV6_V6ONLY, 0) == EINVAL
    s4 = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    assert oserr(s4.setsockopt, so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1) == ENOPROTOOPT


def test_dual_tcp6_listener_accepts_an_ipv4_client_and_names_it_v4_mapped():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 8000))
    ls.listen(2)
    ls.setblocking(False)
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    assert connected(bench, c, (B4, 8000)) == 0
    assert bench.until(lambda: ls.readable())
    s, peer = ls.accept()
    assert peer == ("::ffff:" + A4, c.getsockname()[1], 0, 0)
    assert s.getsockname() == ("::ffff:" + B4, 8000, 0, 0)
    assert s.getpeername() == peer
    assert s.getsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY) == 0     # inherited, as on Linux
    c.send(b"four")
    assert bench.until(lambda: s.readable())
    assert s.recv(10) == b"four"


def test_v6only_tcp6_listener_refuses_ipv4_clients():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
    ls.bind(("", 8000))
    ls.listen(2)
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    assert connected(bench, c, (B4, 8000)) == ECONNREFUSED


def test_ipv4_listener_never_takes_ipv6_connections():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 8000))
    ls.listen(2)
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    assert connected(bench, c, ("2001:db8::b", 8000)) == ECONNREFUSED


def test_tcp6_socket_connects_to_a_v4_mapped_address():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 8000))
    ls.listen(2)
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    assert connected(bench, c, ("::ffff:" + B4, 8000)) == 0
    assert c.getpeername() == ("::ffff:" + B4, 8000, 0, 0)
    assert c.getsockname()[0] == "::ffff:" + A4
    s, peer = ls.accept()
    assert peer[0] == A4


def test_v6only_socket_cannot_use_v4_mapped_addresses():
    bench = Bench6()
    for typ in (so.SOCK_STREAM, so.SOCK_DGRAM):
        s = bench.a.socket(so.AF_INET6, typ)
        s.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
        assert oserr(s.bind, ("::ffff:" + A4, 0)) == EINVAL
        if typ == so.SOCK_STREAM:
            assert oserr(s.connect, ("::ffff:" + B4, 8000)) == ENETUNREACH
        else:
            assert oserr(s.connect, ("::ffff:" + B4, 8000)) == ENETUNREACH
            assert oserr(s.sendto, b"x", ("::ffff:" + B4, 8000)) == ENETUNREACH


def test_dual_udp6_socket_receives_ipv4_and_answers_through_the_mapped_address():
    bench = Bench6()
    srv = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.bind(("", 7))
    srv.setblocking(False)
    cli = bench.a.socket(so.AF_INET, so.SOCK_DGRAM)
    cli.setblocking(False)
    cli.sendto(b"hello four", (B4, 7))
    assert bench.until(lambda: srv.readable())
    data, peer = srv.recvfrom(100)
    assert data == b"hello four"
    assert peer == ("::ffff:" + A4, cli.getsockname()[1], 0, 0)
    srv.sendto(b"back", peer)
    assert bench.until(lambda: cli.readable())
    assert cli.recvfrom(100) == (b"back", (B4, 7))


def test_v6only_udp6_socket_does_not_receive_ipv4():
    bench = Bench6()
    srv = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
    srv.bind(("", 7))
    cli = bench.a.socket(so.AF_INET, so.SOCK_DGRAM)
    cli.sendto(b"x", (B4, 7))
    bench.run(20)
    assert not srv.readable()
    assert bench.b.udp.stats.rx_no_port == 1


def test_dual_and_ipv4_wildcards_cannot_share_a_port_v6only_can():
    bench = Bench6()
    for typ in (so.SOCK_STREAM, so.SOCK_DGRAM):
        s4 = bench.b.socket(so.AF_INET, typ)
        s4.bind(("", 9000))
        d = bench.b.socket(so.AF_INET6, typ)
        assert oserr(d.bind, ("", 9000)) == EADDRINUSE
        v = bench.b.socket(so.AF_INET6, typ)
        v.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
        v.bind(("", 9000))
        # the other order: a dual :: first keeps IPv4's wildcard and its addresses
        d2 = bench.b.socket(so.AF_INET6, typ)
        d2.bind(("", 9001))
        assert oserr(bench.b.socket(so.AF_INET, typ).bind, ("", 9001)) == EADDRINUSE
        assert oserr(bench.b.socket(so.AF_INET, typ).bind, (B4, 9001)) == EADDRINUSE
        # an IPv6 socket on a specific IPv6 address holds no IPv4 address
        g = bench.b.socket(so.AF_INET6, typ)
        g.bind(("2001:db8::b", 9002))
        bench.b.socket(so.AF_INET, typ).bind(("", 9002))
        for s in (s4, d, v, d2, g):
            s.close()


class TwoLinks:
    """Stack A on two links (a0 to B, a1 to C), each stack IPv6 with its link-local only."""

    def __init__(self):
        from ustack.core.stack import Stack
        from ustack.hal.loopback import Wire
        self.t = 1000
        self.stacks = [Stack({"IPV6": True}) for _ in range(3)]
        self.a, self.b, self.c = self.stacks
        for s in self.stacks:
            s.clock = self.clock
            s.idle = self.advance
            s.now = self.t
        w1 = Wire()
        w2 = Wire()
        self.a.add_interface("a0", w1.port(b"\x02\x00\x00\x00\x00\x0a"))
        self.a.add_interface("a1", w2.port(b"\x02\x00\x00\x00\x01\x0a"))
        self.b.add_interface("b0", w1.port(b"\x02\x00\x00\x00\x00\x0b"))
        self.c.add_interface("c0", w2.port(b"\x02\x00\x00\x00\x00\x0c"))
        self.run(3000)   # DAD

    def clock(self):
        return self.t

    def advance(self, ms=1):
        self.t += ms
        for s in self.stacks:
            s.poll(self.t)

    def run(self, ms):
        end = self.t + ms
        while self.t < end:
            self.advance()

    def until(self, cond, limit_ms=5000):
        end = self.t + limit_ms
        while not cond():
            if self.t >= end:
                return False
            self.advance()
        return True


LL_A0 = "fe80::ff:fe00:a"
LL_A1 = "fe80::ff:fe00:10a"
LL_B = "fe80::ff:fe00:b"
LL_C = "fe80::ff:fe00:c"


def test_link_local_connect_without_a_zone_on_two_links_is_einval():
    n = TwoLinks()
    for typ in (so.SOCK_STREAM, so.SOCK_DGRAM):
        s = n.a.socket(so.AF_INET6, typ)
        s.setblocking(False)
        assert oserr(s.connect, (LL_B, 8000)) == EINVAL
        assert oserr(s.connect, (LL_B, 8000, 0, 9)) == ENETUNREACH      # no such link
    t = n.a.socket(so.AF_INET6, so.SOCK_STREAM)
    assert t.connect_ex((LL_B, 8000)) == EINVAL


def test_zone_name_and_scope_id_pick_the_link_and_names_carry_the_scope_id():
    n = TwoLinks()
    ls = n.b.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 8000))
    ls.listen(1)
    ls.setblocking(False)
    c = n.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((LL_B + "%a0", 8000)) == EINPROGRESS
    assert n.until(lambda: ls.readable())
    s, peer = ls.accept()
    assert peer[0] == LL_A0 and peer[3] == 1          # B's only link
    assert n.until(lambda: c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0 and
                   c.tcb.state >= 4)
    assert c.getpeername() == (LL_B, 8000, 0, 1)      # a0: A's first link
    assert c.getsockname()[0] == LL_A0
    # UDP by scope_id 2 (a1) to C, which sees A's a1 address and names it back
    srv = n.c.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.bind(("", 7))
    srv.setblocking(False)
    u = n.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    u.setblocking(False)
    u.sendto(b"by a1", (LL_C, 7, 0, 2))
    assert n.until(lambda: srv.readable())
    data, src = srv.recvfrom(50)
    assert (data, src) == (b"by a1", (LL_A1, u.getsockname()[1], 0, 1))
    srv.sendto(b"back", src)
    assert n.until(lambda: u.readable())
    assert u.recvfrom(50) == (b"back", (LL_C, 7, 0, 2))


def echo_request(ident, seq, payload):
    return bytes([128, 0, 0, 0, ident >> 8, ident & 0xFF, seq >> 8, seq & 0xFF]) + payload


def only(*types):
    """An ICMP6_FILTER that passes these types only (RFC 3542 3.2, Linux's sense: set = block)."""
    f = bytearray(b"\xff" * 32)
    for t in types:
        f[t >> 3] &= ~(1 << (t & 7)) & 0xFF
    return bytes(f)


def test_raw_icmpv6_socket_sends_an_echo_request_and_receives_the_reply():
    bench = Bench6()
    r = bench.a.socket(so.AF_INET6, so.SOCK_RAW, so.IPPROTO_ICMPV6)
    r.setblocking(False)
    r.setsockopt(so.IPPROTO_ICMPV6, 1, only(129))      # echo replies only
    assert r.getsockopt(so.IPPROTO_ICMPV6, 1) == only(129)
    # the stack fills the checksum (RFC 3542 3.1): B answers, so it was right
    assert r.sendto(echo_request(0x4242, 1, b"raw six"), ("2001:db8::b", 0)) == 15
    assert bench.until(lambda: r.readable())
    data, src = r.recvfrom(100)
    assert src == ("2001:db8::b", 0, 0, 0)
    assert data[0] == 129 and data[4:8] == b"\x42\x42\x00\x01" and data[8:] == b"raw six"
    assert bench.b.icmp6.stats.tx_echo_reply == 1
    assert bench.a.counters()["raw.rx_filtered"] >= 1    # B's NA when A resolved it


def test_raw_icmpv6_socket_without_a_filter_sees_every_icmpv6_message_and_no_ipv4():
    bench = Bench6()
    r = bench.a.socket(so.AF_INET6, so.SOCK_RAW, so.IPPROTO_ICMPV6)
    r.setblocking(False)
    r4 = bench.a.socket(so.AF_INET, so.SOCK_RAW, 1)
    r4.setblocking(False)
    r.sendto(echo_request(7, 1, b""), ("2001:db8::b", 0))
    bench.run(50)
    types = []
    while r.readable():
        types.append(r.recv(100)[0])
    assert 136 in types and 129 in types        # B's advertisement (A resolved B), the reply
    assert not r4.readable()


def test_raw_ipv6_sockets_other_than_icmpv6_are_not_offered():
    bench = Bench6()
    assert oserr(bench.a.socket, so.AF_INET6, so.SOCK_RAW, 17) == 97    # EAFNOSUPPORT


def ip6(text):
    import socket
    return socket.inet_pton(socket.AF_INET6, text)


def connected_routes(stack, rt):
    return sorted((stack_name(rt.iface[i]), rt.prefix[i]) for i in range(rt.count)
                  if rt.source[i] == "connected")


def stack_name(iface):
    return iface.name if iface is not None else None


def test_each_link_keeps_its_own_connected_route_to_the_same_prefix():
    # fe80::/64 is on every link (RFC 4291 2.5.6), and two links may carry one global
    # prefix: a second link's connected route must not replace the first one's, and an
    # address leaving one link takes only that link's route (Linux: one per device)
    n = TwoLinks()
    rt = n.a.routes6
    assert connected_routes(n.a, rt) == [("a0", 64), ("a1", 64)]
    a0, a1 = n.a.ifaces
    n.a.ipv6.add_address(a0, ip6("2001:db8:5::a"), 64)
    n.a.ipv6.add_address(a1, ip6("2001:db8:5::10a"), 64)
    assert connected_routes(n.a, rt) == [("a0", 64), ("a0", 64), ("a1", 64), ("a1", 64)]
    n.a.ipv6.remove_address(ip6("2001:db8:5::a"), 0)
    assert connected_routes(n.a, rt) == [("a0", 64), ("a1", 64), ("a1", 64)]
    left = [rt.iface[i].name for i in range(rt.count) if rt.prefix[i] == 64 and
            rt.net[i][0] == 0x20]
    assert left == ["a1"]
    # IPv4: one subnet on two links (a set_address on one leaves the other's route)
    n.a.set_address(a0, "192.0.2.1", 24)
    n.a.set_address(a1, "192.0.2.2", 24)
    assert connected_routes(n.a, n.a.routes) == [("a0", 24), ("a1", 24)]
    n.a.set_address(a0, "198.51.100.1", 24)
    v4 = sorted((n.a.routes.iface[i].name, bytes(n.a.routes.net[i])[:3])
                for i in range(n.a.routes.count))
    assert v4 == [("a0", bytes([198, 51, 100])), ("a1", bytes([192, 0, 2]))]
