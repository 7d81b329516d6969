"""The DNS stub resolver (core/dns.py) against the servers Linux users run, in a throwaway
netns: Debian's dnsmasq and unbound on the kernel side of the TAP, a program under
`ustack run --dns 192.0.2.1` calling the stdlib's getaddrinfo. Covered: A and AAAA, CNAME,
the search domain, NXDOMAIN/NODATA as gaierror codes, an answer too big for UDP (TC, then the
TCP retry), and a server that drops the first query."""
import json
import os
import shutil
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, HOST_IP

pytestmark = [needs_netns,
              pytest.mark.skipif(not (shutil.which("dnsmasq") and shutil.which("unbound")),
                                 reason="needs dnsmasq and unbound (.ci/setup installs them)")]

TAP = "ustk0"
BIG = ["198.51.100.%d" % i for i in range(1, 41)]  # 40 A records: over 512 bytes in UDP

# the program run over ustack: each name's addresses, or its gaierror code
PROG = r"""
import json, socket, sys, time
out = {}
for arg in sys.argv[1:]:
    name, fam = arg.split("/")
    if name == "sleep":
        time.sleep(float(fam))
        continue
    fam = socket.AF_INET6 if fam == "6" else socket.AF_INET
    try:
        ai = socket.getaddrinfo(name, 80, fam, socket.SOCK_STREAM)
        out[arg] = sorted(set(a[4][0] for a in ai))
    except socket.gaierror as e:
        out[arg] = ["gaierror", e.errno]
print("RESULT " + json.dumps(out), flush=True)
"""

# UDP port 53 -> the real server on port 5353; the first datagram is dropped
DROP_FIRST = r"""
import socket, sys
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind((sys.argv[1], 53))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.connect((sys.argv[1], 5353))
print("listening", flush=True)
n = 0
while True:
    q, client = front.recvfrom(4096)
    n += 1
    print("query", n, flush=True)
    if n == 1:
        continue
    back.send(q)
    front.sendto(back.recv(4096), client)
"""


@pytest.fixture
def ns():
    n = Netns("dns")
    # the TAP exists (persistent, with the host's address) before the servers bind to it;
    # `ustack run` attaches to it; deleting the namespace deletes it
    for argv in (["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                 ["ip", "addr", "add", HOST_IP + "/24", "dev", TAP],
                 ["ip", "link", "set", TAP, "up"]):
        r = n.run(argv)
        assert r.returncode == 0, r.stderr
    yield n
    n.close()


def wait_bound(ns, port, tcp=False, timeout=15):
    end = time.monotonic() + timeout
    want = "%s:%d" % (HOST_IP, port)
    while time.monotonic() < end:
        r = ns.run(["ss", "-ntl" if tcp else "-nul"])
        if want in r.stdout:
            return
        time.sleep(0.1)
    raise AssertionError("nothing listens on %s (%s)" % (want, "tcp" if tcp else "udp"))


def dnsmasq(ns, tmp_path, port=53):
    hosts = tmp_path / "big.hosts"
    hosts.write_text("".join("%s big.test\n" % a for a in BIG))
    p = ns.popen(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root",
                  "--pid-file=", "--listen-address=" + HOST_IP, "--bind-interfaces",
                  "--port=%d" % port, "--no-resolv", "--no-hosts", "--local=/test/",
                  "--host-record=www.test,198.51.100.10",
                  "--host-record=six.test,2001:db8::10",
                  "--cname=alias.test,www.test",
                  "--addn-hosts=" + str(hosts)])
    wait_bound(ns, port)
    wait_bound(ns, port, tcp=True)
    return p


def unbound(ns, tmp_path):
    conf = tmp_path / "unbound.conf"
    lines = ["server:",
             "  interface: " + HOST_IP, "  port: 53",
             "  access-control: 192.0.2.0/24 allow",
             "  do-ip6: no", "  do-not-query-localhost: yes",
             '  username: ""', '  chroot: ""', "  directory: \"%s\"" % tmp_path,
             '  pidfile: ""', "  use-syslog: no", '  logfile: ""', "  verbosity: 1",
             '  module-config: "iterator"',
             '  local-zone: "example.test." static',
             '  local-data: "www.example.test. 300 IN A 198.51.100.20"',
             '  local-data: "www.example.test. 300 IN AAAA 2001:db8::20"',
             '  local-data: "v4.example.test. 300 IN A 198.51.100.21"',
             '  local-data: "alias.example.test. 300 IN CNAME www.example.test."',
             '  local-data: "short.example.test. 1 IN A 198.51.100.22"']
    lines += ['  local-data: "big.example.test. 300 IN A %s"' % a for a in BIG]
    lines += ["remote-control:", "  control-enable: no"]
    conf.write_text("\n".join(lines) + "\n")
    p = ns.popen(["unbound", "-d", "-c", str(conf)])
    wait_bound(ns, 53)
    wait_bound(ns, 53, tcp=True)
    return p


