"""Every parser in core/, as properties over arbitrary and structured input: TCP options
(against an independent reference parser), IPv4 reassembly (any fragmentation, in any order,
with duplicates, gives back the datagram exactly once), ARP input (never learns what RFC 826
and RFC 5227 forbid), ICMP echo, UDP delivery, the IPv4 and Ethernet input checks, the
checksum and the wire writers (what they write parses back)."""
import struct

from hypothesis import assume, given, settings, strategies as st

from ustack.core import socket as so
from ustack.core.checksum import csum
from ustack.core.tcp import options
from ustack.core.wire import fields, ipv4 as wip, tcp as wtcp
from tests import frames as F
from tests import rig as R
from tests.property.budget import examples
from tests.feed import Fed
from tests.unit_ref import csum as ref_csum


class OptStats:
    def __init__(self):
        self.rx_bad_opts = self.rx_dup_opts = 0


class Scratch:
    """What options.parse writes: the TCP object's scratch fields, and its counters."""

    def __init__(self):
        self.opt_seen = self.opt_mss = self.opt_ws = self.opt_ts_off = 0
        self.opt_sack_blocks = self.opt_sack_off = 0
        self.stats = OptStats()


def ref_options(b):
    """RFC 9293 3.1 option list, read independently: (ok, found, bad, dup) with found
    mapping 'mss'/'ws'/'sackok'/'ts'/'sack' to values. The first occurrence of a kind wins
    (a repeat is counted in dup, as Linux ignores it too); a known kind with the wrong length
    is ignored and counted in bad."""
    found = {}
    bad = [0, 0]
    i = 0
    while i < len(b):
        k = b[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(b) or b[i + 1] < 2 or i + b[i + 1] > len(b):
            return False, found, bad[0], bad[1]
        ln = b[i + 1]
        v = b[i + 2:i + ln]
        name = {2: "mss", 3: "ws", 4: "sackok", 8: "ts", 5: "sack"}.get(k)
        good = {2: ln == 4, 3: ln == 3, 4: ln == 2, 8: ln == 10,
                5: ln >= 10 and (ln - 2) % 8 == 0}.get(k)
        if name is not None and not good:
            bad[0] += 1
        elif name in found:
            bad[1] += 1
        elif name == "mss":
            found["mss"] = struct.unpack("!H", v)[0]
        elif name == "ws":
            found["ws"] = v[0]
        elif name == "sackok":
            found["sackok"] = True
        elif name is not None:
            found[name] = bytes(v)
        i += ln
    return True, found, bad[0], bad[1]


def parsed(b, pad_before, pad_after):
    """Parse option bytes b placed between padding; the found values as ref_options."""
    buf = bytearray(pad_before) + bytearray(b) + bytearray(pad_after)
    o = len(pad_before)
    t = Scratch()
    ok = options.parse(t, buf, o, len(b))
    found = {}
    if t.opt_seen & options.SEEN_MSS:
        found["mss"] = t.opt_mss
    if t.opt_seen & options.SEEN_WS:
        found["ws"] = t.opt_ws
    if t.opt_seen & options.SEEN_SACK_PERM:
        found["sackok"] = True
    if t.opt_seen & options.SEEN_TS:
        assert o <= t.opt_ts_off and t.opt_ts_off + 8 <= o + len(b), "TS beyond the options"
        found["ts"] = bytes(buf[t.opt_ts_off:t.opt_ts_off + 8])
    if t.opt_seen & options.SEEN_SACK:
        n = t.opt_sack_blocks
        assert 1 <= n and o <= t.opt_sack_off and t.opt_sack_off + 8 * n <= o + len(b)
        found["sack"] = bytes(buf[t.opt_sack_off:t.opt_sack_off + 8 * n])
    return ok, found, t.stats.rx_bad_opts, t.stats.rx_dup_opts


OPTION = st.one_of(
    st.just(b"\x01"), st.just(b"\x00"),
    st.binary(min_size=2, max_size=2).map(lambda v: b"\x02\x04" + v),
    st.integers(0, 255).map(lambda s: bytes([3, 3, s])),
    st.just(b"\x04\x02"),
    st.binary(min_size=8, max_size=8).map(lambda v: b"\x08\x0a" + v),
    st.integers(1, 4).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n).map(
        lambda v: bytes([5, 2 + len(v)]) + v)),
    st.tuples(st.integers(0, 255), st.integers(0, 255)).map(bytes),  # kind, length: anything
    st.binary(max_size=6))


