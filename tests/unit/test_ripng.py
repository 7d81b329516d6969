"""RIPng (RFC 2080, core/ripng.py on core/distvec.py) between stacks on the in-memory wire:
routes learned and announced over IPv6 from link-local addresses with hop limit 255, split
horizon with poisoned reverse, next-hop entries, route tags, timeouts, garbage collection,
withdrawals; malformed or hostile messages counted and changing nothing."""
import pytest

from ustack.core import addr6
from ustack.core.stack import Stack
from ustack.core.route import SRC_STATIC
from ustack.hal.loopback import Wire
from tests import frames as F
from tests.twostack import Bench

FAST = {"IPV6": True, "RIPNG": True, "RIP_UPDATE_MS": 3000, "RIP_TIMEOUT_MS": 9000,
        "RIP_GC_MS": 6000}
GA = "2001:db8:1::a"
GB = "2001:db8:1::b"
FAR_NET = addr6.pton("2001:db8:2::")
FAR = addr6.pton("2001:db8:2::1")    # B's address on its second link
LL_A = addr6.pton("fe80::ff:fe00:a")
LL_B = addr6.pton("fe80::ff:fe00:b")
GROUP = addr6.pton("ff02::9")


@pytest.fixture
def ng():
    """A and B speak RIPng on one link (2001:db8:1::/64); B has a second, 2001:db8:2::/64."""
    b = Bench(config=FAST)
    b.far = Wire()
    b.ib1 = b.b.add_interface("b1", b.far.port(b"\x02\x00\x00\x00\x01\x0b"),
                              ip="198.51.100.1", prefix=24)
    b.a.add_address6(b.ia, GA + "/64")
    b.b.add_address6(b.ib, GB + "/64")
    b.b.add_address6(b.ib1, "2001:db8:2::1/64")
    yield b
    b.close_all()


def route6(stack, dst):
    rt = stack.routes6
    r = rt.lookup(dst, 0)
    if r < 0:
        return None
    return (rt.prefix[r], bytes(rt.nexthop), rt.metric[r], rt.source[r])


def ripng_out(frames):
    """(ipv6 header, message) of each RIPng datagram among the frames."""
    out = []
    for f in frames:
        if f[12:14] == b"\x86\xdd" and f[20] == 17 and f[54:56] == b"\x02\x09":
            out.append((f[14:54], f[62:]))
    return out


def rtes(msg):
    return [(msg[e:e + 16], (msg[e + 16] << 8) | msg[e + 17], msg[e + 18], msg[e + 19])
            for e in range(4, len(msg), 20)]


def test_a_neighbours_connected_network_is_learned_via_its_link_local_and_used(ng):
    assert route6(ng.a, FAR) is None
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    assert route6(ng.a, FAR) == (64, LL_B, 2, "rip")
    assert ng.a.ripng.stats.routes_learned >= 1
    # and used: a UDP datagram from A's global address to B's far one goes by it
    from ustack.core import socket as so
    ng.run(3000, 5)   # the global addresses' DAD
    rx = ng.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    rx.bind(("2001:db8:2::1", 4000))
    tx = ng.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    tx.sendto(b"through the learned route", ("2001:db8:2::1", 4000))
    ng.pump(200)
    data, peer = rx.recvfrom(100)
    assert data == b"through the learned route" and peer[0] == GA
    c = ng.a.counters()
    assert c["ripng.rx_responses"] >= 1 and "ripng.rx_bad_rte" not in c
    # IPv4 RIP is not running: RIPng alone
    assert ng.a.rip is None and "rip.rx_messages" not in c


def test_the_control_channel_shows_the_learned_route_with_its_source(ng):
    """`ustack route -6` reads op route6 (core/ctl.py)."""
    import json
    from ustack.core import ctl
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    srv = ctl.Server(ng.a)
    d = json.loads(srv.handle_line(ctl.request("route6")))
    assert d["ok"], d
    assert {"dst": "2001:db8:2::", "prefix": 64, "via": "fe80::ff:fe00:b", "dev": "a0",
            "metric": 2, "proto": "rip", "src": None} in d["data"], d
    off = json.loads(ctl.Server(Stack()).handle_line(ctl.request("route6")))
    assert not off["ok"] and "IPv6 is off" in off["error"]


