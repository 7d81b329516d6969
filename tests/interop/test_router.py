"""ustack as a router between two Linux hosts (issue 14): `ustack up --forward --link ...`
with two TAPs, each one's kernel side in a namespace of its own. Host A is the kernel of
the namespace the stack runs in (192.0.2.1 on ustk0), host B the kernel of a second
namespace (198.51.100.2 on ustk1, moved there); each routes the other's network via the
stack.

- pings both ways, a TCP transfer through the stack (SHA-256 checked), the stack's forwarding
  counters; the throughput is printed (benchmarks measure it properly);
- a TTL of 1 ends at the stack: ICMP time exceeded names it as the hop (traceroute's view);
- the stack's link to B has a smaller MTU (1280) than B believes: A's TCP (DF set, B's MSS
  1460) gets Fragmentation Needed from the stack (RFC 1191/1812) and completes at the smaller
  size;
- bad --link values: one line naming the flag, nothing created."""
import hashlib
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import STACK_IP, HOST_IP
from tests.routerkit import stack_between

pytestmark = [needs_netns]

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
B_STACK = "198.51.100.1"
B_HOST = "198.51.100.2"
SIZE = 4000000


@pytest.fixture
def router():
    with stack_between("rt", ["--forward", "--link", "tap=ustk1,ip=%s/24,mtu=1280" % B_STACK],
                       # B's own side says 1500 (its MSS 1460): only the stack knows its
                       # link is 1280
                       b_cmds=[["ip", "link", "set", "ustk1", "mtu", "1500", "up"],
                               ["ip", "addr", "add", B_HOST + "/24", "dev", "ustk1"],
                               ["ip", "route", "add", "default", "via", B_STACK]],
                       a_cmds=[["ip", "route", "add", "198.51.100.0/24", "via", STACK_IP]]) \
            as (a, b, stack):
        assert " eth1=ustk1:%s/24" % B_STACK in stack.ready, stack.ready
        # a router takes no GRO super-frames (it could not forward them over a smaller MTU)
        assert " offload=csum,tso " in stack.ready, stack.ready
        yield a, b, stack


def test_the_stack_routes_between_two_linux_hosts(router):
    a, b, stack = router
    r = a.run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", B_HOST])
    assert "3 received" in r.stdout, r.stdout + r.stderr
    r = b.run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", HOST_IP])
    assert "3 received" in r.stdout, r.stdout + r.stderr
    # a TTL of 1 ends at the stack, which says so (RFC 1812 5.3.1): traceroute's first hop
    r = a.run(["ping", "-n", "-c", "1", "-t", "1", "-W", "2", B_HOST])
    assert "From %s" % STACK_IP in r.stdout and "Time to live exceeded" in r.stdout, r.stdout
    # TCP from A to B through the stack; B's link is 1280 bytes: A's DF segments meet
    # Fragmentation Needed at the stack and shrink (RFC 1191)
    srv = b.popen([sys.executable, "-c", (
        "import socket, hashlib\n"
        "l = socket.socket()\n"
        "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "l.bind(('0.0.0.0', 5001))\n"
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
        "print(n, h.hexdigest(), flush=True)\n")])
    assert srv.stdout.readline().strip() == "listening"
    data = bytes(range(256)) * (SIZE // 256)
    t0 = time.time()
    r = a.python(
        "import socket\n"
        "s = socket.create_connection(('%s', 5001), timeout=20)\n"
        "s.sendall(bytes(range(256)) * %d)\n"
        "s.close()\n" % (B_HOST, SIZE // 256), timeout=60)
    assert r.returncode == 0, r.stderr
    out = srv.stdout.readline().split()
    took = time.time() - t0
    srv.wait(10)
    assert out == [str(len(data)), hashlib.sha256(data).hexdigest()], out
    print("forwarded TCP A->B: %.1f MB/s" % (len(data) / took / 1e6))
    route = a.run(["ip", "route", "get", B_HOST]).stdout
    assert "mtu 1280" in route, route   # A learned the path MTU from the stack's ICMP
    c = stack.stop()
    assert c["ip.fwd_packets"] > SIZE // 1280, c
    assert c["ip.fwd_ttl_exceeded"] == 1 and c["ip.tx_frag_needed"] >= 1, c
    assert c["pbuf.free"] == c["pbuf.count"], c


def test_bad_link_values_are_refused_in_one_line_and_nothing_is_made():
    for spec, msg in (
            ("tap=ustk9", "--link tap=ustk9: needs tap=NAME and ip=ADDR/PREFIX"),
            ("tap=ustk9,ip=192.0.2.9/24", "--link ip=192.0.2.9/24: overlaps --ip"),
            ("tap=ustk9,ip=198.51.100.1/24,speed=9", "unknown key 'speed'"),
            ("tap=ustk9,ip=198.51.100.1/24,mtu=20", "--link mtu=20: must be in 68..")):
        r = subprocess.run(CLI + ["up", "--tap", "ustk8", "--ip", "192.0.2.2/24", "--link", spec],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and r.stdout == "", r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], r.stderr
        for dev in ("ustk8", "ustk9"):
            assert subprocess.run(["ip", "link", "show", dev], capture_output=True).returncode
