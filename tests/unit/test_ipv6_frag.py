"""IPv6 fragmentation and reassembly (RFC 8200 4.5) between two stacks on the in-memory wire:
fragments crafted here reach stack B as if A had sent them; B's answers go back to A."""
import struct

from ustack.core import socket as so
from ustack.core import addr6
from tests.twostack import MAC_A, MAC_B
from tests.unit_ref import csum
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB, ping6

SRC = addr6.pton(GA)
DST = addr6.pton(GB)


def udp6(data, sport=40000, dport=7):
    ln = 8 + len(data)
    h = struct.pack("!HHHH", sport, dport, ln, 0) + data
    c = ~csum(SRC + DST + struct.pack("!IBBBB", ln, 0, 0, 0, 17) + h) & 0xFFFF
    return h[:6] + struct.pack("!H", c or 0xFFFF) + h[8:]


def frag(payload, off, more, ident=0x12345678, nh=17, plen=None, ecn=0):
    """One IPv6 fragment of `payload` (the fragmentable part) as an Ethernet frame A->B."""
    fh = struct.pack("!BBHI", nh, 0, off | (1 if more else 0), ident)
    body = fh + payload
    pl = len(body) if plen is None else plen
    ip = struct.pack("!IHBB", 0x60000000 | (ecn << 20), pl, 44, 64) + SRC + DST
    return MAC_B + MAC_A + b"\x86\xdd" + ip + body


def split(dgram, size):
    """dgram's fragments, size bytes each (a multiple of 8), in order."""
    out = []
    pos = 0
    while pos < len(dgram):
        part = dgram[pos:pos + size]
        out.append((pos, part, pos + size < len(dgram)))
        pos += size
    return out


def inject(bench, frames):
    for f in frames:
        bench.wire.carry(bench.ia.driver, f)
        bench.advance(1)
    bench.run(20)


def echo_socket(bench):
    s = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    s.bind(("::", 7))
    s.setblocking(False)
    return s


def received(s):
    try:
        return s.recvfrom(10000)[0]
    except OSError:
        return None


DATA = bytes(range(256)) * 12   # 3072 bytes


def test_fragments_in_order_are_reassembled_and_delivered_to_udp():
    bench = Bench6()
    s = echo_socket(bench)
    inject(bench, [frag(p, o, m) for o, p, m in split(udp6(DATA), 1232)])
    assert received(s) == DATA
    st = bench.b.ipv6.reass.stats
    assert st.fragments == 3 and st.reassembled == 1
    assert bench.b.ipv6.stats.rx_reassembled == 1
    s.close()
    bench.run(10)
    assert bench.b.pool.full()
    assert not any(x.in_use or x.busy for x in bench.b.ipv6.reass.slots)


def test_fragments_in_reverse_order_are_reassembled():
    bench = Bench6()
    s = echo_socket(bench)
    parts = split(udp6(DATA), 1024)
    parts.reverse()
    inject(bench, [frag(p, o, m) for o, p, m in parts])
    assert received(s) == DATA


def test_an_overlapping_fragment_drops_the_whole_datagram_silently():
    bench = Bench6()
    s = echo_socket(bench)
    d = udp6(DATA)
    errors = bench.a.icmp6.stats.rx_errors
    # RFC 5722: the second fragment starts 8 bytes inside the first
    inject(bench, [frag(d[0:1024], 0, True), frag(d[1016:2048], 1016, True),
                   frag(d[1024:2048], 1024, True), frag(d[2048:], 2048, False)])
    assert received(s) is None
    st = bench.b.ipv6.reass.stats
    assert st.overlap == 1
    assert st.dead_fragments == 2       # the rest of that datagram is dropped too
    assert st.reassembled == 0
    assert bench.a.icmp6.stats.rx_errors == errors   # silently
    # the dead datagram expires without a Time Exceeded (RFC 5722: silently)
    bench.run(61000, step=500)
    assert st.timeouts == 1 and st.time_exceeded_sent == 0


def test_an_exact_duplicate_fragment_is_dropped_alone():
    bench = Bench6()
    s = echo_socket(bench)
    parts = [frag(p, o, m) for o, p, m in split(udp6(DATA), 1024)]
    inject(bench, [parts[0], parts[0]] + parts[1:])
    assert received(s) == DATA
    assert bench.b.ipv6.reass.stats.duplicate == 1


