"""Wire formats: what the stack writes parses back to the same fields, and matches headers
built independently (tests/frames.py)."""
import struct

import pytest

from ustack.core.wire import arp, ethernet, fields, ipv4
from tests import frames as F


def test_fields_round_trip():
    b = bytearray(8)
    fields.put16(b, 1, 0xBEEF)
    fields.put32(b, 3, 0xDEADBEEF)
    assert fields.get16(b, 1) == 0xBEEF and fields.get32(b, 3) == 0xDEADBEEF
    assert b == bytes.fromhex("00beefdeadbeef00")
    d = bytearray(6)
    fields.copy(d, 1, b"abcdef", 2, 4)
    assert d == b"\0cdef\0"
    assert fields.eq(b"xxabcd", 2, b"abcd", 4) and not fields.eq(b"xxabce", 2, b"abcd", 4)


def test_copy_within_one_buffer_moves_like_memmove():
    """A frame moved in place (a VLAN tag inserted, a datagram moved behind another link
    header) overlaps itself: copy must not read bytes it already overwrote."""
    up = bytearray(b"0123456789")
    fields.copy(up, 3, up, 1, 6)
    assert up == bytearray(b"0121234569")
    down = bytearray(b"0123456789")
    fields.copy(down, 1, down, 3, 6)
    assert down == bytearray(b"0345678789")


def test_ethernet_header_round_trip():
    b = bytearray(14)
    ethernet.write_header(b, 0, F.STACK_MAC, F.HOST_MAC, ethernet.ETH_P_ARP)
    assert bytes(b) == F.STACK_MAC + F.HOST_MAC + b"\x08\x06"
    assert ethernet.mac_str(F.HOST_MAC) == "02:00:00:00:00:01"
    assert ethernet.parse_mac("02-00-00-00-00-01") == F.HOST_MAC
    with pytest.raises(ValueError):
        ethernet.parse_mac("02:00")


def test_arp_matches_independent_encoding():
    b = bytearray(28)
    arp.write(b, 0, arp.OP_REQUEST, F.HOST_MAC, F.HOST_IP, b"\0" * 6, F.STACK_IP)
    assert bytes(b) == F.arp(1, F.HOST_MAC, F.HOST_IP, b"\0" * 6, F.STACK_IP)
    assert fields.get16(b, arp.OPER) == 1 and bytes(b[arp.TPA:arp.TPA + 4]) == F.STACK_IP


def test_ipv4_header_matches_independent_encoding():
    b = bytearray(20)
    ipv4.write_header(b, 0, 20 + 8, 1, 0, 64, 1, F.HOST_IP, F.STACK_IP)
    assert bytes(b) == F.ipv4(F.HOST_IP, F.STACK_IP, 1, b"\0" * 8)[:20]


def test_address_helpers():
    assert ipv4.aton("192.0.2.1") == bytes([192, 0, 2, 1])
    assert ipv4.ntoa(bytes([198, 51, 100, 7])) == "198.51.100.7"
    assert ipv4.parse_cidr("203.0.113.9/28") == (bytes([203, 0, 113, 9]), 28)
    assert ipv4.prefix_mask(20) == bytes([255, 255, 240, 0])
    assert ipv4.prefix_mask(0) == bytes(4)
    for bad in ("1.2.3", "256.1.1.1", "a.b.c.d"):
        with pytest.raises(ValueError):
            ipv4.aton(bad)


def test_pseudo_header_sum_matches_reference():
    from tests.unit_ref import csum
    ip = F.ipv4(F.HOST_IP, F.STACK_IP, 17, b"\0" * 12)
    want = csum(F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 17, 12))
    assert ipv4.pseudo_sum(ip, 0, 17, 12) == want


def test_stack_output_is_parsed_by_reference_checks():
    """A UDP datagram the stack sends has correct IP and UDP checksums."""
    from tests.feed import Fed
    from tests.unit_ref import csum
    f = Fed()
    s = f.stack.socket(2, 2)
    s.setblocking(False)
    s.sendto(b"checksum me", ("192.0.2.1", 5000))
    f.stack.poll(f.t)
    frame = f.drv.tx[-1]
    ip = frame[14:34]
    assert csum(ip) == 0xFFFF
    u = frame[34:34 + 8 + 11]
    assert csum(frame[26:34] + struct.pack("!BBH", 0, 17, len(u)) + u) == 0xFFFF
    s.close()
