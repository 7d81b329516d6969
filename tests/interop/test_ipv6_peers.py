"""IPv6 against real peers and attack toolkits (issue 9), in one throwaway namespace: Debian's
radvd as the router (SLAAC, default route, MTU), ndisc6/rdisc6, ipv6toolkit (ns6, na6, ra6,
frag6, scan6) and thc-ipv6 (fake_router6, dos-new-ip6, detect-new-ip6, flood_router26,
flood_advertise6, flood_solicitate6, fuzz_ip6) on the stack's link, and a Linux bridge with MLD snooping (its querier's timeouts shortened to seconds). Every test asserts what the stack did (addresses, routes, tables at their bounds,
counters) and adds a row to benchmarks/ipv6_peers.md, which the module writes at its end.

Topology: namespace R holds the TAP's kernel side (2001:db8:1::1/64, radvd advertising
2001:db8:1::/64 on it, forwarding on) and a veth to namespace F (2001:db8:2::2/64, the far
prefix, a Linux server)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, ProgramRun, ROOT

TOOLS = ("radvd", "ndisc6", "rdisc6", "ns6", "na6", "ra6", "frag6", "scan6",
         "atk6-fake_router6", "atk6-flood_router26", "atk6-flood_advertise6",
         "atk6-flood_solicitate6", "atk6-dos-new-ip6", "atk6-detect-new-ip6", "bridge",
         "tcpdump", "atk6-fuzz_ip6")
pytestmark = [needs_netns, pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS),
    reason="needs radvd ndisc6 thc-ipv6 ipv6toolkit (.ci/setup installs them)")]

HOST6 = "2001:db8:1::1"
SLAAC6 = "2001:db8:1::ff:fe00:2"     # the advertised prefix and the MAC's modified EUI-64
STACK_LL = "fe80::ff:fe00:2"
FAR6 = "2001:db8:2::2"
ROGUE_LL = "fe80::bad"               # ra6's source: not radvd's router (R's link-local)
MAC = "02:00:00:00:00:02"
IPV6_ADDRS = 8                       # core/config.py defaults: the bounds the floods meet
SLAAC_PREFIXES = 4
SLAAC_ROUTERS = 3
ND_CACHE_SIZE = 16
FLOOD_S = 1.5
RESULTS = os.path.join(ROOT, "benchmarks", "ipv6_peers.md")
ROWS = []

RADVD_CONF = """interface %s {
  AdvSendAdvert on; IgnoreIfMissing on;
  MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 60;
  AdvLinkMTU 1400;
  prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; AdvValidLifetime 120;
                           AdvPreferredLifetime 60; };
};
"""


def row(tool, does, observed, counters=""):
    ROWS.append((tool, does, observed, counters))


def write_results():
    if not ROWS:
        return
    lines = [
        "# The stack against IPv6 peers and attack toolkits",
        "",
        "Written by `tests/interop/test_ipv6_peers.py` (every run; the test asserts each "
        "behaviour below, the table records what this run saw). The stack is `ustack up` on "
        "a TAP in a throwaway namespace with core/config.py's default bounds "
        "(IPV6_ADDRS %d, SLAAC prefixes %d, default routers %d, ND cache %d); floods last "
        "%.1f s each. Counters are the stack's (`ustack stats`), as deltas over the step."
        % (IPV6_ADDRS, SLAAC_PREFIXES, SLAAC_ROUTERS, ND_CACHE_SIZE, FLOOD_S),
        "",
        "| tool | what it does | the stack's observed behaviour | counters |",
        "|---|---|---|---|",
    ]
    for r in ROWS:
        lines.append("| %s |" % " | ".join(x.replace("|", "\\|") for x in r))
    lines.append("")
    with open(RESULTS, "w") as f:
        f.write("\n".join(lines))


@pytest.fixture(scope="module", autouse=True)
def results():
    yield
    write_results()


class Lab:
    """Namespaces R (router, radvd, the TAP's kernel side) and F (far prefix)."""

    def __init__(self):
        self.r = Netns("v6p")
        self.f = Netns("v6pf")
        self.radvd = None
        r, f = self.r, self.f
        r.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        # the TAP's kernel side may send RAs at once (radvd needs its link-local address):
        # no DAD there, so the stack's first Router Solicitation is answered
        r.run(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        subprocess.run(["ip", "link", "add", "v6r", "netns", r.name, "type", "veth", "peer",
                        "name", "v6f", "netns", f.name], check=True, capture_output=True)
        r.run(["ip", "addr", "add", "2001:db8:2::1/64", "dev", "v6r", "nodad"])
        r.run(["ip", "link", "set", "v6r", "up"])
        f.run(["ip", "addr", "add", FAR6 + "/64", "dev", "v6f", "nodad"])
        f.run(["ip", "link", "set", "v6f", "up"])
        f.run(["ip", "-6", "route", "add", "default", "via", "2001:db8:2::1"])

    def start_radvd(self, dev="ustk0"):
        self.stop_radvd()
        conf = "/tmp/%s-radvd.conf" % self.r.name
        with open(conf, "w") as fh:
            fh.write(RADVD_CONF % dev)
        self.radvd = self.r.popen(["radvd", "-n", "-C", conf, "-p",
                                   "/tmp/%s-radvd.pid" % self.r.name, "-m", "stderr"])

    def stop_radvd(self):
        if self.radvd is not None and self.radvd.poll() is None:
            self.radvd.kill()
            self.radvd.wait(5)
        self.radvd = None

    def close(self):
        self.stop_radvd()
        self.r.close()
        self.f.close()
        for ext in ("conf", "pid"):
            try:
                os.remove("/tmp/%s-radvd.%s" % (self.r.name, ext))
            except OSError:
                pass


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    yield lab
    lab.close()


def ip6(ns):
    """The running stack's IPv6 state (core/ctl.py op ip6) over its control channel."""
    r = ns.python("from ustack.ports.cpython import control as c\nimport json\n"
                  "print(json.dumps(c.find('ustk0').call('ip6')))")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def usable(d, addr):
    return any(a["addr"] == addr and not a["tentative"] and not a["duplicate"]
               for a in d["addrs"])


def wait_for(fn, timeout=12):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.2)


def delta(after, before, *keys):
    return ", ".join("%s +%d" % (k, after.get(k, 0) - before.get(k, 0)) for k in keys
                     if after.get(k, 0) != before.get(k, 0))


def test_ustack_ping_6_pings_linux(lab):
    r = lab.r.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", HOST6, "-c", "3",
                   "-i", "0.2", "--tap", "ustk0", "--ip", "192.0.2.2/24", "--host-ip",
                   "192.0.2.1/24", "--ip6", "2001:db8:1::2/64", "--host-ip6", HOST6 + "/64"],
                  timeout=60)
    assert "PING %s 56(104) bytes of data." % HOST6 in r.stdout, r.stdout + r.stderr
    assert "3 packets transmitted, 3 received" in r.stdout, r.stdout + r.stderr
    row("Linux (ping target)", "answers Echo Requests", "`ustack ping -6 %s` (the family "
        "from the address): 3 sent, 3 received" % HOST6)


