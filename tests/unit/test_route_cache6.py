"""An IPv6 connection's route, next hop and neighbour entry are looked up once and kept
(core/route.py RouteCache, as IPv4's, issue 13), invalidated by routes6's and the neighbour
cache's generation numbers: a route or a neighbour's link-layer address that changes
mid-connection takes effect on the very next segment (RFC 4861 7.3.3: an entry that went is
resolved again)."""
from ustack.core import socket as so
from ustack.core import addr6
from tests.twostack import MAC_B
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB

NEW_MAC = bytes.fromhex("02000000aa01")
GW = "fe80::3"                      # another router on the link
GW_MAC = bytes.fromhex("02000000aa02")


def connected():
    bench = Bench6()
    ls = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(1)
    ls.setblocking(False)
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((GB, 80))
    assert bench.until(lambda: ls.readable())
    c.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    out = []
    bench.a.capture = lambda iface, buf, n, tx: tx and out.append(bytes(buf[:n]))
    return bench, c, out


def payload(f):
    """The TCP payload of the IPv6 frame f ([] when it is no TCP segment)."""
    if f[12:14] != b"\x86\xdd" or f[20] != 6:
        return None
    return f[54 + ((f[54 + 12] >> 4) << 2):]


def sent(bench, c, out, data):
    """The TCP segments A sends for data (its destination MACs), the rest of the frames too."""
    del out[:]
    c.send(data)
    bench.run(2)
    return [f for f in out if payload(f) == data]


def count_calls(obj, name):
    calls = [0]
    real = getattr(obj, name)

    def counted(*a):
        calls[0] += 1
        return real(*a)
    setattr(obj, name, counted)
    return calls


def test_segments_after_the_first_skip_the_route_and_neighbour_lookups():
    bench, c, out = connected()
    sent(bench, c, out, b"first")
    routes = count_calls(bench.a.routes6, "lookup")
    nd = count_calls(bench.ia.nd, "find")
    for k in range(5):
        assert len(sent(bench, c, out, b"x%d" % k)) == 1
    assert routes[0] == 0 and nd[0] == 0


def test_a_neighbour_mac_change_takes_effect_on_the_next_segment():
    bench, c, out = connected()
    assert sent(bench, c, out, b"one")[0][0:6] == MAC_B
    bench.ia.nd.add_static(addr6.pton(GB), NEW_MAC)     # B's MAC changed (new NIC)
    assert sent(bench, c, out, b"two")[0][0:6] == NEW_MAC


def test_a_route_change_takes_effect_on_the_next_segment():
    bench, c, out = connected()
    assert sent(bench, c, out, b"one")[0][0:6] == MAC_B
    bench.ia.nd.add_static(addr6.pton(GW), GW_MAC)
    bench.a.routes6.add(addr6.pton(GB), 128, addr6.pton(GW), bench.ia)   # B now via GW
    assert sent(bench, c, out, b"two")[0][0:6] == GW_MAC
    bench.a.routes6.remove(addr6.pton(GB), 128)                          # and back on-link
    assert sent(bench, c, out, b"three")[0][0:6] == MAC_B


def test_a_neighbour_entry_forgotten_mid_connection_is_resolved_again():
    bench, c, out = connected()
    sent(bench, c, out, b"one")
    nd = bench.ia.nd
    nd.remove(addr6.pton(GB))                 # evicted (table full, or NUD gave up)
    del out[:]
    c.send(b"two")
    bench.a.poll(bench.t)
    # a Neighbor Solicitation (ICMPv6 135) for B, the segment waiting for its answer
    assert any(f[20] == 58 and f[54] == 135 and f[62:78] == addr6.pton(GB) for f in out)
    assert nd.find(addr6.pton(GB)) >= 0
    bench.run(20)
    assert any(payload(f) == b"two" for f in out)
