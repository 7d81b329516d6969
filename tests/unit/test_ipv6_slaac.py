"""SLAAC (core/slaac.py): addresses from Router Advertisements (RFC 4862 5.5), their
lifetimes and the 2-hour rule (5.5.3 e), default routers and link parameters (RFC 4861
6.3.4), on a virtual clock (plain integers)."""
from ustack.core import addr6, slaac
from ustack.core.slaac import Slaac
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6

R1 = addr6.pton("fe80::1")
R2 = addr6.pton("fe80::2")
P1 = addr6.pton("2001:db8:1::")
P2 = addr6.pton("2001:db8:2::")
IID = bytes.fromhex("0200000000000001")
INF = icmp6.INFINITE
HOUR = 3600
A_L = icmp6.PI_FLAG_AUTO | icmp6.PI_FLAG_ONLINK


class Owner:
    def __init__(self):
        self.events = []

    def slaac_event(self, s, kind, i):
        self.events.append((kind, i))

    def take(self):
        out = self.events
        self.events = []
        return out


def ra(lifetime=1800, prefixes=(), mtu=None, src=R1, hlim=0, reachable=0, retrans=0):
    """An RA in an IPv6 packet: (packet, icmp offset, icmp length)."""
    b = bytearray(40 + 16 + 32 * len(prefixes) + 8)
    n = icmp6.write_ra(b, 40, hlim, 0, lifetime, reachable, retrans)
    for p, plen, flags, valid, pref in prefixes:
        n += icmp6.write_prefix_option(b, 40 + n, p, plen, flags, valid, pref)
    if mtu is not None:
        n += icmp6.write_mtu_option(b, 40 + n, mtu)
    ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 255, src, addr6.ALL_NODES)
    icmp6.fill_checksum(b, 0, 40, n)
    assert icmp6.nd_check(b, 0, 40, n) is None
    return b, n


def feed(s, now, **kw):
    b, n = ra(**kw)
    s.on_ra(b, 0, 40, n, now)


def new(**kw):
    o = Owner()
    return Slaac(o, IID, kw.get("config"), secret=kw.get("secret"), ifname="eth0"), o


def test_autonomous_64_prefix_forms_an_address_from_prefix_and_iid():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, A_L, 2 * HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    assert i >= 0 and s.has_addr[i]
    assert addr6.ntop(s.addr[i]) == "2001:db8:1:0:200::1"
    assert (slaac.EV_ADDR_NEW, i) in o.events and (slaac.EV_ONLINK_NEW, i) in o.events
    assert s.is_onlink(addr6.pton("2001:db8:1::77"), 0)


def test_prefix_not_64_bits_long_forms_no_address():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 48, icmp6.PI_FLAG_AUTO, HOUR, HOUR)])
    assert s.find_prefix(P1, 0) == -1 and s.stats.prefix_bad_length == 1


def test_link_local_prefix_is_ignored():
    s, o = new()
    feed(s, 0, prefixes=[(addr6.pton("fe80::"), 64, A_L, HOUR, HOUR)])
    assert o.take() == [(slaac.EV_ROUTER_NEW, 0)] and s.stats.prefix_link_local == 1


def test_preferred_longer_than_valid_is_ignored():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, HOUR, 2 * HOUR)])
    assert s.find_prefix(P1, 0) == -1 and s.stats.prefix_bad_lifetimes == 1
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, HOUR, INF)])
    assert s.find_prefix(P1, 0) == -1 and s.stats.prefix_bad_lifetimes == 2


def test_on_link_only_prefix_forms_no_address():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_ONLINK, HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    assert s.onlink[i] and not s.has_addr[i]


def test_address_is_deprecated_then_removed_on_time():
    s, o = new()
    feed(s, 0, lifetime=0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, 3 * HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    o.take()
    assert s.tick(HOUR * 1000 - 1) == HOUR * 1000
    assert not s.deprecated[i]
    s.tick(HOUR * 1000)
    assert s.deprecated[i] and o.take() == [(slaac.EV_ADDR_DEPRECATED, i)]
    assert s.tick(3 * HOUR * 1000 - 1) == 3 * HOUR * 1000
    s.tick(3 * HOUR * 1000)
    assert (slaac.EV_ADDR_REMOVED, i) in o.take() and not s.has_addr[i]
    assert s.find_prefix(P1, 0) == -1


def test_infinite_lifetimes_never_expire():
    s, o = new()
    feed(s, 0, lifetime=0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, INF, INF)])
    i = s.find_prefix(P1, 0)
    assert s.tick(10 ** 12) == -1 and s.has_addr[i] and not s.deprecated[i]


