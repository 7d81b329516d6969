"""The whole receive path, as properties: whatever frames arrive - arbitrary bytes, or valid
frames of every kind with fields and bytes mutated, truncated or extended - nothing escapes
poll(), every received frame is accounted for by exactly one counted outcome
(tests/rig.py accounting), and once the sockets are closed and the timers have run out every
packet buffer is back in the pool."""
import struct

from hypothesis import given, settings, strategies as st

from tests import frames as F
from tests import rig as R
from tests.property.budget import examples

BCAST = b"\xff" * 6
S, A, P, RST, FIN = 0x02, 0x10, 0x08, 0x04, 0x01
SEQ = R.PEER_ISS + 1
ACK = R.STACK_ISS + 1


def _ip(proto, payload, dst=F.STACK_IP, dmac=F.STACK_MAC, **kw):
    return F.eth(dmac, F.HOST_MAC, R.ETH_IP, F.ipv4(F.HOST_IP, dst, proto, payload, **kw))


def _frag(proto, payload, ident, pos, size):
    mf = 0x2000 if pos + size < len(payload) else 0
    return _ip(proto, payload[pos:pos + size], ident=ident, frag=mf | (pos >> 3))


ECHO = F.icmp_echo(7, 1, bytes(range(40)))
UDP7 = F.udp(F.HOST_IP, F.STACK_IP, 1234, R.UDP_PORT, b"datagram")

VALID = [
    F.arp_request_frame(),
    F.eth(F.STACK_MAC, F.HOST_MAC, R.ETH_ARP, F.arp(2, F.HOST_MAC, F.HOST_IP, F.STACK_MAC,
                                                    F.STACK_IP)),
    _ip(1, ECHO),
    _ip(1, ECHO, dst=b"\xff" * 4, dmac=BCAST),
    _ip(1, ECHO, options=b"\x01\x01\x01\x00"),
    F.STACK_MAC + F.HOST_MAC + b"\x81\x00\x00\x05\x08\x00" + F.ipv4(F.HOST_IP, F.STACK_IP, 1,
                                                                    ECHO),
    _ip(1, F.icmp_echo(7, 1, b"", t=0)),
    _ip(1, struct.pack("!BBHI", 3, 3, 0, 0) + F.ipv4(F.STACK_IP, F.HOST_IP, 17, bytes(8))),
    _ip(17, UDP7),
    _ip(17, F.udp(F.HOST_IP, F.STACK_IP, 1234, 9999, b"closed")),
    _frag(17, UDP7, 0x77, 0, 8),
    _frag(17, UDP7, 0x77, 8, 8),
    _frag(1, F.icmp_echo(7, 2, bytes(3000)), 0x78, 0, 1480),
    _frag(1, F.icmp_echo(7, 2, bytes(3000)), 0x78, 1480, 1480),
    _frag(1, F.icmp_echo(7, 2, bytes(3000)), 0x78, 2960, 1480),
    _ip(99, b"unknown protocol"),
    _ip(R.RAW_PROTO, b"for the raw socket"),
    R.tcp_to(R.TCP_PORT, S, 7000, 0, options=R.SYN_OPTS, sport=41000),
    R.tcp_to(R.TCP_PORT, A, 7001, ACK, sport=41000),
    R.tcp_to(81, S, 7000, 0),
    R.tcp_to(R.TCP_PORT, A | P, SEQ, ACK, b"in order", options=R.ts_opt(R.PEER_TS + 2, 1)),
    R.tcp_to(R.TCP_PORT, A | P, SEQ + 100, ACK, b"beyond a hole"),
    R.tcp_to(R.TCP_PORT, A | FIN, SEQ, ACK),
    R.tcp_to(R.TCP_PORT, RST, SEQ, 0),
    R.tcp_to(R.TCP_PORT, S, SEQ, 0),
    R.tcp_to(R.TCP_PORT, A, SEQ, ACK, window=0),
]

# offsets of header fields worth setting to extreme values (Ethernet, IPv4, L4)
FIELDS16 = [12, 14 + 2, 14 + 4, 14 + 6, 14 + 10, 34, 36, 38, 40, 42, 44, 46, 48]
FIELDS8 = [14, 15, 14 + 8, 14 + 9, 34, 35, 46, 47]


