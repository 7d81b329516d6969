"""Bad input is normal input: every truncated, corrupted or inconsistent frame is counted and
dropped, and nothing escapes poll()."""
import random
import struct

import pytest

from tests import frames as F
from tests.feed import Fed


@pytest.fixture
def fed():
    f = Fed()
    yield f
    assert f.stack.pool.full(), "a packet buffer leaked"


VALID = {
    "arp": F.arp_request_frame(),
    "icmp": F.echo_request_frame(64),
    "udp_open": F.udp_frame(7, b"payload!"),
    "udp_closed": F.udp_frame(9999, b"payload!"),
    "ip_options": F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                        F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 1, b"x" * 20),
                               options=b"\x01\x01\x01\x00")),
    "tcp_syn": F.tcp_frame(80, 0x02, options=bytes([2, 4, 5, 0xB4, 4, 2, 8, 10]) + bytes(8) +
                           bytes([1, 3, 3, 7])),
    "tcp_data": F.tcp_frame(80, 0x18, seq=1001, ack=1, data=b"GET / HTTP/1.0\r\n\r\n"),
    "vlan": F.STACK_MAC + F.HOST_MAC + b"\x81\x00\x00\x05\x08\x00" +
            F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 2, b"y" * 20)),
}


class Listeners:
    """A UDP socket on 7 and a TCP listener on 80, so valid frames reach deep paths."""

    def __init__(self, fed):
        self.fed = fed
        self.udp = fed.stack.socket(2, 2)
        self.udp.bind(("", 7))
        self.udp.setblocking(False)
        self.qlen = 0
        self.tcp = fed.stack.socket(2, 1)
        self.tcp.bind(("", 80))
        self.tcp.listen(4)
        self.tcp.setblocking(False)

    def close(self):
        while self.udp.qlen:
            self.udp.recv(2000)
        self.udp.close()
        while True:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                break
            c.close()
        self.tcp.close()
        self.fed.advance(1)


def on_vlan_of(fed, name):
    """The tagged frame is answered only by an interface on its VLAN (5)."""
    if name == "vlan":
        fed.iface.vlan = 5


def with_udp_listener(fed):
    return Listeners(fed)


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_truncation_is_dropped_without_exception(fed, name):
    s = with_udp_listener(fed)
    on_vlan_of(fed, name)
    frame = VALID[name]
    for cut in range(len(frame)):
        fed.feed(frame[:cut])
    # the whole frame still works afterwards
    out = fed.feed(frame)
    if name != "udp_open":
        assert out, "the intact frame got no answer"
    s.close()


@pytest.mark.parametrize("name", sorted(VALID))
def test_random_corruption_never_raises(fed, name):
    s = with_udp_listener(fed)
    on_vlan_of(fed, name)
    rnd = random.Random(name)
    frame = VALID[name]
    for _ in range(400):
        b = bytearray(frame)
        for _ in range(rnd.randrange(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        fed.feed(b)
    for _ in range(200):
        fed.feed(bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200))))
    s.close()


def test_truncated_ip_header_counts_too_short(fed):
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, b"\x45\x00\x00"))
    assert fed.counters()["ip.rx_too_short"] == 1


def test_bad_ip_checksum_is_counted(fed):
    f = bytearray(F.echo_request_frame())
    f[14 + 10] ^= 0xFF
    assert fed.feed(f) == []
    assert fed.counters()["ip.rx_bad_csum"] == 1


def test_bad_version_is_counted(fed):
    ip = bytearray(F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 1, b"")))
    ip[0] = 0x65
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, ip)) == []
    assert fed.counters()["ip.rx_bad_version"] == 1


def test_ihl_below_five_or_beyond_packet_is_counted(fed):
    for v in (0x44, 0x4F):
        ip = bytearray(F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 1, b"")))
        ip[0] = v
        fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, ip))
    assert fed.counters()["ip.rx_bad_ihl"] == 2


def test_total_length_beyond_frame_is_counted(fed):
    ip = bytearray(F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 1, b"abc")))
    struct.pack_into("!H", ip, 2, len(ip) + 10)
    struct.pack_into("!H", ip, 10, 0)
    from tests.unit_ref import csum
    struct.pack_into("!H", ip, 10, ~csum(ip[:20]) & 0xFFFF)
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, ip)) == []
    assert fed.counters()["ip.rx_bad_len"] == 1


def test_ethernet_padding_beyond_total_length_is_ignored(fed):
    out = fed.feed(F.echo_request_frame(4) + b"\0" * 20)
    assert len(out) == 1 and fed.counters()["icmp.tx_echo_replies"] == 1


def test_broadcast_source_is_dropped(fed):
    f = F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
              F.ipv4(b"\xff\xff\xff\xff", F.STACK_IP, 1, F.icmp_echo(1, 1, b"")))
    assert fed.feed(f) == []
    assert fed.counters()["ip.rx_bad_src"] == 1


def test_bad_icmp_checksum_is_counted(fed):
    f = bytearray(F.echo_request_frame())
    f[-1] ^= 0x55
    assert fed.feed(f) == []
    assert fed.counters()["icmp.rx_bad_csum"] == 1


def test_bad_udp_checksum_is_counted(fed):
    s = with_udp_listener(fed)
    f = bytearray(F.udp_frame(7, b"hello"))
    f[-1] ^= 1
    fed.feed(f)
    assert fed.counters()["udp.rx_bad_csum"] == 1 and s.udp.qlen == 0
    s.close()


def test_udp_length_field_larger_than_datagram_is_counted(fed):
    u = bytearray(F.udp(F.HOST_IP, F.STACK_IP, 1, 7, b"abc"))
    struct.pack_into("!H", u, 4, 100)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 17, bytes(u))))
    assert fed.counters()["udp.rx_bad_len"] == 1


def test_unknown_ethertype_and_foreign_unicast_are_counted(fed):
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x88B5, b"\0" * 46))
    fed.feed(F.eth(b"\x02\x99\x99\x99\x99\x99", F.HOST_MAC, 0x0800, b"\0" * 46))
    c = fed.counters()
    assert c["eth0.rx_unknown_ethertype"] == 1 and c["eth0.rx_not_for_us"] == 1


def test_arp_with_wrong_lengths_is_counted(fed):
    a = bytearray(F.arp(1, F.HOST_MAC, F.HOST_IP, b"\0" * 6, F.STACK_IP))
    a[4] = 8
    assert fed.feed(F.eth(b"\xff" * 6, F.HOST_MAC, 0x0806, a)) == []
    assert fed.counters()["eth0.arp.rx_malformed"] == 1


def test_unknown_ip_protocol_gets_protocol_unreachable(fed):
    out = fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 99, b"z" * 12)))
    assert len(out) == 1
    icmp = out[0][34:]
    assert icmp[0] == 3 and icmp[1] == 2
    assert fed.counters()["ip.rx_unknown_proto"] == 1

