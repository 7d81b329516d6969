"""Inputs the fuzzer (tests/fuzz) and the property tests (tests/property) found that broke the
stack, each kept as a plain test."""
from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed
from tests.unit_ref import csum


def _fragments(proto, payload, size, ident):
    out = []
    for pos in range(0, len(payload), size):
        mf = 0x2000 if pos + size < len(payload) else 0
        out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
            F.HOST_IP, F.STACK_IP, proto, payload[pos:pos + size], ident=ident,
            frag=mf | (pos >> 3))))
    return out


def test_reassembled_ping_bigger_than_a_buffer_with_a_raw_socket_open():
    # fuzz seed fragments_big_ping: the raw socket's copy raised BufferError out of poll()
    fed = Fed()
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 1)
    r.setblocking(False)
    out = []
    for f in _fragments(1, F.icmp_echo(7, 1, bytes(3000)), 1480, 0x103):
        out += fed.feed(f)
    assert len(out) == 3  # the echo reply, fragmented
    assert fed.stack.ipv4.stats.rx_raw_dropped == 1 and r.qlen == 0
    r.close()
    fed.advance(1)
    assert fed.stack.pool.full()
    assert not any(s.busy or s.in_use for s in fed.stack.ipv4.reass.slots)


def test_echo_reply_to_an_all_zero_request_has_a_checksum_that_verifies():
    # property test_every_echo_request_gets_its_payload_back: identifier 0, sequence 0, no
    # data - the reply is all zeros, its checksum must be 0xFFFF (RFC 1071), not 0x0000
    fed = Fed()
    out = fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                         F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(0, 0, b""))))
    assert len(out) == 1
    icmp = out[0][34:42]
    assert icmp[0] == 0 and csum(icmp) == 0xFFFF