def resolve_over_ustack(ns, names, *flags):
    """`ustack run --dns 192.0.2.1 ... -- python -c PROG names`: (results, exit counters)."""
    argv = [sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap", TAP,
            "--ip", "192.0.2.2/24", "--host-ip", HOST_IP + "/24", "--json",
            "--dns", HOST_IP] + list(flags) + ["--", "python", "-c", PROG] + list(names)
    r = ns.run(argv, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    res = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    cnt = [line for line in r.stderr.splitlines() if line.startswith("counters ")]
    assert res and cnt, r.stdout + r.stderr
    c = json.loads(cnt[0][len("counters "):])
    assert c["pbuf.free"] == c["pbuf.count"], "packet buffers leaked"
    return json.loads(res[0][len("RESULT "):]), c


NONAME = ["gaierror", -2]   # socket.EAI_NONAME on Linux
NODATA = ["gaierror", -5]   # socket.EAI_NODATA


def test_dnsmasq_names_cname_search_and_negative_answers(ns, tmp_path):
    dnsmasq(ns, tmp_path)
    got, c = resolve_over_ustack(
        ns, ["www.test/4", "alias.test/4", "six.test/6", "www/4", "nope.test/4", "www.test/6"],
        "--config", "DNS_SEARCH=test")
    assert got == {"www.test/4": ["198.51.100.10"], "alias.test/4": ["198.51.100.10"],
                   "six.test/6": ["2001:db8::10"], "www/4": ["198.51.100.10"],
                   "nope.test/4": NONAME, "www.test/6": NODATA}
    assert c["dns.cname_followed"] >= 1 and c["dns.nxdomain"] >= 1 and c["dns.nodata"] == 1


def test_dnsmasq_answer_too_big_for_udp_is_fetched_over_tcp(ns, tmp_path):
    dnsmasq(ns, tmp_path)
    got, c = resolve_over_ustack(ns, ["big.test/4"], "--config", "DNS_CACHE_ADDRS=64")
    assert got == {"big.test/4": sorted(BIG)}
    assert c["dns.truncated"] == 1 and c["dns.tx_tcp"] == 1
    assert c["tcp.conn_established"] == 1


def test_server_dropping_the_first_query_is_asked_again(ns, tmp_path):
    dnsmasq(ns, tmp_path, port=5353)
    proxy = ns.popen([sys.executable, "-c", DROP_FIRST, HOST_IP])
    assert proxy.stdout.readline().strip() == "listening"
    got, c = resolve_over_ustack(ns, ["www.test/4"], "--config", "DNS_TIMEOUT_MS=700")
    assert got == {"www.test/4": ["198.51.100.10"]}
    assert c["dns.timeouts"] == 1 and c["dns.tx_udp"] == 2
    proxy.kill()
    out = proxy.stdout.read()
    assert "query 2" in out, "the retry reached the server as a second query: " + out


def test_unbound_local_data_cname_aaaa_nxdomain_nodata(ns, tmp_path):
    unbound(ns, tmp_path)
    got, c = resolve_over_ustack(
        ns, ["www.example.test/4", "www.example.test/6", "alias.example.test/4", "www/4",
             "nope.example.test/4", "v4.example.test/6"],
        "--config", "DNS_SEARCH=example.test")
    assert got == {"www.example.test/4": ["198.51.100.20"],
                   "www.example.test/6": ["2001:db8::20"],
                   "alias.example.test/4": ["198.51.100.20"],
                   "www/4": ["198.51.100.20"],
                   "nope.example.test/4": NONAME, "v4.example.test/6": NODATA}


def test_unbound_answer_too_big_for_udp_is_fetched_over_tcp(ns, tmp_path):
    unbound(ns, tmp_path)
    got, c = resolve_over_ustack(ns, ["big.example.test/4"], "--config", "DNS_CACHE_ADDRS=64")
    assert got == {"big.example.test/4": sorted(BIG)}
    assert c["dns.truncated"] == 1 and c["dns.tx_tcp"] == 1


@pytest.mark.parametrize("dead", ["silent", "refusing"])
def test_first_server_dead_the_second_answers(ns, tmp_path, dead):
    # resolv.conf semantics: servers in order. A silent one (no host behind the address: no
    # ARP answer) costs one DNS_TIMEOUT_MS; one whose host answers port unreachable (RFC
    # 1122 4.1.3.3) is left at once
    dnsmasq(ns, tmp_path)
    if dead == "silent":
        first = "192.0.2.9"
    else:
        first = "192.0.2.3"
        ns.run(["ip", "addr", "add", first + "/24", "dev", TAP], check=True)
    argv = [sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap", TAP,
            "--ip", "192.0.2.2/24", "--host-ip", HOST_IP + "/24", "--json",
            "--dns", first, "--dns", HOST_IP, "--config", "DNS_TIMEOUT_MS=700",
            "--", "python", "-c", PROG, "www.test/4", "alias.test/4"]
    t0 = time.monotonic()
    r = ns.run(argv, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][0][7:])
    c = json.loads([x for x in r.stderr.splitlines() if x.startswith("counters ")][0][9:])
    assert got == {"www.test/4": ["198.51.100.10"], "alias.test/4": ["198.51.100.10"]}
    if dead == "silent":
        assert c["dns.timeouts"] == 2 and "dns.refused" not in c, c
    else:
        assert c["dns.refused"] == 2 and "dns.timeouts" not in c, c
        assert time.monotonic() - t0 < 30
    assert c["dns.tx_udp"] == 4, c  # each name: the dead server, then the live one