@st.composite
def mutated(draw):
    """A valid frame with a few fields or bytes changed, cut short or extended, its
    checksums fixed (to reach the protocols) or not."""
    f = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        k = draw(st.integers(0, 5))
        if k == 0 and f:
            f[draw(st.integers(0, len(f) - 1))] = draw(st.integers(0, 255))
        elif k == 1:
            o = draw(st.sampled_from(FIELDS16))
            if o + 2 <= len(f):
                struct.pack_into("!H", f, o, draw(st.sampled_from(
                    [0, 1, 7, 8, 19, 20, 21, 0x3FFF, 0x2000, 0x1FFF, 0x7FFF, 0xFFFF]) |
                    st.integers(0, 0xFFFF)))
        elif k == 2:
            o = draw(st.sampled_from(FIELDS8))
            if o < len(f):
                f[o] = draw(st.sampled_from([0, 0x40, 0x45, 0x4F, 0x46, 0xFF, 0x50, 0xF0]) |
                            st.integers(0, 255))
        elif k == 3:
            del f[draw(st.integers(0, len(f))):]
        elif k == 4:
            f += draw(st.binary(max_size=64))
        elif k == 5 and f:
            i = draw(st.integers(0, len(f) - 1))
            f[i] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        R.fix_checksums(f)
    return bytes(f)


def _finish(rig):
    bad = rig.accounting()
    assert not bad, bad
    rig.close()
    assert not rig.accounting(), rig.accounting()
    assert rig.stack.pool.full(), "packet buffers leaked: %d of %d free" % (
        rig.stack.pool.nfree, rig.stack.pool.count)


@settings(max_examples=examples(150))
@given(st.lists(st.binary(max_size=120), max_size=12))
def test_arbitrary_bytes_never_escape_poll_and_every_frame_is_counted(frames):
    rig = R.Rig()
    for f in frames:
        rig.feed(f)
    _finish(rig)


@settings(max_examples=examples(150))
@given(st.lists(st.binary(max_size=80).map(
    lambda b: F.STACK_MAC + F.HOST_MAC + b"\x08\x00" + b), max_size=12))
def test_arbitrary_ip_datagrams_addressed_to_us_are_counted(frames):
    rig = R.Rig()
    for f in frames:
        rig.feed(f)
    _finish(rig)


CONFIGS = [
    {"PBUF_COUNT": 24, "REASS_SLOTS": 2},
    # a starved stack: every allocation failure path (queues hold the few buffers there are)
    {"PBUF_COUNT": 6, "UDP_RX_QUEUE": 2, "RX_BATCH": 4, "REASS_SLOTS": 1, "ARP_ENTRIES": 2},
]


@settings(max_examples=examples(300))
@given(st.lists(st.tuples(mutated(), st.integers(0, 3), st.sampled_from([0, 0, 1, 200, 5000])),
                min_size=1, max_size=16), st.sampled_from(CONFIGS))
def test_mutated_frames_never_escape_poll_and_leave_the_pool_full(script, config):
    rig = R.Rig(config)
    for f, action, ms in script:
        if action == 3:
            rig.feed_many([f] * 20)  # a burst: several frames drained per poll
        else:
            rig.feed(f)
        if action == 1:
            rig.read_all()
        if ms:
            rig.advance(ms)
    _finish(rig)


@settings(max_examples=examples(150))
@given(st.lists(mutated(), min_size=1, max_size=12), st.integers(0, 255))
def test_forwarded_filtered_or_dropped_every_frame_is_counted_when_routing(frames, mark):
    rig = R.Rig({"IP_FORWARD": True})
    # the forwarding hook refuses datagrams whose identification's low byte is below mark
    rig.stack.filter = lambda i, o, b, off, n: b[off + 5] >= mark
    for f in frames:
        f = bytearray(f)
        if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[14 + 16:14 + 19] == F.STACK_IP[:3]:
            f[14 + 19] = 77  # to a neighbour on the link: forwarded back out
            R.fix_checksums(f)
        rig.feed(f)
    _finish(rig)


@settings(max_examples=examples(100))
@given(st.lists(st.sampled_from(VALID), max_size=30), st.booleans())
def test_valid_frames_in_any_order_are_counted(frames, read):
    rig = R.Rig()
    rig.feed_many(frames)
    if read:
        rig.read_all()
    _finish(rig)


def test_accounting_names_the_unbalanced_counter():
    rig = R.Rig()
    rig.feed(VALID[2])
    assert rig.accounting() == []
    rig.stack.ifaces[0].stats.rx_packets += 1  # a frame that went nowhere
    assert rig.accounting() == ["iface rx_packets: %d != %d" % (
        rig.stack.ifaces[0].stats.rx_packets, rig.stack.ifaces[0].stats.rx_packets - 1)]
