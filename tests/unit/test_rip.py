"""RIPv2 (RFC 2453, core/rip.py) between stacks on the in-memory wire: routes learned and
announced, split horizon with poisoned reverse, timeouts and garbage collection, withdrawn
routes poisoned, hostile or malformed messages counted and ignored."""
import pytest

from ustack.core import socket as so
from ustack.core.stack import Stack
from ustack.core.rip import RIP2_GROUP
from ustack.hal.loopback import Wire
from tests.twostack import Bench, IP_A, IP_B

FAST = {"RIP": True, "RIP_UPDATE_MS": 3000, "RIP_TIMEOUT_MS": 9000, "RIP_GC_MS": 6000}
FAR = bytes([198, 51, 100, 7])   # on B's second link


@pytest.fixture
def rip():
    """A and B speak RIP on one link; B has a second link, 198.51.100.0/24."""
    b = Bench(config=FAST)
    b.far = Wire()
    b.ib1 = b.b.add_interface("b1", b.far.port(b"\x02\x00\x00\x00\x01\x0b"),
                              ip="198.51.100.1", prefix=24)
    yield b
    b.close_all()


def route(stack, dst):
    rt = stack.routes
    r = rt.lookup(dst, 0)
    if r < 0:
        return None
    return (rt.prefix[r], bytes(rt.nexthop), rt.metric[r], rt.source[r])


def test_a_neighbours_connected_network_is_learned_with_its_hop_count(rip):
    assert route(rip.a, FAR) is None
    assert rip.until(lambda: route(rip.a, FAR) is not None, 10000)
    assert route(rip.a, FAR) == (24, bytes([192, 0, 2, 11]), 2, "rip")
    assert rip.a.rip.stats.routes_learned == 1
    # and used: A's ping to B's far address goes through the learned route
    assert rip.a.ping("198.51.100.1", count=1).received == 1
    c = rip.a.counters()
    assert c["rip.rx_responses"] >= 1 and "rip.rx_bad_rte" not in c


def test_a_route_is_poisoned_back_to_where_it_came_from(rip):
    """RFC 2453 3.4.3: A announces 198.51.100.0/24 to B with metric 16; B, which has it as
    its own connected network, keeps its own."""
    seen = []
    wire_send = rip.pa.send

    def spy(buf, n):
        f = bytes(buf[:n])
        if f[12:14] == b"\x08\x00" and f[23] == 17 and f[36:38] == b"\x02\x08":
            seen.append(f[42:])
        return wire_send(buf, n)
    rip.pa.send = spy
    assert rip.until(lambda: route(rip.a, FAR) is not None, 10000)
    rip.run(4000, 5)
    rtes = {}
    for msg in seen:
        assert msg[0] == 2 and msg[1] == 2          # response, version 2
        for e in range(4, len(msg), 20):
            rtes[(msg[e + 4:e + 8], msg[e + 8:e + 12])] = msg[e + 19]
    assert rtes[(FAR[:3] + b"\x00", b"\xff\xff\xff\x00")] == 16     # poisoned reverse
    assert rtes[(bytes([192, 0, 2, 0]), b"\xff\xff\xff\x00")] == 1  # A's own network
    assert route(rip.b, FAR)[3] == "connected"


def test_a_route_not_heard_of_times_out_then_is_deleted(rip):
    assert rip.until(lambda: route(rip.a, FAR) is not None, 10000)
    rip.b.rip = None           # B falls silent
    rip.run(8000, 10)
    assert route(rip.a, FAR) is not None
    rip.run(3000, 10)          # RIP_TIMEOUT_MS since the last update
    assert route(rip.a, FAR) is None and rip.a.rip.stats.routes_timed_out == 1
    assert [r for r in rip.a.rip.table() if r[0] == "198.51.100.0"][0][4] == 16  # poisoned
    rip.run(7000, 10)          # RIP_GC_MS later: gone from RIP's table too
    assert not [r for r in rip.a.rip.table() if r[0] == "198.51.100.0"]
    assert rip.a.rip.stats.routes_deleted == 1