def test_the_stacks_tcp_client_reaches_a_far_prefix_through_the_radvd_router(lab):
    # F's server; the stack (`ustack run`) knows no route until radvd's RA names the router
    server = lab.f.popen([sys.executable, "-c",
                          "import socket\nl=socket.socket(socket.AF_INET6)\n"
                          "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                          "l.bind(('', 7007)); l.listen(1); print('listening', flush=True)\n"
                          "c, a = l.accept(); print('peer', a[0], flush=True)\n"
                          "d = b''\nwhile len(d) < 60000:\n    k = c.recv(65536)\n"
                          "    if not k: break\n    d += k\nc.sendall(d); c.close()\n"])
    assert "listening" in server.stdout.readline()
    prog = ("import socket, time\nprint('start', flush=True)\nend = time.time() + 20\n"
            "while True:\n"
            "    try:\n        s = socket.create_connection(('%s', 7007), timeout=2); break\n"
            "    except OSError:\n"
            "        if time.time() > end: raise\n        time.sleep(0.2)\n"
            "print('name', s.getsockname()[0], flush=True)\n"
            "data = bytes(range(200)) * 300\ns.sendall(data)\ngot = b''\n"
            "while len(got) < len(data):\n    k = s.recv(65536)\n    assert k\n    got += k\n"
            "print('echoed', got == data, flush=True)\n" % FAR6)
    lab.start_radvd()     # IgnoreIfMissing: it takes the TAP up when `ustack run` makes it
    run = ProgramRun(lab.r, ["-c", prog], "start", flags=["--host-ip6", HOST6 + "/64"])
    out = run.output(60)
    lab.stop_radvd()
    assert "echoed True" in out, out
    assert "name " + SLAAC6 in out, out          # the SLAAC address, not the link-local
    assert "peer " + SLAAC6 in server.communicate(timeout=10)[0]
    row("radvd + Linux router", "advertises 2001:db8:1::/64 (valid 120 s, preferred 60 s), "
        "router lifetime 60 s, MTU 1400; forwards to 2001:db8:2::/64",
        "the stack's TCP client (`ustack run`) forms %s by SLAAC, takes the default route "
        "from the RA and echoes 60 kB with a Linux server on the far prefix" % SLAAC6)