def test_zero_preferred_lifetime_forms_a_deprecated_address():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, HOUR, 0)])
    i = s.find_prefix(P1, 0)
    assert s.deprecated[i]
    assert o.take()[-2:] == [(slaac.EV_ADDR_NEW, i), (slaac.EV_ADDR_DEPRECATED, i)]


def test_preferred_lifetime_is_reset_and_undeprecates():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, 3 * HOUR, 0)])
    i = s.find_prefix(P1, 0)
    feed(s, 1000, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, 3 * HOUR, HOUR)])
    assert not s.deprecated[i] and s.preferred_until[i] == 1000 + HOUR * 1000


# ---- the 2-hour rule (RFC 4862 5.5.3 e) -------------------------------------------------------
def two_hour_case(first_valid, then_valid, at_s):
    s, o = new()
    feed(s, 0, lifetime=0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, first_valid, 0)])
    i = s.find_prefix(P1, 0)
    feed(s, at_s * 1000, lifetime=0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, then_valid, 0)])
    return s, i


def test_valid_lifetime_above_two_hours_is_taken():
    s, i = two_hour_case(10 * HOUR, 3 * HOUR, 0)
    assert s.valid_until[i] == 3 * HOUR * 1000


def test_valid_lifetime_above_the_remaining_one_is_taken():
    s, i = two_hour_case(HOUR, HOUR, 1800)     # remaining 30 min, advertised 60
    assert s.valid_until[i] == 1800 * 1000 + HOUR * 1000


def test_short_valid_lifetime_is_ignored_when_two_hours_or_less_remain():
    s, i = two_hour_case(2 * HOUR, 60, 10)
    assert s.valid_until[i] == 2 * HOUR * 1000 and s.stats.two_hour_rule == 1
    s, i = two_hour_case(HOUR, 0, 10)          # a forged "valid 0" cannot kill it
    assert s.valid_until[i] == HOUR * 1000 and s.has_addr[i]


def test_short_valid_lifetime_resets_to_two_hours_when_more_remain():
    s, i = two_hour_case(10 * HOUR, 60, 10)
    assert s.valid_until[i] == 10 * 1000 + 2 * HOUR * 1000 and s.stats.two_hour_rule == 1
    s, i = two_hour_case(INF, 0, 10)
    assert s.valid_until[i] == 10 * 1000 + 2 * HOUR * 1000


def test_infinite_valid_lifetime_is_always_taken():
    s, i = two_hour_case(HOUR, INF, 10)
    assert s.valid_until[i] == -1


# ---- routers and link parameters (RFC 4861 6.3.4) ------------------------------------------
def test_router_lifetime_adds_and_expires_a_default_router():
    s, o = new()
    feed(s, 0, lifetime=30)
    assert o.take() == [(slaac.EV_ROUTER_NEW, 0)] and s.default_router() == 0
    assert bytes(s.router[0]) == R1
    assert s.tick(29999) == 30000
    s.tick(30000)
    assert o.take() == [(slaac.EV_ROUTER_REMOVED, 0)] and s.default_router() == -1


def test_router_lifetime_is_refreshed_by_each_ra():
    s, o = new()
    feed(s, 0, lifetime=30)
    feed(s, 20000, lifetime=30)
    assert s.tick(30000) == 50000 and s.default_router() == 0


def test_router_lifetime_zero_removes_the_router():
    s, o = new()
    feed(s, 0, lifetime=1800)
    feed(s, 10, src=R2, lifetime=1800)
    o.take()
    feed(s, 20, lifetime=0)
    assert o.take() == [(slaac.EV_ROUTER_REMOVED, 0)]
    assert s.find_router(R1, 0) == -1 and s.find_router(R2, 0) == 1


def test_router_table_is_bounded():
    s, o = new(config={"SLAAC_ROUTERS": 1})
    feed(s, 0)
    feed(s, 0, src=R2)
    assert s.find_router(R2, 0) == -1 and s.stats.router_table_full == 1


