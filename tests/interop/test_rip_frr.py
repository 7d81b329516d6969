"""RIPv2 (`ustack up --rip`, core/rip.py, RFC 2453) and RIPng (`--ripng`, core/ripng.py, RFC
2080) against FRR from Debian: zebra with ripd or ripngd in the router namespace
(tests/frrkit.py), timers at FRR's smallest (timers basic 5 10 5: updates every 5 s +-50%).

Three namespaces: far host - (veth vr0) - router (Linux kernel forwarding, FRR on ustk0) -
(TAP ustk0) - the stack, a router itself (--forward) - (TAP ustk1) - host B. Each side knows
only its own networks; RIP tells the rest:
- the stack learns the far network and the default route FRR originates (proto rip, metric
  2), and FRR's kernel table gets B's network via the stack; the far host and B ping each
  other through both learned routes; a route FRR has via another router on the link comes
  with that router as its next hop (RFC 2453 4.4; RIPng: a next-hop entry, RFC 2080 2.1.1)
  and the stack routes by it;
- a static route of the stack with a gateway on the link goes to FRR with that gateway as
  the next hop (RFC 2453 4.4, RFC 2080 2.1.1); deleted, it is poisoned (metric 16 in FRR's
  table, out of the kernel) and then garbage-collected by FRR;
- the far link goes down: FRR poisons the network and the stack drops its route at once
  (no timeout), and garbage-collects it RIP_GC_MS later; the link comes back, so does the
  route.
The stack's timeout must outlast FRR's update interval (up to 7.5 s): RIP_TIMEOUT_MS 12000.
The stack's own timeout is tested against BIRD (test_rip_bird.py). The RIPv2 test runs
under CPython; a shorter one under MicroPython (the same core module) also gives the stack a
routing table smaller than what ripd announces: the routes it has no room for are counted and
not passed on. RIPng is CPython-only (cli.py refuses --ripng under MicroPython)."""
import re
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.birdkit import router_and_far, wait_for
from tests.frrkit import Frr, need_frr
from tests.netns import Netns, StackProc, STACK_IP, HOST_IP

pytestmark = [needs_netns]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
TIMERS = ["--config", "RIP_UPDATE_MS=1000", "--config", "RIP_TIMEOUT_MS=12000",
          "--config", "RIP_GC_MS=3000"]
GC_S = 3

FAR_NET = "198.51.100.0/24"
ROUTER_FAR = "198.51.100.1"
FAR_HOST = "198.51.100.2"
B_NET = "203.0.113.0/25"
B_STACK = "203.0.113.1"
B_HOST = "203.0.113.2"
STATIC = "203.0.113.128/25"
STATIC_GW = "192.0.2.77"
KERNEL = "198.51.100.128/25"   # a route of the router's kernel via another router on the link
KERNEL_GW = "192.0.2.50"

FAR_NET6 = "2001:db8:2::/64"
ROUTER_FAR6 = "2001:db8:2::1"
FAR_HOST6 = "2001:db8:2::2"
STACK6 = "2001:db8:1::2"
HOST6 = "2001:db8:1::1"
B_NET6 = "2001:db8:3::/64"
B_STACK6 = "2001:db8:3::1"
B_HOST6 = "2001:db8:3::2"
STATIC6 = "2001:db8:4::/64"
STATIC_GW6 = "fe80::77"
KERNEL6 = "2001:db8:5::/64"
KERNEL_GW6 = "fe80::50"
STACK_LL = "fe80::ff:fe00:2"   # modified EUI-64 of the default MAC 02:00:00:00:00:02

RIPD_CONF = """hostname ripd
router rip
 version 2
 network ustk0
 redistribute connected
 redistribute kernel
 default-information originate
 timers basic 5 10 5
exit
"""
RIPNGD_CONF = """hostname ripngd
router ripng
 network ustk0
 redistribute connected
 redistribute kernel
 default-information originate
 timers basic 5 10 5
exit
"""


