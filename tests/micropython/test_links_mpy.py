"""Several links under `ustack up --runtime micropython` (issue 14): the stack in the MicroPython
unix port routes between two Linux hosts, one bridge (and one StreamLink, one interface)
per TAP. The topology is tests/interop/test_router.py's: host A is the kernel of the
namespace the stack runs in (192.0.2.1 on ustk0), host B the kernel of a second namespace
(198.51.100.2 on ustk1, moved there); each routes the other's network via the stack.

- pings both ways, a TCP transfer A -> B through the stack checked by SHA-256, a TTL of 1
  answered by the stack, its forwarding counters;
- a static route added over the control channel (`ustack route add`) to a network behind B;
- a small stateful filter rule set (--filter) on the forward path: pings and A's port 5001
  pass, port 5002 is rejected (a RST from the stack), B cannot open a connection to A;
- the forwarding loop in steady state with micropython.heap_lock() held (pings both ways
  and a TCP transfer through the stack allocate nothing);
- IPv6 on the second link (`ip6=` in --link): B pings the stack's address there;
- a bad --link under this runtime: one line, nothing made."""
import hashlib
import json
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import STACK_IP, HOST_IP
from tests.routerkit import stack_between
from tests.micropython.mpyhelp import needs_micropython
from tests.interop.test_router import B_STACK, B_HOST

pytestmark = [needs_netns, needs_micropython]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
FAR = "203.0.113.1"           # behind B: reached through the static route
B_STACK6 = "2001:db8:2::1"    # the stack's IPv6 address on eth1 (--link ip6=)
CONTROL = 4243                # runtime.CONTROL_PORT (on with --host-ip)
RULES = ["forward ct established,related accept",
         "forward icmp accept",
         "forward iif eth0 tcp dport 5001 accept",
         "forward tcp dport 5002 reject",
         "policy forward drop"]

SINK = (
    "import socket, hashlib, sys\n"
    "l = socket.socket()\n"
    "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "l.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "l.listen(1)\n"
    "print('listening', flush=True)\n"
    "c, _ = l.accept()\n"
    "h = hashlib.sha256()\n"
    "n = 0\n"
    "while True:\n"
    "    d = c.recv(65536)\n"
    "    if not d:\n"
    "        break\n"
    "    h.update(d)\n"
    "    n += len(d)\n"
    "print(n, h.hexdigest(), flush=True)\n")

SEND = (
    "import socket, sys\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]))\n"
    "s.sendall(bytes(range(256)) * (int(sys.argv[3]) // 256))\n"
    "s.close()\n")

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


def ping(ns, dst, count=3, *extra):
    r = ns.run(["ping", "-n", "-c", str(count), "-i", "0.01", "-W", "2", "-w", "60"]
               + list(extra) + [dst], timeout=90)
    return r.stdout


def answered(out, count):
    """ping -c N with a deadline waits for N replies and may send one more meanwhile (a late
    reply under load): True when every echo sent was answered, and at least N."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return m is not None and m.group(1) == m.group(2) and int(m.group(2)) >= count


def transfer(src, dst_ns, dst_ip, port, size, timeout=20):
    """size bytes from namespace src to a sink in dst_ns through the stack; the sink's
    (bytes, sha256) and the sender's result."""
    sink = dst_ns.popen([sys.executable, "-c", SINK, str(port)])
    assert sink.stdout.readline().strip() == "listening"
    r = src.run([sys.executable, "-c", SEND, dst_ip, str(port), str(size), str(timeout)],
                timeout=120)
    if r.returncode != 0:
        sink.kill()
        sink.wait(5)
        return None, r
    out = sink.stdout.readline().split()
    sink.wait(10)
    return out, r


def expect(size):
    return [str(size), hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()]


@pytest.fixture
def router():
    flags = ["--forward", "--board", "unix", "--link",
             "tap=ustk1,ip=%s/24,ip6=%s/64" % (B_STACK, B_STACK6)]
    for rule in RULES:
        flags += ["--filter", rule]
    with stack_between("mrt", flags, runtime="micropython",
                       b_cmds=[["ip", "link", "set", "ustk1", "up"],
                               ["ip", "addr", "add", B_HOST + "/24", "dev", "ustk1"],
                               ["ip", "addr", "add", "2001:db8:2::2/64", "dev", "ustk1", "nodad"],
                               ["ip", "route", "add", "default", "via", B_STACK],
                               ["ip", "addr", "add", FAR + "/32", "dev", "lo"]],
                       a_cmds=[["ip", "route", "add", "198.51.100.0/24", "via", STACK_IP],
                               ["ip", "route", "add", "203.0.113.0/24", "via", STACK_IP]]) \
            as (a, b, stack):
        yield a, b, stack


