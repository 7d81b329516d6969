"""Issue 12's RFC details against the Linux kernel in a throwaway netns over TAP, where a
real peer shows them: the TSecr of a delayed ACK covering two of Linux's segments (RFC
7323 4.3), read from the pcap with tshark."""
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns,
              pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")]


@pytest.fixture
def ns():
    n = Netns("rfcd")
    yield n
    n.close()


SENDER = r"""
import socket, time
c = socket.create_connection(("%s", 9), timeout=5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
time.sleep(0.5)               # the handshake's ACKs settle
c.sendall(b"a")
time.sleep(0.03)              # well inside the stack's delayed-ACK time (499 ms)
c.sendall(b"b")
time.sleep(0.5)
c.close()
"""


def test_delayed_ack_to_linux_echoes_the_tsval_of_the_first_segment_it_covers(ns, tmp_path):
    pcap = str(tmp_path / "ts.pcap")
    s = StackProc(ns, "--serve", "discard", "--pcap", pcap, "--config", "TCP_DELACK_MS=499")
    r = ns.python(SENDER % STACK_IP, timeout=30)
    assert r.returncode == 0, r.stderr
    s.stop()
    t = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.port == 9", "-T", "fields",
                        "-e", "ip.src", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len",
                        "-e", "tcp.options.timestamp.tsval", "-e", "tcp.options.timestamp.tsecr"],
                       capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    rows = [ln.split("\t") for ln in t.stdout.splitlines() if ln.strip()]
    data = []
    for src, seq, ack, ln, tsval, tsecr in rows:
        # each byte's first transmission (Linux's tail loss probe may resend b before the
        # stack's delayed ACK is due)
        if src == HOST_IP and ln == "1" and int(seq) not in [d[0] for d in data]:
            data.append((int(seq), int(tsval)))
    assert len(data) == 2, t.stdout
    (seq_a, ts_a), (seq_b, ts_b) = data
    assert ts_b > ts_a, t.stdout  # 30 ms apart on Linux's millisecond clock
    acks = [int(tsecr) for src, seq, ack, ln, tsval, tsecr in rows
            if src == STACK_IP and ack and int(ack) == (seq_b + 1) & 0xFFFFFFFF]
    assert acks, t.stdout
    # one delayed ACK for both; it echoes a's TSval (Last.ACK.sent), so Linux's RTT
    # measurement from it includes the time the stack held the ACK back
    assert acks[0] == ts_a, t.stdout
    assert not [src for src, seq, ack, ln, tsval, tsecr in rows
                if src == STACK_IP and ack and int(ack) == (seq_a + 1) & 0xFFFFFFFF], t.stdout


CLIENT = r"""
import errno, time
from ustack.ports.cpython.host import open_stack
from ustack.core import socket as so
net = open_stack(tap="ustk9", ip="%s/24", host_ip="%s/24", gateway="%s")
s = net.socket(so.AF_INET, so.SOCK_STREAM)
s.settimeout(20)
t0 = time.time()
try:
    s.connect(("%s", %d))
    print("connected")
except OSError as e:
    print("errno", errno.errorcode.get(e.errno, e.errno), "after %%.1f s" %% (time.time() - t0))
c = net.counters()
print("icmp", c.get("tcp.icmp_errors", 0), "out_of_window", c.get("tcp.icmp_out_of_window", 0))
s.close()
net.close()
"""


def _connect_from_stack(ns, dst, port):
    r = ns.python(CLIENT % (STACK_IP, HOST_IP, HOST_IP, dst, port), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    m = re.search(r"after ([0-9.]+) s", r.stdout)
    assert m and float(m.group(1)) < 5, r.stdout  # at once, not after SYN retries
    return r.stdout


def test_linux_host_unreachable_ends_the_stacks_connect_with_ehostunreach(ns):
    # Linux routes for the stack and has no way on: its ICMP host unreachable quotes our
    # SYN, whose sequence number (our ISS) passes RFC 5927 4.1's check
    ns.run(["sysctl", "-w", "net.ipv4.ip_forward=1"], check=True)
    ns.run(["ip", "route", "add", "unreachable", "198.51.100.0/24"], check=True)
    out = _connect_from_stack(ns, "198.51.100.7", 80)
    assert "errno EHOSTUNREACH" in out, out
    assert "icmp 1 out_of_window 0" in out, out


def test_linux_port_unreachable_refuses_the_stacks_connect(ns):
    # a hard error in SYN-SENT (RFC 1122 4.2.3.9): ECONNREFUSED at once, no SYN retries
    ns.run(["nft", "-f", "-"], check=True, input=(
        "table ip rfcd {\n chain in {\n  type filter hook input priority 0;\n"
        "  tcp dport 4444 reject with icmp type port-unreachable\n }\n}\n"))
    out = _connect_from_stack(ns, HOST_IP, 4444)
    assert "errno ECONNREFUSED" in out, out
    assert "icmp 1 out_of_window 0" in out, out