def ustack(ns, *words):
    r = ns.run(CLI + list(words[:1]) + ["--name", "ustk0"] + list(words[1:]), timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def routes_to(ns, net, six=False):
    """The stack's routing table lines for net (`ustack route [-6]`)."""
    out = ustack(ns, "route", "-6") if six else ustack(ns, "route")
    return [ln for ln in out.splitlines() if ln.split()[:1] == [net]]


def frr_entry(frr, net, six=False):
    """FRR's RIP table line for net (`show ip rip` / `show ipv6 ripng`), or None."""
    out = frr.vtysh("show ipv6 ripng" if six else "show ip rip")
    rows = []
    for ln in out.splitlines():
        if ln[:1] == " " and rows:
            rows[-1] += ln   # ripngd goes on in the next line after a long prefix
        else:
            rows.append(ln)
    for ln in rows:
        w = ln.split()
        if len(w) > 1 and w[1] == net:
            return " ".join(w)
    return None


def kernel_route(ns, net, six=False):
    """The router's kernel route to net as `ip route` prints it, zebra's nexthop-object id
    (nhid N) left out; "" if none."""
    out = ns.run(["ip"] + (["-6"] if six else []) + ["route", "show", net]).stdout.strip()
    return re.sub(r" nhid \d+", "", out)


def source_counts(frr, six=False):
    """`show ip rip status` / `show ipv6 ripng status`: {gateway: (bad packets, bad routes)}
    of FRR's Routing Information Sources (ripngd goes on in the next line after an IPv6
    address)."""
    out = frr.vtysh("show ipv6 ripng status" if six else "show ip rip status")
    words = out.split("Routing Information Sources:")[1].split("Distance:")[0].split()
    words = words[words.index("Update") + 1:]   # past the column titles
    found = {}
    i = 0
    while i + 3 < len(words):
        # gateway, bad packets, bad routes, distance, last update (hh:mm:ss)
        found[words[i]] = (int(words[i + 1]), int(words[i + 2]))
        i += 5
    return found


def metric_of(line, six=False):
    """The metric column of a `show ip rip` line (R(n) NET NEXTHOP METRIC FROM ...); for
    `show ipv6 ripng` (R(n) NET NEXTHOP IF METRIC ...)."""
    return int(line.split()[4 if six else 3])


def topology(tag, six, runtime="cpython", extra=()):
    """far - router (ns) - stack - B, as the module's docstring draws it; yields (ns, far, b,
    stack) with the stack up on ustk0 and ustk1 (moved into B)."""
    need_frr("ripngd" if six else "ripd")
    if six:
        router_cmds = [["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
                       ["sysctl", "-qw", "net.ipv6.conf.vr0.keep_addr_on_down=1"],
                       ["ip", "-6", "addr", "add", ROUTER_FAR6 + "/64", "dev", "vr0", "nodad"],
                       ["ip", "link", "set", "vr0", "up"]]
        far_cmds = [["ip", "-6", "addr", "add", FAR_HOST6 + "/64", "dev", "vf0", "nodad"],
                    ["ip", "link", "set", "vf0", "up"],
                    ["ip", "-6", "route", "add", "default", "via", ROUTER_FAR6]]
        flags = ["--ripng", "--forward", "--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64",
                 "--link", "tap=ustk1,ip=%s/25,ip6=%s/64" % (B_STACK, B_STACK6)]
        b_cmds = [["ip", "-6", "addr", "add", B_HOST6 + "/64", "dev", "ustk1", "nodad"],
                  ["ip", "link", "set", "ustk1", "up"],
                  ["ip", "-6", "route", "add", "default", "via", B_STACK6]]
    else:
        router_cmds = [["sysctl", "-qw", "net.ipv4.ip_forward=1"],
                       ["ip", "addr", "add", ROUTER_FAR + "/24", "dev", "vr0"],
                       ["ip", "link", "set", "vr0", "up"]]
        far_cmds = [["ip", "addr", "add", FAR_HOST + "/24", "dev", "vf0"],
                    ["ip", "link", "set", "vf0", "up"],
                    ["ip", "route", "add", "default", "via", ROUTER_FAR]]
        flags = ["--rip", "--forward", "--link", "tap=ustk1,ip=%s/25" % B_STACK]
        b_cmds = [["ip", "addr", "add", B_HOST + "/25", "dev", "ustk1"],
                  ["ip", "link", "set", "ustk1", "up"],
                  ["ip", "route", "add", "default", "via", B_STACK]]
    with router_and_far(tag, router_cmds, far_cmds, tools=()) as (ns, far, tmp):
        b = Netns(tag + "b")
        stack = None
        try:
            stack = StackProc(ns, *(flags + TIMERS + list(extra)), runtime=runtime)
            ns.run(["ip", "link", "set", "ustk1", "netns", b.name], check=True)
            for cmd in b_cmds:
                b.run(cmd, check=True)
            yield ns, far, b, stack
        finally:
            if stack is not None and stack.p.poll() is None:
                stack.stop()
            b.close()


@pytest.fixture
def topo4():
    yield from topology("frr", False)


@pytest.fixture
def topo4_mpy():
    # a routing table of 6: the two connected routes, ripd's two and two more
    yield from topology("frrm", False, "micropython", ["--config", "ROUTE_ENTRIES=6"])


@pytest.fixture
def topo6():
    yield from topology("frr6", True)


def ping(src, dst, six=False):
    r = src.run(["ping"] + (["-6"] if six else []) + ["-n", "-c", "3", "-i", "0.2", "-W", "2",
                                                      dst], timeout=30)
    assert r.returncode == 0 and "3 received" in r.stdout, r.stdout + r.stderr


def test_ripv2_with_frr_ripd(topo4):
    ns, far, b, stack = topo4
    frr = Frr(ns, "ripd", RIPD_CONF)
    try:
        t0 = time.time()
        # the stack learns the far network from ripd, via ripd's address on the link
        line = wait_for(lambda: routes_to(ns, FAR_NET), 20, "the stack learning " + FAR_NET)
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (FAR_NET, HOST_IP)], line
        # and the default route ripd originates (a 0.0.0.0/0 entry, RFC 2453 3.9.2)
        line = wait_for(lambda: routes_to(ns, "default"), 15, "the stack learning default")
        assert line == ["default via %s dev eth0 proto rip metric 2" % HOST_IP], line
        # ripd learns B's network via the stack and zebra puts it in the kernel's table
        kern = wait_for(lambda: kernel_route(ns, B_NET), 20,
                        "FRR's kernel table learning " + B_NET)
        learned_in = time.time() - t0
        assert kern.startswith("%s via %s dev ustk0 proto rip" % (B_NET, STACK_IP)), kern
        e = frr_entry(frr, B_NET)
        assert e and e.split()[2] == STACK_IP and metric_of(e) == 2, frr.vtysh("show ip rip")
        # traffic both ways through both learned routes (neither side has another way there)
        ping(far, B_HOST)
        ping(b, FAR_HOST)
        # a route ripd has via another router on the link goes out with that router as the
        # next hop, and the stack routes by it (RFC 2453 4.4)
        ns.run(["ip", "route", "add", KERNEL, "via", KERNEL_GW, "dev", "ustk0"], check=True)
        line = wait_for(lambda: routes_to(ns, KERNEL), 15, "the stack learning " + KERNEL)
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (KERNEL, KERNEL_GW)], line

        # a static route with a gateway on the link: FRR takes the gateway as next hop
        ustack(ns, "route", "add", STATIC, "via", STATIC_GW)
        kern = wait_for(lambda: kernel_route(ns, STATIC), 15,
                        "FRR's kernel table learning " + STATIC)
        assert kern.startswith("%s via %s dev ustk0 proto rip" % (STATIC, STATIC_GW)), kern
        # deleted: poisoned (metric 16 in ripd's table, out of the kernel), then collected
        ustack(ns, "route", "del", STATIC)
        t1 = time.time()
        wait_for(lambda: (frr_entry(frr, STATIC) or "").split()[3:4] == ["16"], 10,
                 "ripd marking %s unreachable" % STATIC)
        poisoned_in = time.time() - t1
        assert kernel_route(ns, STATIC) == ""
        wait_for(lambda: frr_entry(frr, STATIC) is None, 15, "ripd deleting " + STATIC)
        collected_in = time.time() - t1

        # the far link goes down: ripd poisons the network, the stack drops it at once and
        # garbage-collects it RIP_GC_MS later
        deleted = stack.live_counters()["rip.routes_deleted"]
        t2 = time.time()
        ns.run(["ip", "link", "set", "vr0", "down"], check=True)
        wait_for(lambda: not routes_to(ns, FAR_NET), 10, "the stack dropping " + FAR_NET)
        dropped_in = time.time() - t2
        c = stack.live_counters()
        assert c.get("rip.routes_timed_out", 0) == 0, c   # it was ripd's update, not a timeout
        c = stack.wait_counters(lambda c: c["rip.routes_deleted"] > deleted, GC_S + 5)
        assert c["rip.routes_deleted"] == deleted + 1, c
        gc_in = time.time() - t2
        # and back
        ns.run(["ip", "link", "set", "vr0", "up"], check=True)
        wait_for(lambda: routes_to(ns, FAR_NET), 15, "the stack relearning " + FAR_NET)
        ping(far, B_HOST)
        print("RIPv2 vs FRR ripd: both ways in %.1f s; our withdrawal poisoned in ripd %.1f s, "
              "collected %.1f s; ripd's withdrawal dropped %.1f s, collected %.1f s" % (
                  learned_in, poisoned_in, collected_in, dropped_in, gc_in))
        sources = source_counts(frr)
    finally:
        frr.stop()
        c = stack.stop()
    # ripd took every update of ours: no bad packets or routes from the stack's address
    assert sources == {STACK_IP: (0, 0)}, sources
    assert c["rip.routes_learned"] >= 2 and c["rip.rx_responses"] >= 3, c
    for k in ("rx_bad_rte", "rx_bad_version", "rx_bad_port", "rx_bad_source",
              "rx_auth_unsupported", "rx_malformed", "rx_bad_command", "tx_errors",
              "routes_timed_out"):
        assert c.get("rip." + k, 0) == 0, (k, c)
    assert c["pbuf.free"] == c["pbuf.count"], c