@settings(max_examples=examples(500))
@given(st.lists(OPTION, max_size=10).map(b"".join).map(lambda b: b[:40]),
       st.binary(max_size=8), st.binary(max_size=8))
def test_tcp_options_parse_like_the_reference_and_never_beyond_their_bytes(b, before, after):
    got = parsed(b, before, after)
    assert got == ref_options(b)
    # the bytes around the options never change the result
    assert parsed(b, b"\xff" * len(before), b"\x02\x04\x08\x0a" * 3) == got


@given(st.integers(0, 0xFFFF), st.integers(-1, 14), st.booleans(), st.booleans())
def test_our_syn_options_parse_back(mss, ws, sack, ts):
    b = bytearray(40)
    n = options.write_syn(b, 0, mss, ws, sack, ts)
    assert n % 4 == 0 and n <= 40
    ok, found, bad, dup = ref_options(bytes(b[:n]))
    assert ok and bad == 0 and dup == 0 and found.get("mss") == mss and found.get("ws", -1) == ws
    assert found.get("sackok", False) == sack and ("ts" in found) == ts
    if ts:
        assert b[options.SYN_TS_OFF - 2] == 8  # the caller fills TSval at SYN_TS_OFF


# ---- checksum and writers ---------------------------------------------------------------------
@given(st.binary(max_size=300), st.integers(0, 20), st.integers(0, 0xFFFF))
def test_checksum_matches_reference_at_any_offset(data, off, acc):
    buf = bytearray(off) + bytearray(data)
    s = csum(buf, off, len(data), acc)
    r = ref_csum(data) + acc
    while r >> 16:
        r = (r & 0xFFFF) + (r >> 16)
    assert s % 0xFFFF == r % 0xFFFF  # 0x0000 and 0xFFFF are the same one's complement zero


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 11))
def test_fields_round_trip(v16, v32, o):
    b = bytearray(16)
    fields.put16(b, o, v16)
    assert fields.get16(b, o) == v16
    fields.put32(b, o, v32)
    assert fields.get32(b, o) == v32


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFF), st.integers(0, 0xFFFF))
def test_tcp_header_relative_writer_equals_absolute(iss, seq, irs, ack, flags, win):
    a = bytearray(20)
    b = bytearray(20)
    wtcp.write_header(a, 0, 80, 40000, (iss + seq) & 0xFFFFFFFF, (irs + ack) & 0xFFFFFFFF, 20,
                      flags, win)
    wtcp.write_header_rel(b, 0, 80, 40000, seq, iss >> 16, iss & 0xFFFF, ack, irs >> 16,
                          irs & 0xFFFF, 20, flags, win)
    assert a == b


@given(st.integers(20, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=4),
       st.binary(min_size=4, max_size=4))
def test_ipv4_header_writer_parses_back_with_a_valid_checksum(tot, ident, frag, ttl, proto,
                                                              src, dst):
    b = bytearray(20)
    wip.write_header(b, 0, tot, ident, frag, ttl, proto, src, dst)
    assert ref_csum(b) == 0xFFFF
    assert struct.unpack("!BBHHHBBH4s4s", b) == (0x45, 0, tot, ident, frag, ttl, proto,
                                                 struct.unpack("!H", b[10:12])[0], src, dst)


# ---- Ethernet and IPv4 input --------------------------------------------------------------------
@given(st.binary(min_size=6, max_size=6).filter(lambda m: not m[0] & 1 and m != F.STACK_MAC),
       st.binary(max_size=100))
