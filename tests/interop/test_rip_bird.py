"""RIPv2 (`ustack up --rip`, core/rip.py) against BIRD 2 from Debian, timers shortened on both
sides so a test takes seconds. The namespace's kernel is a router: its TAP side faces the
stack (192.0.2.0/24), a veth leads to a far namespace (198.51.100.0/24). BIRD speaks RIP on
the TAP side and exports what it learns into the router's kernel table.

- the stack learns the far network from BIRD (proto rip, metric 2) and reaches a far host
  through it (ping and a TCP echo, SHA-256 checked);
- BIRD learns the stack's static route with the stack's gateway as next hop (RFC 2453 4.4);
- the far link goes down: BIRD withdraws the network and the stack drops its route within
  seconds (triggered update with metric 16), long before its timeout;
- BIRD stops: the stack's route to anything BIRD told it times out on its own timers.
Both runtimes: the same core module under CPython and MicroPython."""
import hashlib
import os
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.birdkit import router_and_far, start_bird, birdc, wait_for
from tests.netns import StackProc, STACK_IP, HOST_IP

pytestmark = [needs_netns]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
FAR_NET = "198.51.100.0/24"
ROUTER_FAR = "198.51.100.1"
FAR_HOST = "198.51.100.2"
STATIC = "203.0.113.0/24"
STATIC_GW = "192.0.2.77"
TIMERS = ["--config", "RIP_UPDATE_MS=1000", "--config", "RIP_TIMEOUT_MS=4000",
          "--config", "RIP_GC_MS=3000"]

BIRD_CONF = """
router id 192.0.2.1;
log stderr {{ error, warning }};
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "vr0"; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_RIP; }}; }}
protocol rip {{
  ipv4 {{ import all; export all; }};
  interface "{tap}" {{ version 2; update time 1; timeout time 4; garbage time 3; }};
}}
"""


@pytest.fixture
def topo():
    with router_and_far(
            "rip",
            [["sysctl", "-qw", "net.ipv4.ip_forward=1"],
             ["ip", "addr", "add", ROUTER_FAR + "/24", "dev", "vr0"],
             ["ip", "link", "set", "vr0", "up"]],
            [["ip", "addr", "add", FAR_HOST + "/24", "dev", "vf0"],
             ["ip", "link", "set", "vf0", "up"],
             ["ip", "route", "add", "default", "via", ROUTER_FAR]]) as t:
        yield t


def ustack_route(ns, name):
    r = ns.run(CLI + ["route", "--name", name], timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_routes_are_learned_both_ways_used_and_withdrawn(topo, runtime):
    ns, far, tmp = topo
    stack = StackProc(ns, "--rip", "--serve", "echo", *TIMERS, runtime=runtime)
    try:
        p, sock = start_bird(ns, tmp, BIRD_CONF.format(tap="ustk0"))
        name = "ustk0"
        # the stack learns the far network from BIRD
        line = wait_for(lambda: [ln for ln in ustack_route(ns, name).splitlines()
                                 if ln.startswith(FAR_NET)], 15, "the stack learning " + FAR_NET)
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (FAR_NET, HOST_IP)], line
        # ... and uses it: the far host's ping and TCP echo through the router are answered
        # (the stack has no default route: its replies go back by the learned one)
        r = far.run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", STACK_IP], timeout=30)
        assert r.returncode == 0 and "3 received" in r.stdout, r.stdout + r.stderr
        data = os.urandom(200000)
        r = far.python(
            "import socket, hashlib\n"
            "s = socket.create_connection(('%s', 7), timeout=10)\n"
            "data = bytes.fromhex('%s') * 50\n"
            "got = bytearray()\n"
            "import threading\n"
            "threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR))).start()\n"
            "while True:\n"
            "    b = s.recv(65536)\n"
            "    if not b:\n"
            "        break\n"
            "    got += b\n"
            "print(hashlib.sha256(got).hexdigest())\n" % (STACK_IP, data[:4000].hex()))
        assert r.stdout.strip() == hashlib.sha256(data[:4000] * 50).hexdigest(), r.stdout + r.stderr

        # BIRD learns the stack's static route, the stack's gateway as the next hop
        r = ns.run(CLI + ["route", "--name", name, "add", STATIC, "via", STATIC_GW], timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        out = wait_for(lambda: STATIC in birdc(ns, sock, "show", "route", "protocol", "rip1")
                       and birdc(ns, sock, "show", "route", "protocol", "rip1"), 15,
                       "BIRD learning " + STATIC)
        assert STATIC_GW in out, out
        kern = ns.run(["ip", "route", "show", STATIC]).stdout
        assert "via %s" % STATIC_GW in kern, kern

        # the far link goes down: BIRD withdraws it, the stack follows at once (triggered)
        t0 = time.time()
        ns.run(["ip", "link", "set", "vr0", "down"], check=True)
        wait_for(lambda: not [ln for ln in ustack_route(ns, name).splitlines()
                              if ln.startswith(FAR_NET)], 8, "the stack dropping " + FAR_NET)
        took = time.time() - t0
        # and back
        ns.run(["ip", "link", "set", "vr0", "up"], check=True)
        wait_for(lambda: [ln for ln in ustack_route(ns, name).splitlines()
                          if ln.startswith(FAR_NET)], 15, "the stack relearning " + FAR_NET)

        # BIRD stops: the route times out on the stack's own timers (RIP_TIMEOUT_MS)
        p.terminate()
        p.wait(10)
        wait_for(lambda: not [ln for ln in ustack_route(ns, name).splitlines()
                              if ln.startswith(FAR_NET)], 10, "the stack timing out " + FAR_NET)
    finally:
        c = stack.stop()
    assert c["rip.routes_learned"] >= 1 and c["rip.rx_responses"] >= 3, c
    assert c["rip.routes_timed_out"] >= 1, c
    assert c.get("rip.rx_bad_rte", 0) == 0 and c.get("rip.rx_bad_version", 0) == 0, c
    assert c["pbuf.free"] == c["pbuf.count"], c
    assert took < 8
