"""What `ustack up --serve echo` puts on the wire (issue 13), in the capture the stack writes
of every frame it sends and receives (`--pcap`; tcpdump on the kernel's end of the TAP lost
frames on a busy machine, one connection's request and echo in one run of three): each 64-byte echo is one segment carrying the ACK of the request (no pure ACK
first), and the client's FIN is answered by one FIN+ACK when the service closes (no pure ACK
before it). So a connect, one echo and a close cost the stack three segments: SYN-ACK, data,
FIN."""
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP
from tests.pcapcheck import tshark

pytestmark = [needs_netns]

ECHOES = 50
CONNS = 20

CLIENT = r"""
import socket, sys
ip, echoes, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def one(n):
    c = socket.create_connection((ip, 7), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(n):
        m = bytes([65 + i %% 26]) * 64
        c.sendall(m)
        got = b""
        while len(got) < 64:
            d = c.recv(64 - len(got))
            assert d, "echo closed"
            got += d
        assert got == m
    c.shutdown(socket.SHUT_WR)
    assert c.recv(10) == b""   # the service's FIN
    c.close()
one(echoes)
for _ in range(conns):
    one(1)
print("done")
"""


@pytest.fixture
def ns():
    n = Netns("echoseg")
    yield n
    n.close()


def test_echo_replies_and_the_close_are_one_segment_each(ns, tmp_path):
    pcap = tmp_path / "echo.pcap"
    stack = StackProc(ns, "--serve", "echo", "--pcap", str(pcap))
    try:
        r = ns.run([sys.executable, "-c", CLIENT % (), STACK_IP, str(ECHOES), str(CONNS)],
                   timeout=120)
        assert r.returncode == 0 and "done" in r.stdout, r.stdout + r.stderr
        time.sleep(0.5)  # the client's ACK of the last FIN: in before the stack stops
    finally:
        c = stack.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
    mine = "ip.src == %s" % STACK_IP
    n = CONNS + 1
    syn_acks = tshark(pcap, mine + " && tcp.flags.syn == 1")
    # a resend is no answer of its own: on a busy machine a reply may wait past the tail
    # loss probe's timeout, or a request past Linux's RTO (and its duplicate is ACKed at once)
    data = tshark(pcap, mine + " && tcp.len > 0 && tcp.flags.fin == 0 && "
                  "!tcp.analysis.retransmission", "-T", "fields", "-e", "tcp.len")
    fins = tshark(pcap, mine + " && tcp.flags.fin == 1 && tcp.flags.ack == 1")
    pure = tshark(pcap, mine + " && tcp.len == 0 && tcp.flags.syn == 0 && tcp.flags.fin == 0 "
                  "&& tcp.flags.reset == 0 && !tcp.analysis.duplicate_ack")
    assert len(syn_acks) == n, syn_acks
    assert len(data) == ECHOES + CONNS, data[-5:]   # one segment each echo, 64 bytes
    assert set(data) == {"64"}, set(data)
    assert len(fins) == n, fins
    assert pure == [], pure[:5]   # no ACK of its own: every one rode an answer
    # every FIN of ours acknowledges the client's FIN (its sequence number + 1)
    theirs = tshark(pcap, "ip.dst == %s && tcp.flags.fin == 1" % STACK_IP, "-T", "fields",
                    "-e", "tcp.stream", "-e", "tcp.seq_raw")
    ours = tshark(pcap, mine + " && tcp.flags.fin == 1", "-T", "fields", "-e", "tcp.stream",
                  "-e", "tcp.ack_raw")
    fin_seq = dict(x.split("\t") for x in theirs)
    for x in ours:
        s, ack = x.split("\t")
        assert int(ack) == (int(fin_seq[s]) + 1) & 0xFFFFFFFF, (s, ack, fin_seq[s])
