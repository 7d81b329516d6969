"""ustack as an IPv6 router between two Linux hosts (issues 9 and 14): `ustack up --forward
--link ...,ip6=...` with two TAPs. Host A is the kernel of the namespace the stack runs in
(2001:db8::1 on ustk0), host B the kernel of a second namespace (2001:db8:1::2 on ustk1,
moved there); each routes the other's prefix via the stack.

- ping -6 both ways, traceroute -6 names the stack as the first hop (ICMPv6 Time Exceeded,
  RFC 4443 3.3), a TCP transfer A -> B over IPv6 through the stack (SHA-256 checked);
- the stack's link to B is 1280 bytes while B believes 1500: A's TCP meets Packet Too Big
  from the stack (RFC 8200 5: routers do not fragment) and A's route learns mtu 1280;
- a destination with no route gets Destination Unreachable (no route), one whose neighbour
  never answers Address Unreachable (RFC 4443 3.1 codes 0 and 3), both seen by Linux ping."""
import hashlib
import shutil
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.routerkit import stack_between

pytestmark = [needs_netns, pytest.mark.skipif(
    not shutil.which("traceroute"), reason="needs traceroute (.ci/setup installs it)")]

A6 = "2001:db8::1"
S6A = "2001:db8::2"
S6B = "2001:db8:1::1"
B6 = "2001:db8:1::2"
SIZE = 2000000


@pytest.fixture
def router6():
    with stack_between(
            "r6", ["--forward", "--ip6", S6A + "/64", "--host-ip6", A6 + "/64",
                   "--link", "tap=ustk1,ip=198.51.100.1/24,mtu=1280,ip6=%s/64" % S6B],
            a_before=[["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]],
            b_cmds=[["sysctl", "-qw", "net.ipv6.conf.ustk1.accept_dad=0"],
                    ["ip", "link", "set", "ustk1", "mtu", "1500", "up"],
                    ["ip", "-6", "addr", "add", B6 + "/64", "dev", "ustk1", "nodad"],
                    ["ip", "-6", "route", "add", "default", "via", S6B]],
            a_cmds=[["ip", "-6", "route", "add", "2001:db8:1::/64", "via", S6A]]) \
            as (a, b, stack):
        assert " eth1=ustk1:198.51.100.1/24" in stack.ready, stack.ready
        yield a, b, stack


def test_the_stack_routes_ipv6_between_two_linux_hosts(router6):
    a, b, stack = router6
    r = a.run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", B6])
    assert "3 received" in r.stdout, r.stdout + r.stderr
    r = b.run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", A6])
    assert "3 received" in r.stdout, r.stdout + r.stderr
    # the stack is the first hop, B the second (UDP probes; B's port unreachable ends it)
    r = a.run(["traceroute", "-6", "-n", "-q", "1", "-w", "2", "-m", "4", B6], timeout=60)
    hops = [ln.split() for ln in r.stdout.splitlines()[1:]]
    assert hops[0][:2] == ["1", S6A] and hops[1][:2] == ["2", B6], r.stdout + r.stderr
    # a hop limit of 1 ends at the stack, which says so (ping's view of it)
    r = a.run(["ping", "-6", "-n", "-c", "1", "-t", "1", "-W", "2", B6])
    assert "From %s" % S6A in r.stdout and "Time exceeded" in r.stdout, r.stdout
    # TCP A -> B; B's link is 1280 bytes: A meets Packet Too Big and sends smaller
    sink = b.popen([sys.executable, "-c",
                    "import socket, hashlib\nl = socket.socket(socket.AF_INET6)\n"
                    "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                    "l.bind(('::', 5006)); l.listen(1); print('listening', flush=True)\n"
                    "c, a = l.accept(); h = hashlib.sha256(); t = 0\n"
                    "while True:\n    d = c.recv(1 << 20)\n    if not d: break\n"
                    "    h.update(d); t += len(d)\n"
                    "c.close(); print(t, h.hexdigest(), flush=True)\n"])
    assert "listening" in sink.stdout.readline()
    t0 = time.time()
    r = a.python(
        "import socket\n"
        "s = socket.create_connection(('%s', 5006), timeout=20)\n"
        "s.sendall(bytes(range(256)) * %d)\n"
        "s.close()\n" % (B6, SIZE // 256), timeout=60)
    assert r.returncode == 0, r.stderr
    out = sink.communicate(timeout=30)[0].split()
    took = time.time() - t0
    data = bytes(range(256)) * (SIZE // 256)
    assert out == [str(len(data)), hashlib.sha256(data).hexdigest()], out
    print("forwarded TCP over IPv6 A->B: %.1f MB/s" % (len(data) / took / 1e6))
    route = a.run(["ip", "-6", "route", "get", B6]).stdout
    assert "mtu 1280" in route, route   # A learned the path MTU from the stack's ICMPv6
    c = stack.stop()
    assert c["ip6.fwd_packets"] > SIZE // 1280, c
    assert c["ip6.fwd_hop_limit"] >= 2 and c["ip6.fwd_too_big"] >= 1, c
    assert c["pbuf.free"] == c["pbuf.count"], c


def test_unreachable_destinations_are_reported_to_linux(router6):
    a, b, stack = router6
    # no route at all (the stack has no default route): code 0
    a.run(["ip", "-6", "route", "add", "2001:db8:77::/64", "via", S6A], check=True)
    r = a.run(["ping", "-6", "-n", "-c", "1", "-W", "2", "2001:db8:77::1"])
    assert "From %s" % S6A in r.stdout and "No route" in r.stdout, r.stdout
    # on the stack's link to B but nobody there: ND gives up, code 3 (after ~3 s)
    r = a.run(["ping", "-6", "-n", "-c", "1", "-W", "6", "2001:db8:1::99"])
    assert "From %s" % S6A in r.stdout and "Address unreachable" in r.stdout, r.stdout
    c = stack.stop()
    assert c["ip6.fwd_no_route"] == 1 and c["ip6.fwd_addr_unreach"] == 1, c
    assert c["pbuf.free"] == c["pbuf.count"], c
