"""The packet filter on IPv6 observed from Linux (issues 9 and 14): `ustack up --ip6 --filter`
in a throwaway namespace, the kernel as the peer over the TAP. Drop is a connect timeout,
reject is ECONNREFUSED (a RST over IPv6) or an ICMPv6 port unreachable the kernel reports on
a connected UDP socket, an established-only input policy lets replies to the stack's own
connections in and keeps new ones out, nmap -6 sees open/closed/filtered as the rules say,
rule counters match the datagrams sent, a ping -6 flood meets a rate limit, and `policy input
drop` without neighbour discovery rules darkens IPv6 as ip6tables does - but says so."""
import re
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, ProgramRun
from tests.filterkit import CLI, kernel, connect_outcome, udp_outcome, filter_list, stopped

pytestmark = [needs_netns]
STACK6 = "2001:db8:6::2"
HOST6 = "2001:db8:6::1"
V6 = ["--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64"]
ND_OK = ["--filter", "input accept icmpv6 type nd-neighbor-solicit",
         "--filter", "input accept icmpv6 type nd-neighbor-advert"]


@pytest.fixture
def ns():
    n = Netns("filt6")
    yield n
    n.close()


def start(ns, *flags):
    return StackProc(ns, *(V6 + list(flags)))







def test_drop_times_a_tcp6_connect_out_and_reject_refuses_it(ns):
    st = start(ns, "--serve", "echo,discard", "--filter", "input drop tcp dport 7 family 6",
               "--filter", "input reject tcp dport 9 family 6")
    try:
        assert connect_outcome(ns, STACK6, 7) == "timeout"
        assert connect_outcome(ns, STACK6, 9) == "ECONNREFUSED"
        d = filter_list(ns)
        assert d["rules"][0]["packets"] >= 1 and d["rules"][1]["packets"] == 1
        # the same service over IPv4 is not matched by the family 6 rules
        assert kernel(ns, "import socket\nsocket.create_connection(('192.0.2.2', 7), 5)\n"
                          "print('v4 connected')") == "v4 connected"
    finally:
        c = stopped(st)
    assert c["filter.reject_tcp"] == 1 and c["filter.drop_rule"] >= 1
    assert c["ip6.rx_filtered"] == c["filter.drop_rule"] + 1


def test_reject_udp6_is_an_icmpv6_unreachable_the_kernel_reports(ns):
    st = start(ns, "--serve", "echo", "--filter", "input reject udp dport 7",
               "--filter", "input reject udp dport 8 with admin")
    try:
        assert udp_outcome(ns, STACK6, 7) == "ECONNREFUSED"   # port unreachable (RFC 4443 3.1 code 4)
        assert udp_outcome(ns, STACK6, 8) == "EACCES"         # administratively prohibited (code 1)
    finally:
        c = stopped(st)
    assert c["filter.reject_icmp"] == 2 and c["icmp6.tx_errors"] == 2


def test_established_only_input_on_ipv6_lets_replies_in_and_keeps_new_connections_out(ns):
    server = ns.popen([sys.executable, "-c", (
        "import socket\nl = socket.socket(socket.AF_INET6)\n"
        "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "l.bind(('::', 7007)); l.listen(1); print('listening', flush=True)\n"
        "c, a = l.accept(); c.sendall(c.recv(100)); c.close()\n")])
    assert "listening" in server.stdout.readline()
    prog = ("import socket\n"
            "s = socket.create_connection(('%s', 7007), timeout=10)\n"
            "s.sendall(b'ping over the filter'); print('echo', s.recv(100).decode(), flush=True)\n"
            "l = socket.socket(socket.AF_INET6); l.bind(('::', 8000)); l.listen(1)\n"
            "print('listening', flush=True)\n"
            "import time; time.sleep(30)\n" % HOST6)
    run = ProgramRun(ns, ["-c", prog], "listening",
                     flags=V6 + ["--filter", "policy input drop",
                                 "--filter", "input accept ct established,related"] + ND_OK)
    try:
        assert any("echo ping over the filter" in ln for ln in run.lines), run.lines
        assert connect_outcome(ns, STACK6, 8000) == "timeout"     # a new connection: kept out
    finally:
        out = run.interrupt()
    m = re.search(r'"filter.drop_policy": (\d+)', out)
    assert m and int(m.group(1)) >= 1, out
    assert '"filter.drop_nd"' not in out   # the ND rules let resolution through