def test_incomplete_datagram_times_out_after_60_s_with_time_exceeded_code_1():
    bench = Bench6()
    s = echo_socket(bench)
    parts = [frag(p, o, m) for o, p, m in split(udp6(DATA), 1024)]
    inject(bench, parts[:2])
    before = bench.a.icmp6.stats.rx_errors
    bench.run(59000, step=500)
    assert bench.b.ipv6.reass.stats.timeouts == 0
    bench.run(2000, step=10)
    st = bench.b.ipv6.reass.stats
    assert st.timeouts == 1 and st.time_exceeded_sent == 1
    assert bench.a.icmp6.stats.rx_errors == before + 1   # RFC 8200 4.5: type 3 code 1
    assert received(s) is None
    assert bench.b.pool.full()


def test_no_time_exceeded_when_the_first_fragment_never_came():
    bench = Bench6()
    parts = [frag(p, o, m) for o, p, m in split(udp6(DATA), 1024)]
    inject(bench, parts[1:])
    bench.run(61000, step=500)
    st = bench.b.ipv6.reass.stats
    assert st.timeouts == 1 and st.time_exceeded_sent == 0


def test_more_datagrams_than_slots_evict_the_oldest():
    bench = Bench6()
    s = echo_socket(bench)
    # REASS6_SLOTS (2) first fragments of different datagrams, then a third
    inject(bench, [frag(udp6(DATA)[0:1024], 0, True, ident=1)])
    bench.run(100)
    inject(bench, [frag(udp6(DATA)[0:1024], 0, True, ident=2)])
    bench.run(100)
    parts = [frag(p, o, m, ident=3) for o, p, m in split(udp6(DATA), 1024)]
    inject(bench, parts)
    st = bench.b.ipv6.reass.stats
    assert st.evicted == 1
    assert received(s) == DATA     # the new datagram got the oldest one's slot
    assert len(bench.b.ipv6.reass.slots) == 2


def test_an_atomic_fragment_is_processed_as_an_unfragmented_datagram():
    bench = Bench6()
    s = echo_socket(bench)
    inject(bench, [frag(udp6(b"atomic"), 0, False)])   # RFC 6946: offset 0, M 0
    assert received(s) == b"atomic"
    assert bench.b.ipv6.reass.stats.fragments == 0
    assert bench.b.ipv6.reass.slots == []      # no reassembly buffers were made for it


def test_a_first_fragment_without_the_upper_layer_header_is_dropped_with_param_problem():
    bench = Bench6()
    d = udp6(DATA)
    before = bench.a.icmp6.stats.rx_errors
    # RFC 7112: 40 + 8 bytes of a Destination Options header, nothing of UDP
    dopt = struct.pack("!BB6s", 17, 0, b"\x01\x04\x00\x00\x00\x00")
    inject(bench, [frag(dopt, 0, True, nh=60), frag(d[0:1000], 8, False, nh=60)])
    assert bench.b.ipv6.stats.rx_frag_incomplete_chain == 1
    assert bench.a.icmp6.stats.rx_errors == before + 1   # Parameter Problem code 3
    assert bench.b.ipv6.reass.stats.reassembled == 0


def test_a_non_last_fragment_not_a_multiple_of_8_gets_param_problem_code_0():
    bench = Bench6()
    before = bench.a.icmp6.stats.rx_errors
    inject(bench, [frag(udp6(DATA)[0:1001], 0, True)])
    assert bench.b.ipv6.stats.rx_frag_bad_length == 1
    assert bench.a.icmp6.stats.rx_errors == before + 1


def test_a_fragment_reaching_beyond_65535_bytes_is_dropped_with_param_problem():
    bench = Bench6()
    before = bench.a.icmp6.stats.rx_errors
    inject(bench, [frag(b"x" * 64, 65528, False)])
    assert bench.b.ipv6.stats.rx_frag_too_big == 1
    assert bench.a.icmp6.stats.rx_errors == before + 1


