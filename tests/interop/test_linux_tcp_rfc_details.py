"""Issue 12's RFC details against the Linux kernel in a throwaway netns over TAP, where a
real peer shows them: the TSecr of a delayed ACK covering two of Linux's segments (RFC
7323 4.3), read from the pcap with tshark."""
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
time.sleep(0.08)              # well inside the stack's 200 ms delayed-ACK time
c.sendall(b"b")
time.sleep(0.5)
c.close()
"""


def test_delayed_ack_to_linux_echoes_the_tsval_of_the_first_segment_it_covers(ns, tmp_path):
    pcap = str(tmp_path / "ts.pcap")
    s = StackProc(ns, "--serve", "discard", "--pcap", pcap)
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
    assert ts_b > ts_a, t.stdout  # 80 ms apart on Linux's millisecond clock
    acks = [int(tsecr) for src, seq, ack, ln, tsval, tsecr in rows
            if src == STACK_IP and ack and int(ack) == (seq_b + 1) & 0xFFFFFFFF]
    assert acks, t.stdout
    # one delayed ACK for both; it echoes a's TSval (Last.ACK.sent), so Linux's RTT
    # measurement from it includes the time the stack held the ACK back
    assert acks[0] == ts_a, t.stdout
    assert not [src for src, seq, ack, ln, tsval, tsecr in rows
                if src == STACK_IP and ack and int(ack) == (seq_a + 1) & 0xFFFFFFFF], t.stdout