def test_ripng_with_frr_ripngd(topo6):
    ns, far, b, stack = topo6
    frr = Frr(ns, "ripngd", RIPNGD_CONF)
    try:
        t0 = time.time()
        # the stack learns the far network from ripngd, via ripngd's link-local address
        line = wait_for(lambda: routes_to(ns, FAR_NET6, True), 20,
                        "the stack learning " + FAR_NET6)
        kern_ll = ns.run(["ip", "-6", "-o", "addr", "show", "dev", "ustk0", "scope",
                          "link"]).stdout.split()[3].split("/")[0]
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (FAR_NET6, kern_ll)], line
        # and the default route ripngd originates (::/0)
        line = wait_for(lambda: routes_to(ns, "default", True), 15, "the stack learning ::/0")
        assert line == ["default via %s dev eth0 proto rip metric 2" % kern_ll], line
        # ripngd learns B's network via the stack's link-local address, into the kernel
        kern = wait_for(lambda: kernel_route(ns, B_NET6, True),
                        20, "FRR's kernel table learning " + B_NET6)
        learned_in = time.time() - t0
        assert kern.startswith("%s via %s dev ustk0 proto ripng" % (B_NET6, STACK_LL)), kern
        # traffic both ways through both learned routes (no RA: RIPng is the only source of them)
        ping(far, B_HOST6, True)
        ping(b, FAR_HOST6, True)
        # a route ripngd has via another router on the link: a next-hop entry names it
        # (RFC 2080 2.1.1) and the stack routes by it
        ns.run(["ip", "-6", "route", "add", KERNEL6, "via", KERNEL_GW6, "dev", "ustk0"],
               check=True)
        line = wait_for(lambda: routes_to(ns, KERNEL6, True), 15, "the stack learning " + KERNEL6)
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (KERNEL6, KERNEL_GW6)], line

        # a static route with a link-local gateway: a next-hop entry names it (RFC 2080
        # 2.1.1) and FRR routes by it
        ustack(ns, "route", "add", STATIC6, "via", STATIC_GW6, "dev", "eth0")
        kern = wait_for(lambda: kernel_route(ns, STATIC6, True),
                        15, "FRR's kernel table learning " + STATIC6)
        assert kern.startswith("%s via %s dev ustk0 proto ripng" % (STATIC6, STATIC_GW6)), kern
        # deleted: poisoned in ripngd's table, out of the kernel, then collected
        ustack(ns, "route", "del", STATIC6)
        t1 = time.time()
        wait_for(lambda: metric_of(frr_entry(frr, STATIC6, True) or "x x x x 0", True) == 16,
                 10, "ripngd marking %s unreachable" % STATIC6)
        poisoned_in = time.time() - t1
        assert kernel_route(ns, STATIC6, True) == ""
        wait_for(lambda: frr_entry(frr, STATIC6, True) is None, 15, "ripngd deleting " + STATIC6)
        collected_in = time.time() - t1

        # the far link goes down: ripngd poisons the network, the stack drops it at once
        deleted = stack.live_counters()["ripng.routes_deleted"]
        t2 = time.time()
        ns.run(["ip", "link", "set", "vr0", "down"], check=True)
        wait_for(lambda: not routes_to(ns, FAR_NET6, True), 10, "the stack dropping " + FAR_NET6)
        dropped_in = time.time() - t2
        c = stack.live_counters()
        assert c.get("ripng.routes_timed_out", 0) == 0, c
        c = stack.wait_counters(lambda c: c["ripng.routes_deleted"] > deleted, GC_S + 5)
        assert c["ripng.routes_deleted"] == deleted + 1, c
        gc_in = time.time() - t2
        ns.run(["ip", "link", "set", "vr0", "up"], check=True)
        wait_for(lambda: routes_to(ns, FAR_NET6, True), 15, "the stack relearning " + FAR_NET6)
        ping(far, B_HOST6, True)
        print("RIPng vs FRR ripngd: both ways in %.1f s; our withdrawal poisoned in ripngd "
              "%.1f s, collected %.1f s; ripngd's withdrawal dropped %.1f s, collected %.1f s"
              % (learned_in, poisoned_in, collected_in, dropped_in, gc_in))
        sources = source_counts(frr, True)
    finally:
        frr.stop()
        c = stack.stop()
    # ripngd took every update of ours: no bad packets or routes from our link-local address
    assert sources == {STACK_LL: (0, 0)}, sources
    assert c["ripng.routes_learned"] >= 2 and c["ripng.rx_responses"] >= 3, c
    for k in ("rx_bad_rte", "rx_bad_version", "rx_bad_source", "rx_bad_hop_limit",
              "rx_bad_port", "rx_malformed", "rx_bad_next_hop", "rx_bad_command", "tx_errors",
              "routes_timed_out"):
        assert c.get("ripng." + k, 0) == 0, (k, c)
    assert c["pbuf.free"] == c["pbuf.count"], c


