"""IPv6 against the Linux kernel in a throwaway namespace (issue 9): `ustack up --ip6` with
`--host-ip6` on the TAP; Linux pings the stack's global and link-local addresses, talks
UDP and TCP to its echo service, and tshark reads the pcap without a malformed packet or
a bad checksum."""
import os
import re
import shutil
import subprocess
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]

STACK6 = "2001:db8:1::2"
HOST6 = "2001:db8:1::1"
STACK_LL = "fe80::ff:fe00:2"   # modified EUI-64 of the default MAC 02:00:00:00:00:02


@pytest.fixture
def ns():
    n = Netns("v6")
    yield n
    n.close()


def start(ns, *extra):
    s = StackProc(ns, "--serve", "echo", "--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64",
                  *extra)
    # the kernel's own DAD on HOST6 (about a second) before it may send from it
    end = time.monotonic() + 10
    while time.monotonic() < end:
        r = ns.run(["ip", "-6", "addr", "show", "dev", "ustk0"])
        if HOST6 in r.stdout and "tentative" not in r.stdout:
            break
        time.sleep(0.2)
    return s


def ping6(ns, *args):
    r = ns.run(["ping", "-6", "-n"] + list(args), timeout=120)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2))


def test_the_hosts_address_is_usable_at_ready(ns):
    """`--host-ip6` makes the kernel's address without DAD (the stack runs its own DAD on
    its addresses): at `ready` the kernel can send from it at once, or its first packets
    would leave from another address (::1 on a fresh namespace) and never be answered."""
    s = StackProc(ns, "--serve", "echo", "--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64")
    r = ns.run(["ip", "-6", "addr", "show", "dev", "ustk0", "to", HOST6 + "/128"])
    assert HOST6 in r.stdout and "tentative" not in r.stdout, r.stdout
    r = ns.python("import socket\n"
                  "c = socket.create_connection(('%s', 7), timeout=5)\n"
                  "print(c.getsockname()[0])\n" % STACK6)
    assert r.stdout.strip() == HOST6, r.stdout + r.stderr
    s.stop()


def test_ready_line_lists_the_link_local_and_the_global_address(ns):
    s = start(ns)
    assert "ip6=%s/64,%s/64" % (STACK_LL, STACK6) in s.ready
    s.stop()


def test_linux_pings_the_global_address(ns):
    s = start(ns)
    assert ping6(ns, "-c", "20", "-i", "0.01", "-W", "2", STACK6) == (20, 20)
    c = s.stop()
    assert c["icmp6.tx_echo_reply"] >= 20
    assert c["icmp6.tx_na"] >= 1            # the kernel resolved us
    assert c["pbuf.free"] == c["pbuf.count"]


def test_linux_pings_the_link_local_address_on_the_tap(ns):
    s = start(ns)
    assert ping6(ns, "-c", "5", "-i", "0.01", "-W", "2", STACK_LL + "%ustk0") == (5, 5)
    s.stop()


def test_linux_udp6_to_the_echo_service(ns):
    s = start(ns)
    r = ns.python("import socket\ns=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                  "s.settimeout(2)\nfor i in range(10):\n"
                  "    s.sendto(b'six%%d' %% i, ('%s', 7)); d, a = s.recvfrom(100)\n"
                  "    assert d == b'six%%d' %% i, d\nprint('ok', a[0])\n" % STACK6)
    assert r.stdout.strip() == "ok " + STACK6, r.stdout + r.stderr
    s.stop()


def test_linux_tcp6_to_the_echo_service(ns):
    s = start(ns)
    r = ns.python("import socket\nc=socket.create_connection(('%s', 7), timeout=5)\n"
                  "data=bytes(range(256))*400\nc.sendall(data)\ngot=b''\n"
                  "while len(got) < len(data):\n    k=c.recv(65536)\n    assert k\n"
                  "    got+=k\nassert got == data\nprint('ok', c.getpeername()[0])\n" % STACK6)
    assert r.stdout.strip() == "ok " + STACK6, r.stdout + r.stderr
    c = s.stop()
    assert c["pbuf.free"] == c["pbuf.count"]