@pytest.fixture(scope="module")
def stack(lab):
    lab.start_radvd()
    s = StackProc(lab.r, "--host-ip6", HOST6 + "/64", "--serve", "echo")
    ok = wait_for(lambda: usable(ip6(lab.r), SLAAC6), 15)
    assert ok, ip6(lab.r)
    yield s
    lab.stop_radvd()
    s.stop()


def ping6(ns, dst, n=3):
    r = ns.run(["ping", "-6", "-n", "-c", str(n), "-i", "0.05", "-W", "2", dst], timeout=30)
    m = re.search(r"(\d+) received", r.stdout)
    return int(m.group(1)) if m else 0


def tcp_echo(ns, dst):
    r = ns.python("import socket\nc=socket.create_connection(('%s', 7), timeout=5)\n"
                  "c.sendall(b'alive'*100)\ngot=b''\nwhile len(got) < 500:\n"
                  "    k=c.recv(1000)\n    assert k\n    got+=k\nprint(got == b'alive'*100)\n"
                  % dst)
    return r.stdout.strip() == "True"


def test_radvd_gives_the_address_the_default_router_the_mtu_and_lifetimes(lab, stack):
    d = ip6(lab.r)
    link = d["links"][0]
    assert link["mtu6"] == 1400                              # RA MTU option (RFC 4861 4.6.4)
    assert len(link["routers"]) == 1 and link["routers"][0].startswith("fe80::")
    assert {"dst": "::", "prefix": 0, "via": link["routers"][0], "dev": link["dev"]} in \
        d["routes"]
    assert "2001:db8:1::/64" in link["prefixes"]
    c = stack.live_counters()
    # RFC 4861 6.3.7: at most 3 solicitations, none after the first RA with a router
    # lifetime (radvd may advertise first when the TAP appears: then none at all)
    assert c["icmp6.tx_rs"] <= 3 and c[link["dev"] + ".slaac.rx_ra"] >= 1
    # the far prefix answers through the router: Linux in F reaches the stack's echo
    r = lab.f.python("import socket\nc=socket.create_connection(('%s', 7), timeout=5)\n"
                     "c.sendall(b'far'); print(c.recv(10))\n" % SLAAC6)
    assert r.stdout.strip() == "b'far'", r.stdout + r.stderr
    row("radvd (RS at bring-up)", "advertises when the TAP appears, answers Router "
        "Solicitations", "RS sent: %d (none after the first RA, RFC 4861 6.3.7); %s "
        "usable after DAD; default route via %s; IPv6 MTU 1400 (IPv4 keeps "
        "1500); Linux on the far prefix reaches the stack's echo service"
        % (c["icmp6.tx_rs"], SLAAC6, link["routers"][0]),
        "icmp6.tx_rs %d, slaac.rx_ra %d" % (c["icmp6.tx_rs"], c[link["dev"] + ".slaac.rx_ra"]))


