"""The control channel (core/ctl.py): one JSON line in, one JSON line out, versioned; every
refusal is an error response naming the problem, never an exception out of the server."""
import json

import pytest

from ustack.core import ctl
from ustack.core import socket as so
from tests.twostack import Bench, IP_A, IP_B


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close_all()


def ask(srv, op, **args):
    """A request through the wire format, the response decoded."""
    return json.loads(srv.handle_line(ctl.request(op, **args)))


def data(srv, op, **args):
    r = ask(srv, op, **args)
    assert r["ok"], r
    return r["data"]


def error(srv, op, **args):
    r = ask(srv, op, **args)
    assert r["v"] == ctl.VERSION and not r["ok"], r
    return r["error"]


def test_hello_names_the_version_and_every_op(bench):
    srv = ctl.Server(bench.a, "a")
    d = data(srv, "hello")
    assert d["version"] == ctl.VERSION and d["name"] == "a"
    for op in ("addr", "route.add", "neigh.del", "ss", "stats", "config.set"):
        assert op in d["ops"]


def test_another_version_is_refused_with_the_one_spoken(bench):
    srv = ctl.Server(bench.a)
    r = json.loads(srv.handle_line(b'{"v": 2, "op": "hello"}\n'))
    assert not r["ok"] and "version 2" in r["error"] and r["v"] == ctl.VERSION
    assert srv.stats.rx_bad_version == 1


def test_garbage_too_long_and_unknown_ops_are_counted_errors(bench):
    srv = ctl.Server(bench.a)
    assert not json.loads(srv.handle_line(b"not json\n"))["ok"]
    assert not json.loads(srv.handle_line(b"[1, 2]\n"))["ok"]
    assert srv.stats.rx_malformed == 2
    assert not json.loads(srv.handle_line(b"{" + b" " * ctl.MAX_LINE + b"}"))["ok"]
    assert srv.stats.rx_too_long == 1
    assert "unknown op 'frobnicate'" in error(srv, "frobnicate")
    assert srv.stats.rx_unknown_op == 1


def test_addr_lists_the_interface(bench):
    d = data(ctl.Server(bench.a), "addr")
    assert d == [{"dev": "a0", "up": True, "mtu": 1500, "mac": "02:00:00:00:00:0a",
                  "ip": IP_A, "prefix": 24, "broadcast": "192.0.2.255", "gateway": None,
                  "vlan": 0}]


def test_addr_set_moves_the_address_and_its_connected_route(bench):
    srv = ctl.Server(bench.a)
    data(srv, "addr.set", dev="a0", ip="198.51.100.7/25")
    assert bench.ia.ip == bytes([198, 51, 100, 7]) and bench.ia.prefix == 25
    assert [(r["dst"], r["prefix"]) for r in data(srv, "route")] == [("198.51.100.0", 25)]
    assert "no interface named 'zz0'" in error(srv, "addr.set", dev="zz0", ip="192.0.2.1/24")
    assert "192.0.2.300/24" in error(srv, "addr.set", dev="a0", ip="192.0.2.300/24")


def test_route_add_changes_forwarding_and_del_takes_it_back(bench):
    srv = ctl.Server(bench.a)
    rows = data(srv, "route.add", dst="198.51.100.0/24", via=IP_B)
    assert {"dst": "198.51.100.0", "prefix": 24, "via": IP_B, "dev": "a0", "metric": 0,
            "proto": "static", "src": IP_A} in rows
    r = bench.a.routes.lookup(bytes([198, 51, 100, 9]), 0)
    assert r >= 0 and bytes(bench.a.routes.nexthop) == bytes([192, 0, 2, 11])
    data(srv, "route.del", dst="198.51.100.0/24")
    assert bench.a.routes.lookup(bytes([198, 51, 100, 9]), 0) < 0
    assert "no route to 198.51.100.0/24" in error(srv, "route.del", dst="198.51.100.0/24")


def test_route_add_and_del_refuse_a_destination_with_host_bits(bench):
    """`ip route add 198.51.100.7/24` says "Invalid prefix for given prefix length": a network
    with host bits set is a typo, and taking it as 198.51.100.0/24 would hide that."""
    srv = ctl.Server(bench.a)
    for op in ("route.add", "route.del"):
        msg = error(srv, op, dst="198.51.100.7/24", via=IP_B)
        assert "198.51.100.7/24" in msg and "host bits" in msg
    assert all(r["dst"] != "198.51.100.0" for r in data(srv, "route"))


def test_route_add_refuses_an_off_link_gateway_and_a_route_to_nowhere(bench):
    srv = ctl.Server(bench.a)
    assert "not on a connected network" in error(srv, "route.add", dst="default",
                                                 via="203.0.113.1")
    assert "needs 'via'" in error(srv, "route.add", dst="198.51.100.0/24")
    assert "'metric' must be a int" in error(srv, "route.add", dst="198.51.100.0/24",
                                             via=IP_B, metric="1")
    assert bench.a.routes.count == 1


