"""Redirects from the stack as a router, for both families (RFC 1812 5.2.7.2 / RFC 792, RFC
4861 8.2; issue 14), taken by Linux. One link, a Linux bridge in namespace A joining three
nodes: host A (the bridge's own addresses, 192.0.2.1 and 2001:db8::1, accept_redirects on),
the stack (`ustack up --forward`, 192.0.2.2 and 2001:db8::2 on the TAP) and a second router
R, a Linux namespace on a veth (192.0.2.3, 2001:db8::3) in front of the destinations
203.0.113.1 and 2001:db8:ff::1.

A's routes to the destinations point at the stack; the stack's point at R (added through
`ustack route add`). A's first ping goes A -> stack -> R (R answers A directly), and the
stack tells A of the better first hop: Linux's `ip route get` then shows the redirected
route via R, and later pings go straight to R."""
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc

pytestmark = [needs_netns]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
A4, S4, R4, D4 = "192.0.2.1", "192.0.2.2", "192.0.2.3", "203.0.113.1"
A6, S6, R6, D6 = "2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8:ff::1"
S6_LL = "fe80::ff:fe00:2"      # the stack's link-local address (from its MAC)


@pytest.fixture
def lan():
    a = Netns("rda")
    r = Netns("rdr")
    stack = None
    try:
        for k in ("all", "default"):
            a.run(["sysctl", "-qw", "net.ipv4.conf.%s.accept_redirects=1" % k])
            a.run(["sysctl", "-qw", "net.ipv4.conf.%s.secure_redirects=0" % k])
            a.run(["sysctl", "-qw", "net.ipv6.conf.%s.accept_redirects=1" % k])
            a.run(["sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % k])
            r.run(["sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % k])
        r.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        r.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        stack = StackProc(a, "--forward", "--ip6", S6 + "/64", host_ip=None)
        a.run(["ip", "link", "add", "br0", "type", "bridge"], check=True)
        a.run(["ip", "link", "add", "rda0", "type", "veth", "peer", "name", "rdr0", "netns",
               r.name], check=True)
        for dev in ("ustk0", "rda0"):
            a.run(["ip", "link", "set", dev, "master", "br0", "up"], check=True)
        a.run(["ip", "addr", "add", A4 + "/24", "dev", "br0"], check=True)
        a.run(["ip", "-6", "addr", "add", A6 + "/64", "dev", "br0", "nodad"], check=True)
        a.run(["ip", "link", "set", "br0", "up"], check=True)
        r.run(["ip", "addr", "add", R4 + "/24", "dev", "rdr0"], check=True)
        r.run(["ip", "-6", "addr", "add", R6 + "/64", "dev", "rdr0", "nodad"], check=True)
        r.run(["ip", "link", "set", "rdr0", "up"], check=True)
        # the destinations, on a link of R's own (a veth pair inside R)
        r.run(["ip", "link", "add", "far0", "type", "veth", "peer", "name", "far1"], check=True)
        r.run(["ip", "addr", "add", D4 + "/24", "dev", "far0"], check=True)
        r.run(["ip", "-6", "addr", "add", D6 + "/48", "dev", "far0", "nodad"], check=True)
        for dev in ("far0", "far1"):
            r.run(["ip", "link", "set", dev, "up"], check=True)
        r_ll = [w for w in r.run(["ip", "-6", "addr", "show", "dev", "rdr0", "scope",
                                  "link"]).stdout.split() if w.startswith("fe80::")]
        assert r_ll, "R has no link-local address"
        r_ll = r_ll[0].split("/")[0]
        # A -> the stack; the stack -> R
        a.run(["ip", "route", "add", "203.0.113.0/24", "via", S4], check=True)
        a.run(["ip", "-6", "route", "add", "2001:db8:ff::/48", "via", S6_LL, "dev", "br0"],
              check=True)
        for argv in (["route", "add", "203.0.113.0/24", "via", R4],
                     ["route", "add", "2001:db8:ff::/48", "via", r_ll, "dev", "eth0"]):
            out = a.run(CLI + argv)
            assert out.returncode == 0, out.stderr
        yield a, r, stack, r_ll
    finally:
        if stack is not None and stack.p.poll() is None:
            stack.stop()
        r.close()
        a.close()


def test_linux_takes_the_stacks_redirects_to_the_better_router(lan):
    a, r, stack, r_ll = lan
    assert "via %s" % S4 in a.run(["ip", "route", "get", D4]).stdout
    p = a.run(["ping", "-n", "-c", "3", "-i", "0.3", "-W", "2", D4])
    assert "3 received" in p.stdout, p.stdout + p.stderr
    got = a.run(["ip", "route", "get", D4]).stdout
    assert "via %s" % R4 in got and "redirected" in got, got     # Linux's cached exception
    p = a.run(["ping", "-6", "-n", "-c", "3", "-i", "0.3", "-W", "2", D6])
    assert "3 received" in p.stdout, p.stdout + p.stderr
    got = a.run(["ip", "-6", "route", "get", D6]).stdout
    assert "via %s" % r_ll in got, got
    c = stack.stop()
    # the first datagram of each family was redirected and still forwarded; once Linux
    # took the redirect the stack saw no more
    assert c["icmp.tx_redirects"] >= 1 and c["icmp6.tx_redirects"] >= 1, c
    assert 1 <= c["ip.fwd_packets"] < 3 and 1 <= c["ip6.fwd_packets"] < 3, c
    assert c["pbuf.free"] == c["pbuf.count"], c
