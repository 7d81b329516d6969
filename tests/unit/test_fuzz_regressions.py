"""Inputs the fuzzer (tests/fuzz) and the property tests (tests/property) found that broke the
stack, each kept as a plain test."""
import struct

from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed


def _fragments(proto, payload, size, ident):
    out = []
    for pos in range(0, len(payload), size):
        mf = 0x2000 if pos + size < len(payload) else 0
        out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
            F.HOST_IP, F.STACK_IP, proto, payload[pos:pos + size], ident=ident,
            frag=mf | (pos >> 3))))
    return out


def test_reassembled_ping_bigger_than_a_buffer_with_a_raw_socket_open():
    # fuzz seed fragments_big_ping: the raw socket's copy raised BufferError out of poll();
    # now the whole datagram reaches the raw socket (a chain of buffers), as on Linux
    fed = Fed()
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 1)
    r.setblocking(False)
    out = []
    for f in _fragments(1, F.icmp_echo(7, 1, bytes(3000)), 1480, 0x103):
        out += fed.feed(f)
    assert len(out) == 3  # the echo reply, fragmented
    assert fed.stack.ipv4.stats.rx_raw_dropped == 0 and r.qlen == 1
    d = r.recv(65535)
    assert len(d) == 20 + 8 + 3000 and d[9] == 1
    r.close()
    fed.advance(1)
    assert fed.stack.pool.full()
    assert not any(s.busy or s.in_use for s in fed.stack.ipv4.reass.slots)


def _right_edges(out, irs, shift):
    """RCV.NXT + RCV.WND (relative to the peer's ISN) of each non-SYN ACK the stack sent."""
    edges = []
    for f in out:
        t = f[34:]
        if f[23] == 6 and t[13] & 0x10 and not t[13] & 0x06:
            ack = struct.unpack("!I", t[8:12])[0]
            win = struct.unpack("!H", t[14:16])[0]
            edges.append((ack - irs + (win << shift)) & 0xFFFFFFFF)
    return edges


def test_scaled_receive_window_never_shrinks_by_rounding():
    # TCP model (tests/property/test_tcp_model.py): with window scaling the window field was
    # rounded down, moving the right edge left by up to 2**shift - 1 bytes (RFC 9293 3.8.6,
    # RFC 7323 2.4: the receiver must not shrink the window it offered)
    fed = Fed({"TCP_RCV_BUF": 200000})
    ls = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(1)
    out = fed.feed(F.tcp_frame(80, 0x02, seq=1000, options=b"\x01\x03\x03\x00"))
    iss = struct.unpack("!I", out[0][38:42])[0]
    shift = 2  # what the SYN-ACK offered for a 200000-byte buffer
    assert b"\x01\x03\x03\x02" in out[0][54:]
    out = fed.feed(F.tcp_frame(80, 0x10, seq=1001, ack=iss + 1))
    c, _ = ls.accept()
    out += fed.feed(F.tcp_frame(80, 0x10, seq=1000, ack=iss + 1))  # old: answered by an ACK
    out += fed.feed(F.tcp_frame(80, 0x18, seq=1001, ack=iss + 1, data=b"x"))
    fed.advance(300)  # the delayed ACK
    out += fed.drv.tx
    fed.drv.tx.clear()
    c.shutdown(so.SHUT_WR)
    out += fed.drv.tx
    fed.drv.tx.clear()
    edges = _right_edges(out, 1000, shift)
    assert len(edges) >= 2
    for a, b in zip(edges, edges[1:]):
        assert ((b - a) & 0xFFFFFFFF) < 1 << 31, "right edge moved left: %s" % edges
    for s in list(fed.stack.sockets):
        s.close()