def test_neigh_shows_a_learned_mac_and_static_entries_come_and_go(bench):
    srv = ctl.Server(bench.a)
    bench.a.icmp.pinger(IP_B).send(0, bench.t)
    bench.pump()
    assert {"ip": IP_B, "dev": "a0", "lladdr": "02:00:00:00:00:0b", "state": "REACHABLE",
            "queued": 0} in data(srv, "neigh")
    rows = data(srv, "neigh.add", ip="192.0.2.99", lladdr="02:00:00:00:00:99")
    assert {"ip": "192.0.2.99", "dev": "a0", "lladdr": "02:00:00:00:00:99",
            "state": "PERMANENT", "queued": 0} in rows
    assert "not a unicast MAC" in error(srv, "neigh.add", ip="192.0.2.98",
                                        lladdr="01:00:5e:00:00:01")
    data(srv, "neigh.del", ip="192.0.2.99")
    assert bench.ia.arp.lookup(bytes([192, 0, 2, 99])) is None
    assert "no neighbour 192.0.2.99" in error(srv, "neigh.del", ip="192.0.2.99")


def test_ss_shows_listeners_udp_and_a_connection_with_its_tcb(bench):
    srv = ctl.Server(bench.b)
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7))
    ls.listen(3)
    ls.setblocking(False)
    u = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    u.bind(("", 9))
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 7))
    assert bench.until(lambda: len(ls.acc_q) == 1)
    c.send(b"x" * 1000)
    bench.run(500, 5)  # past the delayed ACK: nothing unacknowledged
    u2 = bench.a.socket(so.AF_INET, so.SOCK_DGRAM)
    u2.sendto(b"hello", (IP_B, 9))
    bench.pump()
    rows = data(srv, "ss")
    lis = [r for r in rows if r["state"] == "LISTEN"][0]
    assert lis["local"] == "0.0.0.0:7" and lis["recv_q"] == 1 and lis["send_q"] == 3
    ud = [r for r in rows if r["proto"] == "udp"][0]
    assert ud["local"] == "0.0.0.0:9" and ud["datagrams"] == 1 and ud["recv_q"] >= 5
    est = [r for r in rows if r["state"] == "ESTABLISHED"][0]
    assert est["local"] == IP_B + ":7" and est["peer"].startswith(IP_A + ":")
    assert est["recv_q"] == 1000 and est["unaccepted"] and not est["orphan"]
    a_rows = data(ctl.Server(bench.a), "ss")
    mine = [r for r in a_rows if r["proto"] == "tcp"][0]
    assert mine["state"] == "ESTABLISHED" and mine["peer"] == IP_B + ":7"
    assert mine["cwnd"] > 0 and mine["srtt"] > 0 and mine["rto"] >= 200
    assert mine["send_q"] == 0 and mine["retrans"] == 0  # all acknowledged
    assert mine["retrans_total"] == bench.a.tcp.stats.tx_retransmits  # its only connection
    for s in (c, u2):
        s.close()


def test_ss_counts_the_retransmissions_of_a_connection(bench):
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex(("192.0.2.77", 7))  # nobody answers: the SYN goes again on each RTO
    bench.run(3500, 10)
    row = [r for r in data(ctl.Server(bench.a), "ss") if r["proto"] == "tcp"][0]
    assert row["state"] == "SYN_SENT" and row["retrans"] >= 1
    assert row["retrans_total"] == row["retrans"]
    c.close()
    bench.run(10000, 50)  # ARP gives up on 192.0.2.77 and frees the SYNs it held


def test_stats_has_every_counter_and_deltas_skip_gauges(bench):
    srv = ctl.Server(bench.a)
    before = data(srv, "stats")
    assert before["icmp.rx_echo_replies"] == 0  # zeros are listed too
    assert before["ctl.requests"] == 1 and "pbuf.low_water" in before
    bench.a.ping(IP_B, count=2, interval_ms=10)
    after = data(srv, "stats")
    assert sorted(after) == sorted(before)  # a stable key set
    d = ctl.deltas(before, after)
    assert d["icmp.rx_echo_replies"] == 2
    assert "pbuf.free" not in d and d["ctl.requests"] == 1


def test_stats_lists_every_counter_the_exit_counters_list():
    """`ustack stats` and the counters `ustack up` prints at exit come from one list of
    groups: IPv6, ND/MLD/SLAAC, DNS and the rest all show in both."""
    b = Bench(config={"IPV6": True}, config_b={"IPV6": True})
    try:
        b.a.ping(IP_B, count=1, interval_ms=10)
        b.a.dns  # the resolver exists from its first use on
        b.run(2000, 10)
        stats = data(ctl.Server(b.a), "stats")
        exit_keys = set(b.a.counters())
        assert exit_keys, "the exit counters are empty"
        assert any(k.startswith("ip6.") for k in exit_keys), exit_keys
        assert any(k.startswith("dns.") for k in stats), sorted(stats)
        missing = exit_keys - set(stats)
        assert not missing, "stats lacks %r" % sorted(missing)
    finally:
        b.close_all()


