"""Every received frame ends in exactly one counted outcome (tests/rig.py checks the balances
over arbitrary input; these are the cases that were once uncounted)."""
import struct

from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed


def _ip(proto, payload):
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, proto, payload))


def test_protocol_taken_only_by_a_raw_socket_is_counted_as_raw_only():
    fed = Fed()
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 253)
    r.setblocking(False)
    assert fed.feed(_ip(253, b"experimental")) == []  # no protocol unreachable: it was taken
    ip = fed.stack.ipv4.stats
    assert ip.rx_delivered == 1 and ip.rx_raw_only == 1 and ip.rx_unknown_proto == 0
    assert r.recv(100)[20:] == b"experimental"
    r.close()
    assert fed.stack.pool.full()


def test_tcp_segments_are_counted_by_where_demultiplexing_sent_them():
    fed = Fed()
    ls = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(1)
    out = fed.feed(F.tcp_frame(80, 0x02, seq=1000))                   # to the listener
    iss = struct.unpack("!I", out[0][38:42])[0]
    fed.feed(F.tcp_frame(80, 0x10, seq=1001, ack=iss + 1))            # to the connection
    fed.feed(F.tcp_frame(81, 0x02, seq=1000))                         # to nobody
    t = fed.stack.tcp.stats
    assert (t.rx_segments, t.rx_listen_segments, t.rx_conn_segments, t.rx_no_conn) == (3, 1, 1, 1)
    for s in list(fed.stack.sockets):
        s.close()


def test_datagram_refused_by_the_forwarding_filter_is_counted():
    fed = Fed({"IP_FORWARD": True})
    fed.stack.filter = lambda in_iface, out_iface, b, off, n: False
    other = bytes([192, 0, 2, 77])
    fed.iface.arp.add_static(other, b"\x02\x00\x00\x00\x00\x77")
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                          F.ipv4(F.HOST_IP, other, 1, F.icmp_echo(1, 1, b"x")))) == []
    ip = fed.stack.ipv4.stats
    assert ip.rx_packets == 1 and ip.fwd_filtered == 1 and ip.fwd_packets == 0
    assert fed.stack.pool.full()


def test_receive_buffer_shortage_is_counted_as_rx_no_buffer_and_the_frame_waits():
    fed = Fed()
    pool = fed.stack.pool
    held = []
    while True:
        pb = pool.alloc_rx()
        if pb is None:
            break
        held.append(pb)
    fed.drv.rx.append(F.echo_request_frame(56, seq=1))
    fed.stack.poll(fed.t)
    c = fed.counters()
    assert c["eth0.rx_no_buffer"] == 1 and "eth0.tx_no_buffer" not in c
    assert "eth0.rx_packets" not in c and len(fed.drv.rx) == 1  # left in the driver
    for pb in held:
        pool.free(pb)
    fed.advance()
    assert fed.counters()["icmp.tx_echo_replies"] == 1 and pool.full()


def test_datagram_for_another_host_with_forwarding_disabled_is_counted_as_fwd_disabled():
    fed = Fed()   # IP_FORWARD defaults to off: a host (RFC 1122 3.3.1.1)
    other = bytes([192, 0, 2, 77])
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                          F.ipv4(F.HOST_IP, other, 1, F.icmp_echo(1, 1, b"x")))) == []
    c = fed.counters()
    assert c["ip.rx_packets"] == 1 and c["ip.fwd_disabled"] == 1
    assert "ip.rx_not_for_us" not in c and "ip.fwd_packets" not in c
    assert fed.stack.pool.full()
