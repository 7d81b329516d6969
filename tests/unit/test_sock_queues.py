"""Socket receive queues and the packet-buffer pool: no socket, however slow its reader, can
take the buffers the stack needs to receive, answer ARP and ping, and transmit (issue 8,
holes 1 and 3). Raw sockets get whole datagrams, as Linux's do."""
import errno

import pytest

from ustack.core import socket as so
from tests.twostack import Bench, IP_A, IP_B


def _teardown(b):
    for s in list(b.a.sockets) + list(b.b.sockets):
        s.close()
    b.pump()
    assert b.pools_full(), "packet buffers leaked"
    for st in (b.a, b.b):
        for slot in st.ipv4.reass.slots:
            assert not slot.in_use and not slot.busy, "reassembly slot leaked"


@pytest.fixture
def bench():
    b = Bench()
    b.a.ping(IP_B, count=1)  # resolve ARP both ways first: fragments are not held for it
    yield b
    _teardown(b)


def raw(stack, proto=so.IPPROTO_ICMP):
    s = stack.socket(so.AF_INET, so.SOCK_RAW, proto)
    s.setblocking(False)
    return s


def udp(stack, port=None):
    s = stack.socket(so.AF_INET, so.SOCK_DGRAM)
    if port is not None:
        s.bind(("", port))
    s.setblocking(False)
    return s


# ---- hole 1: a datagram bigger than one packet buffer to a raw socket -----------------------
def test_raw_socket_receives_a_reassembled_echo_request_whole(bench):
    """Linux `ping -s 3000` at a stack with a raw ICMP socket open: the 3028-byte datagram
    reaches the raw socket whole (header included, as BSD/Linux give it), and the echo
    reply still goes out."""
    r = raw(bench.b)
    p = bench.a.icmp.pinger(IP_B, 3000)
    p.send(0, bench.t)
    bench.pump(60)
    assert p.received == 1
    data, addr = r.recvfrom(65535)
    assert addr == (IP_A, 0)
    assert len(data) == 3028 and (data[2] << 8 | data[3]) == 3028
    assert data[20] == 8  # the echo request itself
    c = bench.b.counters()
    assert c["raw.rx_delivered"] == 1
    p.close()


def test_raw_socket_big_datagram_is_read_whole_or_truncated_to_bufsize(bench):
    r = raw(bench.b)
    bench.a.ping(IP_B, count=1, size=4000, timeout_ms=200)
    bench.a.ping(IP_B, count=1, size=4000, timeout_ms=200)
    head = r.recv(100)
    assert len(head) == 100 and head[0] == 0x45
    whole = r.recv(65535)
    assert len(whole) == 4028
    assert whole[:20] != head[:20] or whole[20:100] == head[20:100]
    with pytest.raises(OSError) as e:
        r.recv(10)
    assert e.value.errno == errno.EAGAIN


def test_raw_socket_over_its_budget_drops_and_counts_the_big_datagram(bench):
    """A datagram that needs more buffers than the socket's SO_RCVBUF leaves is dropped and
    counted, the stack keeps answering."""
    r = raw(bench.b)
    r.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1)  # the minimum: one buffer's worth
    p = bench.a.ping(IP_B, count=1, size=56, timeout_ms=200)   # fills the budget
    assert p.received == 1
    p = bench.a.ping(IP_B, count=1, size=3000, timeout_ms=200)
    assert p.received == 1  # the stack still answers
    c = bench.b.counters()
    assert c["raw.rx_delivered"] == 1 and c["raw.rx_rcvbuf"] == 1
    assert len(r.recv(65535)) == 84
    with pytest.raises(OSError):
        r.recv(65535)
