"""Router discovery at bring-up (RFC 4861 6.3.7) and what an RA changes on the link (issue 9):
a host solicits routers after a random delay of at most a second, up to three times four
seconds apart, from :: without its MAC while its link-local address is tentative and from
that address with its MAC once DAD is done, and stops as soon as a router advertises a
non-zero lifetime; an RA's MTU option lowers the IPv6 link MTU; a deprecated SLAAC address
is not a source for new traffic; RAs that are not from a link-local address or arrive with
a hop limit other than 255 are dropped and counted."""
from ustack.core import socket as so
from ustack.core import addr6
from ustack.core.stack import Stack
from ustack.core.wire import icmp6 as wi
from ustack.core.wire import ipv6 as w
from ustack.hal.loopback import Wire
from tests.twostack import MAC_A
from tests.unit.test_ipv6_two_stacks import Bench6, router_advert

RMAC = b"\x02\x00\x00\x00\x00\x01"


class Host:
    """One IPv6 stack on a wire with a router's port beside it, on a virtual clock."""

    def __init__(self, config=None):
        cfg = {"IPV6": True}
        cfg.update(config or {})
        self.t = 1000
        self.wire = Wire()
        self.router = self.wire.port(RMAC)
        self.s = Stack(cfg)
        self.s.clock = lambda: self.t
        self.s.now = self.t
        self.iface = self.s.add_interface("a0", self.wire.port(MAC_A), ip="192.0.2.10/24")
        self.seen = []     # (time, frame) heard at the router's port

    def run(self, ms):
        end = self.t + ms
        while self.t < end:
            self.t += 1
            self.s.poll(self.t)
            buf = bytearray(1600)
            while True:
                n = self.router.recv_into(buf)
                if not n:
                    break
                self.seen.append((self.t, bytes(buf[:n])))

    def solicitations(self):
        return [(t, f) for t, f in self.seen
                if f[12:14] == b"\x86\xdd" and f[20] == w.NH_ICMPV6 and
                f[54] == wi.ROUTER_SOLICIT]

    def send(self, frame):
        self.router.send(frame, len(frame))


def test_three_router_solicitations_four_seconds_apart_after_at_most_a_second():
    h = Host()
    h.run(14000)
    rs = h.solicitations()
    assert len(rs) == 3
    assert rs[0][0] - 1000 <= 1000                       # MAX_RTR_SOLICITATION_DELAY
    assert rs[1][0] - rs[0][0] == 4000                   # RTR_SOLICITATION_INTERVAL
    assert rs[2][0] - rs[1][0] == 4000
    for t, f in rs:
        assert f[0:6] == b"\x33\x33\x00\x00\x00\x02"       # to ff02::2 (all-routers)
        assert f[38:54] == addr6.ALL_ROUTERS
        assert f[21] == 255                              # hop limit 255 (RFC 4861 4.1)
    assert h.iface.slaac.stats.rs_sent == 3
    assert h.s.icmp6.stats.tx_rs == 3


def test_solicitation_from_unspecified_has_no_link_layer_option_and_from_link_local_has_it():
    h = Host()
    h.run(14000)
    rs = h.solicitations()
    ll = addr6.link_local_from_mac(MAC_A)
    # the first goes while the link-local address is still tentative (DAD takes > 1 s)
    first = rs[0][1]
    assert first[22:38] == addr6.ANY
    assert len(first) == 14 + 40 + wi.RS_LEN              # RFC 4861 4.1: no SLLA from ::
    later = rs[-1][1]
    assert later[22:38] == ll
    assert later[54 + wi.RS_LEN] == wi.OPT_SLLA
    assert later[54 + wi.RS_LEN + 2:54 + wi.RS_LEN + 8] == MAC_A


def test_an_advertisement_with_a_router_lifetime_stops_the_solicitations():
    h = Host()
    h.run(2000)
    assert len(h.solicitations()) == 1
    f = router_advert(RMAC, "2001:db8:5::")
    h.send(f)
    h.run(12000)
    assert len(h.solicitations()) == 1


