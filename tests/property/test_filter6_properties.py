"""The packet filter on IPv6 under mutated input: a stateful IPv6 rule set with every action
(drop, reject, rate limit, log) on a stack that receives IPv6 frames with any byte changed,
cut short or extended; no exception escapes the interface's input, and once the
reassembly timeout has passed every packet buffer is back. The forward hook (core/ipv6.py
calls it when it forwards) takes any bytes too."""
import struct

from hypothesis import given, settings, strategies as st

from ustack.core import addr6
from ustack.core import filter as pf
from tests.property.budget import examples
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB

RULES = ("input drop ct invalid", "input reject udp dport 9", "input reject tcp dport 23",
         "input drop tcp flags syn,fin/syn,fin family 6",
         "input icmpv6 type echo-request limit 5/second burst 3 accept",
         "input drop icmpv6 type 128", "input log udp dport 53 saddr 2001:db8::/64",
         "forward drop ct new", "output drop udp dport 9999",
         "input accept icmpv6 type nd-neighbor-solicit", "policy input drop",
         "input accept ct established,related", "input accept tcp dport 7")
SRC = addr6.pton(GA)
DST = addr6.pton(GB)
MAC_B = bytes.fromhex("02000000000b")
MAC_A = bytes.fromhex("02000000000a")


def _ip6(nh, body, src=SRC, dst=DST):
    return struct.pack("!IHBB", 0x60000000, len(body), nh, 64) + src + dst + body


def _valid():
    tcp = struct.pack("!HHIIBBHHH", 40000, 7, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
    udp = struct.pack("!HHHH", 40000, 9, 12, 0) + b"abcd"
    echo = struct.pack("!BBHHH", 128, 0, 0, 7, 1) + b"ABCDEFGH"
    err = struct.pack("!BBHI", 1, 4, 0, 0) + _ip6(17, struct.pack("!HHHH", 9, 40000, 8, 0),
                                                   DST, SRC)
    ns = struct.pack("!BBHI", 135, 0, 0, 0) + DST
    frag = struct.pack("!BBHI", 17, 0, 1, 99) + udp     # a first fragment (M set)
    later = struct.pack("!BBHI", 17, 0, 8, 99) + b"x" * 8
    hbh = struct.pack("!BBBBI", 17, 0, 1, 4, 0) + udp   # hop-by-hop padding, then UDP
    out = []
    for nh, body in ((6, tcp), (17, udp), (58, echo), (58, err), (58, ns), (44, frag),
                     (44, later), (0, hbh)):
        out.append(MAC_B + MAC_A + b"\x86\xdd" + _ip6(nh, body))
    return out


VALID = _valid()


@st.composite
def mutated(draw):
    f = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        k = draw(st.integers(0, 3))
        if k == 0 and len(f) > 14:
            f[draw(st.integers(14, len(f) - 1))] = draw(st.integers(0, 255))
        elif k == 1:
            del f[draw(st.integers(14, len(f))):]
        elif k == 2:
            f += draw(st.binary(max_size=64))
        else:
            o = draw(st.sampled_from([14 + 4, 14 + 6, 14 + 40, 14 + 42, 14 + 53, 14 + 54]))
            if o + 2 <= len(f):
                struct.pack_into("!H", f, o, draw(st.integers(0, 0xFFFF)))
    return bytes(f)


def _bench():
    bench = Bench6()
    bench.b.log = lambda line: None
    pf.install(bench.b, RULES)
    return bench


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=12), st.integers(0, 3000))
def test_mutated_ipv6_frames_through_a_stateful_filter_raise_nothing_and_leak_nothing(
        frames, ms):
    bench = _bench()
    b = bench.b
    for f in frames:
        pb = b.alloc()
        pb.buf[:len(f)] = f
        bench.ib.input(pb, len(f))      # no poll() guard around it: nothing may escape
        assert b.stats.exceptions == 0
        bench.advance(ms or 1)
    assert b.stats.exceptions == 0
    bench.run(61000, 500)                # past the reassembly timeout
    assert b.pool.full()


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_the_forward_hook_takes_any_ipv6_bytes(data):
    bench = _bench() if not hasattr(test_the_forward_hook_takes_any_ipv6_bytes, "b") else \
        test_the_forward_hook_takes_any_ipv6_bytes.b
    test_the_forward_hook_takes_any_ipv6_bytes.b = bench
    buf = bytearray([0x60]) + bytearray(data)
    v = bench.b.packet_filter.hook_forward(bench.ib, bench.ib, buf, 0, len(buf))
    assert v in (True, False)