def test_unicast_for_another_mac_is_dropped_whatever_it_holds(dst, rest):
    fed = Fed()
    assert fed.feed(dst + rest) == [] or len(dst + rest) < 14
    c = fed.counters()
    assert c.get("eth0.rx_not_for_us", 0) + c.get("eth0.rx_too_short", 0) == 1
    assert fed.stack.pool.full()


@given(st.binary(min_size=20, max_size=60), st.integers(0, 19))
def test_ip_header_with_a_wrong_checksum_is_never_delivered(hdr, k):
    h = bytearray(F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(1, 1, b"x")))
    h[k] = hdr[k]
    assume(ref_csum(h[:(h[0] & 15) * 4 if 20 <= (h[0] & 15) * 4 <= len(h) else 20]) != 0xFFFF)
    fed = Fed()
    assert fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, h)) == []
    assert fed.stack.ipv4.stats.rx_delivered == 0 and fed.stack.pool.full()


# ---- ICMP and UDP -------------------------------------------------------------------------------
@settings(max_examples=examples(60))
@given(st.binary(max_size=1400), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_every_echo_request_gets_its_payload_back(data, ident, seq):
    fed = Fed()
    out = fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                         F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(ident, seq, data))))
    assert len(out) == 1
    ip = out[0][14:]
    tot = struct.unpack("!H", ip[2:4])[0]
    assert ref_csum(ip[:20]) == 0xFFFF and ip[12:16] == F.STACK_IP and ip[16:20] == F.HOST_IP
    icmp = ip[20:tot]
    assert ref_csum(icmp) == 0xFFFF
    assert icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq) and icmp[8:] == data
    assert fed.stack.pool.full()


@settings(max_examples=examples(60))
@given(st.binary(max_size=1472), st.integers(1, 0xFFFF), st.booleans())
def test_every_udp_datagram_arrives_whole_with_its_source(data, sport, zero_csum):
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 7))
    s.setblocking(False)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 17, F.udp(
        F.HOST_IP, F.STACK_IP, sport, 7, data, zero_csum=zero_csum))))
    assert s.recvfrom(2000) == (data, ("192.0.2.1", sport))
    s.close()
    assert fed.stack.pool.full()


# ---- reassembly --------------------------------------------------------------------------------
@st.composite
def fragmented(draw):
    """A UDP datagram to port 7 and its fragments: boundaries on 8-byte multiples, in any
    order, some sent twice, some overlapping (with the same bytes)."""
    data = draw(st.binary(min_size=1, max_size=6000))
    dgram = F.udp(F.HOST_IP, F.STACK_IP, 5555, 7, data)
    cuts = sorted(set(draw(st.lists(st.integers(1, (len(dgram) - 1) // 8), min_size=1,
                                    max_size=12))))
    edges = [0] + [c * 8 for c in cuts if c * 8 < len(dgram)] + [len(dgram)]
    pieces = [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    extra = draw(st.lists(st.sampled_from(pieces), max_size=3))  # duplicates
    if len(pieces) > 1 and draw(st.booleans()):
        a, b = pieces[0][0], pieces[1][1]
        extra.append((a, b))  # an overlap spanning two fragments
    order = draw(st.permutations(pieces + extra))
    frames = []
    for lo, hi in order:
        mf = 0x2000 if hi < len(dgram) else 0
        frames.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
            F.HOST_IP, F.STACK_IP, 17, dgram[lo:hi], ident=0x4242, frag=mf | (lo >> 3))))
    return data, frames


