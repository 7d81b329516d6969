"""The Linux kernel, in a throwaway network namespace, as the peer over a TAP: ping, UDP,
ARP, ICMP errors, broadcasts, and pcaps that tcpdump and tshark read cleanly."""
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns]


@pytest.fixture
def ns():
    n = Netns("v4")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", "echo,discard")
    yield s
    if s.p.poll() is None:
        s.stop()


def ping(ns, *args):
    r = ns.run(["ping", "-n"] + list(args), timeout=120)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2)), r.stdout


def test_linux_pings_the_stack_200_times_without_loss(ns, stack):
    sent, got, _ = ping(ns, "-c", "200", "-i", "0.002", "-W", "2", STACK_IP)
    assert (sent, got) == (200, 200)
    c = stack.stop()
    assert c["icmp.tx_echo_replies"] >= 200
    assert c["pbuf.free"] == c["pbuf.count"]


def test_linux_pings_with_1472_byte_payloads(ns, stack):
    sent, got, out = ping(ns, "-c", "50", "-i", "0.002", "-s", "1472", "-M", "do", STACK_IP)
    assert (sent, got) == (50, 50)
    assert "1480 bytes from" in out


def test_linux_pings_with_fragmented_4000_byte_payloads(ns, stack):
    sent, got, _ = ping(ns, "-c", "10", "-i", "0.01", "-s", "4000", STACK_IP)
    assert (sent, got) == (10, 10)
    c = stack.stop()
    assert c["reass.reassembled"] >= 10 and c["ip.tx_fragments"] >= 30


def test_linux_neighbour_table_shows_our_mac(ns, stack):
    ping(ns, "-c", "1", STACK_IP)
    r = ns.run(["ip", "neigh", "show", STACK_IP])
    assert "02:00:00:00:00:02" in r.stdout


def test_the_stack_pings_linux(ns):
    r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", HOST_IP, "-c", "5",
                "-i", "0.05", "--tap", "ustk1", "--ip", STACK_IP + "/24", "--host-ip",
                HOST_IP + "/24"], timeout=60)
    assert "5 packets transmitted, 5 received, 0% packet loss" in r.stdout, r.stdout + r.stderr
    # the round trip is timed from the send to the reply's arrival, not from the last poll
    rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout)]
    assert len(rtts) == 5 and sorted(rtts)[2] < 5, r.stdout  # median: the kernel says ~0.2 ms
    assert re.search(r"rtt min/avg/max/mdev = [0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+ ms", r.stdout)


def test_ctrl_c_stops_the_stacks_ping_with_the_summary(ns):
    import signal
    import time
    p = ns.popen([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", HOST_IP, "-c", "100",
                  "-i", "0.2", "--tap", "ustk1", "--ip", STACK_IP + "/24", "--host-ip",
                  HOST_IP + "/24"])
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    assert "Traceback" not in out, out
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m and 3 <= int(m.group(1)) < 100 and m.group(1) == m.group(2), out
    assert "--- %s ping statistics ---" % HOST_IP in out
    assert p.returncode == 0


def test_linux_udp_client_gets_echo(ns, stack):
    r = ns.python(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
        "for i in range(200):\n"
        "    m = bytes([i %% 256]) * (1 + i * 7)\n"
        "    s.sendto(m, ('%s', 7))\n"
        "    d, a = s.recvfrom(65535)\n"
        "    assert d == m and a == ('%s', 7), (i, len(d))\n"
        "print('ok')\n" % (STACK_IP, STACK_IP))
    assert r.stdout.strip() == "ok", r.stderr


def test_linux_connected_udp_socket_sees_econnrefused(ns, stack):
    r = ns.python(
        "import socket, errno\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
        "s.connect(('%s', 5555)); s.send(b'x')\n"
        "try:\n    s.recv(10)\nexcept ConnectionRefusedError:\n    print('refused')\n" % STACK_IP)
    assert r.stdout.strip() == "refused", r.stdout + r.stderr
    c = stack.stop()
    assert c["udp.rx_no_port"] == 1 and c["icmp.tx_errors"] == 1


def test_linux_broadcast_reaches_the_stack(ns, stack):
    r = ns.python(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
        "s.sendto(b'hello all', ('192.0.2.255', 7))\n"
        "print(s.recvfrom(100))\n")
    assert "hello all" in r.stdout and STACK_IP in r.stdout, r.stdout + r.stderr


STACK_CLIENT = r"""
import socket as pysock, sys, threading
from ustack.ports.cpython.host import open_stack
from ustack.core import socket as so
HOST, PORT = "{host}", 9000
srv = pysock.socket(pysock.AF_INET, pysock.SOCK_DGRAM)
srv.setsockopt(pysock.SOL_SOCKET, pysock.SO_BROADCAST, 1)
net = open_stack(tap="ustk2", ip="{stack}/24", host_ip="{host}/24")
srv.bind(("", PORT))
def serve():
    for _ in range(101):
        d, a = srv.recvfrom(2000)
        srv.sendto(d[::-1], a)
threading.Thread(target=serve, daemon=True).start()
s = net.socket(so.AF_INET, so.SOCK_DGRAM)
s.settimeout(2)
for i in range(100):
    m = b"%05d" % i + bytes(i * 10)
    s.sendto(m, (HOST, PORT))
    d, a = s.recvfrom(2000)
    assert d == m[::-1] and a == (HOST, PORT), i
b = net.socket(so.AF_INET, so.SOCK_DGRAM)
b.setsockopt(so.SOL_SOCKET, so.SO_BROADCAST, 1)
b.sendto(b"to everyone", ("192.0.2.255", PORT))
b.settimeout(2)
print(b.recvfrom(100))
c = net.socket(so.AF_INET, so.SOCK_DGRAM)
c.settimeout(2)
c.connect((HOST, 9)); c.send(b"x")
try:
    c.recv(10)
except OSError as e:
    print("errno", e.errno)
net.close()
print("done")
"""


def test_stack_udp_client_talks_to_linux_server(ns):
    r = ns.python(STACK_CLIENT.format(host=HOST_IP, stack=STACK_IP), timeout=60)
    assert "done" in r.stdout, r.stdout + r.stderr
    assert "b'enoyreve ot'" in r.stdout
    import errno
    assert "errno %d" % errno.ECONNREFUSED in r.stdout


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="tcpdump not installed")
def test_pcap_is_read_cleanly_by_tcpdump_and_tshark(ns, tmp_path):
    pcap = str(tmp_path / "run.pcap")
    s = StackProc(ns, "--serve", "echo", "--pcap", pcap)
    ping(ns, "-c", "5", "-i", "0.01", STACK_IP)
    ping(ns, "-c", "2", "-i", "0.01", "-s", "3000", STACK_IP)
    ns.python("import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
              "s.sendto(b'x'*100, ('%s', 7)); s.recvfrom(200)\ns.sendto(b'y', ('%s', 4444))\n"
              % (STACK_IP, STACK_IP))
    s.stop()
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-v"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout
    assert lines.count("ICMP echo reply") == 7
    assert "Reply 192.0.2.2 is-at 02:00:00:00:00:02" in lines
    assert "udp port 4444 unreachable" in lines
    for bad in ("bad cksum", "wrong cksum", "truncated", "malformed", "[|"):
        assert bad not in lines, bad
    if shutil.which("tshark"):
        t = subprocess.run(["tshark", "-r", pcap, "-Y", "_ws.malformed || _ws.expert.severity >= \"error\"",
                            "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
                           capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        assert t.stdout.strip() == "", t.stdout
