"""UdpSocket.echo(): RFC 862's answer to the oldest queued datagram in one call (what
recvfrom_into + sendto do: the `--serve echo` UDP service uses it), and RFC 863's discard
with reply=False. The reply must be what sendto would have sent, and the queue and the pool
must come back empty whichever way it went."""
from ustack.core import socket as so
from tests.twostack import Bench, IP_B, udp


def _pair():
    bench = Bench()
    srv = udp(bench.b, 7)
    cl = udp(bench.a, 40001)
    return bench, srv, cl


def test_echo_sends_the_payload_back_to_its_source():
    bench, srv, cl = _pair()
    for msg in (b"hello", b"x" * 1400, b""):
        cl.sendto(msg, (IP_B, 7))
        bench.pump(3)
        assert srv.qlen == 1
        assert srv.echo() == len(msg)
        assert srv.qlen == 0
        bench.pump(3)
        assert cl.recvfrom(2048) == (msg, (IP_B, 7))
    assert bench.b.udp.stats.tx_datagrams == 3
    bench.close_all()


def test_echo_without_reply_only_drops_the_datagram():
    bench, srv, cl = _pair()
    cl.sendto(b"gone", (IP_B, 7))
    bench.pump(3)
    assert srv.echo(False) == 4
    assert srv.qlen == 0 and srv.echo(False) == -1
    bench.pump(3)
    assert cl.qlen == 0
    assert bench.b.udp.stats.tx_datagrams == 0
    bench.close_all()


def test_echo_of_an_empty_queue_is_minus_one():
    bench, srv, cl = _pair()
    assert srv.echo() == -1
    bench.close_all()


def test_echo_answers_one_datagram_per_call_in_order():
    bench, srv, cl = _pair()
    other = udp(bench.a, 40002)
    cl.sendto(b"first", (IP_B, 7))
    other.sendto(b"second", (IP_B, 7))
    bench.pump(3)
    assert srv.qlen == 2
    srv.echo()
    bench.pump(3)
    assert cl.recvfrom(100) == (b"first", (IP_B, 7)) and other.qlen == 0
    srv.echo()
    bench.pump(3)
    assert other.recvfrom(100) == (b"second", (IP_B, 7))
    bench.close_all()


def test_a_socket_bound_to_its_address_answers_from_it():
    # not the wildcard: the generic path (sendto) is taken, with the same answer
    bench = Bench()
    srv = bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
    srv.bind((IP_B, 7))
    srv.setblocking(False)
    cl = udp(bench.a, 40001)
    cl.sendto(b"bound", (IP_B, 7))
    bench.pump(3)
    assert srv.echo() == 5
    bench.pump(3)
    assert cl.recvfrom(100) == (b"bound", (IP_B, 7))
    bench.close_all()


def test_a_datagram_from_port_0_is_dropped_unanswered():
    # sendto refuses port 0 (EINVAL): echo drops the datagram the same way, raising nothing
    bench, srv, cl = _pair()
    cl.sendto(b"zero", (IP_B, 7))
    bench.pump(3)
    pb = srv.qhead
    u = pb.off - 8
    pb.buf[u] = 0       # the queued datagram's source port, as if it came from port 0
    pb.buf[u + 1] = 0
    sent = bench.b.udp.stats.tx_datagrams
    assert srv.echo() == 4
    assert srv.qlen == 0 and bench.b.udp.stats.tx_datagrams == sent
    bench.close_all()


def test_output_sends_the_payload_from_its_offset():
    """UDP.output's doff: the payload is data[doff:doff+n] (echo sends from the request's
    buffer where its payload starts, no copy made first); 0, the default, is data[:n]."""
    bench, srv, cl = _pair()
    u = bench.a.udp
    src = bench.a.ifaces[0].ip
    dst = bytes(int(x) for x in IP_B.split("."))
    buf = bytearray(b"....abcdefgh")
    assert u.output(src, 40001, dst, 7, buf, 5, 0, 0, None, False, 4) == 0
    assert u.output(src, 40001, dst, 7, buf, 3) == 0
    bench.pump(3)
    assert srv.recvfrom(100)[0] == b"abcde"
    assert srv.recvfrom(100)[0] == b"..."
    bench.close_all()