def test_no_solicitations_when_configured_off():
    h = Host({"SLAAC_RTR_SOLICITS": 0})
    h.run(10000)
    assert h.solicitations() == []


def ra_with(src_mac, src, hlim=255, mtu=0, valid=86400, preferred=14400, prefix="2001:db8:5::"):
    b = bytearray(14 + 40 + 16 + 32 + 8 + 8)
    b[0:6] = b"\x33\x33\x00\x00\x00\x01"
    b[6:12] = src_mac
    b[12:14] = b"\x86\xdd"
    o = 54
    n = wi.write_ra(b, o, 64, 0, 1800, 0, 0)
    n += wi.write_prefix_option(b, o + n, addr6.pton(prefix), 64,
                                wi.PI_FLAG_ONLINK | wi.PI_FLAG_AUTO, valid, preferred)
    n += wi.write_lla_option(b, o + n, wi.OPT_SLLA, src_mac)
    if mtu:
        n += wi.write_mtu_option(b, o + n, mtu)
    w.write_header(b, 14, 0, 0, n, w.NH_ICMPV6, hlim, addr6.pton(src), addr6.ALL_NODES)
    wi.fill_checksum(b, 14, o, n)
    return b[:o + n]


def test_ra_mtu_option_lowers_the_ipv6_link_mtu_only():
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", mtu=1400)
    router.send(f, len(f))
    bench.run(5)
    assert bench.ia.mtu6 == 1400
    assert bench.ia.mtu == 1500                     # IPv4 keeps the link's
    s = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    drain(router)
    s.sendto(b"x" * 1352, ("2001:db8::b", 9))       # 1400 bytes: fits
    bench.run(5)
    assert [len(f) - 14 for f in drain(router) if f[20] == w.NH_UDP] == [1400]
    try:
        s.sendto(b"x" * 1353, ("2001:db8::b", 9))   # 1401 bytes: over the RA's MTU
    except OSError as e:
        assert e.args[0] == 90                      # EMSGSIZE (without fragmentation)
    bench.run(5)
    frames = drain(router)
    assert [f for f in frames if len(f) - 14 > 1400] == []   # never more than the RA's MTU


def drain(port):
    out = []
    buf = bytearray(1600)
    while True:
        n = port.recv_into(buf)
        if not n:
            return out
        out.append(bytes(buf[:n]))


def test_ra_mtu_above_the_links_is_ignored_and_counted():
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", mtu=9000)
    router.send(f, len(f))
    bench.run(5)
    assert bench.ia.mtu6 == 1500
    assert bench.ia.slaac.stats.rx_ra_bad_mtu == 1


def test_ra_from_a_global_source_is_dropped_and_counted():
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "2001:db8::1")
    router.send(f, len(f))
    bench.run(5)
    assert bench.a.icmp6.stats.rx_nd_bad_source == 1
    assert bench.a.icmp6.stats.rx_ra == 0
    assert bench.ia.slaac.stats.rx_ra == 0


def test_ra_with_hop_limit_below_255_is_dropped_and_counted():
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", hlim=64)
    router.send(f, len(f))
    bench.run(5)
    assert bench.a.icmp6.stats.rx_nd_hop_limit == 1
    assert bench.ia.slaac.stats.rx_ra == 0


def test_deprecated_slaac_address_is_not_chosen_for_new_traffic():
    bench = Bench6()
    router = bench.wire.port(RMAC)
    # two prefixes from the router; the second's preferred lifetime is 0: deprecated at once
    f = ra_with(RMAC, "fe80::1", prefix="2001:db8:5::")
    router.send(f, len(f))
    f = ra_with(RMAC, "fe80::1", prefix="2001:db8:6::", preferred=0)
    router.send(f, len(f))
    bench.run(3000)
    v6 = bench.a.ipv6
    k = v6.find(addr6.pton("2001:db8:6::ff:fe00:a"), 0)
    assert k >= 0 and v6.flags[k] & addr6.ADDR_DEPRECATED
    # RFC 6724 rule 3 beats rule 8: even to a destination inside 2001:db8:6::/64
    src = v6.source_for(addr6.pton("2001:db8:6::99"), 0, bench.ia)
    assert addr6.ntop(v6.addrs[src]) != "2001:db8:6::ff:fe00:a"


