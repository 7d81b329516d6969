"""Fragments and Path MTU Discovery against Linux (issue 9): the stack on a TAP in a router
namespace, a far namespace behind a smaller link (one veth for IPv4 with MTU 1000, one for
IPv6 with MTU 1280). Linux pings the stack with datagrams that need fragments both ways,
sends it a 4000-byte UDP6 datagram to echo, and a far host's TCP talks to the stack's echo
service: the stack's 1500-byte segments hit the small link, the Linux router answers with
Fragmentation Needed / Packet Too Big, and the transfer completes at the smaller MSS.

The far host advertises a large MSS (`advmss` on its routes) so the stack's segments are
sized by its own MTU, not by the far link: only Path MTU Discovery can shrink them."""
import re
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns]

STACK6 = "2001:db8:1::2"
HOST6 = "2001:db8:1::1"
FAR4 = "198.51.100.2"
R4 = "198.51.100.1"
FAR6 = "2001:db8:2::2"
R6 = "2001:db8:2::1"


@pytest.fixture(scope="module")
def net():
    r = Netns("pmr")
    far = Netns("pmf")
    try:
        s = StackProc(r, "--serve", "echo", "--gateway", HOST_IP,
                      # the far prefix on-link for the stack: the router answers its Neighbor
                      # Solicitations by proxy (no RA daemon needed for the IPv6 route)
                      "--ip6", STACK6 + "/32", "--host-ip6", HOST6 + "/64")
        for k in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                  "net.ipv6.conf.all.proxy_ndp=1", "net.ipv6.conf.ustk0.proxy_ndp=1"):
            r.run(["sysctl", "-qw", k], check=True)
        for a, b, mtu in (("r4", "f4", 1000), ("r6", "f6", 1280)):
            r.run(["ip", "link", "add", a, "mtu", str(mtu), "type", "veth", "peer", "name", b,
                   "mtu", str(mtu), "netns", far.name], check=True)
            r.run(["ip", "link", "set", a, "up"], check=True)
            far.run(["ip", "link", "set", b, "up"], check=True)
        r.run(["ip", "addr", "add", R4 + "/24", "dev", "r4"], check=True)
        far.run(["ip", "addr", "add", FAR4 + "/24", "dev", "f4"], check=True)
        r.run(["ip", "-6", "addr", "add", R6 + "/64", "dev", "r6", "nodad"], check=True)
        far.run(["ip", "-6", "addr", "add", FAR6 + "/64", "dev", "f6", "nodad"], check=True)
        r.run(["ip", "-6", "neigh", "add", "proxy", FAR6, "dev", "ustk0"], check=True)
        # the far host's MSS option says 1460/1440 whatever its link: segments from the stack
        # start at the stack's own MTU
        far.run(["ip", "route", "add", "default", "via", R4, "advmss", "1460"], check=True)
        far.run(["ip", "-6", "route", "add", "default", "via", R6, "advmss", "1440"],
                check=True)
        _wait_dad(r)
        yield r, far, s
        c = s.stop()
        assert c["pbuf.free"] == c["pbuf.count"]
    finally:
        far.close()
        r.close()


def _wait_dad(ns):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        out = ns.run(["ip", "-6", "addr", "show"]).stdout
        if HOST6 in out and "tentative" not in out:
            return
        time.sleep(0.2)


def ping(ns, *args):
    r = ns.run(["ping", "-n"] + list(args), timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2))


def test_large_pings_are_reassembled_and_answered_in_fragments_both_families(net):
    r, far, s = net
    assert ping(r, "-6", "-c", "3", "-i", "0.05", "-W", "2", "-s", "3000", STACK6) == (3, 3)
    assert ping(r, "-4", "-c", "3", "-i", "0.05", "-W", "2", "-s", "3000", STACK_IP) == (3, 3)
    c = s.live_counters()
    assert c["reass6.reassembled"] >= 3 and c["ip6.tx_fragmented"] >= 3


def test_a_4000_byte_udp6_datagram_is_echoed_whole(net):
    r, far, s = net
    out = r.python("import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                   "s.settimeout(3)\nd = bytes(range(250)) * 16\n"
                   "s.sendto(d, ('%s', 7))\ng, a = s.recvfrom(10000)\n"
                   "print('ok' if g == d else 'bad %%d' %% len(g))\n" % STACK6)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


ECHO = ("import socket, sys\n"
        "c = socket.create_connection((sys.argv[1], 7), timeout=10)\n"
        "d = bytes(range(256)) * 800\n"
        "c.sendall(d)\n"
        "g = bytearray()\n"
        "while len(g) < len(d):\n"
        "    x = c.recv(65536)\n"
        "    if not x: break\n"
        "    g += x\n"
        "print('ok' if bytes(g) == d else 'bad %d' % len(g))\n")


@pytest.mark.parametrize("dst,kind", [(STACK_IP, "icmp.rx_frag_needed"),
                                      (STACK6, "icmp6.rx_packet_too_big")],
                         ids=["ipv4_frag_needed", "ipv6_packet_too_big"])
def test_tcp_through_a_smaller_link_shrinks_its_segments_and_completes(net, dst, kind):
    r, far, s = net
    before = s.live_counters().get("tcp.pmtu_mss_lowered", 0)
    out = far.run([sys.executable, "-c", ECHO, dst], timeout=60)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr
    c = s.live_counters()
    assert c.get(kind, 0) >= 1
    assert c.get("tcp.pmtu_mss_lowered", 0) == before + 1
    assert c.get("pmtu.learned", 0) >= 1