def test_updates_leave_from_the_link_local_with_hop_limit_255_and_poison_reverse(ng):
    seen = []
    ng.a.capture = lambda iface, buf, n, out: out and seen.append(bytes(buf[:n]))
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    ng.run(4000, 5)
    got = {}
    for hdr, msg in ripng_out(seen):
        assert hdr[7] == 255 and hdr[8:24] == LL_A, hdr.hex()   # RFC 2080 2.5
        assert msg[0] in (1, 2) and msg[1] == 1
        if msg[0] == 2 and hdr[24:40] == GROUP:
            for p, tag, plen, metric in rtes(msg):
                got[(p, plen)] = metric
    assert got[(FAR_NET, 64)] == 16                          # poisoned reverse
    assert got[(addr6.pton("2001:db8:1::"), 64)] == 1        # A's own network
    assert not [k for k in got if k[0][0] == 0xFE]           # no link-local prefix
    assert route6(ng.b, FAR)[3] == "connected"


def test_a_route_not_heard_of_times_out_then_is_deleted(ng):
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    ng.b.ripng = None           # B falls silent
    ng.run(8000, 10)
    assert route6(ng.a, FAR) is not None
    ng.run(3000, 10)            # RIP_TIMEOUT_MS since the last update
    assert route6(ng.a, FAR) is None and ng.a.ripng.stats.routes_timed_out == 1
    assert [r for r in ng.a.ripng.table() if r[0] == "2001:db8:2::"][0][4] == 16
    ng.run(7000, 10)            # RIP_GC_MS later: gone from RIPng's table too
    assert not [r for r in ng.a.ripng.table() if r[0] == "2001:db8:2::"]
    assert ng.a.ripng.stats.routes_deleted == 1


def test_a_withdrawn_network_is_announced_unreachable_at_once(ng):
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    ng.b.routes6.remove(FAR_NET, 64)   # B's far link goes
    assert ng.until(lambda: route6(ng.a, FAR) is None, 7000, 5)
    assert ng.a.ripng.stats.routes_timed_out == 0
    assert ng.b.ripng.stats.tx_triggered >= 1


def test_a_withdrawn_own_network_poisoned_back_installs_nothing(ng):
    """The same table code as RIPv2's (core/distvec.py): A's poisoned reverse of B's
    withdrawn network never becomes a metric-16 route on B."""
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    ng.b.routes6.remove(FAR_NET, 64)
    assert ng.until(lambda: route6(ng.a, FAR) is None, 7000, 5)
    ng.run(6000, 5)
    assert route6(ng.b, FAR) is None, route6(ng.b, FAR)


def test_a_static_route_goes_out_with_a_next_hop_entry(ng):
    """RFC 2080 2.1.1: B's route to 2001:db8:99::/48 via fe80::77 on the shared link: A
    learns it via fe80::77 directly; B's other routes still via B."""
    gw = addr6.pton("fe80::77")
    ng.b.routes6.add(addr6.pton("2001:db8:99::"), 48, gw, ng.ib, 0, SRC_STATIC)
    dst = addr6.pton("2001:db8:99::5")
    assert ng.until(lambda: route6(ng.a, dst) is not None, 10000)
    assert route6(ng.a, dst) == (48, gw, 2, "rip")
    assert ng.until(lambda: route6(ng.a, FAR) is not None, 10000)
    assert route6(ng.a, FAR) == (64, LL_B, 2, "rip")


def test_a_learned_route_never_replaces_a_connected_or_static_one(ng):
    ng.a.routes6.add(FAR_NET, 64, LL_B, ng.ia, 5, SRC_STATIC)
    ng.run(8000, 10)
    assert route6(ng.a, FAR) == (64, LL_B, 5, "static")
    assert ng.a.ripng.stats.rx_shadowed >= 1