def test_linux_udp6_to_a_closed_port_gets_port_unreachable(ns):
    s = start(ns)
    r = ns.python("import socket\ns=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                  "s.connect(('%s', 4444)); s.send(b'x'); s.settimeout(2)\n"
                  "try:\n    s.recv(10)\nexcept ConnectionRefusedError:\n    print('refused')\n"
                  % STACK6)
    assert r.stdout.strip() == "refused", r.stdout + r.stderr
    s.stop()


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_pcap_of_ipv6_traffic_has_no_malformed_packet_nor_bad_checksum(ns, tmp_path):
    pcap = str(tmp_path / "v6.pcap")
    s = start(ns, "--pcap", pcap)
    ping6(ns, "-c", "3", "-i", "0.01", STACK6)
    ping6(ns, "-c", "2", "-i", "0.01", STACK_LL + "%ustk0")
    ns.python("import socket\ns=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
              "s.settimeout(1)\ns.sendto(b'x'*100, ('%s', 7)); s.recvfrom(200)\n"
              "s.sendto(b'y', ('%s', 4444))\n"
              "c=socket.create_connection(('%s', 7), timeout=5); c.sendall(b'abc'); c.recv(10)\n"
              "c.close()\n" % (STACK6, STACK6, STACK6))
    s.stop()
    t = subprocess.run(["tshark", "-r", pcap, "-Y",
                        "_ws.malformed || _ws.expert.severity >= \"error\"",
                        "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"],
                       capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    assert t.stdout.strip() == "", t.stdout
    t = subprocess.run(["tshark", "-r", pcap, "-Y", "icmpv6.type == 129 && ipv6.src == %s"
                        % STACK6], capture_output=True, text=True)
    assert len(t.stdout.strip().splitlines()) == 3, t.stdout
    t = subprocess.run(["tshark", "-r", pcap, "-Y", "icmpv6.type == 136 && eth.src == "
                        "02:00:00:00:00:02"], capture_output=True, text=True)
    assert t.stdout.strip(), "no Neighbor Advertisement from the stack"


def test_the_stacks_tcp6_client_talks_to_a_linux_server(ns):
    from tests.netns import ProgramRun
    # the Linux side: an echo server on HOST6, up before the stack's program connects
    server = ns.popen(["python3", "-c",
                       "import socket\nl=socket.socket(socket.AF_INET6)\n"
                       "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                       "l.bind(('', 7007)); l.listen(1); print('listening', flush=True)\n"
                       "c, a = l.accept(); print('peer', a[0], flush=True)\n"
                       "d = b''\nwhile len(d) < 100000:\n    k = c.recv(65536)\n"
                       "    if not k: break\n    d += k\nc.sendall(d); c.close()\n"])
    assert "listening" in server.stdout.readline()
    prog = ("import socket\n"
            "s = socket.create_connection(('%s', 7007), timeout=10)\n"
            "print('name', s.getsockname()[0], s.getpeername()[:2], flush=True)\n"
            "data = bytes(range(250)) * 400\ns.sendall(data)\ngot = b''\n"
            "while len(got) < len(data):\n    k = s.recv(65536)\n    assert k\n    got += k\n"
            "print('echoed', got == data, flush=True)\n" % HOST6)
    run = ProgramRun(ns, ["-c", prog], "echoed",
                     flags=["--ip6", STACK6 + "/64", "--host-ip6", HOST6 + "/64"])
    out = run.output()
    assert "echoed True" in out, out
    assert "name %s ('%s', 7007)" % (STACK6, HOST6) in out, out
    assert "peer " + STACK6 in server.communicate(timeout=10)[0]


CURL_MB = int(os.environ.get("USTACK_V6_CURL_MB", "8"))


def test_curl_fetches_from_the_stacks_http_service_over_both_families(ns, tmp_path):
    """Issue 9: the services answer on both families. curl -6 and curl -4 fetch the same
    /bytes/N (SHA-256 checked) and ping -6 / ping -4 give round trips, all in one run, so
    IPv6's figures stand next to IPv4's."""
    import hashlib
    from tests.floodkit import pattern_sha
    n = CURL_MB * 1000 * 1000
    s = start(ns, "--serve", "echo,http")
    try:
        got = {}
        for fam, host in (("-6", "[%s]" % STACK6), ("-4", STACK_IP)):
            out = tmp_path / ("body" + fam)
            r = ns.run(["curl", "-sS", fam, "--max-time", "120", "-o", str(out), "-w",
                        "%{speed_download}", "http://%s/bytes/%d" % (host, n)], timeout=180)
            assert r.returncode == 0, (fam, r.stdout, r.stderr)
            with open(out, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == pattern_sha(n), fam
            got[fam] = float(r.stdout) / 1e6
        rtt = {}
        for fam, host in (("-6", STACK6), ("-4", STACK_IP)):
            r = ns.run(["ping", fam, "-n", "-c", "20", "-i", "0.05", host], timeout=60)
            ms = sorted(float(w.split("=")[1]) for w in r.stdout.split()
                        if w.startswith("time="))
            assert len(ms) == 20, r.stdout
            rtt[fam] = ms[10]
        print("curl %d MB: IPv6 %.1f MB/s, IPv4 %.1f MB/s; ping median: IPv6 %.3f ms, IPv4 "
              "%.3f ms" % (CURL_MB, got["-6"], got["-4"], rtt["-6"], rtt["-4"]))
    finally:
        c = s.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