def test_a_withdrawn_network_is_announced_unreachable_at_once(rip):
    """RFC 2453 3.10.1: B's link goes; its triggered update tells A metric 16 within
    seconds, long before A's timeout."""
    assert rip.until(lambda: route(rip.a, FAR) is not None, 10000)
    rip.b.remove_address(rip.ib1)
    assert rip.until(lambda: route(rip.a, FAR) is None, 7000, 5)
    assert rip.a.rip.stats.routes_timed_out == 0
    assert rip.b.rip.stats.tx_triggered >= 1


def test_a_static_route_goes_out_with_its_gateway_as_next_hop(rip):
    """RFC 2453 4.4: B's route to 203.0.113.0/24 via 192.0.2.77 (on the shared link): A
    learns it via .77 directly, not via B."""
    rip.b.add_route("203.0.113.0", 24, "192.0.2.77")
    assert rip.until(lambda: route(rip.a, bytes([203, 0, 113, 5])) is not None, 10000)
    assert route(rip.a, bytes([203, 0, 113, 5])) == (24, bytes([192, 0, 2, 77]), 2, "rip")


def test_a_learned_route_never_replaces_a_connected_or_static_one(rip):
    rip.a.add_route("198.51.100.0", 24, IP_B, metric=5)
    rip.run(8000, 10)
    assert route(rip.a, FAR) == (24, bytes([192, 0, 2, 11]), 5, "static")
    assert rip.a.rip.stats.rx_shadowed >= 1


def rip_frame(src_ip, payload, sport=520, dst=RIP2_GROUP):
    from tests import frames as F
    src = bytes(int(x) for x in src_ip.split("."))
    udp = F.udp(src, dst, sport, 520, payload)
    mac = b"\x01\x00\x5e\x00\x00\x09" if dst == RIP2_GROUP else F.STACK_MAC
    return F.eth(mac, F.HOST_MAC, 0x0800, F.ipv4(src, dst, 17, udp, ttl=1))


def rte(net, mask, metric, nh=b"\0\0\0\0", afi=2):
    return afi.to_bytes(2, "big") + b"\0\0" + bytes(net) + bytes(mask) + nh + \
        metric.to_bytes(4, "big")


