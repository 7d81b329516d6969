"""IPv6 under `ustack up --runtime micropython` (issue 9): the stack runs in the MicroPython unix
port, Linux is its peer over the TAP in a throwaway namespace, with the same flags as under
the CPython runtime.

- --ip6/--host-ip6: the ready line names the link-local and the given address once DAD is
  done; Linux pings both (ND resolves the stack's MAC), the stack pings Linux (the control
  service's `ping`), UDP echo and a TCP echo checked by SHA-256 over IPv6, the exit counters
  carry the IPv6 groups and the heap stayed inside -X heapsize;
- the same traffic with micropython.heap_lock() held: IPv6 allocates nothing in steady state;
- no --ip6: radvd's Router Advertisement gives the stack its SLAAC address and default route
  (the stack's own state read over the control channel), Linux pings that address; radvd's
  periodic RAs are taken in with the heap locked;
- a bad --ip6 is refused in one line under this runtime too, before anything is made."""
import json
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, one_line_error
from tests.micropython.mpyhelp import needs_micropython
from tests.micropython.test_interop_mpy import TCP_ECHO_HELD

pytestmark = [needs_netns, needs_micropython]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
STACK6 = "2001:db8::2"
HOST6 = "2001:db8::1"
STACK_LL = "fe80::ff:fe00:2"          # fe80:: + the modified EUI-64 of 02:00:00:00:00:02
SLAAC6 = "2001:db8:1::ff:fe00:2"      # radvd's prefix + the same interface identifier
MAC = "02:00:00:00:00:02"
HEAP = 2 * 1024 * 1024                # board unix: -X heapsize=2M
CONTROL = 4243                        # runtime.CONTROL_PORT (on with --host-ip)

RADVD_CONF = """interface ustk0 {
  AdvSendAdvert on; IgnoreIfMissing on;
  MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 60;
  prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; AdvValidLifetime 120;
                           AdvPreferredLifetime 60; };
};
"""

UDP6_ECHO = r"""
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
t0 = time.perf_counter()
for i in range({n}):
    m = bytes([i % 256]) * (1 + (i * 7) % 1400)
    s.sendto(m, ('{ip}', 7))
    d, a = s.recvfrom(65535)
    assert d == m and a[0] == '{ip}' and a[1] == 7, (i, len(d), a)
print('ok %d %.3f' % ({n}, time.perf_counter() - t0))
"""

TCP6_ECHO = r"""
import hashlib, os, socket, threading, time
N = {nbytes}
data = os.urandom(N)
s = socket.create_connection(('{ip}', 7), timeout=30)
got = bytearray()
def reader():
    while len(got) < N:
        b = s.recv(65536)
        if not b:
            break
        got.extend(b)
t = threading.Thread(target=reader); t.start()
t0 = time.perf_counter()
s.sendall(data)
t.join(120)
dt = time.perf_counter() - t0
print('peer', s.getpeername()[0])
s.close()
ok = hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(data).hexdigest()
print('sha256 %s %d %.3f' % ('match' if ok else 'MISMATCH', len(got), dt))
"""

