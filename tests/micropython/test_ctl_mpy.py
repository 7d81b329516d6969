"""The control protocol (core/ctl.py) on the MicroPython stack, over its UDP control port:
`ustack up --runtime micropython` in a throwaway netns, the Linux kernel asking it for its
addresses, sockets and counters, and changing a route that decides what it can answer."""
import json
import re
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP
from tests.micropython.mpyhelp import needs_micropython

pytestmark = [needs_netns, needs_micropython]

CONTROL = 4243
OFF_LINK = "198.51.100.1"

ASK = r"""
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)
s.sendto(json.dumps({req}).encode(), ('{ip}', {port}))
print(s.recvfrom(65535)[0].decode())
"""

ECHO_FROM_OFF_LINK = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{src}', 0)); s.settimeout(1)
s.sendto(b'hi', ('{ip}', 7))
try:
    print(s.recv(100) == b'hi')
except socket.timeout:
    print('timeout')
"""


@pytest.fixture
def ns():
    n = Netns("mctl")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", "echo", "--board", "unix", runtime="micropython",
                  env={"USTACK_MPY_CONTROL_PORT": str(CONTROL)})
    yield s
    if s.p.poll() is None:
        s.stop()


def ask(ns, op, **args):
    req = dict(args, v=1, op=op)
    r = ns.python(ASK.format(req=repr(req), ip=STACK_IP, port=CONTROL), timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def echo_from_off_link(ns):
    r = ns.python(ECHO_FROM_OFF_LINK.format(src=OFF_LINK, ip=STACK_IP), timeout=30)
    assert r.stdout.strip() in ("True", "timeout"), r.stdout + r.stderr
    return r.stdout.strip() == "True"


def test_the_micropython_stack_answers_the_same_protocol(ns, stack):
    hello = ask(ns, "hello")
    assert hello["ok"] and hello["data"]["runtime"] == "micropython"
    addr = ask(ns, "addr")["data"]
    assert addr[0]["ip"] == STACK_IP and addr[0]["prefix"] == 24
    ss = ask(ns, "ss")["data"]
    assert {"proto": "udp", "local": "0.0.0.0:%d" % CONTROL} in [
        {"proto": r["proto"], "local": r["local"]} for r in ss]
    assert any(r["state"] == "LISTEN" and r["local"] == "0.0.0.0:7" for r in ss)
    assert ask(ns, "stats")["data"]["ctl.requests"] >= 3
    r = ask(ns, "frobnicate")
    assert not r["ok"] and "unknown op" in r["error"]


def test_a_route_added_over_the_control_port_changes_forwarding(ns, stack):
    ns.run(["ip", "addr", "add", OFF_LINK + "/24", "dev", "ustk0"], check=True)
    assert not echo_from_off_link(ns)
    r = ask(ns, "route.add", dst="198.51.100.0/24", via=HOST_IP)
    assert r["ok"], r
    assert echo_from_off_link(ns)
    assert ask(ns, "route.del", dst="198.51.100.0/24")["ok"]
    assert not echo_from_off_link(ns)


def test_the_cli_reaches_the_micropython_stack_through_ustack_up(ns, stack):
    """`ustack up --runtime micropython` holds the control socket and forwards to the port."""
    cli = [sys.executable, "-m", "ustack.ports.cpython.cli"]
    r = ns.run(cli + ["addr"])
    assert "inet %s/24 brd 192.0.2.255 scope global eth0" % STACK_IP in r.stdout, \
        r.stdout + r.stderr
    r = ns.run(cli + ["ss", "-tl"])
    assert re.search(r"tcp +LISTEN +\d+ +\d+ +0\.0\.0\.0:7 ", r.stdout), r.stdout + r.stderr
    ns.run(["ip", "addr", "add", OFF_LINK + "/24", "dev", "ustk0"], check=True)
    r = ns.run(cli + ["route", "add", "198.51.100.0/24", "via", HOST_IP])
    assert "198.51.100.0/24 via %s dev eth0" % HOST_IP in r.stdout, r.stdout + r.stderr
    assert echo_from_off_link(ns)
    r = ns.run(cli + ["capture", "-w", "/dev/null", "--duration", "1"])
    assert r.returncode == 1 and "use up --pcap" in r.stderr.strip().splitlines()[0]
