"""The DNS resolver's answer parser against hostile bytes (hypothesis; CPython only).

- Arbitrary bytes, and valid answers with bytes flipped, cut short or lengthened, never
  raise: each is an outcome or a counted drop.
- Whatever name a message holds, reading it never yields more than 255 octets and never
  loops (compression pointers only lead backwards).
- Any answer the parser takes as R_OK gives addresses of the asked length, at most
  DNS_CACHE_ADDRS of them."""
from hypothesis import HealthCheck, given, settings, strategies as st

from ustack.core import dns
from ustack.core.stack import Stack
from ustack.core.wire import dns as w
from tests.unit.test_dns import reply, rr, wire_name, ADDR1

SETTINGS = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
OUTCOMES = (-1, dns.R_OK, dns.R_NXDOMAIN, dns.R_NODATA, dns.R_CHASE, dns.R_TRUNC,
            dns.R_FAIL, dns.R_BROKEN)
QID = 0x1234


def resolver(qtype=w.TYPE_A):
    r = Stack().dns
    r._alloc()
    w.encode_name(r.qname, 0, "www.example.com")
    r.ttl = 0x7FFFFFFF
    return r


def query(qtype=w.TYPE_A):
    q = bytearray(300)
    n = w.build_query(q, 0, QID, wire_name("www.example.com"), 17, qtype)
    return bytes(q[:n])


def parse(r, msg, qtype=w.TYPE_A):
    msg = msg[:len(r.rbuf)]
    r.rbuf[0:len(msg)] = msg
    out = r._parse(len(msg), QID, qtype, True)
    assert out in OUTCOMES
    if out == dns.R_OK:
        k = 4 if qtype == w.TYPE_A else 16
        assert 1 <= r.nfound <= r.stack.config["DNS_CACHE_ADDRS"]
        assert all(len(a) == k for a in r._result(qtype))
    return out


def good():
    """www.example.com CNAME web.example.com (compressed: 'web' + a pointer to the
    question's 'example.com' at offset 16), and web's address."""
    return reply(query(), [rr(b"\xc0\x0c", w.TYPE_CNAME, 60, b"\x03web\xc0\x10"),
                           rr("web.example.com", w.TYPE_A, 60, ADDR1)])


def test_the_unmutated_answer_is_taken():
    r = resolver()
    assert parse(r, good()) == dns.R_OK and r._result(w.TYPE_A) == [ADDR1]


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    parse(resolver(), data)


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_behind_our_header_and_question_never_raise(tail):
    head = reply(query(), [])
    parse(resolver(), head[:6] + tail[:2] + head[8:] + tail[2:])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
       st.integers(0, 250))
def test_mutated_answers_never_raise(flips, cut):
    m = bytearray(good())
    for pos, val in flips:
        if pos < len(m):
            m[pos] = val
    parse(resolver(), bytes(m[:len(m) - cut if cut < len(m) else 0]))


@SETTINGS
@given(st.binary(min_size=1, max_size=300), st.integers(0, 299))
def test_reading_any_name_ends_within_255_octets(data, start):
    out = bytearray(w.MAX_NAME)
    n = w.read_name(data, start % len(data), len(data), out)
    assert n == -1 or 1 <= n <= w.MAX_NAME
    assert w.skip_name(data, start % len(data), len(data)) <= len(data)
