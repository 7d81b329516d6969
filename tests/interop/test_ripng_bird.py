"""RIPng (`ustack up --ripng`, core/ripng.py, RFC 2080) against BIRD 2 from Debian, timers
shortened on both sides so the test takes seconds. The namespace's kernel is an IPv6 router
(forwarding on): its TAP side faces the stack (2001:db8:1::/64), a veth leads to a far
namespace (2001:db8:2::/64). BIRD speaks RIPng on the TAP side and exports what it learns
into the router's kernel table. The stack has a second prefix of its own, 2001:db8:3::/64,
which only RIPng can tell the router about.

- the stack learns the far network from BIRD (metric 2, via BIRD's link-local address) and
  its replies to a far host go by it (ping and a TCP echo, SHA-256 checked): the stack has
  no other IPv6 route there (no RA on the link);
- BIRD learns the stack's 2001:db8:3::/64 via the stack's link-local address, the kernel
  routes by it, and the far host reaches 2001:db8:3::2: routes learned both ways;
- the far link goes down: BIRD withdraws the network and the stack drops its route within
  seconds (triggered update with metric 16), long before its timeout;
- BIRD stops: the stack's route times out on its own timers.
CPython runtime only: the MicroPython runtime has no IPv6 in this tree yet (cli.py refuses
--ip6 and --ripng there)."""
import hashlib
import json
import os
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.birdkit import router_and_far, start_bird, birdc, wait_for
from tests.netns import StackProc

pytestmark = [needs_netns]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
STACK6 = "2001:db8:1::2"
HOST6 = "2001:db8:1::1"
OWN_NET = "2001:db8:3::"     # a prefix only the stack has
OWN6 = "2001:db8:3::2"
FAR_NET = "2001:db8:2::"
ROUTER_FAR = "2001:db8:2::1"
FAR_HOST = "2001:db8:2::2"
STACK_LL = "fe80::ff:fe00:2"   # modified EUI-64 of the default MAC 02:00:00:00:00:02
TIMERS = ["--config", "RIP_UPDATE_MS=1000", "--config", "RIP_TIMEOUT_MS=4000",
          "--config", "RIP_GC_MS=3000"]

BIRD_CONF = """
router id 192.0.2.1;
log stderr {{ error, warning }};
protocol device {{ scan time 1; }}
protocol direct {{ ipv6; interface "vr0"; }}
protocol kernel {{ ipv6 {{ import none; export where source = RTS_RIP; }}; }}
protocol rip ng ripng1 {{
  ipv6 {{ import all; export all; }};
  interface "{tap}" {{ update time 1; timeout time 4; garbage time 3; }};
}}
"""


