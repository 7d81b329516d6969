"""IPv6 pieces against independent oracles (CPython only):

- core/addr6 text forms against the C library's inet_pton/inet_ntop (socket module) on
  random addresses (zero runs and v4-mapped/compatible ones favoured) and random strings
  built from address characters: same bytes, same text, same accept/reject;
- the ICMPv6/UDP checksum over the RFC 8200 8.1 pseudo-header against a plain reference
  sum written here from the RFC (struct, no core code);
- the extension-header walk never raises and never points outside the packet, whatever
  the bytes."""
import socket
import struct

from hypothesis import given, settings, strategies as st

from ustack.core import addr6
from ustack.core.checksum import csum
from ustack.core.wire import ipv6 as ip6
from tests.property.budget import examples

WORD = st.one_of(st.just(0), st.just(0), st.just(0xFFFF), st.integers(0, 0xFFFF))


@st.composite
def addresses(draw):
    kind = draw(st.integers(0, 3))
    words = [draw(WORD) for _ in range(8)]
    if kind == 1:
        words[:5] = [0] * 5
        words[5] = draw(st.sampled_from([0, 0xFFFF]))
    elif kind == 2:
        a = draw(st.integers(0, 7))
        b = draw(st.integers(a, 8))
        for i in range(a, b):
            words[i] = 0
    return struct.pack("!8H", *words)


@settings(max_examples=examples(1000))
@given(addresses())
def test_ntop_and_pton_agree_with_the_c_library(b):
    text = socket.inet_ntop(socket.AF_INET6, b)
    assert addr6.ntop(b) == text
    assert addr6.pton(text) == b
    assert addr6.pton(text.upper()) == b


TEXT = st.text(alphabet="0123456789abcdefABCDEF:.g ", max_size=45)


@settings(max_examples=examples(1500))
@given(TEXT)
def test_pton_accepts_and_rejects_what_the_c_library_does(s):
    try:
        want = socket.inet_pton(socket.AF_INET6, s)
    except OSError:
        want = None
    try:
        got = addr6.pton(s)
    except OSError:
        got = None
    assert got == want, s


@st.composite
def pton_shaped(draw):
    """Strings shaped like addresses (groups, '::', a dotted tail) so most parse."""
    n = draw(st.integers(1, 9))
    groups = [draw(st.sampled_from(["0", "1", "ffff", "00a", "12345", "", "g"]))
              for _ in range(n)]
    s = ":".join(groups)
    if draw(st.booleans()):
        s += draw(st.sampled_from([":1.2.3.4", "::", "::1", ":256.0.0.1", ".1"]))
    return s


@settings(max_examples=examples(1000))
@given(pton_shaped())
def test_address_shaped_text_accepted_exactly_as_by_the_c_library(s):
    test_pton_accepts_and_rejects_what_the_c_library_does.hypothesis.inner_test(s)


def reference_checksum(src, dst, nh, payload):
    """RFC 8200 8.1 / RFC 1071, written out: 16-bit one's complement sum of the
    pseudo-header (src, dst, 32-bit length, 3 zero bytes, next header) and the payload."""
    data = src + dst + struct.pack("!I3xB", len(payload), nh) + payload
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@settings(max_examples=examples(500))
@given(addresses(), addresses(), st.sampled_from([6, 17, 58]), st.binary(max_size=1500))
def test_pseudo_header_checksum_agrees_with_the_reference(src, dst, nh, payload):
    b = bytearray(40 + len(payload))
    ip6.write_header(b, 0, 0, 0, len(payload), nh, 64, src, dst)
    b[40:] = payload
    got = ~csum(b, 40, len(payload), ip6.pseudo_sum(b, 0, nh, len(payload))) & 0xFFFF
    assert got == reference_checksum(src, dst, nh, payload)


@settings(max_examples=examples(700))
@given(st.binary(min_size=40, max_size=300), st.booleans())
def test_walk_never_raises_and_stays_inside_the_packet(body, mcast):
    b = bytearray(body)
    b[0] = 0x60 | (b[0] & 0x0F)
    n = len(b)
    res = ip6.new_result()
    why = ip6.walk(b, 0, n, mcast, res)
    if why is None:
        assert 40 <= res[ip6.R_OFF] <= n
    else:
        assert why in ip6.WALK_DROPS
        if res[ip6.R_PP_CODE] >= 0:
            assert 0 <= res[ip6.R_PP_PTR] < n


@settings(max_examples=examples(500))
@given(addresses(), addresses(), st.one_of(st.none(), addresses()), st.binary(max_size=200))
def test_echo_reply_in_place_keeps_a_valid_checksum(src, dst, mine, data):
    from ustack.core.wire import icmp6
    n = 8 + len(data)
    b = bytearray(40 + n)
    ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 64, src, dst)
    b[40] = icmp6.ECHO_REQUEST
    b[44:48] = b"\x12\x34\x00\x01"
    b[48:] = data
    icmp6.fill_checksum(b, 0, 40, n)
    icmp6.echo_reply_in_place(b, 0, 40, mine, 0, 64)
    want = reference_checksum(bytes(b[8:24]), bytes(b[24:40]), 58,
                              bytes(b[40:42]) + b"\0\0" + bytes(b[44:]))
    assert (b[42] << 8) | b[43] == want or (want == 0xFFFF and (b[42] << 8) | b[43] == 0) \
        or (want == 0 and (b[42] << 8) | b[43] == 0xFFFF)