def test_the_micropython_stack_routes_between_two_linux_hosts(router):
    a, b, stack = router
    assert " eth1=ustk1:%s/24" % B_STACK in stack.ready, stack.ready
    assert "runtime=micropython" in stack.ready
    out = ping(a, B_HOST, 5)
    assert answered(out, 5), out
    out = ping(b, HOST_IP, 5)
    assert answered(out, 5), out
    # IPv6 on the second link too: its address (DAD done at ready), ND with B
    out = ping(b, B_STACK6, 3)
    assert answered(out, 3), out
    # a TTL of 1 ends at the stack, which says so (RFC 1812 5.3.1)
    out = ping(a, B_HOST, 1, "-t", "1")
    assert "From %s" % STACK_IP in out and "Time to live exceeded" in out, out
    size = 1 << 20
    t0 = time.time()
    got, r = transfer(a, b, B_HOST, 5001, size)
    took = time.time() - t0
    assert got == expect(size), (got, r.stdout + r.stderr)
    print("forwarded TCP A->B under MicroPython: %.2f MB/s" % (size / took / 1e6))
    # a static route to a network behind B, added over the control channel
    out = ping(a, FAR, 1)
    assert "0 received" in out, out   # no route yet: the stack says unreachable
    r = a.run(CLI + ["route", "add", "203.0.113.0/24", "via", B_HOST])
    assert r.returncode == 0, r.stdout + r.stderr
    r = a.run(CLI + ["route"])
    assert "203.0.113.0/24 via %s dev eth1" % B_HOST in r.stdout, r.stdout
    out = ping(a, FAR, 3)
    assert answered(out, 3), out
    c = stack.stop()
    assert stack.returncode == 0
    assert c["ip.fwd_packets"] > size // 1500, c
    assert c["ip.fwd_ttl_exceeded"] == 1 and c["ip.fwd_no_route"] >= 1, c
    assert c["link.rx_frames"] > 0 and c["link.eth1.rx_frames"] > 0, c
    assert c["bridge.to_stack"] > 0 and c["bridge.eth1.to_stack"] > 0, c
    assert c["pbuf.free"] == c["pbuf.count"], c


def test_the_filter_rules_apply_on_the_forward_path(router):
    a, b, stack = router
    got, r = transfer(a, b, B_HOST, 5001, 64 << 10)
    assert got == expect(64 << 10), (got, r.stdout + r.stderr)
    # port 5002: rejected by the stack (a RST: refused at once, not a timeout)
    t0 = time.time()
    got, r = transfer(a, b, B_HOST, 5002, 4096, timeout=10)
    assert got is None and "ConnectionRefusedError" in r.stderr, r.stdout + r.stderr
    assert time.time() - t0 < 8
    # B opens nothing towards A: the policy drops its SYN (a timeout)
    got, r = transfer(b, a, HOST_IP, 5001, 4096, timeout=2)
    assert got is None and "timed out" in r.stderr, r.stdout + r.stderr
    out = ping(b, HOST_IP, 3)
    assert answered(out, 3), out   # ICMP is let through both ways
    rows = json.loads(a.run(CLI + ["filter", "--json"]).stdout)
    c = stack.stop()
    assert c["filter.reject_tcp"] >= 1 and c["filter.drop_policy"] >= 1, c
    assert c["filter.ct_new"] >= 3, c
    pk = dict((row["rule"], row["packets"]) for row in rows["rules"])
    assert pk[RULES[2]] == 1 and pk[RULES[3]] >= 1, rows   # A's two SYNs, one rule each
    assert pk[RULES[0]] > (64 << 10) // 1500, rows           # the rest of the flows
    assert rows["policy"]["forward"] == "drop", rows


def test_forwarding_runs_with_the_heap_locked(router):
    """Steady state: ARP is resolved on both links and one transfer warmed the path up before
    the lock; then pings both ways and 1 MB through the stack (a new TCP flow: the stack only
    forwards it, its conntrack entry is preallocated) with micropython.heap_lock() held."""
    a, b, stack = router
    assert answered(ping(a, B_HOST, 3), 3) and answered(ping(b, HOST_IP, 3), 3)
    got, _ = transfer(a, b, B_HOST, 5001, 64 << 10)
    assert got == expect(64 << 10)
    assert control(a, "lock") == "locked"
    try:
        out_ab = ping(a, B_HOST, 200)
        out_ba = ping(b, HOST_IP, 200)
        got, r = transfer(a, b, B_HOST, 5001, 1 << 20)
    finally:
        rep = json.loads(control(a, "unlock"))
    c = stack.stop()
    out = "".join(stack.lines)
    assert rep["failures"] == 0 and rep["locked_polls"] > 0, (rep, out[out.find("Traceback"):])
    assert answered(out_ab, 200) and answered(out_ba, 200), out_ab + out_ba
    assert got == expect(1 << 20), (got, r.stdout + r.stderr)
    assert "heap_lock.failures" not in c, c
    assert c["ip.fwd_packets"] > 400 + (1 << 20) // 1500, c


def test_a_bad_link_is_refused_in_one_line_under_micropython():
    for spec, msg in (
            ("tap=ustk9", "--link tap=ustk9: needs tap=NAME and ip=ADDR/PREFIX"),
            ("tap=ustk9,ip=192.0.2.9/24", "--link ip=192.0.2.9/24: overlaps --ip")):
        r = subprocess.run(CLI + ["up", "--runtime", "micropython", "--tap", "ustk8", "--ip",
                                  "192.0.2.2/24", "--link", spec],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and r.stdout == "", r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], r.stderr
        for dev in ("ustk8", "ustk9"):
            assert subprocess.run(["ip", "link", "show", dev], capture_output=True).returncode
    r = subprocess.run(CLI + ["up", "--runtime", "micropython", "--driver", "sim-w5500", "--tap",
                              "ustk8", "--ip", "192.0.2.2/24", "--link",
                              "tap=ustk9,ip=198.51.100.1/24"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--link" in r.stderr and "--driver sim-w5500" in r.stderr, r.stderr
