"""The control channel against a real `ustack up` in a throwaway netns while the Linux kernel
talks to it: `ustack ss -ti` during a transfer, `ustack neigh` with the kernel's MAC, `ustack
route add/del` changing what the stack can answer, `ustack capture` read by tcpdump, config
set at run time, stats deltas, SIGUSR1/SIGHUP, and one clear line for every bad input."""
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP, one_line_error

pytestmark = [needs_netns]
CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
OFF_LINK = "198.51.100.1"  # a second kernel address, outside the stack's 192.0.2.0/24


@pytest.fixture
def ns():
    n = Netns("ctl")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", "echo,discard,chargen")
    yield s
    if s.p.poll() is None:
        c = s.stop()
        assert c["pbuf.free"] == c["pbuf.count"]


def ustack(ns, *args, timeout=30):
    """A control subcommand run inside the namespace (where the stack's socket is)."""
    return ns.run(CLI + list(args), timeout=timeout)


def ok(ns, *args):
    r = ustack(ns, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout




def test_ss_ti_during_a_transfer_shows_the_connection_with_cwnd_and_srtt(ns, stack):
    reader = ns.popen([sys.executable, "-c", (
        "import socket, time\n"
        "s = socket.create_connection(('%s', 19))\n"
        "end = time.time() + 4\n"
        "while time.time() < end:\n"
        "    s.recv(65536)\n" % STACK_IP)])
    time.sleep(1.5)
    out = ok(ns, "ss", "-ti")
    row = [ln for ln in out.splitlines() if ":19 " in ln and ln.startswith("tcp")]
    assert row and "ESTAB" in row[0] and HOST_IP + ":" in row[0], out
    info = out.splitlines()[out.splitlines().index(row[0]) + 1]
    m = re.search(r"rto:(\d+) rtt:([\d.]+)/([\d.]+) mss:(\d+) pmtu:1500 cwnd:(\d+)", info)
    assert m, info
    # cwnd in segments, as Linux's ss; mss less 12 bytes of timestamps (RFC 7323)
    assert int(m.group(5)) >= 2 and float(m.group(2)) > 0 and int(m.group(4)) in (1448, 1460)
    conns = json.loads(ok(ns, "ss", "--json"))
    c = [x for x in conns if x["local"] == STACK_IP + ":19"][0]
    assert c["state"] == "ESTABLISHED" and c["cwnd"] >= c["mss"] and c["srtt"] > 0
    listening = ok(ns, "ss", "-tl")
    assert re.search(r"LISTEN +\d+ +\d+ +0\.0\.0\.0:7 ", listening), listening
    # the listener itself (dual, on ::) is no connection
    assert ":19 " not in listening.split("\n", 2)[-1].replace("0.0.0.0:19 ", "").replace(
        "[::]:19 ", "")
    reader.wait(20)


def test_neigh_shows_the_kernels_mac(ns, stack):
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    mac = json.loads(ns.run(["ip", "-j", "link", "show", "ustk0"]).stdout)[0]["address"]
    out = ok(ns, "neigh")
    assert "%s dev eth0 lladdr %s REACHABLE" % (HOST_IP, mac) in out, out
    rows = json.loads(ok(ns, "neigh", "--json"))
    assert {"ip": HOST_IP, "dev": "eth0", "lladdr": mac, "state": "REACHABLE",
            "queued": 0} in rows


def _echo_from_off_link(ns):
    """A UDP echo (port 7) from the kernel's off-link address: the stack's answer needs a
    route back (an ICMP echo reply does not: it goes back the way the request came)."""
    r = ns.python("import socket\n"
                  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "s.bind(('%s', 0))\n"
                  "s.settimeout(1)\n"
                  "s.sendto(b'hi', ('%s', 7))\n"
                  "try:\n"
                  "    print(s.recv(100) == b'hi')\n"
                  "except socket.timeout:\n"
                  "    print('timeout')\n" % (OFF_LINK, STACK_IP))
    assert r.stdout.strip() in ("True", "timeout"), r.stdout + r.stderr
    return r.stdout.strip() == "True"


def test_route_add_and_del_change_what_the_stack_can_answer(ns, stack):
    ns.run(["ip", "addr", "add", OFF_LINK + "/24", "dev", "ustk0"], check=True)
    assert not _echo_from_off_link(ns)  # no route back to 198.51.100.0/24
    out = ok(ns, "route", "add", "198.51.100.0/24", "via", HOST_IP)
    assert "198.51.100.0/24 via %s dev eth0" % HOST_IP in out
    assert "192.0.2.0/24 dev eth0 proto kernel scope link src %s" % STACK_IP in out
    assert _echo_from_off_link(ns)
    out = ok(ns, "route", "del", "198.51.100.0/24")
    assert "198.51.100.0" not in out
    assert not _echo_from_off_link(ns)
    c = stack.stop()
    assert c["ip.tx_no_route"] >= 2


def test_capture_is_a_pcap_stream_tcpdump_reads(ns, stack, tmp_path):
    pcap = str(tmp_path / "live.pcap")
    cap = ns.popen(CLI + ["capture", "-w", pcap, "--duration", "3"])
    time.sleep(1.0)
    assert ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", STACK_IP]).returncode == 0
    out, _ = cap.communicate(timeout=20)
    assert cap.returncode == 0 and re.search(r"^\d+ packets captured$", out, re.M), out
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ICMP echo request") == 2 and r.stdout.count("ICMP echo reply") == 2, \
        r.stdout
    assert "truncated" not in r.stdout + r.stderr


def test_config_set_changes_the_running_stacks_ttl(ns, stack):
    out = ok(ns, "config", "set", "IP_TTL=7")
    assert re.search(r"IP_TTL +7 +run-time", out), out
    r = ns.run(["ping", "-c", "1", "-W", "2", STACK_IP])
    assert "ttl=7 " in r.stdout, r.stdout
    one_line_error(ustack(ns, "config", "set", "PBUF_COUNT=9"), "PBUF_COUNT is fixed at start")
    one_line_error(ustack(ns, "config", "set", "IP_TTL=0"), "IP_TTL must be an int in 1..255")


def test_addr_shows_the_interface_like_ip(ns, stack):
    out = ok(ns, "addr")
    assert "1: eth0: <UP,LOWER_UP> mtu 1500" in out
    assert "inet %s/24 brd 192.0.2.255 scope global eth0" % STACK_IP in out
    assert "link/ether 02:00:00:00:00:02" in out


def test_stats_watch_prints_deltas_with_a_time_stamp(ns, stack):
    pinger = ns.popen(["ping", "-c", "6", "-i", "0.2", STACK_IP])
    r = ustack(ns, "stats", "--watch", "0.4", "--count", "3", "--json")
    pinger.wait(10)
    samples = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert len(samples) == 3
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", s["time"]) for s in samples)
    assert sum(s["delta"]["icmp.rx_echo_requests"] for s in samples) >= 1
    assert set(samples[0]["delta"]) == set(samples[2]["delta"])
    plain = ok(ns, "stats")
    assert re.search(r"icmp.rx_echo_requests +\d+", plain)


def test_stats_interval_lines_carry_a_time_stamp_deltas_and_stable_keys(ns):
    s = StackProc(ns, "--stats-interval", "0.3")
    time.sleep(1.2)
    c = s.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
    out = "".join(s.lines)
    stats = [json.loads(ln[len("stats "):]) for ln in out.splitlines() if ln.startswith("stats ")]
    assert len(stats) >= 2
    assert sorted(stats[0]) == ["delta", "gauges", "interval_s", "time", "uptime_s"]
    assert set(stats[0]["delta"]) == set(stats[-1]["delta"])
    assert stats[1]["uptime_s"] > stats[0]["uptime_s"] and 0.2 < stats[1]["interval_s"] < 1
    assert "counters " in out and "limits " in out  # the lines scripts already parse


def test_sigusr1_logs_the_status_and_sighup_ends_with_counters(ns, stack):
    stack.p.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    stack.p.send_signal(signal.SIGHUP)
    out, _ = stack.p.communicate(timeout=20)
    assert stack.p.returncode == 0
    assert re.search(r"^status \S+ pid=\d+$", out, re.M), out
    assert "inet %s/24" % STACK_IP in out and re.search(r"Netid +State +Recv-Q", out)
    assert "LISTEN" in out and "0.0.0.0:7" in out
    assert re.search(r"^counters ", out, re.M) and re.search(r"^limits ", out, re.M)


def test_a_stack_is_found_by_name_or_pid_and_two_need_a_name(ns, stack):
    pid = json.loads(ok(ns, "addr", "--json"))  # found without a name: the only one
    assert pid[0]["ip"] == STACK_IP
    other = StackProc(ns, "--name", "second", tap="ustk1", ip="203.0.113.2/24",
                      host_ip="203.0.113.1/24")
    try:
        assert "name=second" in other.ready
        one_line_error(ustack(ns, "addr"), "2 stacks run here", "--name")
        assert "203.0.113.2/24" in ok(ns, "addr", "--name", "second")
        assert "203.0.113.2/24" in ok(ns, "addr", "--pid", str(_pid_of(ns, "second")))
        one_line_error(ustack(ns, "addr", "--name", "third"), "no stack named 'third'")
        r = ns.run(CLI + ["up", "--tap", "ustk2", "--name", "second", "--ip", "203.0.113.9/24"])
        one_line_error(r, "--name second", "runs already")
        assert "ustk2" not in ns.run(["ip", "link"]).stdout  # refused before the TAP was made
    finally:
        other.stop()


def _pid_of(ns, name):
    r = ns.python("from ustack.ports.cpython import control as c\n"
                  "k = c.find(%r)\nprint(k.call('hello')['pid'])" % name)
    return int(r.stdout)


def test_without_a_stack_and_with_bad_words_one_line_each(ns):
    one_line_error(ustack(ns, "ss"), "no running `ustack up` in this network namespace")
    for flag in ("--stats-interval", "--duration"):
        r = ns.run(CLI + ["up", "--tap", "ustk3", flag, "-1"])
        one_line_error(r, flag + " -1", "0 or more")
    one_line_error(ns.run(CLI + ["up", "--tap", "ustk3", "--name", "a/b"]), "--name a/b",
                   "letters, digits")
    assert "ustk3" not in ns.run(["ip", "link"]).stdout  # refused before the TAP was made
    s = StackProc(ns)
    try:
        for args, words in (
                (("route", "add", "198.51.100.0/33", "via", HOST_IP), ("198.51.100.0/33",)),
                (("route", "add", "198.51.100.0/24", "via", "192.0.2.300"), ("via 192.0.2.300",)),
                (("route", "add", "198.51.100.0/24", "gw", HOST_IP), ("unknown word 'gw'",)),
                (("route", "add", "198.51.100.0/24"), ("via GATEWAY or dev DEV",)),
                (("route", "add", "default", "via", "203.0.113.1"), ("not on a connected",)),
                (("route", "del", "198.51.100.0/24"), ("no route to 198.51.100.0/24",)),
                (("route", "flip"), ("unknown action 'flip'",)),
                (("route", "add", "10.0.0.0/8", "via", HOST_IP, "metric", "-1"), ("metric -1",)),
                (("neigh", "add", "192.0.2.9", "lladdr", "01:00:5e:00:00:01"), ("unicast",)),
                (("neigh", "add", "192.0.2.9"), ("lladdr",)),
                (("neigh", "del", "192.0.2.77"), ("no neighbour 192.0.2.77",)),
                (("addr", "replace", "192.0.2.5"), ("give the prefix",)),
                (("addr", "replace", "192.0.2.5/24", "dev", "eth9"),
                 ("no interface named 'eth9'",)),
                (("config", "set", "NOPE=1"), ("unknown config key 'NOPE'",)),
                (("ss", "-x"), ("-x",)),
                (("stats", "--watch", "0"), ("--watch",)),
                (("stats", "--watch", "x"), ("--watch",)),
                (("capture", "-s", "0"), ("--snaplen",)),
                (("capture", "-w", "/nonexistent/x.pcap"), ("/nonexistent",)),
                (("addr", "--pid", "x"), ("--pid",))):
            one_line_error(ustack(ns, *args), *words)
    finally:
        c = s.stop()
    assert c["pbuf.free"] == c["pbuf.count"]


def test_a_stack_is_reached_only_from_its_own_network_namespace(ns, stack):
    """The control socket is an abstract UNIX socket: it belongs to the namespace, so a
    client outside (here: the test's own namespace) does not see it."""
    assert ok(ns, "addr", "--name", "ustk0")
    r = subprocess.run(CLI + ["addr", "--name", "ustk0"], capture_output=True, text=True,
                       timeout=30)
    one_line_error(r, "no stack named 'ustk0' in this network namespace")


def test_stats_watch_as_a_table_stamps_each_sample(ns, stack):
    r = ustack(ns, "stats", "--watch", "0.2", "--count", "2")
    samples = [ln for ln in r.stdout.splitlines() if ln.startswith("#")]
    assert len(samples) == 2 and all(re.match(r"#\d{4}-\d\d-\d\dT\S+Z interval 0.2s$", s)
                                     for s in samples), r.stdout
    assert re.search(r"^ctl\.requests +\d+ +\+1$", r.stdout, re.M), r.stdout


def test_addr_del_and_add_change_what_the_kernel_can_reach(ns, stack):
    def pings():
        return ns.run(["ping", "-c", "1", "-W", "1", STACK_IP]).returncode == 0
    assert pings()
    out = ok(ns, "addr", "del", STACK_IP + "/24", "dev", "eth0")
    assert "inet " not in out and "1: eth0: <UP,LOWER_UP>" in out
    assert json.loads(ok(ns, "route", "--json")) == []
    ns.run(["ip", "neigh", "flush", "dev", "ustk0"])
    assert not pings()
    out = ok(ns, "addr", "add", STACK_IP + "/24")
    assert "inet %s/24 brd 192.0.2.255 scope global eth0" % STACK_IP in out
    assert pings()
    one_line_error(ustack(ns, "addr", "add", "192.0.2.5/24"), "ustack addr:",
                   "eth0 has %s/24 already" % STACK_IP)
    one_line_error(ustack(ns, "addr", "del", "192.0.2.5/24"), "192.0.2.5/24 is not on eth0")
    one_line_error(ustack(ns, "addr", "del", "192.0.2.5/24", "gateway", HOST_IP),
                   "unknown word 'gateway'")
    one_line_error(ustack(ns, "addr", "flip", "192.0.2.5/24"), "unknown action 'flip'")


def test_neigh_flush_forgets_learned_neighbours_like_ip(ns, stack):
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    ok(ns, "neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:09")
    out = ok(ns, "neigh", "flush", "all")
    assert HOST_IP not in out and "192.0.2.9 dev eth0 lladdr 02:00:00:00:00:09 PERMANENT" in out
    assert ok(ns, "neigh", "flush", "dev", "eth0", "nud", "permanent").strip() == ""
    one_line_error(ustack(ns, "neigh", "flush", "nud", "stale"), "nud stale")
    one_line_error(ustack(ns, "neigh", "flush", "dev", "eth9"), "no interface named 'eth9'")


def test_config_key_value_sets_a_safe_value_and_refuses_an_unsafe_one(ns, stack):
    out = ok(ns, "config", "IP_TTL=9", "TCP_DELACK_MS=100")
    assert re.search(r"IP_TTL +9 +run-time", out) and re.search(r"TCP_DELACK_MS +100 ", out)
    assert "ttl=9 " in ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).stdout
    one_line_error(ustack(ns, "config", "PBUF_COUNT=9"), "ustack config:",
                   "PBUF_COUNT is fixed at start")
    one_line_error(ustack(ns, "config", "IP_TTL=x"), "IP_TTL wants an integer")
    one_line_error(ustack(ns, "config", "IP_TTL"), "unknown action 'IP_TTL'")