# ---- crafted messages ---------------------------------------------------------------------
PEER_LL = addr6.pton("fe80::1")


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum((data[i] << 8) | data[i + 1] for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ripng_frame(payload, src=PEER_LL, dst=GROUP, sport=521, hlim=255):
    ulen = 8 + len(payload)
    udp = sport.to_bytes(2, "big") + (521).to_bytes(2, "big") + ulen.to_bytes(2, "big") + \
        b"\0\0" + payload
    pseudo = src + dst + ulen.to_bytes(4, "big") + b"\0\0\0\x11"
    c = _csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + c.to_bytes(2, "big") + udp[8:]
    ip = bytes([0x60, 0, 0, 0]) + ulen.to_bytes(2, "big") + bytes([17, hlim]) + src + dst + udp
    mac = b"\x33\x33" + dst[12:] if dst[0] == 0xFF else F.STACK_MAC
    return F.eth(mac, F.HOST_MAC, 0x86DD, ip)


def rte(prefix, plen, metric, tag=0):
    return addr6.pton(prefix) + tag.to_bytes(2, "big") + bytes([plen, metric])


def fed():
    from tests.feed import Fed
    f = Fed(config={"IPV6": True, "RIPNG": True})
    f.stack.add_address6(f.iface, "2001:db8:1::2/64")
    f.iface.nd.add_static(PEER_LL, F.HOST_MAC)   # the peer's link-layer address is known
    f.advance(3000)   # DAD, the first request and update
    f.drv.tx.clear()
    return f


def learned(f):
    return [r for r in f.stack.ripng.table() if r[2] is not None]


GOOD = rte("2001:db8:5::", 48, 1)


def test_a_good_message_is_learned():
    """The control for the bad ones below: the same frame, sane, is taken."""
    f = fed()
    f.feed(ripng_frame(b"\x02\x01\x00\x00" + GOOD))
    assert learned(f) == [("2001:db8:5::", 48, "fe80::1", "eth0", 2)]
    r = f.stack.routes6.lookup(addr6.pton("2001:db8:5::9"), 0)
    assert r >= 0 and f.stack.routes6.source[r] == "rip"


BAD = [
    (ripng_frame(b"\x02\x02\x00\x00" + GOOD), "rx_bad_version"),
    (ripng_frame(b"\x02\x00\x00\x00" + GOOD), "rx_bad_version"),
    (ripng_frame(b"\x07\x01\x00\x00" + GOOD), "rx_bad_command"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD[:13]), "rx_malformed"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD + b"\0"), "rx_malformed"),
    (ripng_frame(b"\x02\x01"), "rx_malformed"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::", 129, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::", 200, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("fe80::", 64, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("ff0e::", 16, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::1", 48, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::", 48, 0)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::", 48, 17)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + rte("::1", 128, 1)), "rx_bad_rte"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD, src=addr6.pton("2001:db8:1::1")),
     "rx_bad_source"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD, hlim=254), "rx_bad_hop_limit"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD, hlim=1), "rx_bad_hop_limit"),
    (ripng_frame(b"\x02\x01\x00\x00" + GOOD, sport=5000), "rx_bad_port"),
]
BAD_IDS = ["version 2", "version 0", "command 7", "13-byte entry", "one byte over",
           "2-byte message", "prefix length 129", "prefix length 200", "link-local prefix",
           "multicast prefix", "host bits", "metric 0", "metric 17", "loopback",
           "global source", "hop limit 254", "hop limit 1", "port 5000"]


@pytest.mark.parametrize("frame,counter", BAD, ids=BAD_IDS)
def test_malformed_or_hostile_messages_are_counted_and_change_nothing(frame, counter):
    f = fed()
    rt6 = f.stack.routes6.table()
    out = f.feed(frame)
    c = f.counters()
    assert c["ripng." + counter] == 1, c
    assert learned(f) == [] and f.stack.routes6.table() == rt6
    assert not ripng_out(out) and "exceptions" not in str(c)
    assert c["pbuf.free"] == c["pbuf.count"]


def test_a_next_hop_entry_names_the_gateway_of_the_entries_after_it():
    f = fed()
    nh = rte("fe80::99", 0, 0xFF)
    msg = b"\x02\x01\x00\x00" + rte("2001:db8:6::", 48, 1) + nh + rte("2001:db8:7::", 48, 1) + \
        rte("::", 0, 0xFF) + rte("2001:db8:8::", 48, 3)
    f.feed(ripng_frame(msg))
    assert sorted(learned(f)) == [("2001:db8:6::", 48, "fe80::1", "eth0", 2),
                                  ("2001:db8:7::", 48, "fe80::99", "eth0", 2),
                                  ("2001:db8:8::", 48, "fe80::1", "eth0", 4)]


def test_a_next_hop_that_is_not_link_local_means_the_sender():
    """RFC 2080 2.1.1: treated as ::, counted."""
    f = fed()
    msg = b"\x02\x01\x00\x00" + rte("2001:db8:1::99", 0, 0xFF) + rte("2001:db8:6::", 48, 1)
    f.feed(ripng_frame(msg))
    assert learned(f) == [("2001:db8:6::", 48, "fe80::1", "eth0", 2)]
    assert f.counters()["ripng.rx_bad_next_hop"] == 1