@pytest.mark.parametrize("payload,counter", [
    (b"\x02\x01\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 1), "rx_bad_version"),
    (b"\x02\x02\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 1)[:13], "rx_malformed"),
    (b"\x07\x02\x00\x00", "rx_bad_command"),
    (b"\x02\x02\x00\x00" + rte([127, 0, 0, 0], [255, 0, 0, 0], 1), "rx_bad_rte"),
    (b"\x02\x02\x00\x00" + rte([224, 1, 0, 0], [255, 255, 0, 0], 1), "rx_bad_rte"),
    (b"\x02\x02\x00\x00" + rte([10, 1, 0, 0], [255, 0, 255, 0], 1), "rx_bad_rte"),  # mask
    (b"\x02\x02\x00\x00" + rte([10, 1, 0, 0], [255, 0, 0, 0], 1), "rx_bad_rte"),  # host bits
    (b"\x02\x02\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 17), "rx_bad_rte"),
    (b"\x02\x02\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 0), "rx_bad_rte"),
    (b"\x02\x02\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 1, afi=7), "rx_bad_rte"),
    (b"\x02\x02\x00\x00" + b"\xff\xff\x00\x02" + b"secret" * 2 + b"\0\0\0\0" +
     rte([10, 0, 0, 0], [255, 0, 0, 0], 1), "rx_auth_unsupported"),
])
def test_malformed_or_unsupported_messages_are_counted_and_learn_nothing(payload, counter):
    from tests.feed import Fed
    f = Fed(config={"RIP": True})
    f.feed(rip_frame("192.0.2.1", payload))
    c = f.counters()
    assert c["rip." + counter] == 1, c
    assert f.stack.rip.table() == [(r) for r in f.stack.rip.table() if r[2] is None]


def test_responses_from_off_link_sources_or_other_ports_are_ignored():
    from tests.feed import Fed
    f = Fed(config={"RIP": True})
    good = b"\x02\x02\x00\x00" + rte([10, 0, 0, 0], [255, 0, 0, 0], 1)
    f.feed(rip_frame("198.51.100.9", good))          # not on our network (RFC 2453 3.9.2)
    f.feed(rip_frame("192.0.2.1", good, sport=5000))  # a response not from port 520
    c = f.counters()
    assert c["rip.rx_bad_source"] == 1 and c["rip.rx_bad_port"] == 1
    assert f.stack.routes.lookup(bytes([10, 1, 2, 3]), 0) < 0
    f.feed(rip_frame("192.0.2.1", good))             # control: the same from a neighbour
    r = f.stack.routes.lookup(bytes([10, 1, 2, 3]), 0)
    assert r >= 0 and f.stack.routes.source[r] == "rip" and f.stack.routes.metric[r] == 2


def test_the_learned_table_is_bounded():
    from tests.feed import Fed
    f = Fed(config={"RIP": True, "RIP_ROUTES": 4})
    msg = b"\x02\x02\x00\x00" + b"".join(rte([10, i, 0, 0], [255, 255, 0, 0], 1)
                                         for i in range(10))
    f.feed(rip_frame("192.0.2.1", msg))
    learned = [r for r in f.stack.rip.table() if r[2] is not None]
    assert len(learned) + len([r for r in f.stack.rip.table() if r[2] is None]) == 4
    assert f.counters()["rip.table_full"] >= 6


def test_a_whole_table_request_is_answered_to_its_sender():
    from tests.feed import Fed
    f = Fed(config={"RIP": True})
    f.advance(2000)   # its first update has gone
    req = b"\x01\x02\x00\x00" + rte([0, 0, 0, 0], [0, 0, 0, 0], 16, afi=0)
    out = f.feed(rip_frame("192.0.2.1", req, sport=5000, dst=bytes([192, 0, 2, 2])))
    resp = [x for x in out if x[12:14] == b"\x08\x00" and x[23] == 17]
    assert resp, out
    r = resp[-1]
    assert r[30:34] == bytes([192, 0, 2, 1]) and r[36:38] == (5000).to_bytes(2, "big")
    assert r[42] == 2 and r[43] == 2 and r[42 + 4 + 4:42 + 4 + 8] == bytes([192, 0, 2, 0])


def test_rip_config_is_checked():
    with pytest.raises(ValueError, match="RIP_TIMEOUT_MS must exceed RIP_UPDATE_MS"):
        Stack({"RIP": True, "RIP_UPDATE_MS": 30000, "RIP_TIMEOUT_MS": 30000})
    with pytest.raises(ValueError, match="RIP_ROUTES"):
        Stack({"RIP": True, "RIP_ROUTES": 0})


def test_a_withdrawn_own_network_poisoned_back_installs_nothing(rip):
    """B's link goes: B announces it unreachable, A poisons it back (metric 16, RFC 2453
    3.4.3). B must not take that as a route via A (it once installed one, metric 16)."""
    assert rip.until(lambda: route(rip.a, FAR) is not None, 10000)
    rip.b.remove_address(rip.ib1)
    assert rip.until(lambda: route(rip.a, FAR) is None, 7000, 5)
    rip.run(6000, 5)   # A's poisoned reverse updates reach B during its garbage collection
    assert route(rip.b, FAR) is None, route(rip.b, FAR)
    assert not [r for r in rip.b.rip.table() if r[0] == "198.51.100.0" and r[2] is not None]


def test_a_route_tag_is_kept_and_passed_on():
    """RFC 2453 3.6: the route tag of a learned route goes out again as it came."""
    from tests.feed import Fed
    f = Fed(config={"RIP": True})
    f.advance(2000)
    e = rte([10, 0, 0, 0], [255, 0, 0, 0], 1)
    f.feed(rip_frame("192.0.2.1", b"\x02\x02\x00\x00" + e[:2] + b"\xbe\xef" + e[4:]))
    req = b"\x01\x02\x00\x00" + rte([0, 0, 0, 0], [0, 0, 0, 0], 16, afi=0)
    out = f.feed(rip_frame("192.0.2.1", req, sport=5000, dst=bytes([192, 0, 2, 2])))
    msg = [x for x in out if x[12:14] == b"\x08\x00" and x[23] == 17][-1][42:]
    tags = [msg[k + 2:k + 4] for k in range(4, len(msg), 20)
            if msg[k + 4:k + 8] == bytes([10, 0, 0, 0])]
    assert tags == [b"\xbe\xef"], msg.hex()


def test_a_route_the_routing_table_has_no_room_for_is_neither_kept_nor_announced():
    """The stack's routing table (ROUTE_ENTRIES) fills before RIP's: a route it refuses is
    counted (rip.table_full) and left out of RIP's table too, never announced on the other
    links as reachable (traffic drawn there would find no route), and installed when the
    neighbour tells it again and there is room. FRR's ripd with more routes than the table
    holds showed it (tests/interop/test_rip_frr.py)."""
    from tests.feed import Fed, FeedDriver
    f = Fed(config={"RIP": True, "ROUTE_ENTRIES": 5, "RIP_UPDATE_MS": 3000,
                    "RIP_TIMEOUT_MS": 9000, "RIP_GC_MS": 6000})
    other = FeedDriver(mac=b"\x02\x00\x00\x00\x01\x0b")
    f.stack.add_interface("eth1", other, ip="203.0.113.1/25")
    nets = [bytes([10, i, 0, 0]) for i in range(6)]
    msg = b"\x02\x02\x00\x00" + b"".join(rte(n, [255, 255, 0, 0], 1) for n in nets)
    f.feed(rip_frame("192.0.2.1", msg))
    rt = f.stack.routes
    installed = [n for n in nets if rt.find(n, 16) >= 0]
    assert len(installed) == 3 and rt.count == 5          # two connected routes, three RIP
    assert f.counters()["rip.table_full"] == 3
    learned = sorted(r[0] for r in f.stack.rip.table() if r[2] is not None)
    assert learned == sorted("10.%d.0.0" % n[1] for n in installed)
    # what eth1 hears: the installed routes at metric 2, nothing of the refused ones
    other.tx.clear()
    f.advance(4000)
    heard = {}
    for x in other.tx:
        if x[12:14] == b"\x08\x00" and x[23] == 17 and x[36:38] == b"\x02\x08":
            m = x[42:]
            for k in range(4, len(m), 20):
                heard[m[k + 4:k + 8]] = m[k + 19]
    assert {n: heard[n] for n in nets if n in heard} == {n: 2 for n in installed}, heard
    # the neighbour loses one: its next update installs a refused one in its place
    f.feed(rip_frame("192.0.2.1", b"\x02\x02\x00\x00" + rte(installed[0], [255, 255, 0, 0],
                                                            16)))
    assert rt.find(installed[0], 16) < 0
    f.feed(rip_frame("192.0.2.1", b"\x02\x02\x00\x00" + b"".join(
        rte(n, [255, 255, 0, 0], 1) for n in nets if n != installed[0])))
    now = [n for n in nets if rt.find(n, 16) >= 0]
    assert len(now) == 3 and [n for n in now if n not in installed], now
    learned = sorted(r[0] for r in f.stack.rip.table() if r[2] is not None and r[4] < 16)
    assert learned == sorted("10.%d.0.0" % n[1] for n in now)


def test_a_static_route_added_over_a_learned_one_stays_static():
    """The user adds a static route to a prefix RIP learned: the next update from the
    neighbour, even one that changes the metric before RIP has looked at the table again,
    leaves the static route in place (RIP never replaces a static route)."""
    from tests.feed import Fed
    f = Fed(config={"RIP": True})
    f.advance(2000)
    net = bytes([10, 0, 0, 0])
    f.feed(rip_frame("192.0.2.1", b"\x02\x02\x00\x00" + rte(net, [255, 255, 0, 0], 1)))
    rt = f.stack.routes
    assert rt.source[rt.find(net, 16)] == "rip"
    f.stack.add_route("10.0.0.0", 16, "192.0.2.9")
    f.feed(rip_frame("192.0.2.1", b"\x02\x02\x00\x00" + rte(net, [255, 255, 0, 0], 3)))
    r = rt.find(net, 16)
    assert rt.source[r] == "static" and bytes(rt.gw[r]) == bytes([192, 0, 2, 9])
    f.advance(2000)   # and RIP's table takes it as the stack's own from then on
    r = rt.find(net, 16)
    assert rt.source[r] == "static" and [e for e in f.stack.rip.table()
                                         if e[0] == "10.0.0.0" and e[2] is None], \
        f.stack.rip.table()