def test_config_set_takes_runtime_keys_only_and_checks_them(bench):
    srv = ctl.Server(bench.a)
    assert data(srv, "config.set", key="IP_TTL", value=9) == {"IP_TTL": 9}
    assert bench.a.ipv4.ttl == 9 and bench.a.config["IP_TTL"] == 9
    data(srv, "config.set", key="ARP_MAX_AGE_MS", value=5000)
    assert bench.ia.arp.max_age == 5000
    assert "fixed at start" in error(srv, "config.set", key="PBUF_COUNT", value=9)
    assert "unknown config key 'NOPE'" in error(srv, "config.set", key="NOPE", value=1)
    assert "IP_TTL must be an int in 1..255" in error(srv, "config.set", key="IP_TTL", value=0)
    assert "must not exceed" in error(srv, "config.set", key="TCP_RTO_MIN_MS", value=10 ** 6)
    assert "TCP_RTO_MIN_MS" in data(srv, "config")["runtime_keys"]


def test_a_client_decodes_data_and_raises_the_stacks_refusal(bench):
    srv = ctl.Server(bench.a)
    assert ctl.decode_response(srv.handle_line(ctl.request("addr")))[0]["dev"] == "a0"
    with pytest.raises(ctl.CtlError) as e:
        ctl.decode_response(srv.handle_line(ctl.request("route.del", dst="10.0.0.0/8")))
    assert "no route to 10.0.0.0/8" in str(e.value)


def test_addr_del_takes_the_address_and_its_routes_and_tells_bound_sockets(bench):
    srv = ctl.Server(bench.a)
    u = bench.a.socket(so.AF_INET, so.SOCK_DGRAM)
    u.bind((IP_A, 9))
    assert "192.0.2.99/24 is not on a0 (it has %s/24)" % IP_A in \
        error(srv, "addr.del", dev="a0", ip="192.0.2.99/24")
    rows = data(srv, "addr.del", dev="a0", ip=IP_A + "/24")
    assert rows[0]["ip"] == "0.0.0.0" and data(srv, "route") == []
    # as when Linux deletes an address under a bound socket
    assert u.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 99  # EADDRNOTAVAIL
    assert "is not on a0 (it has none)" in error(srv, "addr.del", dev="a0", ip=IP_A + "/24")
    u.close()


def test_addr_add_gives_an_address_to_an_interface_without_one_and_refuses_a_second(bench):
    srv = ctl.Server(bench.a)
    assert "%s/24 is on a0 already" % IP_A in error(srv, "addr.add", dev="a0", ip=IP_A + "/24")
    assert "a0 has %s/24 already (one address per interface" % IP_A in \
        error(srv, "addr.add", dev="a0", ip="198.51.100.7/24")
    data(srv, "addr.del", dev="a0", ip=IP_A)  # without a prefix: the interface's
    rows = data(srv, "addr.add", dev="a0", ip="198.51.100.7/25", gateway="198.51.100.1")
    assert rows[0]["ip"] == "198.51.100.7" and rows[0]["gateway"] == "198.51.100.1"
    assert [(r["dst"], r["prefix"], r["via"]) for r in data(srv, "route")] == [
        ("198.51.100.0", 25, None), ("0.0.0.0", 0, "198.51.100.1")]


def test_neigh_flush_forgets_learned_entries_and_keeps_static_ones(bench):
    srv = ctl.Server(bench.a)
    bench.a.icmp.pinger(IP_B).send(0, bench.t)
    bench.pump()
    data(srv, "neigh.add", ip="192.0.2.99", lladdr="02:00:00:00:00:99")
    d = data(srv, "neigh.flush")
    assert d["flushed"] == 1
    assert [(r["ip"], r["state"]) for r in d["neigh"]] == [("192.0.2.99", "PERMANENT")]
    assert bench.ia.arp.lookup(bytes([192, 0, 2, 11])) is None
    d = data(srv, "neigh.flush", dev="a0", permanent=True)
    assert d == {"flushed": 1, "neigh": []}
    assert "no interface named 'zz0'" in error(srv, "neigh.flush", dev="zz0")


def test_an_address_dhcp_leases_is_not_changed_by_hand(bench):
    srv = ctl.Server(bench.a)
    bench.a.start_dhcp(bench.ia)
    for op in ("addr.set", "addr.add", "addr.del"):
        assert "a0's address is leased by DHCP" in error(srv, op, dev="a0", ip=IP_A + "/24")


def test_route_add_never_replaces_an_interfaces_connected_route(bench):
    """`ip route add` says "File exists" there; replacing it would leave the gateway itself
    behind a gateway (the connected route is what makes it reachable)."""
    srv = ctl.Server(bench.a)
    assert "192.0.2.0/24 is a0's connected route (it follows the address" in error(
        srv, "route.add", dst="192.0.2.0/24", via=IP_B)
    assert data(srv, "route") == [{"dst": "192.0.2.0", "prefix": 24, "via": None, "dev": "a0",
                                   "metric": 0, "proto": "connected", "src": IP_A}]
    assert bench.a.ping(IP_B, count=1).received == 1