@settings(max_examples=examples(150))
@given(fragmented())
def test_any_fragmentation_in_any_order_reassembles_to_the_datagram(case):
    data, frames = case
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 7))
    s.setblocking(False)
    for f in frames:
        fed.feed(f)
    got = []
    while s.qlen:
        got.append(s.recv(9000))
    # duplicates arriving after completion start a new datagram, which may complete again
    assert got and all(g == data for g in got)
    s.close()
    fed.advance(fed.stack.config["REASS_TIMEOUT_MS"] + 1)
    assert fed.stack.pool.full()
    assert not any(sl.busy or sl.in_use for sl in fed.stack.ipv4.reass.slots)


@settings(max_examples=examples(200))
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 0x1FFF), st.booleans(),
                          st.integers(0, 1500), st.sampled_from([1, 17, 6, R.RAW_PROTO])),
                max_size=20))
def test_arbitrary_fragments_never_raise_and_every_slot_comes_back(frags):
    rig = R.Rig()
    for ident, fo, mf, n, proto in frags:
        rig.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(
            F.HOST_IP, F.STACK_IP, proto, bytes(n), ident=ident,
            frag=(0x2000 if mf else 0) | fo)))
    assert not rig.accounting()
    rig.close()
    assert rig.stack.pool.full()
    assert not any(sl.busy or sl.in_use for sl in rig.stack.ipv4.reass.slots)


# ---- ARP ---------------------------------------------------------------------------------------
@settings(max_examples=examples(200))
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 0]),
                          st.binary(min_size=6, max_size=6),
                          st.sampled_from([F.HOST_IP, F.STACK_IP, bytes(4), b"\xff" * 4,
                                           bytes([192, 0, 2, 9])]) | st.binary(min_size=4,
                                                                               max_size=4),
                          st.sampled_from([F.STACK_IP, bytes([192, 0, 2, 9])]),
                          st.booleans()), min_size=1, max_size=12))
def test_arp_never_learns_a_group_mac_or_our_address_and_answers_only_requests_for_us(pkts):
    fed = Fed()
    arp = fed.iface.arp
    defended = False
    for op, sha, spa, tpa, bcast in pkts:
        out = fed.feed(F.eth(b"\xff" * 6 if bcast else F.STACK_MAC, sha, 0x0806,
                             F.arp(op, sha, spa, bytes(6), tpa)))
        replies = [f for f in out if f[12:14] == b"\x08\x06"]
        # a sender no host can be: broadcast (limited or our subnet's), multicast, loopback
        bogus = spa[0] >= 224 or spa[0] == 127 or spa == bytes([192, 0, 2, 255])
        # (the frame's Ethernet source is sha: a group address is dropped before ARP sees it)
        if op in (1, 2) and spa == F.STACK_IP and sha != F.STACK_MAC and not sha[0] & 1:
            # RFC 5227 2.4 (b): a claim on our address is answered by one broadcast
            # announcement per DEFEND_INTERVAL (the clock stands still here: the first only)
            if defended:
                assert replies == []
            else:
                assert len(replies) == 1
                r = replies[0]
                assert r[0:6] == b"\xff" * 6 and r[14 + 6:14 + 8] == b"\x00\x01"
                assert r[14 + 8:14 + 14] == F.STACK_MAC and r[14 + 14:14 + 18] == F.STACK_IP
                assert r[14 + 24:14 + 28] == F.STACK_IP
                defended = True
        elif op == 1 and tpa == F.STACK_IP and not sha[0] & 1 and spa != F.STACK_IP and \
                not bogus:
            assert len(replies) == 1
            r = replies[0]
            assert r[0:6] == sha and r[14 + 6:14 + 8] == b"\x00\x02"
            assert r[14 + 8:14 + 14] == F.STACK_MAC and r[14 + 14:14 + 18] == F.STACK_IP
            assert r[14 + 18:14 + 24] == sha and r[14 + 24:14 + 28] == spa
        else:
            assert replies == []
        for ip, mac, state in arp.entries():
            assert not mac[0] & 1, "learned a group MAC"
            assert ip != F.STACK_IP, "learned our own address"
    assert arp.lookup(F.HOST_IP) == F.HOST_MAC  # the static entry never changes
    assert fed.stack.pool.full()