def test_the_route_tag_is_kept_and_passed_on():
    f = fed()
    f.feed(ripng_frame(b"\x02\x01\x00\x00" + rte("2001:db8:5::", 48, 1, tag=0xBEEF)))
    f.advance(5000)
    out = f.drv.tx[:]
    tags = [(p, tag, m) for hdr, msg in ripng_out(out) if msg[0] == 2
            for p, tag, plen, m in rtes(msg) if p == addr6.pton("2001:db8:5::")]
    assert tags and all(t == (addr6.pton("2001:db8:5::"), 0xBEEF, 16) for t in tags), tags


def test_a_whole_table_request_is_answered_to_its_sender():
    f = fed()
    req = b"\x01\x01\x00\x00" + rte("::", 0, 16)
    out = f.feed(ripng_frame(req, sport=5000, dst=addr6.pton("fe80::ff:fe00:2")))
    resp = ripng_out(out)
    assert resp, out
    hdr, msg = resp[-1]
    assert hdr[24:40] == PEER_LL and hdr[7] == 255
    assert hdr[8:24] == addr6.pton("fe80::ff:fe00:2")
    assert msg[:2] == b"\x02\x01"
    assert (addr6.pton("2001:db8:1::"), 0, 64, 1) in rtes(msg)


def test_a_request_for_single_entries_gets_our_metrics():
    f = fed()
    req = b"\x01\x01\x00\x00" + rte("2001:db8:1::", 64, 16) + rte("2001:db8:77::", 48, 1)
    out = f.feed(ripng_frame(req, sport=5000, dst=addr6.pton("fe80::ff:fe00:2")))
    hdr, msg = ripng_out(out)[-1]
    assert [(p, m) for p, t, pl, m in rtes(msg)] == [(addr6.pton("2001:db8:1::"), 1),
                                                     (addr6.pton("2001:db8:77::"), 16)]


def test_the_learned_table_is_bounded():
    from tests.feed import Fed
    f = Fed(config={"IPV6": True, "RIPNG": True, "RIPNG_ROUTES": 4})
    f.advance(3000)
    msg = b"\x02\x01\x00\x00" + b"".join(rte("2001:db8:%x::" % (i + 1), 48, 1)
                                         for i in range(10))
    f.feed(ripng_frame(msg))
    assert len(f.stack.ripng.table()) == 4
    assert f.counters()["ripng.table_full"] >= 6


def test_ripng_config_is_checked():
    with pytest.raises(ValueError, match="RIPNG needs IPV6"):
        Stack({"RIPNG": True})
    with pytest.raises(ValueError, match="RIPNG_ROUTES"):
        Stack({"IPV6": True, "RIPNG": True, "RIPNG_ROUTES": 0})


def test_a_route_the_routing_table_has_no_room_for_is_not_kept():
    """The IPv6 routing table fills before RIPng's: the refused routes are counted and not
    in RIPng's table (whatever is there is announced); one installs when the neighbour
    tells it again and there is room (core/distvec.py, shared with RIPv2)."""
    from tests.feed import Fed
    f = Fed(config={"IPV6": True, "RIPNG": True, "ROUTE_ENTRIES": 6})
    f.stack.add_address6(f.iface, "2001:db8:1::2/64")
    f.advance(3000)
    rt = f.stack.routes6
    room = rt.size - rt.count
    assert 0 < room < 5, (rt.size, rt.count)
    nets = ["2001:db8:%x::" % (i + 10) for i in range(room + 2)]
    msg = b"\x02\x01\x00\x00" + b"".join(rte(n, 48, 1) for n in nets)
    f.feed(ripng_frame(msg))
    installed = [n for n in nets if rt.find(addr6.pton(n), 48) >= 0]
    assert len(installed) == room and rt.count == rt.size
    assert f.counters()["ripng.table_full"] == 2
    assert sorted(r[0] for r in learned(f)) == sorted(installed)
    # the neighbour loses one: its next update installs a refused one in its place
    f.feed(ripng_frame(b"\x02\x01\x00\x00" + rte(installed[0], 48, 16)))
    f.feed(ripng_frame(b"\x02\x01\x00\x00" + b"".join(rte(n, 48, 1) for n in nets
                                                      if n != installed[0])))
    now = [n for n in nets if rt.find(addr6.pton(n), 48) >= 0]
    assert len(now) == room and [n for n in now if n not in installed], now
    assert sorted(r[0] for r in learned(f) if r[4] < 16) == sorted(now)
