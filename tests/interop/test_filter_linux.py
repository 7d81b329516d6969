"""The packet filter observed from Linux (issue 14, Proof): `ustack up --filter` in a throwaway
namespace, the kernel as the peer. Drop is a connect timeout, reject is ECONNREFUSED (TCP RST)
or an ICMP unreachable the kernel reports, an established-only input policy lets replies to
the stack's own connections in and keeps new ones out, a rate limit is measured, rule
counters match the traffic sent, and nmap sees open/closed/filtered as the rules say."""
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, ProgramRun, HOST_IP, STACK_IP
from tests.filterkit import CLI, kernel, connect_outcome, udp_outcome, filter_list, stopped

pytestmark = [needs_netns]


@pytest.fixture
def ns():
    n = Netns("filt")
    yield n
    n.close()







def test_drop_times_a_connect_out_and_reject_refuses_it(ns):
    st = StackProc(ns, "--serve", "echo,discard", "--filter", "input drop tcp dport 7",
                   "--filter", "input reject tcp dport 9")
    try:
        assert connect_outcome(ns, STACK_IP, 7) == "timeout"
        assert connect_outcome(ns, STACK_IP, 9) == "ECONNREFUSED"
        d = filter_list(ns)
        assert d["rules"][0]["packets"] >= 1 and d["rules"][1]["packets"] == 1
    finally:
        c = stopped(st)
    assert c["filter.reject_tcp"] == 1 and c["filter.drop_rule"] >= 1
    assert c.get("tcp.rx_listen_segments", 0) == 0   # neither SYN reached a listener


def test_reject_udp_is_an_icmp_unreachable_the_kernel_reports(ns):
    st = StackProc(ns, "--serve", "echo", "--filter", "input reject udp dport 7",
                   "--filter", "input reject udp dport 8 with admin")
    try:
        assert udp_outcome(ns, STACK_IP, 7) == "ECONNREFUSED"       # port unreachable (RFC 1122 4.1.3.3)
        assert udp_outcome(ns, STACK_IP, 8) == "EHOSTUNREACH"       # administratively prohibited (13)
    finally:
        c = stopped(st)
    assert c["filter.reject_icmp"] == 2 and c["icmp.tx_errors"] == 2


def test_established_only_input_lets_replies_in_and_keeps_new_connections_out(ns):
    server = ns.popen([sys.executable, "-c", (
        "import socket\nl = socket.socket()\n"
        "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "l.bind(('', 7007)); l.listen(1); print('listening', flush=True)\n"
        "c, a = l.accept(); c.sendall(c.recv(100)); c.close()\n")])
    assert "listening" in server.stdout.readline()
    prog = ("import socket\n"
            "s = socket.create_connection(('%s', 7007), timeout=10)\n"
            "s.sendall(b'ping over the filter'); print('echo', s.recv(100).decode(), flush=True)\n"
            "l = socket.socket(); l.bind(('', 8000)); l.listen(1)\n"
            "print('listening', flush=True)\n"
            "import time; time.sleep(30)\n" % HOST_IP)
    run = ProgramRun(ns, ["-c", prog], "listening",
                     flags=["--filter", "policy input drop",
                            "--filter", "input accept ct established,related"])
    try:
        assert any("echo ping over the filter" in ln for ln in run.lines), run.lines
        assert connect_outcome(ns, STACK_IP, 8000) == "timeout"     # a new connection: kept out
    finally:
        out = run.interrupt()
    assert "filter.drop_policy" in out


def test_a_rate_limited_ping_is_answered_at_the_rate(ns):
    st = StackProc(ns, "--filter", "input icmp type echo-request limit 10/second burst 5 accept",
                   "--filter", "input drop icmp")
    try:
        t0 = time.monotonic()
        r = ns.run(["ping", "-n", "-q", "-i", "0.01", "-c", "300", "-W", "1", STACK_IP],
                   timeout=60)
        el = time.monotonic() - t0
        got = int(r.stdout.split(" received")[0].rsplit(",", 1)[-1].strip())
        sent = 300
    finally:
        c = stopped(st)
    # a burst of 5 and then 10 a second over el seconds (ping's last wait, -W 1, adds one)
    assert 5 + 10 * (el - 1.5) <= got <= 5 + 10 * el + 2, (got, el)
    assert c["filter.drop_limit"] == sent - got


def test_rule_counters_match_the_datagrams_sent(ns):
    st = StackProc(ns, "--filter", "input drop udp dport 5000-5009")
    try:
        kernel(ns, ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                    "for k in range(50):\n    s.sendto(b'x' * 100, ('%s', 5000 + k %% 20))\n"
                    % STACK_IP))
        time.sleep(0.5)
        d = filter_list(ns)
    finally:
        c = stopped(st)
    assert d["rules"][0]["packets"] == 30 and d["rules"][0]["bytes"] == 30 * 128
    assert c["filter.drop_rule"] == 30


def test_rules_changed_at_run_time_through_the_control_channel(ns):
    st = StackProc(ns, "--serve", "echo")
    try:
        assert connect_outcome(ns, STACK_IP, 7) == "connected"
        r = ns.run(CLI + ["filter", "add", "input", "drop", "tcp", "dport", "7"])
        assert r.returncode == 0 and "input drop tcp dport 7" in r.stdout, r.stdout + r.stderr
        assert connect_outcome(ns, STACK_IP, 7) == "timeout"
        r = ns.run(CLI + ["filter", "del", "0"])
        assert r.returncode == 0, r.stderr
        assert connect_outcome(ns, STACK_IP, 7) == "connected"
    finally:
        stopped(st)


def test_nmap_reports_open_closed_and_filtered_as_the_rules_say(ns):
    st = StackProc(ns, "--serve", "echo,discard,chargen",
                   "--filter", "input drop tcp dport 9",        # discard: filtered
                   "--filter", "input reject tcp dport 19")     # chargen: closed (RST)
    try:
        r = ns.run(["nmap", "-n", "-Pn", "-sS", "--max-retries", "1", "-p", "7,9,19,23",
                    STACK_IP], timeout=120)
    finally:
        stopped(st)
    ports = {}
    for ln in r.stdout.splitlines():
        if "/tcp" in ln:
            p, state = ln.split()[:2]
            ports[int(p.split("/")[0])] = state
    assert ports == {7: "open", 9: "filtered", 19: "closed", 23: "closed"}, r.stdout