def test_policy_input_drop_without_nd_rules_darkens_ipv6_and_says_so(ns):
    """As ip6tables: ND is filtered like anything else, so the kernel's Neighbour
    Solicitations for the stack are dropped and it cannot reach even an accepted port.
    The stack says so: one log line naming the rules to add, filter.drop_nd counting."""
    st = start(ns, "--serve", "echo", "--filter", "policy input drop",
               "--filter", "input accept tcp dport 7")
    try:
        assert connect_outcome(ns, STACK6, 7) in ("timeout", "EHOSTUNREACH")
        c = st.wait_counters(lambda c: c.get("filter.drop_nd", 0) >= 1, 5)
        assert c.get("filter.drop_nd", 0) >= 1
        # the rules the line names mend it, at run time
        for rule in ("input accept icmpv6 type nd-neighbor-solicit",
                     "input accept icmpv6 type nd-neighbor-advert"):
            r = ns.run(CLI + ["filter", "add"] + rule.split())
            assert r.returncode == 0, r.stdout + r.stderr
        ns.run(["ip", "-6", "neigh", "flush", "dev", "ustk0"])   # forget the FAILED entry
        assert connect_outcome(ns, STACK6, 7, 5.0) == "connected"
    finally:
        stopped(st)
    out = "".join(st.lines)
    warn = [ln for ln in out.splitlines() if "nd-neighbor-solicit" in ln]
    assert len(warn) == 1 and "input" in warn[0] and "drop_nd" in warn[0], out


def test_nmap6_reports_open_closed_and_filtered_as_the_rules_say(ns):
    st = start(ns, "--serve", "echo,discard,chargen",
               "--filter", "input drop tcp dport 9",        # discard: filtered
               "--filter", "input reject tcp dport 19")     # chargen: closed (RST)
    try:
        r = ns.run(["nmap", "-6", "-n", "-Pn", "-sS", "--max-retries", "1", "-p", "7,9,19,23",
                    STACK6], timeout=120)
    finally:
        c = stopped(st)
    ports = {}
    for ln in r.stdout.splitlines():
        if "/tcp" in ln:
            p, state = ln.split()[:2]
            ports[int(p.split("/")[0])] = state
    assert ports == {7: "open", 9: "filtered", 19: "closed", 23: "closed"}, r.stdout
    assert c["filter.reject_tcp"] >= 1 and c["filter.drop_rule"] >= 1


def test_rule_counters_match_the_udp6_datagrams_sent(ns):
    st = start(ns, "--filter", "input drop udp dport 5000-5009 saddr 2001:db8:6::/64",
               "--filter", "input log udp dport 5010")
    try:
        kernel(ns, ("import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                    "for k in range(50):\n    s.sendto(b'x' * 100, ('%s', 5000 + k %% 20))\n"
                    % STACK6))
        c = st.wait_counters(lambda c: c.get("filter.drop_rule", 0) >= 30, 5)
        d = filter_list(ns)
    finally:
        stopped(st)
    assert d["rules"][0]["packets"] == 30 and d["rules"][0]["bytes"] == 30 * 148
    assert d["rules"][1]["packets"] == 2 and c["filter.drop_rule"] == 30
    logs = [ln for ln in "".join(st.lines).splitlines() if "filter: input rule 1 log" in ln]
    assert logs and "src=%s dst=%s" % (HOST6, STACK6) in logs[0] and "dport=5010" in logs[0]


def test_a_rate_limited_ping6_is_answered_at_the_rate(ns):
    st = start(ns, "--filter", "input icmpv6 type echo-request limit 10/second burst 5 accept",
               "--filter", "input drop icmpv6 type echo-request")
    try:
        t0 = time.monotonic()
        r = ns.run(["ping", "-6", "-n", "-q", "-i", "0.01", "-c", "200", "-W", "1", STACK6],
                   timeout=60)
        el = time.monotonic() - t0
        got = int(r.stdout.split(" received")[0].rsplit(",", 1)[-1].strip())
        sent = 200
    finally:
        c = stopped(st)
    # a burst of 5 and then 10 a second over el seconds (ping's last wait, -W 1, adds one)
    assert 5 + 10 * (el - 1.5) <= got <= 5 + 10 * el + 2, (got, el)
    assert c["filter.drop_limit"] == sent - got