def test_capture_streams_to_tshark_through_a_pipe(ns, stack, tmp_path):
    """`ustack capture -w - | tshark -r -`: the stream is read as it comes, not only a file."""
    cap = ns.popen(["sh", "-c", "%s -m ustack.ports.cpython.cli capture -w - --duration 4 | "
                    "tshark -r - -n -T fields -e icmp.type -e ip.src" % sys.executable])
    time.sleep(1.5)
    assert ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", STACK_IP]).returncode == 0
    out, _ = cap.communicate(timeout=30)
    assert cap.returncode == 0, out
    rows = [ln.split("\t") for ln in out.splitlines() if "\t" in ln]
    assert [r for r in rows if r == ["8", HOST_IP]] and [r for r in rows if r == ["0", STACK_IP]], \
        out
    assert re.search(r"^\d+ packets captured$", out, re.M) and \
        "0 packets dropped by the stack" in out


def test_every_subcommand_speaks_json_with_stable_keys(ns, stack, tmp_path):
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    keys = {"addr": {"dev", "up", "mtu", "mac", "ip", "prefix", "broadcast", "gateway", "vlan",
                     "ip6"},
            "route": {"dst", "prefix", "via", "dev", "metric", "proto", "src"},
            "neigh": {"ip", "dev", "lladdr", "state", "queued"}}
    for cmd, want in keys.items():
        rows = json.loads(ok(ns, cmd, "--json"))
        assert rows and all(set(r) == want for r in rows), (cmd, rows)
    ss = json.loads(ok(ns, "ss", "-tuln", "--json"))
    assert all({"proto", "state", "local", "peer", "recv_q", "send_q"} <= set(r) for r in ss)
    st = json.loads(ok(ns, "stats", "--json"))
    assert sorted(st) == ["counters", "time"] and st["counters"]["icmp.rx_echo_requests"] >= 1
    cfg = json.loads(ok(ns, "config", "--json"))
    assert sorted(cfg) == ["config", "runtime_keys"] and cfg["config"]["IP_TTL"] == 64
    assert json.loads(ok(ns, "config", "IP_TTL=64", "--json"))["config"]["IP_TTL"] == 64
    r = ustack(ns, "capture", "-w", str(tmp_path / "c.pcap"), "--duration", "0.5", "--json")
    assert r.returncode == 0 and sorted(json.loads(r.stderr)) == ["captured", "dropped"], \
        r.stderr


def test_ss_u_lists_udp_sockets_only_and_l_the_bound_ones(ns, stack):
    out = ok(ns, "ss", "-uln")
    rows = out.splitlines()[1:]
    assert rows and all(r.startswith("udp ") for r in rows), out
    assert re.search(r"^udp +UNCONN +0 +0 +0\.0\.0\.0:7 +\*:\*$", out, re.M), out
    assert ok(ns, "ss", "-u").splitlines()[1:] == []  # no connected UDP socket
    both = ok(ns, "ss", "-tuan")
    assert "LISTEN" in both and "UNCONN" in both