def test_prefix_table_is_bounded():
    s, o = new(config={"SLAAC_PREFIXES": 1})
    feed(s, 0, prefixes=[(P1, 64, A_L, HOUR, HOUR), (P2, 64, A_L, HOUR, HOUR)])
    assert s.find_prefix(P1, 0) >= 0 and s.find_prefix(P2, 0) == -1
    assert s.stats.prefix_table_full == 1


def test_mtu_option_recorded_when_at_least_1280():
    s, o = new()
    feed(s, 0, mtu=1400)
    assert s.mtu == 1400 and (slaac.EV_MTU, -1) in o.take()
    feed(s, 0, mtu=1279)
    feed(s, 0, mtu=9000)               # above the link's MTU
    assert s.mtu == 1400 and s.stats.rx_ra_bad_mtu == 2


def test_hop_limit_reachable_and_retrans_are_taken_when_not_zero():
    s, o = new()
    feed(s, 0, hlim=32, reachable=20000, retrans=500)
    assert (s.hop_limit, s.reachable_ms, s.retrans_ms) == (32, 20000, 500)
    assert (slaac.EV_PARAMS, -1) in o.take()
    feed(s, 0)
    assert (s.hop_limit, s.reachable_ms, s.retrans_ms) == (32, 20000, 500)
    assert o.take() == []


def test_on_link_prefix_valid_zero_removes_it():
    s, o = new()
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_ONLINK, HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    feed(s, 10, prefixes=[(P1, 64, icmp6.PI_FLAG_ONLINK, 0, 0)])
    assert (slaac.EV_ONLINK_REMOVED, i) in o.take() and s.find_prefix(P1, 0) == -1


# ---- RFC 7217 stable addresses ----------------------------------------------------------------
def test_stable_privacy_address_per_prefix_and_a_new_one_after_dad_failure():
    o = Owner()
    key = b"k" * 16
    s = Slaac(o, None, None, secret=key, ifname="eth0")
    feed(s, 0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, HOUR, HOUR),
                         (P2, 64, icmp6.PI_FLAG_AUTO, HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    j = s.find_prefix(P2, 0)
    assert bytes(s.addr[i][8:]) == addr6.stable_iid(P1, "eth0", b"", 0, key)
    assert bytes(s.addr[j][8:]) == addr6.stable_iid(P2, "eth0", b"", 0, key)
    o.take()
    s.dad_failed(i, 5)
    assert bytes(s.addr[i][8:]) == addr6.stable_iid(P1, "eth0", b"", 1, key)
    assert o.take() == [(slaac.EV_ADDR_NEW, i)]


def test_eui64_address_is_given_up_after_dad_failure():
    s, o = new()
    feed(s, 0, lifetime=0, prefixes=[(P1, 64, icmp6.PI_FLAG_AUTO, HOUR, HOUR)])
    i = s.find_prefix(P1, 0)
    s.dad_failed(i, 5)
    assert not s.has_addr[i] and s.find_prefix(P1, 0) == -1


# ---- RFC 8106 recursive DNS servers --------------------------------------------------------
D1 = addr6.pton("2001:db8::53")
D2 = addr6.pton("2001:db8::54")
D3 = addr6.pton("2001:db8::55")


def rdnss_ra(lifetime, servers, src=R1):
    b = bytearray(40 + 16 + 8 + 16 * len(servers))
    n = icmp6.write_ra(b, 40, 0, 0, 0, 0, 0)
    n += icmp6.write_rdnss_option(b, 40 + n, lifetime, servers)
    ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 255, src, addr6.ALL_NODES)
    icmp6.fill_checksum(b, 0, 40, n)
    assert icmp6.nd_check(b, 0, 40, n) is None
    return b, n


def feed_dns(s, now, lifetime, addrs):
    b, n = rdnss_ra(lifetime, addrs)
    s.on_ra(b, 0, 40, n, now)


def servers(s):
    return sorted(addr6.ntop(s.dns[i]) for i in range(s.ndns) if s.dns_used[i])


def test_rdnss_servers_learned_and_expire_on_time():
    s, o = new()
    b, n = rdnss_ra(600, [D1, D2])
    s.on_ra(b, 0, 40, n, 0)
    assert servers(s) == ["2001:db8::53", "2001:db8::54"]
    assert (slaac.EV_DNS, -1) in o.take()
    assert s.tick(599999) == 600000
    s.tick(600000)
    assert servers(s) == [] and (slaac.EV_DNS, -1) in o.take()


