"""The TAP steering program's flow bucket for a frame we send (hal/tapsteer.py notes it so the
flow's answers come to the queue read first): core/wire/vnet.py flow_bucket, compiled with
the core (issue 13: hal/tapsteer.py computed it in Python, about 1.3-1.6 us on every frame
sent, before its write). The same hash the program computes for a frame it receives:
tests/interop/test_tap_steering.py proves that against the kernel; here it is checked
against the formula written out again, frame kind by frame kind."""
import struct

from ustack.core.wire import vnet
from tests import frames as F

GOLDEN = 0x9E3779B1


def reference(b):
    """The program's hash, written plainly: -1 for not IP, a fragment, a RST, IPv6's fragment
    header; else the addresses (and TCP/UDP ports) xor-folded, Fibonacci-hashed to 12 bits."""
    n = len(b)
    if n < 34:
        return -1
    t = struct.unpack_from(">H", b, 12)[0]
    if t == 0x0800:
        ihl = (b[14] & 15) * 4
        if struct.unpack_from(">H", b, 20)[0] & 0x3FFF:
            return -1
        p = b[23]
        h = struct.unpack_from(">I", b, 26)[0] ^ struct.unpack_from(">I", b, 30)[0]
        o = 14 + ihl
    elif t == 0x86DD:
        if n < 54:
            return -1
        p = b[20]
        if p == 44:
            return -1
        h = 0
        for i in range(8):
            h ^= struct.unpack_from(">I", b, 22 + 4 * i)[0]
        o = 54
    else:
        return -1
    if p == 6 and n >= o + 14:
        if b[o + 13] & 4:
            return -1
        h ^= struct.unpack_from(">H", b, o)[0] ^ struct.unpack_from(">H", b, o + 2)[0]
    elif p == 17 and n >= o + 4:
        h ^= struct.unpack_from(">H", b, o)[0] ^ struct.unpack_from(">H", b, o + 2)[0]
    return ((h * GOLDEN) & 0xFFFFFFFF) >> 20


def v6_frame(nh, payload):
    src = bytes.fromhex("20010db8000000000000000000000002")
    dst = bytes.fromhex("20010db80000000000000000000000a1")
    ip6 = struct.pack(">IHBB", 6 << 28, len(payload), nh, 64) + src + dst
    return F.eth(F.HOST_MAC, F.STACK_MAC, 0x86DD, ip6 + payload)


def frames():
    yield "icmp echo", F.echo_request_frame()
    yield "udp", F.udp_frame(7, b"u" * 64, sport=40001)
    for flags in (0x02, 0x12, 0x10, 0x18, 0x11):
        yield "tcp %#x" % flags, F.tcp_frame(7, flags, data=b"x" * 10, sport=40002)
    yield "tcp rst", F.tcp_frame(7, 0x14, sport=40002)
    yield "ip options", F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
        F.HOST_IP, F.STACK_IP, 17, F.udp(F.HOST_IP, F.STACK_IP, 5, 6, b"o"), options=b"\x01" * 4))
    yield "fragment", F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
        F.HOST_IP, F.STACK_IP, 17, b"x" * 16, frag=0x2000))
    yield "tcp header cut short", F.tcp_frame(7, 0x10, sport=40003)[:40]
    yield "arp", F.arp_request_frame()
    yield "short", F.echo_request_frame()[:30]
    yield "v6 udp", v6_frame(17, struct.pack(">HHHH", 40004, 7, 12, 0) + b"abcd")
    yield "v6 tcp", v6_frame(6, struct.pack(">HHIIBBHHH", 40005, 80, 1, 0, 0x50, 0x10, 1, 0, 0))
    yield "v6 tcp rst", v6_frame(6, struct.pack(">HHIIBBHHH", 40005, 80, 1, 0, 0x50, 0x04, 1,
                                                0, 0))
    yield "v6 fragment header", v6_frame(44, bytes(16))
    yield "v6 icmp", v6_frame(58, bytes(8))
    yield "v6 cut short", v6_frame(17, b"")[:50]


def test_the_compiled_bucket_is_the_programs_hash_for_every_kind_of_frame():
    seen = set()
    for name, f in frames():
        b = bytearray(f)
        want = reference(bytes(f))
        assert vnet.flow_bucket(b, len(b)) == want, name
        assert -1 <= want < 4096   # hal/tapsteer.py's STAMPS (tests/ports: it calls this)
        seen.add(want)
    assert len(seen) > 5   # distinct flows, distinct buckets (mostly)


def test_only_the_frames_first_n_bytes_count():
    f = bytearray(F.tcp_frame(7, 0x10, data=b"x" * 10, sport=40006)) + bytearray(b"\xff" * 64)
    n = len(f) - 64
    assert vnet.flow_bucket(f, n) == reference(bytes(f[:n]))
    assert vnet.flow_bucket(f, 20) == -1


def test_any_buffer_the_tap_is_given_hashes_alike():
    # the MicroPython bridge (ports/cpython/bridge.py) hands the TAP's send bytes, the core
    # bytearrays: the compiled hash takes both, and memoryviews, as the pure one does
    f = F.tcp_frame(7, 0x10, data=b"x" * 10, sport=40007)
    want = reference(bytes(f))
    assert want >= 0
    for b in (bytes(f), bytearray(f), memoryview(bytes(f))):
        assert vnet.flow_bucket(b, len(f)) == want, type(b)