def test_control_channel_ip6_shows_what_the_ra_taught():
    from ustack.core.ctl import Server
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", mtu=1400)
    router.send(f, len(f))
    bench.run(3000)
    r = Server(bench.a).handle({"v": 1, "op": "ip6"})
    d = r["data"] if "data" in r else r
    link = d["links"][0]
    assert link["mtu6"] == 1400 and link["routers"] == ["fe80::1"]
    assert link["prefixes"] == ["2001:db8:5::/64"]
    assert {"addr": "2001:db8:5::ff:fe00:a", "prefix": 128, "dev": "a0", "tentative": False,
            "duplicate": False, "deprecated": False} in d["addrs"]
    assert {"dst": "::", "prefix": 0, "via": "fe80::1", "dev": "a0"} in d["routes"]


def ra_router(src_mac, src, lifetime_s):
    b = bytearray(14 + 40 + 16 + 8)
    b[0:6] = b"\x33\x33\x00\x00\x00\x01"
    b[6:12] = src_mac
    b[12:14] = b"\x86\xdd"
    o = 54
    n = wi.write_ra(b, o, 64, 0, lifetime_s, 0, 0)
    n += wi.write_lla_option(b, o + n, wi.OPT_SLLA, src_mac)
    w.write_header(b, 14, 0, 0, n, w.NH_ICMPV6, 255, addr6.pton(src), addr6.ALL_NODES)
    wi.fill_checksum(b, 14, o, n)
    return b[:o + n]


def default_via(bench):
    rt = bench.a.routes_for(so.AF_INET6)
    r = rt.lookup(addr6.pton("2001:db8:99::1"), 0)
    return addr6.ntop(rt.nexthop) if r >= 0 else None


def test_the_router_in_use_stays_and_when_it_goes_another_one_routes():
    # RFC 4861 6.3.6: the default router in use stays while it is there (a second RA, a
    # rogue one too, does not take over); when it goes, the next of the Default Router
    # List takes over (the route is not simply removed)
    bench = Bench6()
    r1 = bench.wire.port(RMAC)
    r2mac = b"\x02\x00\x00\x00\x00\x02"
    r2 = bench.wire.port(r2mac)
    f = ra_router(RMAC, "fe80::1", 1800)
    r1.send(f, len(f))
    bench.run(5)
    f = ra_router(r2mac, "fe80::2", 2)          # a second router, soon gone
    r2.send(f, len(f))
    bench.run(5)
    assert default_via(bench) == "fe80::1"
    bench.run(2500)
    assert bench.ia.slaac.stats.routers_removed == 1
    assert default_via(bench) == "fe80::1"
    # and a router that says lifetime 0 goes at once, leaving the other
    f = ra_router(r2mac, "fe80::2", 1800)
    r2.send(f, len(f))
    bench.run(5)
    f = ra_router(RMAC, "fe80::1", 0)
    r1.send(f, len(f))
    bench.run(5)
    assert default_via(bench) == "fe80::2"
    f = ra_router(r2mac, "fe80::2", 0)
    r2.send(f, len(f))
    bench.run(5)
    assert default_via(bench) is None


def test_an_on_link_prefix_ending_keeps_the_route_of_a_configured_address_in_it():
    # Bench6 gives A 2001:db8::a/64 by hand; a router advertising 2001:db8::/64 on-link for
    # 2 s must not take that connected route with it when the RA's lifetime ends
    bench = Bench6()
    r1 = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", prefix="2001:db8::", valid=2, preferred=1)
    r1.send(f, len(f))
    bench.run(2500)
    rt = bench.a.routes_for(so.AF_INET6)
    assert rt.lookup(addr6.pton("2001:db8::b"), 0) >= 0
    assert bytes(rt.nexthop) == addr6.pton("2001:db8::b")      # on-link, not via a router