@pytest.fixture
def topo():
    with router_and_far(
            "ripng",
            [["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
             # the far link goes down and up in the test: its address stays (Linux flushes
             # IPv6 addresses of a link that goes down unless told)
             ["sysctl", "-qw", "net.ipv6.conf.vr0.keep_addr_on_down=1"],
             ["ip", "-6", "addr", "add", ROUTER_FAR + "/64", "dev", "vr0", "nodad"],
             ["ip", "link", "set", "vr0", "up"]],
            [["ip", "-6", "addr", "add", FAR_HOST + "/64", "dev", "vf0", "nodad"],
             ["ip", "link", "set", "vf0", "up"],
             ["ip", "-6", "route", "add", "default", "via", ROUTER_FAR]]) as t:
        yield t


def routes6(ns, text=False):
    """The running stack's IPv6 routing table: `ustack route -6` (--json unless text)."""
    r = ns.run(CLI + ["route", "-6", "--name", "ustk0"] + ([] if text else ["--json"]),
               timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout if text else json.loads(r.stdout)


def far_route(ns):
    return [r for r in routes6(ns) if r["dst"] == FAR_NET and r["prefix"] == 64]


def tcp_echo_sha(far, dst):
    data = os.urandom(4000)
    r = far.python(
        "import socket, hashlib, threading\n"
        "s = socket.create_connection(('%s', 7), timeout=10)\n"
        "data = bytes.fromhex('%s') * 50\n"
        "got = bytearray()\n"
        "threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR))).start()\n"
        "while True:\n"
        "    b = s.recv(65536)\n"
        "    if not b:\n"
        "        break\n"
        "    got += b\n"
        "print(hashlib.sha256(got).hexdigest())\n" % (dst, data.hex()))
    return r.stdout.strip() == hashlib.sha256(data * 50).hexdigest(), r.stdout + r.stderr


def test_ripng_routes_are_learned_both_ways_used_withdrawn_and_timed_out(topo):
    ns, far, tmp = topo
    stack = StackProc(ns, "--ripng", "--serve", "echo", "--ip6", STACK6 + "/64",
                      "--ip6", OWN6 + "/64", "--host-ip6", HOST6 + "/64", *TIMERS,
                      runtime="cpython")
    try:
        p, sock = start_bird(ns, tmp, BIRD_CONF.format(tap="ustk0"))
        t_bird = time.time()
        # the stack learns the far network from BIRD, via BIRD's link-local address
        rt = wait_for(lambda: far_route(ns), 20, "the stack learning %s/64" % FAR_NET)
        learned_in = time.time() - t_bird
        assert len(rt) == 1 and rt[0]["via"].startswith("fe80::") and rt[0]["dev"] == "eth0", rt
        assert rt[0]["proto"] == "rip" and rt[0]["metric"] == 2, rt
        line = "%s/64 via %s dev eth0 proto rip metric 2" % (FAR_NET, rt[0]["via"])
        assert line in routes6(ns, text=True).splitlines(), routes6(ns, text=True)
        kern_ll = ns.run(["ip", "-6", "-o", "addr", "show", "dev", "ustk0", "scope",
                          "link"]).stdout
        assert rt[0]["via"] + "/64" in kern_ll, (rt, kern_ll)
        # and the stack has no other way there: no default route (no RA on the link)
        assert not [r for r in routes6(ns) if r["prefix"] == 0], routes6(ns)
        # ... and uses it: the far host's ping and TCP echo are answered through the router
        r = far.run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", STACK6],
                    timeout=30)
        assert r.returncode == 0 and "3 received" in r.stdout, r.stdout + r.stderr
        ok, out = tcp_echo_sha(far, STACK6)
        assert ok, out

        # BIRD learns the stack's own prefix via the stack's link-local address; the kernel
        # routes by it and the far host reaches the stack's address there
        out = wait_for(lambda: OWN_NET + "/64" in birdc(ns, sock, "show", "route", "protocol",
                                                        "ripng1") and
                       birdc(ns, sock, "show", "route", "protocol", "ripng1"), 15,
                       "BIRD learning %s/64" % OWN_NET)
        assert STACK_LL in out, out
        kern = ns.run(["ip", "-6", "route", "show", OWN_NET + "/64"]).stdout
        assert "via %s dev ustk0" % STACK_LL in kern, kern
        r = far.run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", OWN6], timeout=30)
        assert r.returncode == 0 and "3 received" in r.stdout, r.stdout + r.stderr
        # our updates as the kernel sees them: from the link-local address to ff02::9, UDP
        # 521 to 521, hop limit 255 (RFC 2080 2.5)
        r = ns.run(["timeout", "10", "tcpdump", "-n", "-v", "-c", "2", "-i", "ustk0",
                    "ip6 and udp port 521 and src %s" % STACK_LL], timeout=20)
        # (tcpdump may call the UDP checksum bad: with --offload auto it is the kernel's to
        # finish, CHECKSUM_PARTIAL, as BIRD's acceptance shows)
        heard = [ln for ln in r.stdout.splitlines() if "hlim" in ln]
        assert len(heard) == 2, r.stdout + r.stderr
        assert all("hlim 255" in ln and "%s.521 > ff02::9.521" % STACK_LL in ln
                   for ln in heard), r.stdout
        c = stack.live_counters()
        assert c["ripng.tx_updates"] >= 1 and c.get("ripng.rx_bad_hop_limit", 0) == 0, c

        # the far link goes down: BIRD withdraws it, the stack follows at once (triggered)
        t0 = time.time()
        ns.run(["ip", "link", "set", "vr0", "down"], check=True)
        wait_for(lambda: not far_route(ns), 8, "the stack dropping %s/64" % FAR_NET)
        took = time.time() - t0
        timed_out = stack.live_counters().get("ripng.routes_timed_out", 0)
        # and back
        ns.run(["ip", "link", "set", "vr0", "up"], check=True)
        wait_for(lambda: far_route(ns), 15, "the stack relearning %s/64" % FAR_NET)

        # BIRD stops: the route times out on the stack's own timers (RIP_TIMEOUT_MS)
        p.terminate()
        p.wait(10)
        t_stop = time.time()
        wait_for(lambda: not far_route(ns), 10, "the stack timing out %s/64" % FAR_NET)
        print("ripng vs BIRD: learned %.1f s after BIRD started, withdrawn %.1f s after the "
              "link went down, timed out %.1f s after BIRD stopped (RIP_TIMEOUT_MS 4000)" % (
                  learned_in, took, time.time() - t_stop))
    finally:
        c = stack.stop()
    assert timed_out == 0, "the withdrawal came by timeout, not by BIRD's update"
    assert took < 8
    assert c["ripng.routes_learned"] >= 1 and c["ripng.rx_responses"] >= 3, c
    assert c["ripng.routes_timed_out"] >= 1, c
    for k in ("rx_bad_rte", "rx_bad_version", "rx_bad_source", "rx_bad_hop_limit",
              "rx_bad_port", "rx_malformed", "tx_errors"):
        assert c.get("ripng." + k, 0) == 0, (k, c)
    assert "rip.rx_messages" not in c   # RIPv2 stays off without --rip
    assert c["pbuf.free"] == c["pbuf.count"], c
