"""A connection's route, next hop and neighbour entry are looked up once and kept (issue 13),
invalidated by the routing table's and the ARP cache's generation numbers: a route or a
neighbour's MAC that changes mid-connection takes effect on the very next segment."""
from ustack.core import socket as so
from tests import frames as F
from tests.unit.test_tcp_segments import Peer

NEW_MAC = bytes.fromhex("02000000aa01")
GW = bytes([192, 0, 2, 3])   # another router on the link
GW_MAC = bytes.fromhex("02000000aa02")


def connected():
    """A connection whose small sends each leave at once (TCP_NODELAY: no Nagle)."""
    p = Peer()
    p.sa = p.connect()
    p.sock.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    return p


def sent_frames(p, data):
    """The frames the stack sends for data written on the connection."""
    p.sock.send(data)
    out = p.fed.drv.tx[:]
    p.fed.drv.tx.clear()
    assert out, "nothing sent"
    return out


def count_calls(obj, name):
    calls = [0]
    real = getattr(obj, name)

    def counted(*a):
        calls[0] += 1
        return real(*a)
    setattr(obj, name, counted)
    return calls


def test_segments_after_the_first_skip_the_route_and_arp_lookups():
    p = connected()
    routes = count_calls(p.stack.routes, "lookup")
    arp = count_calls(p.fed.iface.arp, "find")
    for k in range(5):
        sent_frames(p, b"x%d" % k)
    assert routes[0] == 0 and arp[0] == 0  # the handshake filled the cache


def test_a_neighbour_mac_change_takes_effect_on_the_next_segment():
    p = connected()
    assert sent_frames(p, b"one")[0][0:6] == F.HOST_MAC
    p.fed.iface.arp.add_static(F.HOST_IP, NEW_MAC)  # the host's MAC changed (new NIC)
    assert sent_frames(p, b"two")[0][0:6] == NEW_MAC


def test_a_route_change_takes_effect_on_the_next_segment():
    p = connected()
    assert sent_frames(p, b"one")[0][0:6] == F.HOST_MAC
    p.fed.iface.arp.add_static(GW, GW_MAC)
    p.stack.add_route("192.0.2.1", 32, "192.0.2.3")  # the host now by way of GW
    assert sent_frames(p, b"two")[0][0:6] == GW_MAC
    p.stack.routes.remove("192.0.2.1", 32)  # and back on-link
    assert sent_frames(p, b"three")[0][0:6] == F.HOST_MAC


def test_a_neighbour_entry_forgotten_mid_connection_is_resolved_again():
    p = connected()
    sent_frames(p, b"one")
    arp = p.fed.iface.arp
    arp._clear(arp.find(F.HOST_IP))  # evicted (table full, or timed out)
    out = sent_frames(p, b"two")
    assert out[0][12:14] == b"\x08\x06"  # an ARP request, the segment waiting for its reply
    assert arp.find(F.HOST_IP) >= 0
