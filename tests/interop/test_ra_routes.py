"""Routes from Router Advertisement Route Information options (RFC 4191 2.3, issue 9), with
Debian's radvd as the router: the TAP's kernel side is in namespace R (2001:db8:1::1/64,
forwarding on, 2001:db8:ff::1 on a link behind it), radvd advertises no default
route (AdvDefaultLifetime 0) but `route 2001:db8:ff::/48 { AdvRouteLifetime 30; }`.

The stack (`ustack up --ip6 2001:db8:1::2/64 --serve echo`) shows the route in `ustack route
-6` as proto ra via radvd's link-local address, its UDP echo answers a client on
2001:db8:ff::1 through that route (before the RA it had no way there), and radvd's last RAs
at shutdown (RemoveRoute: the route with lifetime 0) take the route away again."""
import json
import os
import shutil
import signal
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc

pytestmark = [needs_netns, pytest.mark.skipif(
    not shutil.which("radvd"), reason="needs radvd (.ci/setup installs it)")]

HOST6 = "2001:db8:1::1"
STACK6 = "2001:db8:1::2"
FAR = "2001:db8:ff::1"
CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
RADVD_CONF = """interface ustk0 {
  AdvSendAdvert on; IgnoreIfMissing on;
  MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 0;
  route 2001:db8:ff::/48 { AdvRouteLifetime 30; AdvRoutePreference high; };
};
"""


def routes6(ns):
    r = ns.run(CLI + ["route", "-6", "--json"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ra_route(ns):
    return [x for x in routes6(ns) if x["dst"] == "2001:db8:ff::" and x["prefix"] == 48]


def wait_for(fn, timeout):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.3)


ECHO = ("import socket, sys\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
        "s.bind(('%s', 0)); s.settimeout(1.5)\n"
        "s.sendto(b'far away', ('%s', 7))\n"
        "try:\n    print(s.recvfrom(100)[0].decode())\n"
        "except socket.timeout:\n    print('timeout')\n" % (FAR, STACK6))


def test_a_route_information_option_becomes_a_route_and_lifetime_0_takes_it_away():
    r = Netns("rio")
    radvd = None
    stack = None
    conf = "/tmp/%s-radvd.conf" % r.name
    try:
        r.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        r.run(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        r.run(["ip", "link", "add", "far0", "type", "veth", "peer", "name", "far1"],
              check=True)   # (a veth pair: no dummy module needed)
        r.run(["ip", "link", "set", "far1", "up"], check=True)
        r.run(["ip", "-6", "addr", "add", FAR + "/48", "dev", "far0", "nodad"], check=True)
        r.run(["ip", "link", "set", "far0", "up"], check=True)
        stack = StackProc(r, "--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64",
                          "--serve", "echo")
        # no route to the far prefix yet: the echo's answer has no way back
        assert ra_route(r) == []
        assert r.python(ECHO).stdout.strip() == "timeout"
        with open(conf, "w") as fh:
            fh.write(RADVD_CONF)
        radvd = r.popen(["radvd", "-n", "-C", conf, "-p", "/tmp/%s-radvd.pid" % r.name,
                         "-m", "stderr"])
        got = wait_for(lambda: ra_route(r), 15)
        ll = [a for a in r.run(["ip", "-6", "addr", "show", "dev", "ustk0", "scope",
                                "link"]).stdout.split() if a.startswith("fe80::")][0]
        assert got and got[0]["proto"] == "ra" and got[0]["via"] == ll.split("/")[0], got
        assert got[0]["metric"] == 0, got        # AdvRoutePreference high (RFC 4191 2.1)
        shown = r.run(CLI + ["route", "-6"]).stdout
        assert "2001:db8:ff::/48 via %s dev eth0 proto ra" % ll.split("/")[0] in shown, shown
        # the route is used: the stack's answer to 2001:db8:ff::1 goes to the router
        assert r.python(ECHO).stdout.strip() == "far away"
        c = stack.live_counters()
        assert c["eth0.slaac.routes_added"] == 1 and c.get("ip6.tx_no_route", 0) >= 1, c
        # radvd's goodbye RAs carry the route with lifetime 0 (RemoveRoute on, its default)
        radvd.send_signal(signal.SIGTERM)
        radvd.wait(10)
        assert wait_for(lambda: not ra_route(r), 10), routes6(r)
        assert r.python(ECHO).stdout.strip() == "timeout"
        c = stack.stop()
        assert c["eth0.slaac.routes_removed"] == 1, c
        assert c.get("stack.exceptions", 0) == 0 and c["pbuf.free"] == c["pbuf.count"], c
    finally:
        if radvd is not None and radvd.poll() is None:
            radvd.kill()
        if stack is not None and stack.p.poll() is None:
            stack.stop()
        r.close()
        for ext in ("conf", "pid"):
            try:
                os.remove("/tmp/%s-radvd.%s" % (r.name, ext))
            except OSError:
                pass
