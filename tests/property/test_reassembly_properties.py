"""Reassembly against arbitrary fragment sequences (hypothesis; CPython only).

- Any split of a datagram into fragments, sent in any order with any exact duplicates, is
  delivered byte for byte (once, without duplicates; IP may duplicate datagrams otherwise).
- A forged fragment whose bytes differ from real ones already received never gets its bytes
  delivered: the datagram comes out intact or not at all.
- Arbitrary fragment headers (offsets, lengths, flags, identifications) never raise, and
  once the reassembly timer has run every slot and every packet buffer is free again."""
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def frag_frame(udp, ident, off, n, mf, data=None):
    piece = (data if data is not None else udp)[off:off + n]
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                 F.ipv4(F.HOST_IP, F.STACK_IP, 17, piece, ident=ident,
                        frag=(0x2000 if mf else 0) | (off >> 3)))


def split(total, cuts):
    """Offsets (multiples of 8) cutting [0, total) into fragments."""
    points = sorted(set(c * 8 for c in cuts if 0 < c * 8 < total))
    bounds = [0] + points + [total]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(len(bounds) - 1)]


def receiver(f):
    s = f.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 7))
    s.setblocking(False)
    return s


def drain(s):
    got = []
    while s.qlen:
        got.append(s.recv(65535))
    return got


def settle(f):
    for _ in range(40):
        f.advance(1000)
    assert not any(sl.busy for sl in f.stack.ipv4.reass.slots)
    assert f.stack.pool.full()


@SETTINGS
@given(data=st.binary(min_size=1, max_size=3000), cuts=st.lists(st.integers(1, 400), max_size=12),
       seed=st.integers(0, 2 ** 32 - 1), dups=st.integers(0, 4))
def test_any_order_and_duplicates_deliver_the_datagram_intact(data, cuts, seed, dups):
    f = Fed()
    s = receiver(f)
    udp = F.udp(F.HOST_IP, F.STACK_IP, 40000, 7, data)
    pieces = split(len(udp), cuts)
    rnd = random.Random(seed)
    frames = [frag_frame(udp, 0x4321, o, n, o + n < len(udp)) for o, n in pieces]
    frames += [rnd.choice(frames) for _ in range(dups)]
    rnd.shuffle(frames)
    got = []
    for fr in frames:
        f.feed(fr)
        got += drain(s)
    # IP may duplicate: copies of every fragment after completion make a second datagram
    assert got and all(g == data for g in got)
    if dups == 0:
        assert len(got) == 1
    s.close()
    settle(f)


@SETTINGS
@given(data=st.binary(min_size=40, max_size=2000), cuts=st.lists(st.integers(1, 250), max_size=8),
       seed=st.integers(0, 2 ** 32 - 1), a=st.integers(0, 250), ln=st.integers(1, 8),
       flip=st.integers(0, 63))
def test_a_forged_overlap_never_gets_its_bytes_delivered(data, cuts, seed, a, ln, flip):
    f = Fed()
    s = receiver(f)
    # no UDP checksum: only reassembly stands between the forged bytes and the application
    udp = F.udp(F.HOST_IP, F.STACK_IP, 40000, 7, data, zero_csum=True)
    total = len(udp)
    pieces = split(total, cuts)
    if len(pieces) == 1:
        pieces = split(total, [1])
    rnd = random.Random(seed)
    frames = [frag_frame(udp, 0x77, o, n, o + n < total) for o, n in pieces]
    off = (a * 8) % (((total - 1) // 8) * 8 or 8)
    n = min(ln * 8, total - off)
    if off == 0 and n == total:
        n = 8  # a fragment, not a whole (other) datagram
    forged = bytearray(udp)
    at = off + flip % n
    forged[at] ^= 0xFF
    # the forged fragment comes after the real one holding the byte it changes (sent first,
    # a forgery is indistinguishable from the real thing: no reassembler can catch that)
    rnd.shuffle(frames)
    real = [i for i, (o, k) in enumerate(pieces) if o <= at < o + k][0]
    pos = frames.index(frag_frame(udp, 0x77, pieces[real][0], pieces[real][1],
                                  pieces[real][0] + pieces[real][1] < total))
    frames.insert(rnd.randint(pos + 1, len(frames)),
                  frag_frame(udp, 0x77, off, n, off + n < total, data=bytes(forged)))
    got = []
    for fr in frames:
        f.feed(fr)
        got += drain(s)
    assert got in ([], [data])
    s.close()
    settle(f)


fragment = st.tuples(st.integers(0, 3),            # identification
                     st.integers(0, 0x1FFF),       # offset in 8-byte units
                     st.integers(0, 1400),         # payload length
                     st.booleans(),                # MF
                     st.sampled_from([1, 6, 17, 99]))


@SETTINGS
@given(frags=st.lists(fragment, max_size=25))
def test_arbitrary_fragments_never_raise_and_leave_nothing_held(frags):
    f = Fed({"REASS_SLOTS": 2})
    for ident, fo, n, mf, proto in frags:
        ip = F.ipv4(F.HOST_IP, F.STACK_IP, proto, bytes((fo + i) & 0xFF for i in range(n)),
                    ident=ident, frag=(0x2000 if mf else 0) | fo)
        f.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, ip))
    settle(f)
    r = f.stack.ipv4.reass.stats
    dropped = r.malformed + r.oversize + r.too_big + r.tiny + r.no_slot
    assert r.fragments >= dropped