CONTROL_CMD = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(20)
s.sendto(b'{cmd}', ('192.0.2.2', {port}))
print(s.recvfrom(8192)[0].decode())
"""


def control(ns, cmd):
    r = ns.python(CONTROL_CMD.format(cmd=cmd, port=CONTROL), timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def ip6_state(ns):
    """The stack's IPv6 state (core/ctl.py op ip6) over the control channel `ustack up
    --runtime micropython` forwards, as `ustack` commands reach it."""
    r = ns.python("from ustack.ports.cpython import control as c\nimport json\n"
                  "print(json.dumps(c.find('ustk0').call('ip6')))")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def ping6(ns, *args):
    r = ns.run(["ping", "-6", "-n", "-w", "60"] + list(args), timeout=120)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2))


def udp6_echo(ns, n, ip=STACK6):
    r = ns.python(UDP6_ECHO.format(n=n, ip=ip), timeout=180)
    assert r.stdout.startswith("ok %d " % n), r.stdout + r.stderr
    return float(r.stdout.split()[2])


def tcp6_echo(ns, nbytes, ip=STACK6):
    r = ns.python(TCP6_ECHO.format(nbytes=nbytes, ip=ip), timeout=180)
    assert "peer %s\n" % ip in r.stdout, r.stdout + r.stderr
    assert "sha256 match %d " % nbytes in r.stdout, r.stdout + r.stderr
    return float(r.stdout.split()[-1])


@pytest.fixture
def ns():
    n = Netns("mp6")
    yield n
    n.close()


@pytest.fixture
def stack6(ns):
    s = StackProc(ns, "--serve", "echo", "--board", "unix", "--ip6", STACK6 + "/64",
                  "--host-ip6", HOST6 + "/64", runtime="micropython")
    yield s
    if s.p.poll() is None:
        s.stop()


def test_ipv6_ping_both_ways_udp_and_tcp_echo_against_linux(ns, stack6):
    s = stack6
    # ready once DAD is done: both addresses usable, named as under the CPython runtime
    assert " ip6=%s/64,%s/64" % (STACK_LL, STACK6) in s.ready, s.ready
    assert "runtime=micropython" in s.ready
    assert ping6(ns, "-c", "20", "-i", "0.01", "-W", "2", STACK6) == (20, 20)
    assert ping6(ns, "-c", "5", "-i", "0.05", "-W", "2", STACK_LL + "%ustk0") == (5, 5)
    neigh = ns.run(["ip", "-6", "neigh", "show", STACK6, "dev", "ustk0"]).stdout
    assert MAC in neigh, neigh   # Linux's Neighbor Solicitation answered with our MAC
    # the stack pings Linux: its own Neighbor Solicitation first, then echo requests
    rep = json.loads(control(ns, "ping %s 5" % HOST6))
    assert rep["sent"] == 5 and rep["received"] == 5, rep
    dt_udp = udp6_echo(ns, 200)
    dt_tcp = tcp6_echo(ns, 1 << 20)
    print("IPv6 under MicroPython: 200 UDP echoes in %.2f s, 1 MB TCP echo in %.2f s "
          "(%.0f KB/s)" % (dt_udp, dt_tcp, 1024 / dt_tcp))
    mem = json.loads(control(ns, "gc"))   # the live heap after a collection
    c = s.stop()
    assert s.returncode == 0
    assert c["dad.dad_succeeded"] >= 2 and c.get("dad.dad_failed", 0) == 0, c
    assert c["icmp6.rx_echo_request"] >= 25 and c["icmp6.tx_echo_reply"] >= 25, c
    assert c["icmp6.rx_echo_reply"] >= 5, c
    assert c["icmp6.rx_ns"] >= 1 and c["icmp6.tx_na"] >= 1, c
    assert c["eth0.nd.learned"] >= 1, c
    assert c["ip6.rx_delivered"] >= 25 + 400 and c["ip6.tx_packets"] >= 25 + 200, c
    assert c["svc.tcp7.rx_bytes"] == 1 << 20 and c["svc.tcp7.tx_bytes"] == 1 << 20, c
    assert c["svc.udp7.datagrams"] == 200, c
    assert c["pbuf.free"] == c["pbuf.count"], c
    # the GC heap is -X heapsize (it cannot grow); IPv6 with the traffic above left most of
    # it free, and nothing in the run ran out of memory
    assert mem["alloc"] + mem["free"] <= HEAP, mem
    assert mem["free"] > HEAP // 4, mem
    assert c.get("stack.exceptions", 0) == 0 and c.get("heap_lock.failures", 0) == 0, c
    print("heap after gc: %d live of %d (code %d, setup %d)" % (
        mem["alloc"], HEAP, mem["code"], mem["setup"]))


def test_ipv6_steady_state_runs_with_the_heap_locked(ns, stack6):
    """Warm-up first (ND, the TCP connection's setup allocates its socket), then pings, UDP
    echoes and a TCP echo over IPv6 with micropython.heap_lock() held: nothing allocates."""
    assert ping6(ns, "-c", "5", "-i", "0.01", STACK6) == (5, 5)
    udp6_echo(ns, 10)
    # the connection is made and warmed up before the lock and closed after it (setup and
    # teardown allocate; the data in between must not)
    cli = ns.popen([sys.executable, "-u", "-c", TCP_ECHO_HELD.format(ip=STACK6,
                                                                      nbytes=256 << 10)],
                   stdin=subprocess.PIPE)
    try:
        warm = cli.stdout.readline()
        assert warm.startswith("warm True 65536"), warm + cli.stdout.read()
        assert control(ns, "lock") == "locked"
        sent, got = ping6(ns, "-c", "300", "-i", "0.002", "-W", "2", STACK6)
        udp6_echo(ns, 300)
        cli.stdin.write("go\n")
        cli.stdin.flush()
        res = cli.stdout.readline()
        rep = json.loads(control(ns, "unlock"))
        cli.stdin.write("done\n")
        cli.stdin.flush()
        cli.wait(60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert res.startswith("sha256 match %d " % (256 << 10)), res
    assert (sent, got) == (300, 300)
    c = stack6.stop()
    out = "".join(stack6.lines)
    assert rep["failures"] == 0 and rep["locked_polls"] > 0, (rep, out[out.find("Traceback"):])
    assert "heap_lock.failures" not in c, c
    assert c["icmp6.tx_echo_reply"] >= 305 and c["svc.tcp7.rx_bytes"] == (64 + 256) << 10, c


def test_slaac_from_radvd_gives_the_stack_its_address_and_router(ns, tmp_path):
    ns.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
    # the TAP's kernel side sends RAs at once (no DAD of its link-local address)
    ns.run(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
    s = StackProc(ns, "--serve", "echo", "--board", "unix", "--host-ip6", "2001:db8:1::1/64",
                  runtime="micropython")
    conf = str(tmp_path / "radvd.conf")
    with open(conf, "w") as f:
        f.write(RADVD_CONF)
    radvd = ns.popen(["radvd", "-n", "-C", conf, "-p", str(tmp_path / "radvd.pid"),
                      "-m", "stderr"])
    try:
        assert " ip6=%s/64" % STACK_LL in s.ready, s.ready
        end = time.monotonic() + 20
        st = None
        while time.monotonic() < end:
            st = ip6_state(ns)
            if any(a["addr"] == SLAAC6 and not a["tentative"] for a in st["addrs"]):
                break
            time.sleep(0.3)
        # the address alone (/128): the /64 is the on-link prefix, a route of its own
        assert any(a["addr"] == SLAAC6 and a["prefix"] == 128 and not a["tentative"]
                   for a in st["addrs"]), st["addrs"]
        assert {"dst": "2001:db8:1::", "prefix": 64, "via": None, "dev": "eth0"} in \
            st["routes"], st["routes"]
        link = st["links"][0]
        assert link["prefixes"] == ["2001:db8:1::/64"], link
        assert len(link["routers"]) == 1 and link["routers"][0].startswith("fe80::"), link
        assert ping6(ns, "-c", "5", "-i", "0.05", "-W", "2", SLAAC6) == (5, 5)
        assert tcp6_echo(ns, 64 << 10, ip=SLAAC6) > 0
        # radvd's periodic RAs (every 3-4 s) refresh the prefix, router and address
        # lifetimes: that steady state runs with the heap locked too
        before = json.loads(control(ns, "stats"))["icmp6.rx_ra"]
        assert control(ns, "lock") == "locked"
        try:
            time.sleep(9)
            sent, got = ping6(ns, "-c", "20", "-i", "0.05", "-W", "2", SLAAC6)
        finally:
            rep = json.loads(control(ns, "unlock"))
        after = json.loads(control(ns, "stats"))["icmp6.rx_ra"]
    finally:
        radvd.kill()
        radvd.wait(5)
    c = s.stop()
    out = "".join(s.lines)
    assert rep["failures"] == 0, (rep, out[out.find("Traceback"):][:1500])
    assert after - before >= 2 and (sent, got) == (20, 20), (before, after, sent, got)
    # (no Router Solicitation when radvd's first RA came before the stack's RS delay ended)
    assert c["icmp6.rx_ra"] >= 3 and c["eth0.slaac.addr_formed"] == 1, sorted(c.items())
    assert c["eth0.slaac.routers_added"] == 1, sorted(c.items())


def test_a_bad_ipv6_flag_is_refused_in_one_line_under_micropython():
    for flags, words in ((["--ip6", "2001:db8::zz/64"], ("--ip6 2001:db8::zz/64",)),
                         (["--host-ip6", "fe80::1"], ("--host-ip6 fe80::1", "ADDR/PREFIX")),
                         # an MCU board runs its own module set: no ipv6 in its FEATURES
                         (["--board", "esp32_w5500", "--ip6", "2001:db8::2/64"],
                          ("--ip6 2001:db8::2/64", "esp32_w5500", "FEATURES"))):
        r = subprocess.run(CLI + ["up", "--runtime", "micropython", "--tap", "ustk7", "--ip",
                                  "192.0.2.2/24"] + flags, capture_output=True, text=True,
                           timeout=30)
        one_line_error(r, *words)
        assert r.stdout == ""
        assert subprocess.run(["ip", "link", "show", "ustk7"], capture_output=True).returncode


def test_a_board_that_turns_ipv6_on_ships_its_modules():
    """The ipv6 feature, or a CONFIG with IPV6 on (the stack imports core/ipv6.py then),
    ships the IPv6 modules in the board's build; the runtime selects the feature too."""
    from ustack.ports.micropython.build import select_modules, FEATURE_MODULES
    from ustack.ports.micropython.runtime import _features

    class V4:
        NAME = "v4"
        ARCH = "armv6m"
        DRIVER = "w5500"
        FEATURES = ("tcp",)
        CONFIG = {}

    class V6Config(V4):
        CONFIG = {"IPV6": True}
    six = FEATURE_MODULES["ipv6"]
    v4 = [m for m, _ in select_modules(V4)[0]]
    v6 = [m for m, _ in select_modules(V6Config)[0]]
    assert not any(m in v4 for m in six), v4
    assert all(m in v6 for m in six), v6
    r = {"features": ("tcp",), "config": {"IPV6": True, "FILTER": ("policy input accept",)},
         "dhcp": False}
    assert _features(r) == ["tcp", "ipv6", "filter"]