def test_rdnss_lifetime_zero_removes_and_a_full_table_replaces_the_soonest_expiring():
    s, o = new()
    feed_dns(s, 0, 600, [D1])
    feed_dns(s, 0, 60, [D2])
    feed_dns(s, 0, 600, [D3])              # table of 2: D2 expires first, D3 takes its slot
    assert servers(s) == ["2001:db8::53", "2001:db8::55"]
    feed_dns(s, 10, 0, [D1])
    assert servers(s) == ["2001:db8::55"] and s.stats.dns_expired == 1


def test_on_link_prefixes_of_any_length_decide_on_link():
    s, o = new()
    feed(s, 0, prefixes=[(addr6.pton("2001:db8:ab::1"), 48, icmp6.PI_FLAG_ONLINK, HOUR, HOUR)])
    i = s.find_prefix(addr6.pton("2001:db8:ab::"), 0, 48)
    assert i >= 0 and bytes(s.prefix[i]) == addr6.pton("2001:db8:ab::")   # host bits cleared
    assert s.is_onlink(addr6.pton("2001:db8:ab:cd::1"), 0)
    assert not s.is_onlink(addr6.pton("2001:db8:ac::1"), 0)
    assert s.find_prefix(addr6.pton("2001:db8:ab::"), 0) == -1              # not the /64
    feed(s, 0, prefixes=[(addr6.pton("2001:db8:ab::1"), 129, icmp6.PI_FLAG_ONLINK, HOUR, HOUR)])
    assert s.stats.prefix_bad_length == 1


# ---- RFC 4191 route information ----------------------------------------------------------
def route_ra(routes, src=R1):
    b = bytearray(40 + 16 + 24 * len(routes))
    n = icmp6.write_ra(b, 40, 0, 0, 1800, 0, 0)
    for prefix, plen, prf, life in routes:
        n += icmp6.write_route_option(b, 40 + n, prefix, plen, prf, life)
    ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 255, src, addr6.ALL_NODES)
    icmp6.fill_checksum(b, 0, 40, n)
    assert icmp6.nd_check(b, 0, 40, n) is None
    return b, n


def feed_routes(s, now, routes, src=R1):
    b, n = route_ra(routes, src)
    s.on_ra(b, 0, 40, n, now)


def routes(s):
    return sorted((addr6.ntop(s.route[i]), s.route_plen[i], addr6.ntop(s.route_via[i]),
                   s.route_prf[i]) for i in range(s.nroute) if s.route_used[i])


def test_route_information_adds_more_specific_routes_via_the_router():
    s, o = new()
    feed_routes(s, 0, [(addr6.pton("2001:db8:aa::"), 48, 1, 600),
                       (addr6.pton("2001:db8:bb:cc:dd::"), 80, 3, 600),
                       (addr6.ANY, 0, 0, 600)])
    assert routes(s) == [("2001:db8:aa::", 48, "fe80::1", 1),
                         ("2001:db8:bb:cc:dd::", 80, "fe80::1", -1),
                         ("::", 0, "fe80::1", 0)]
    assert sum(1 for k, i in o.take() if k == slaac.EV_ROUTE_NEW) == 3


def test_route_lifetime_expires_and_zero_removes():
    s, o = new()
    feed_routes(s, 0, [(addr6.pton("2001:db8:aa::"), 48, 0, 60),
                       (addr6.pton("2001:db8:bb::"), 48, 0, 600)])
    s.tick(60000)
    assert [r[0] for r in routes(s)] == ["2001:db8:bb::"]
    feed_routes(s, 70000, [(addr6.pton("2001:db8:bb::"), 48, 0, 0)])
    assert routes(s) == [] and s.stats.routes_removed == 2


def test_route_options_with_reserved_preference_or_bad_length_are_ignored():
    s, o = new()
    feed_routes(s, 0, [(addr6.pton("2001:db8:aa::"), 48, 2, 600)])
    b, n = route_ra([(addr6.pton("2001:db8:bb::"), 48, 0, 600)])
    b[56 + 2] = 72      # a 72-bit prefix in an option of length 2
    icmp6.fill_checksum(b, 0, 40, n)
    s.on_ra(b, 0, 40, n, 0)
    assert routes(s) == [] and s.stats.route_bad_option == 2