def test_unbound_answers_are_cached_for_their_ttl_in_a_fixed_size_cache(ns, tmp_path):
    unbound(ns, tmp_path)
    # www's TTL is 300 s, short's 1 s: www is asked once, short again once its TTL is over
    got, c = resolve_over_ustack(
        ns, ["www.example.test/4", "short.example.test/4", "www.example.test/4",
             "sleep/2.5", "short.example.test/4", "www.example.test/4"])
    assert got["www.example.test/4"] == ["198.51.100.20"]
    assert got["short.example.test/4"] == ["198.51.100.22"]
    assert c["dns.tx_udp"] == 3 and c["dns.cache_hits"] == 2, c
    # DNS_CACHE_ENTRIES names at most: with one slot, the second name evicts the first
    got, c = resolve_over_ustack(
        ns, ["www.example.test/4", "v4.example.test/4", "www.example.test/4"],
        "--config", "DNS_CACHE_ENTRIES=1")
    assert got["www.example.test/4"] == ["198.51.100.20"]
    assert c["dns.tx_udp"] == 3 and "dns.cache_hits" not in c, c


# UDP port 53 -> the real server on port 5353, noting each query's source port and ID
RECORD = r"""
import socket, sys
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind((sys.argv[1], 53))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.connect((sys.argv[1], 5353))
print("listening", flush=True)
while True:
    q, client = front.recvfrom(4096)
    print("query", client[1], (q[0] << 8) | q[1], flush=True)
    back.send(q)
    front.sendto(back.recv(4096), client)
"""


def test_query_ids_and_source_ports_are_unpredictable_rfc_5452(ns, tmp_path):
    dnsmasq(ns, tmp_path, port=5353)
    rec = ns.popen([sys.executable, "-c", RECORD, HOST_IP])
    assert rec.stdout.readline().strip() == "listening"
    names = ["n%d.test/4" % i for i in range(20)]
    got, c = resolve_over_ustack(ns, names)
    assert all(got[n] == NONAME for n in names), got
    rec.kill()
    seen = [line.split() for line in rec.stdout.read().splitlines() if line.startswith("query")]
    assert len(seen) == 20, seen
    ports = [int(w[1]) for w in seen]
    ids = [int(w[2]) for w in seen]
    for vals in (ports, ids):
        # RFC 5452 9.2: random, not merely distinct - a counter would be distinct too
        assert len(set(vals)) >= 18, vals
        assert max(vals) - min(vals) > 2000, vals
        assert vals != sorted(vals) and vals != sorted(vals, reverse=True), vals
    assert all(1024 <= p <= 65535 for p in ports), ports


@pytest.fixture
def system_resolver(ns):
    """`ip netns exec` puts /etc/netns/NAME/* over /etc: glibc's resolver in the namespace
    asks 192.0.2.1 only."""
    d = os.path.join("/etc/netns", ns.name)
    os.makedirs(d)
    try:
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions attempts:1 timeout:2\n" % HOST_IP)
        with open(os.path.join(d, "nsswitch.conf"), "w") as f:
            f.write("hosts: dns\n")
        yield
    finally:
        shutil.rmtree(d, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")
        except OSError:
            pass  # other namespaces' files are there


def test_gaierror_codes_are_those_of_the_system_resolver_for_the_same_answers(
        ns, tmp_path, system_resolver):
    # the stdlib's own getaddrinfo (glibc) asking the same dnsmasq is the oracle
    dnsmasq(ns, tmp_path)
    names = ["nope.test/4", "nope.test/6", "www.test/6", "six.test/4", "www.test/4",
             "alias.test/4", "six.test/6"]
    r = ns.run([sys.executable, "-c", PROG] + names, timeout=60)
    assert r.returncode == 0, r.stderr
    libc = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][0][7:])
    assert libc["www.test/4"] == ["198.51.100.10"], libc  # glibc did ask our server
    got, c = resolve_over_ustack(ns, names)
    assert got == libc, (got, libc)
    assert libc["nope.test/4"] == NONAME and libc["www.test/6"][0] == "gaierror", libc
