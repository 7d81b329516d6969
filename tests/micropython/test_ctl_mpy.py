"""The control protocol (core/ctl.py) on the MicroPython stack, over its UDP control port:
`ustack up --runtime micropython` in a throwaway netns, the Linux kernel asking it for its
addresses, sockets and counters, and changing a route that decides what it can answer."""
import json
import re
import signal
import subprocess
import sys
import time

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


def test_capture_streams_the_bridges_frames_of_the_micropython_stack(ns, stack, tmp_path):
    """`ustack capture` as against a CPython stack: the runtime's bridge, which carries every
    frame between the TAP and micropython, feeds the pcap stream."""
    pcap = str(tmp_path / "mpy.pcap")
    cap = ns.popen([sys.executable, "-m", "ustack.ports.cpython.cli", "capture", "-w", pcap,
                    "--duration", "3", "--json"])
    time.sleep(1.0)
    assert ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", STACK_IP]).returncode == 0
    out, _ = cap.communicate(timeout=30)
    summary = json.loads(out.strip().splitlines()[-1])
    assert cap.returncode == 0 and summary["captured"] >= 4 and summary["dropped"] == 0, out
    r = subprocess.run(["tshark", "-r", pcap, "-n", "-T", "fields", "-e", "icmp.type",
                        "-e", "ip.src"], capture_output=True, text=True)
    rows = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert rows.count(["8", HOST_IP]) == 2 and rows.count(["0", STACK_IP]) == 2, r.stdout


def test_ustack_up_micropython_is_reached_like_a_cpython_stack_without_setup(ns):
    """No control port chosen by hand: `ustack up --runtime micropython --host-ip ...` opens
    its own (answering only the host's address) and holds the control socket, so `ustack
    addr/ss/stats/config` work as they do against the CPython runtime."""
    s = StackProc(ns, "--serve", "echo", "--board", "unix", runtime="micropython",
                  env={"USTACK_MPY_CONTROL_PORT": ""})
    try:
        cli = [sys.executable, "-m", "ustack.ports.cpython.cli"]
        r = ns.run(cli + ["addr"])
        assert "inet %s/24 brd 192.0.2.255 scope global eth0" % STACK_IP in r.stdout, \
            r.stdout + r.stderr
        r = ns.run(cli + ["ss", "-tln"])
        assert re.search(r"tcp +LISTEN +\d+ +\d+ +0\.0\.0\.0:7 ", r.stdout), r.stdout + r.stderr
        st = json.loads(ns.run(cli + ["stats", "--json"]).stdout)
        assert st["counters"]["ctl.requests"] >= 2
        # found by the pid of `ustack up` (ip netns exec execs it: the same pid), by name
        r = ns.run(cli + ["addr", "--pid", str(s.p.pid), "--json"])
        assert json.loads(r.stdout)[0]["ip"] == STACK_IP, r.stdout + r.stderr
        r = ns.run(cli + ["addr", "--name", "ustk0", "--json"])
        assert json.loads(r.stdout)[0]["ip"] == STACK_IP, r.stdout + r.stderr
        r = ns.python("from ustack.ports.cpython import control as c\n"
                      "import json\nprint(json.dumps(c.find().call('hello')))")
        hello = json.loads(r.stdout)
        assert hello["runtime"] == "micropython" and hello["pid"] == s.p.pid and \
            hello["name"] == "ustk0", hello
        r = ns.run(cli + ["config", "IP_TTL=11"])
        assert re.search(r"IP_TTL +11 +run-time", r.stdout), r.stdout + r.stderr
        assert "ttl=11 " in ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).stdout
        # from another address of the host: no answer (the port changes routes)
        ns.run(["ip", "addr", "add", OFF_LINK + "/24", "dev", "ustk0"], check=True)
        ns.run(["ip", "route", "add", STACK_IP + "/32", "dev", "ustk0", "src", OFF_LINK],
               check=True)
        r = ns.python("import socket\n"
                      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                      "s.bind(('%s', 0)); s.settimeout(2)\n"
                      "s.sendto(b'{\"v\": 1, \"op\": \"hello\"}', ('%s', 4243))\n"
                      "try:\n    print(s.recv(9999))\nexcept socket.timeout:\n"
                      "    print('timeout')\n" % (OFF_LINK, STACK_IP))
        assert r.stdout.strip() == "timeout", r.stdout + r.stderr
    finally:
        c = s.stop()
    assert c["ctl.peer_refused"] == 1


def test_stats_interval_lines_have_the_cpython_runtimes_shape(ns):
    s = StackProc(ns, "--board", "unix", "--stats-interval", "0.5", runtime="micropython",
                  env={"USTACK_MPY_CONTROL_PORT": ""})
    ns.run(["ping", "-c", "3", "-i", "0.3", "-W", "1", STACK_IP])
    time.sleep(1.0)
    c = s.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
    out = "".join(s.lines)
    stats = [json.loads(ln[len("stats "):]) for ln in out.splitlines() if ln.startswith("stats ")]
    assert len(stats) >= 2, out
    assert all(sorted(x) == ["delta", "gauges", "interval_s", "time", "uptime_s"] for x in stats)
    assert all(set(x["delta"]) == set(stats[0]["delta"]) for x in stats)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", x["time"]) for x in stats)
    # the first ping may race the first sample, taken right after `ready`
    assert 2 <= sum(x["delta"]["icmp.rx_echo_requests"] for x in stats) <= 3
    assert sorted(stats[0]["gauges"]) == ["pbuf.count", "pbuf.free", "pbuf.low_water",
                                          "pbuf.queued"]


def test_sigusr1_logs_the_status_and_sighup_ends_with_counters(ns):
    """As under the CPython runtime: SIGUSR1 is a status dump to the log (it killed the
    process before its counters), SIGHUP a clean end with the counters."""
    s = StackProc(ns, "--serve", "echo", "--board", "unix", runtime="micropython",
                  env={"USTACK_MPY_CONTROL_PORT": ""})
    s.p.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    s.p.send_signal(signal.SIGHUP)
    out, _ = s.p.communicate(timeout=30)
    assert s.p.returncode == 0, out
    assert re.search(r"^status \S+ pid=\d+$", out, re.M), out
    assert "inet %s/24" % STACK_IP in out and re.search(r"Netid +State +Recv-Q", out)
    assert "LISTEN" in out and "0.0.0.0:7" in out
    assert re.search(r"^counters ", out, re.M) and re.search(r"^limits ", out, re.M)