def heard_on(host, dev, port, count):
    """{prefix: metric} of the RIP entries in `count` messages tcpdump hears on dev."""
    r = host.run(["timeout", "15", "tcpdump", "-n", "-v", "-l", "-c", str(count), "-i", dev,
                  "udp port %d" % port], timeout=30)
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(
        r"AFI IPv4,\s+(\S+)\s*,.*metric: (\d+)", r.stdout))


def test_ripv2_with_frr_ripd_micropython_and_a_full_routing_table(topo4_mpy):
    """The same core module under the MicroPython runtime: learned both ways and used. Then
    ripd announces more routes than the stack's routing table holds (ROUTE_ENTRIES 6): the
    ones it refuses are counted and not passed on to B as reachable (they once were: traffic
    drawn to the stack would have found no route); then ripd's withdrawal is taken at once."""
    ns, far, b, stack = topo4_mpy
    frr = Frr(ns, "ripd", RIPD_CONF)
    try:
        line = wait_for(lambda: routes_to(ns, FAR_NET), 20, "the stack learning " + FAR_NET)
        assert line == ["%s via %s dev eth0 proto rip metric 2" % (FAR_NET, HOST_IP)], line
        line = wait_for(lambda: routes_to(ns, "default"), 15, "the stack learning default")
        assert line == ["default via %s dev eth0 proto rip metric 2" % HOST_IP], line
        kern = wait_for(lambda: kernel_route(ns, B_NET), 20,
                        "FRR's kernel table learning " + B_NET)
        assert kern.startswith("%s via %s dev ustk0 proto rip" % (B_NET, STACK_IP)), kern
        ping(far, B_HOST)
        ping(b, FAR_HOST)

        # six host routes more in the router's kernel, which ripd redistributes: room for two
        hosts = ["198.51.100.%d/32" % x for x in range(10, 16)]
        for h in hosts:
            ns.run(["ip", "route", "add", h, "via", FAR_HOST], check=True)
        stack.wait_counters(lambda c: c.get("rip.table_full", 0) >= 4, 15)

        def rip_routes():
            return [ln.split()[0] for ln in ustack(ns, "route").splitlines()
                    if " proto rip " in ln]
        mine = rip_routes()
        assert len(mine) == 4 and "default" in mine and FAR_NET in mine, mine
        installed = [h for h in hosts if h[:-3] in mine]   # `ustack route` prints a /32 bare
        assert len(installed) == 2, mine
        heard = heard_on(b, "ustk1", 520, 3)   # the stack's updates to B, once a second
        assert {h: heard.get(h) for h in hosts} == {h: (2 if h in installed else None)
                                                   for h in hosts}, heard
        assert heard.get(FAR_NET) == 2 and heard.get("0.0.0.0/0") == 2, heard

        ns.run(["ip", "link", "set", "vr0", "down"], check=True)
        wait_for(lambda: not routes_to(ns, FAR_NET), 10, "the stack dropping " + FAR_NET)
    finally:
        frr.stop()
        c = stack.stop()
    assert c["rip.routes_learned"] >= 4 and c.get("rip.routes_timed_out", 0) == 0, c
    assert c["rip.table_full"] >= 4, c
    for k in ("rx_bad_rte", "rx_bad_version", "rx_malformed", "tx_errors"):
        assert c.get("rip." + k, 0) == 0, (k, c)
    assert c["pbuf.free"] == c["pbuf.count"], c
