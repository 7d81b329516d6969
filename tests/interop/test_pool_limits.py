"""Issue 8, holes 1 and 3 against the Linux kernel in a throwaway namespace: a raw socket and
`ping -s 3000` (once a crash of the runner), and unread sockets flooded by Linux while the
kernel still gets ARP, ping and TCP answers."""
import json
import os
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, HOST_IP, STACK_IP

pytestmark = [needs_netns]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(ROOT, "examples")
ARGS = ["--tap", "ustk0", "--ip", STACK_IP + "/24", "--host-ip", HOST_IP + "/24"]

# A careless application: N UDP sockets and a raw ICMP socket it never reads, plus a TCP echo
# listener; prints its counters as JSON when told to on stdin.
UNREAD_APP = r"""
import json, sys, threading
sys.path.insert(0, %(ex)r)
from common import stack_from_args
from ustack.core import socket as so
net, args = stack_from_args("unread", lambda ap: ap.add_argument("--socks", type=int, default=4))
socks = []
for i in range(args.socks):
    s = net.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 2000 + i))
    socks.append(s)
socks.append(net.socket(so.AF_INET, so.SOCK_RAW, so.IPPROTO_ICMP))
ls = net.socket(so.AF_INET, so.SOCK_STREAM)
ls.bind(("", 7))
ls.listen(4)
def echo():
    while True:
        c, _ = ls.accept()
        d = c.recv(1000)
        c.sendall(d)
        c.close()
threading.Thread(target=echo, daemon=True).start()
print("unread app ready", flush=True)
for line in sys.stdin:
    print("counters " + json.dumps(net.counters()), flush=True)
"""


@pytest.fixture
def ns():
    n = Netns("pool")
    yield n
    n.close()


def _wait_for(p, text):
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
        if text in line:
            return lines


def test_raw_socket_gets_linux_ping_s_3000_whole_and_the_stack_answers(ns):
    """Hole 1: the reassembled 3028-byte echo request once crashed the runner out of
    RawSocket._deliver; now the raw socket gets it whole and Linux gets its replies."""
    p = ns.popen([sys.executable, os.path.join(EX, "raw_capture.py")] + ARGS + ["--count", "2"])
    _wait_for(p, "capture started")
    r = ns.run(["ping", "-c", "2", "-s", "3000", "-i", "0.3", "-W", "2", STACK_IP])
    assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout + r.stderr
    out, _ = p.communicate(timeout=20)
    assert out.count("%s -> %s, Protocol: 1 (ICMP), Length: 3028, payload 3008" % (
        HOST_IP, STACK_IP)) == 2, out


def test_unread_sockets_flooded_by_linux_leave_arp_ping_and_tcp_working(ns):
    """Hole 3: Linux floods 4 UDP sockets nobody reads, well past what they may queue; the
    stack still answers ARP (the kernel's cache flushed), ping and a TCP echo, and every
    datagram it did not queue is counted."""
    import subprocess
    p = ns.popen([sys.executable, "-c", UNREAD_APP % {"ex": EX}] + ARGS, stdin=subprocess.PIPE)
    _wait_for(p, "unread app ready")
    flood = ns.python(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for k in range(300):\n"
        "    for i in range(4):\n"
        "        s.sendto(b'x' * 200, ('%s', 2000 + i))\n" % STACK_IP)
    assert flood.returncode == 0, flood.stderr
    time.sleep(1.0)
    ns.run(["ip", "neigh", "flush", "dev", "ustk0"])
    r = ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", STACK_IP])
    assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout + r.stderr
    r = ns.python("import socket\nc = socket.create_connection(('%s', 7), timeout=5)\n"
                  "c.sendall(b'still here'); print(c.recv(100).decode())\n" % STACK_IP)
    assert r.returncode == 0 and "still here" in r.stdout, r.stderr
    p.stdin.write("stats\n")
    p.stdin.flush()
    line = "".join(_wait_for(p, "counters ")).splitlines()[-1]
    c = json.loads(line[len("counters "):])
    assert c["pbuf.queued"] <= c["pbuf.count"] // 2
    queued_or_counted = (c.get("udp.rx_delivered", 0) + c.get("udp.rx_queue_full", 0) +
                         c.get("udp.rx_rcvbuf", 0) + c.get("udp.rx_pool_share", 0))
    assert c.get("udp.rx_rcvbuf", 0) + c.get("udp.rx_pool_share", 0) > 0, c
    assert queued_or_counted == c["udp.rx_datagrams"], c