def test_ndisc6_resolves_the_stack_with_solicited_override_advertisements(lab, stack):
    cap = lab.r.popen(["tcpdump", "-l", "-n", "-vv", "-i", "ustk0", "-c", "1",
                       "icmp6 and ip6[40] == 136 and ether src " + MAC])
    time.sleep(0.5)
    r = lab.r.run(["ndisc6", "-1", "-r", "3", "-w", "1000", SLAAC6, "ustk0"])
    assert ("Target link-layer address: " + MAC).upper() in r.stdout.upper(), r.stdout
    out = cap.communicate(timeout=10)[0]
    # RFC 4861 7.2.4: an answer to a unicast-sourced NS is solicited, override, not router
    assert re.search(r"Flags \[solicited, override\]", out), out
    row("ndisc6", "Neighbor Solicitation for the SLAAC address",
        "answered with the stack's MAC; NA flags solicited+override, no router flag")


def test_rdisc6_gets_radvds_advertisement_and_the_stack_stays_silent(lab, stack):
    before = stack.live_counters()
    r = lab.r.run(["rdisc6", "-1", "-r", "2", "-w", "800", "ustk0"])
    assert "2001:db8:1::/64" in r.stdout and "1400" in r.stdout, r.stdout
    after = stack.live_counters()
    # RFC 4861 6.2.6: a host never answers Router Solicitations; it is no member of
    # ff02::2 (all-routers), so the RS stops at the IPv6 layer
    assert after["ip6.rx_not_for_us"] > before["ip6.rx_not_for_us"]
    assert after["icmp6.tx_errors"] == before["icmp6.tx_errors"]
    row("rdisc6", "Router Solicitation on the link", "radvd answers (prefix, MTU 1400); the "
        "stack, a host, stays silent (RFC 4861 6.2.6: not a member of ff02::2)",
        delta(after, before, "ip6.rx_not_for_us"))


def test_ipv6toolkit_ns6_na6_scan6(lab, stack):
    # scan6 waits its timeout for answers: it runs beside ns6 and na6
    scan = lab.r.popen(["scan6", "-i", "ustk0", "-L", "-x", "0", "-O", "1", "-p", "echo"])
    before = stack.live_counters()
    r = lab.r.run(["ns6", "-i", "ustk0", "-d", SLAAC6, "-t", SLAAC6])
    assert r.returncode == 0, r.stdout + r.stderr
    mid = stack.live_counters()
    assert mid["icmp6.tx_na"] > before.get("icmp6.tx_na", 0)
    # na6: someone else claims our address (override): the stack keeps it (5.4.4 applies
    # to tentative addresses only) and its neighbour cache takes no entry
    r = lab.r.run(["na6", "-i", "ustk0", "-d", "ff02::1", "-t", SLAAC6, "-o"])
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(0.3)
    assert usable(ip6(lab.r), SLAAC6)
    out = scan.communicate(timeout=30)[0]
    assert STACK_LL in out and SLAAC6 in out, out
    after = stack.live_counters()
    dev = ip6(lab.r)["links"][0]["dev"]
    row("ns6", "NS for the stack's address from a random link-local source",
        "answered (NA)", delta(mid, before, "icmp6.tx_na"))
    row("na6", "unsolicited override NA claiming the stack's own address",
        "address kept (not tentative: RFC 4862 5.4.4 does not apply), no cache entry made",
        delta(after, mid, dev + ".nd.na_no_entry"))
    row("scan6 -L -p echo", "multicast Echo Requests to ff02::1 from link-local and global "
        "sources", "answers both, from a unicast address (RFC 4443 2.2): both addresses found "
        "(%s, %s)" % (STACK_LL, SLAAC6), delta(after, before, "icmp6.tx_echo_reply"))