def test_udp6_datagram_bigger_than_the_mtu_leaves_in_fragments_and_comes_back_whole():
    bench = Bench6()
    srv = echo_socket(bench)
    cli = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    cli.setblocking(False)
    frames = []
    bench.a.capture = lambda iface, buf, n, out: out and frames.append(bytes(buf[:n]))
    cli.sendto(DATA, (GB, 7))
    bench.run(50)
    assert received(srv) == DATA
    fr = [f for f in frames if f[12:14] == b"\x86\xdd" and f[20] == 44]
    assert len(fr) == 3
    # each fragment within the 1500-byte MTU, its data a multiple of 8 but the last's
    assert all(len(f) - 14 <= 1500 for f in fr)
    assert all((len(f) - 14 - 48) % 8 == 0 for f in fr[:-1])
    # one Identification for the datagram, the fragment offsets in order, M on all but last
    ids = set(f[14 + 44:14 + 48] for f in fr)
    assert len(ids) == 1
    # (the first ones waited for neighbour resolution: sent in any order)
    offs = sorted(struct.unpack("!H", f[14 + 42:14 + 44])[0] for f in fr)
    assert [o & 1 for o in offs] == [1, 1, 0]
    assert offs[0] & 0xFFF8 == 0
    assert bench.a.ipv6.stats.tx_fragmented == 1 and bench.a.ipv6.stats.tx_fragments == 3
    cli.sendto(DATA, (GB, 7))
    bench.run(50)
    assert received(srv) == DATA
    fr2 = [f for f in frames if f[12:14] == b"\x86\xdd" and f[20] == 44][3:]
    # RFC 7739: the next datagram's Identification is not the first one's plus one
    a = struct.unpack("!I", fr[0][14 + 44:14 + 48])[0]
    b = struct.unpack("!I", fr2[0][14 + 44:14 + 48])[0]
    assert b != a and b != (a + 1) & 0xFFFFFFFF
    cli.close()
    srv.close()
    bench.run(10)
    assert bench.a.pool.full() and bench.b.pool.full()


def test_large_ping6_is_answered_with_a_fragmented_reply():
    bench = Bench6()
    from ustack.core.wire import icmp6 as wi
    v6 = bench.a.ipv6
    n = 4000
    pb = v6.alloc_big(n)
    b = pb.buf
    o = pb.off
    b[o] = wi.ECHO_REQUEST
    b[o + 1] = 0
    b[o + 4] = 0
    b[o + 5] = 9
    b[o + 6] = 0
    b[o + 7] = 1
    i = 8
    while i < n:
        b[o + i] = i & 0xFF
        i += 1
    pb.n = n
    assert v6.output(pb, 58, None, DST, 2) == 0
    assert bench.until(lambda: bench.a.icmp6.stats.rx_echo_reply == 1, 2000)
    assert bench.b.ipv6.stats.tx_fragmented == 1
    assert bench.a.ipv6.reass.stats.reassembled == 1
    assert ping6(bench, bench.a, GB)     # and small ones still work


def test_the_unfragmentable_headers_count_towards_the_65535_byte_limit():
    bench = Bench6()
    before = bench.a.icmp6.stats.rx_errors
    # RFC 8200 4.5: 8 bytes of Hop-by-Hop options + offset 65520 + 8 bytes = 65536
    hbh = struct.pack("!BB6s", 44, 0, b"\x01\x04\x00\x00\x00\x00")
    fh = struct.pack("!BBHI", 17, 0, 65520, 99)
    body = hbh + fh + b"y" * 8
    ip = struct.pack("!IHBB", 0x60000000, len(body), 0, 64) + SRC + DST
    inject(bench, [MAC_B + MAC_A + b"\x86\xdd" + ip + body])
    assert bench.b.ipv6.stats.rx_frag_too_big == 1
    assert bench.a.icmp6.stats.rx_errors == before + 1   # Parameter Problem at the offset


def test_fragments_mixing_not_ect_with_ect_drop_the_datagram_and_ce_survives():
    bench = Bench6()
    s = echo_socket(bench)
    parts = split(udp6(DATA), 1024)
    # RFC 3168 5.3: Not-ECT beside ECT(0) MUST be dropped
    inject(bench, [frag(p, o, m, ident=5, ecn=0 if o else 2) for o, p, m in parts])
    assert received(s) is None
    assert bench.b.ipv6.reass.stats.ecn_mixed == 1
    # ... and a CE mark on any fragment marks the datagram CE
    seen = []
    bench.b.udp.input = _spy(bench.b.udp.input, seen)
    inject(bench, [frag(p, o, m, ident=6, ecn=3 if o == 1024 else 2) for o, p, m in parts])
    assert received(s) == DATA
    assert seen == [3]


def _spy(f, seen):
    def input(pb, m):
        seen.append(m.ecn)
        f(pb, m)
    return input