def test_ra6_rogue_prefix_is_taken_within_bounds_and_frag6_leaves_the_stack_up(lab, stack):
    before = stack.live_counters()
    r = lab.r.run(["ra6", "-i", "ustk0", "-s", ROGUE_LL, "-d", "ff02::1", "-P",
                   "2001:db8:ad::/64#LA#600#300", "-t", "0"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_for(lambda: usable(ip6(lab.r), "2001:db8:ad::ff:fe00:2"), 5)
    # a zero router lifetime: a prefix but no new default router (RFC 4861 6.3.4)
    assert len(ip6(lab.r)["links"][0]["routers"]) == 1
    # an RA from a global source (RFC 4861 6.1.2: only link-local ones are valid)
    mid = stack.live_counters()
    r = lab.r.run(["ra6", "-i", "ustk0", "-s", "2001:db8:1::99", "-d", "ff02::1", "-P",
                   "2001:db8:bad::/64#LA#600#300"])
    assert r.returncode == 0, r.stdout + r.stderr
    bad = wait_for(lambda: stack.live_counters()["icmp6.rx_nd_bad_source"] >
                   mid["icmp6.rx_nd_bad_source"], 5)
    assert bad
    assert not any(a["addr"].startswith("2001:db8:bad:") for a in ip6(lab.r)["addrs"])
    r = lab.r.run(["frag6", "-i", "ustk0", "-d", SLAAC6, "--frag-type", "atomic"],
                  timeout=30)
    assert ping6(lab.r, SLAAC6) == 3
    after = stack.live_counters()
    row("ra6 -s %s" % ROGUE_LL, "RA with a rogue on-link autonomous prefix "
        "2001:db8:ad::/64, router lifetime 0", "takes the prefix (RFC 4862 allows it) and forms an address after "
        "DAD; no new default router", delta(after, before, "icmp6.rx_ra"))
    row("ra6 -s 2001:db8:1::99", "RA with a prefix from a global source address",
        "dropped before SLAAC (RFC 4861 6.1.2) and counted; no address formed",
        delta(after, mid, "icmp6.rx_nd_bad_source"))
    row("frag6 --frag-type atomic", "atomic fragments (RFC 6946) of an echo request",
        "stays up; ping6 afterwards 3/3", delta(after, before, "ip6.rx_fragments_dropped"))


def test_dos_new_ip6_makes_new_addresses_go_and_detect_new_ip6_sees_dad(lab, stack):
    det = lab.r.popen(["atk6-detect-new-ip6", "ustk0"])
    dos = lab.r.popen(["atk6-dos-new-ip6", "ustk0"])
    time.sleep(1.0)
    before = stack.live_counters()
    lab.r.run(["ra6", "-i", "ustk0", "-s", ROGUE_LL, "-d", "ff02::1", "-P",
               "2001:db8:d05::/64#LA#600#300", "-t", "0"])
    victim = "2001:db8:d05::ff:fe00:2"
    # RFC 4862 5.4.5: a SLAAC address whose DAD failed is removed (counted)
    gone = wait_for(lambda: stack.live_counters().get("ip6.addr_dad_removed", 0) >
                    before.get("ip6.addr_dad_removed", 0), 6)
    after = stack.live_counters()
    for p in (dos, det):
        p.kill()
    det_out = det.communicate(timeout=5)[0]
    dos.communicate(timeout=5)
    assert gone, ip6(lab.r)
    assert not any(a["addr"] == victim for a in ip6(lab.r)["addrs"]), ip6(lab.r)
    assert after["dad.dad_duplicates"] > before.get("dad.dad_duplicates", 0)
    assert usable(ip6(lab.r), SLAAC6)            # the other addresses are untouched
    seen = victim in det_out
    row("atk6-dos-new-ip6", "answers every DAD probe: claims each new address",
        "the new SLAAC address %s is removed, never used (RFC 4862 5.4.5); "
        "existing addresses keep working" % victim,
        delta(after, before, "dad.dad_duplicates", "ip6.addr_duplicate",
              "ip6.addr_dad_removed"))
    row("atk6-detect-new-ip6", "watches DAD probes for new addresses",
        "sees the stack's DAD probe (from ::, no link-layer option)" if seen
        else "saw no probe in this run (the dos tool answered first)")


def flood(lab, stack, *argvs, secs=FLOOD_S):
    """Run the attack commands side by side for secs; the counters from before."""
    before = stack.live_counters()
    ps = [lab.r.popen(a) for a in argvs]
    time.sleep(secs)
    for p in ps:
        p.kill()
        p.communicate(timeout=5)
    time.sleep(0.3)
    return before


def alive(lab, stack):
    """A ping6 and a TCP6 echo beside the flood's aftermath, and the stack answers."""
    assert stack.p.poll() is None
    assert ping6(lab.r, SLAAC6) >= 2
    assert tcp_echo(lab.r, SLAAC6)


def default_gw(d):
    for r in d["routes"]:
        if r["dst"] == "::" and r["prefix"] == 0:
            return r["via"]
    return None


def far_echo(lab):
    r = lab.f.python("import socket\nc=socket.create_connection(('%s', 7), timeout=5)\n"
                     "c.sendall(b'far'); print(c.recv(10))\n" % SLAAC6)
    return r.stdout.strip() == "b'far'"


def test_flood_router26_fills_the_tables_to_their_bounds_and_no_further(lab, stack):
    gw = wait_for(lambda: default_gw(ip6(lab.r)), 6)
    assert gw
    before = flood(lab, stack, ["atk6-flood_router26", "ustk0"])
    d = ip6(lab.r)
    # RFC 4861 6.3.6: the router in use stays the default route; the far prefix still works
    assert default_gw(d) == gw
    assert far_echo(lab)
    after = stack.live_counters()
    dev = d["links"][0]["dev"]
    link = d["links"][0]
    assert len(link["prefixes"]) == SLAAC_PREFIXES
    assert len(link["routers"]) == SLAAC_ROUTERS
    assert len(d["addrs"]) <= IPV6_ADDRS
    assert len(link["neigh"]) <= ND_CACHE_SIZE
    refused = after.get(dev + ".slaac.prefix_table_full", 0) - \
        before.get(dev + ".slaac.prefix_table_full", 0)
    assert refused > 0
    assert after.get(dev + ".slaac.router_table_full", 0) > \
        before.get(dev + ".slaac.router_table_full", 0)
    alive(lab, stack)
    row("atk6-flood_router26", "%.1f s of RAs with random routers and prefixes" % FLOOD_S,
        "prefix table at its bound (%d), default routers at theirs (%d), %d addresses "
        "(<= %d), neighbour cache %d (<= %d); every further prefix refused and counted; "
        "radvd's router stays the default route (the far prefix still reaches the stack); "
        "ping6 and a TCP6 echo work after" % (len(link["prefixes"]), len(link["routers"]),
                                              len(d["addrs"]), IPV6_ADDRS, len(link["neigh"]),
                                              ND_CACHE_SIZE),
        delta(after, before, "icmp6.rx_ra", dev + ".slaac.prefix_table_full",
              dev + ".slaac.router_table_full", dev + ".nd.evicted", "stack.rx_dropped"))


def test_flood_advertise6_and_flood_solicitate6_leave_the_stack_answering(lab, stack):
    before = flood(lab, stack, ["atk6-flood_advertise6", "ustk0"],
                   ["atk6-flood_solicitate6", "ustk0"])
    after = stack.live_counters()
    dev = ip6(lab.r)["links"][0]["dev"]
    assert after[dev + ".nd.na_no_entry"] > before[dev + ".nd.na_no_entry"]
    assert after["icmp6.rx_ns_not_ours"] > before["icmp6.rx_ns_not_ours"]
    assert len(ip6(lab.r)["links"][0]["neigh"]) <= ND_CACHE_SIZE
    alive(lab, stack)
    row("atk6-flood_advertise6", "%.1f s of NAs for random targets (beside the next)"
        % FLOOD_S, "no cache entry made for any (RFC 4861 7.2.5: unsolicited NAs create "
        "none); ping6 and TCP6 echo work after",
        delta(after, before, "icmp6.rx_na", dev + ".nd.na_no_entry"))
    row("atk6-flood_solicitate6", "%.1f s of NSs for random targets from random sources"
        % FLOOD_S, "not ours: dropped, nothing learned; neighbour cache bounded; ping6 and "
        "TCP6 echo work after", delta(after, before, "icmp6.rx_ns", "icmp6.rx_ns_not_ours",
                                      dev + ".nd.evicted", "stack.rx_dropped"))


def test_fake_router6_rogue_router_stays_within_the_bounds(lab, stack):
    before = stack.live_counters()
    p = lab.r.popen(["atk6-fake_router6", "ustk0", "2001:db8:fa6e::/64"])
    time.sleep(1.0)
    p.kill()
    p.communicate(timeout=5)
    d = ip6(lab.r)
    after = stack.live_counters()
    link = d["links"][0]
    assert len(link["prefixes"]) <= SLAAC_PREFIXES and len(link["routers"]) <= SLAAC_ROUTERS
    assert len(d["addrs"]) <= IPV6_ADDRS
    alive(lab, stack)
    row("atk6-fake_router6", "a rogue router advertising 2001:db8:fa6e::/64 with itself "
        "as default router", "its RAs are valid (RFC 4861 6.1.2) but the tables are full "
        "from the flood before: its prefix refused and counted, nothing beyond the bounds; "
        "ping6 and TCP6 echo work after",
        delta(after, before, "icmp6.rx_ra", link["dev"] + ".slaac.prefix_table_full",
              link["dev"] + ".slaac.router_table_full"))


def test_mld_snooping_bridge_sees_the_solicited_node_group(lab, stack):
    r = lab.r
    # the bridge's own link-local must be usable before its querier can send (no DAD), and
    # a short startup interval makes it ask at once; MLDv2 as the stack speaks it
    r.run(["ip", "link", "add", "br6", "type", "bridge", "mcast_snooping", "1",
           "mcast_mld_version", "2"])
    r.run(["sysctl", "-qw", "net.ipv6.conf.br6.accept_dad=0"])
    r.run(["ip", "link", "set", "ustk0", "master", "br6"])
    r.run(["ip", "link", "set", "br6", "up"])
    time.sleep(0.3)
    r.run(["ip", "link", "set", "br6", "type", "bridge", "mcast_querier", "1",
           "mcast_startup_query_interval", "100", "mcast_query_response_interval", "100"])
    group = "ff02::1:ff00:2"

    def seen():
        return "port ustk0 grp " + group in r.run(["bridge", "mdb", "show", "dev", "br6"]).stdout
    # the bridge's querier asks at start; the stack's MLDv2 report answers (RFC 3810 6)
    ok = wait_for(seen, 8)
    out = r.run(["bridge", "mdb", "show", "dev", "br6"]).stdout
    c = stack.live_counters()
    r.run(["ip", "link", "set", "ustk0", "nomaster"])
    r.run(["ip", "link", "del", "br6"])
    assert ok, out
    dev = ip6(lab.r)["links"][0]["dev"]
    row("Linux bridge, mcast_snooping 1, mcast_querier 1", "MLD querier and snooping switch "
        "in front of the stack", "`bridge mdb show` lists the stack's solicited-node group "
        "%s on its port" % group, "mld: " + ", ".join(
            "%s %d" % (k.split(".", 2)[2], v) for k, v in sorted(c.items())
            if k.startswith(dev + ".mld.") and v))


def tap_tx(ns):
    """Frames the kernel has written to the TAP, i.e. handed to the stack."""
    r = ns.run(["ip", "-s", "-j", "link", "show", "dev", "ustk0"])
    return json.loads(r.stdout)[0]["stats64"]["tx"]["packets"]


def settled(stack):
    """The counters once every packet buffer is back in the pool (nothing leaked)."""
    c = stack.wait_counters(lambda c: c["pbuf.free"] == c["pbuf.count"], 5)
    assert c["pbuf.free"] == c["pbuf.count"], c
    return c


def drops(after, before, dev):
    """The drop counters that moved over a step: every layer's rx_* rejects and the
    reassembly's, as deltas (the table's counters column)."""
    keys = sorted(k for k in after if (k.startswith(("ip6.rx_", "icmp6.rx_", "reass6.",
                                                      dev + ".rx_", "tcp.rx_", "udp.rx_"))
                                        and not k.endswith(("rx_packets", "rx_bytes",
                                                            "rx_delivered", "rx_segments"))))
    return delta(after, before, *keys)


FUZZ_S = 3.0


def test_atk6_fuzz_ip6_briefly(lab, stack):
    before = stack.live_counters()
    sent0 = tap_tx(lab.r)
    p = lab.r.popen(["atk6-fuzz_ip6", "-a", "-I", "ustk0", SLAAC6])
    time.sleep(FUZZ_S)
    p.kill()
    p.communicate(timeout=5)
    after = settled(stack)
    d = ip6(lab.r)
    dev = d["links"][0]["dev"]
    sent = tap_tx(lab.r) - sent0
    # every frame the kernel wrote reached the stack's counters (none lost unseen)
    assert after[dev + ".rx_packets"] - before[dev + ".rx_packets"] == sent
    assert len(d["links"][0]["neigh"]) <= ND_CACHE_SIZE and len(d["addrs"]) <= IPV6_ADDRS
    alive(lab, stack)
    row("atk6-fuzz_ip6 -I", "%.0f s of fuzzed IPv6 headers + Echo Requests (%d frames)"
        % (FUZZ_S, sent), "stays up; every frame counted at the link; pool full after "
        "(%d/%d); ping6 and TCP6 echo work" % (after["pbuf.free"], after["pbuf.count"]),
        drops(after, before, dev))


def test_mld_membership_outlives_the_bridge_querier_timeouts(lab, stack):
    """The stack joins no application group (no IPV6_JOIN_GROUP): its solicited-node group
    carries the proof. The membership interval is 2 s and the test waits over two of them:
    only the stack's answers to the queries keep the bridge's entry. (mcast_flood off did not
    stop an NS the bridge device itself sends, so the NS alone proves less than the entry.)"""
    r = lab.r
    group = "ff02::1:ff00:2"
    r.run(["ip", "link", "add", "br7", "type", "bridge", "mcast_snooping", "1",
           "mcast_mld_version", "2"])
    try:
        r.run(["sysctl", "-qw", "net.ipv6.conf.br7.accept_dad=0"])
        r.run(["ip", "link", "set", "ustk0", "master", "br7"])
        r.run(["bridge", "link", "set", "dev", "ustk0", "mcast_flood", "off"])
        r.run(["ip", "link", "set", "br7", "up"])
        time.sleep(0.3)
        # centiseconds: a query each second, answers within 0.5 s, memberships last 2 s
        r.run(["ip", "link", "set", "br7", "type", "bridge", "mcast_query_interval", "100",
               "mcast_query_response_interval", "50", "mcast_membership_interval", "200",
               "mcast_startup_query_interval", "100", "mcast_querier", "1"])

        def seen():
            return "port ustk0 grp " + group in r.run(["bridge", "mdb", "show", "dev",
                                                       "br7"]).stdout
        assert wait_for(seen, 8), r.run(["bridge", "mdb", "show", "dev", "br7"]).stdout
        dev = ip6(lab.r)["links"][0]["dev"]
        before = stack.live_counters()
        time.sleep(5.0)                        # two and a half membership intervals
        assert seen()
        mid = stack.live_counters()
        na0 = mid["icmp6.tx_na"]
        nd = r.run(["ndisc6", "-1", "-r", "3", "-w", "500", SLAAC6, "br7"])
        assert ("Target link-layer address: " + MAC).upper() in nd.stdout.upper(), nd.stdout
        after = stack.live_counters()
        assert after["icmp6.tx_na"] > na0
        queries = mid[dev + ".mld.rx_queries"] - before[dev + ".mld.rx_queries"]
        reports = mid[dev + ".mld.tx_reports"] - before[dev + ".mld.tx_reports"]
        assert queries >= 3 and reports >= 3, (before, mid)
    finally:
        r.run(["ip", "link", "set", "ustk0", "nomaster"])
        r.run(["ip", "link", "del", "br7"])
    row("Linux bridge querier, 2 s membership interval",
        "queries every second; drops a membership not renewed within 2 s",
        "the stack answers every query (%d queries, %d reports in 5 s), the bridge keeps "
        "%s on its port past two membership timeouts, and an NS sent through the bridge "
        "is answered" % (queries, reports, group),
        delta(mid, before, dev + ".mld.rx_queries", dev + ".mld.tx_reports"))
