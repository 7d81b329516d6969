"""The DNS stub resolver (core/dns.py) against a scripted name server on a second stack.

Stack A resolves; stack B runs `Server`, which answers each query with what the test's
handler returns, over UDP and TCP, polled between the virtual clock's steps."""
import pytest

from ustack.core import socket as so
from ustack.core import dns
from ustack.core.wire import dns as w
from tests.twostack import Bench, IP_B

NOBODY = "192.0.2.99"  # no stack answers ARP for it: a server that never answers
ADDR1 = bytes([203, 0, 113, 7])
ADDR2 = bytes([203, 0, 113, 8])
ADDR6 = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1])


def wire_name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def u16(v):
    return bytes([v >> 8, v & 0xFF])


def question(q):
    """(qname wire bytes, qtype, the question's end offset) of a query."""
    o = 12
    while q[o]:
        o += 1 + q[o]
    o += 1
    return q[12:o], (q[o] << 8) | q[o + 1], o + 4


def rr(owner, rtype, ttl, rdata):
    """A resource record; owner as text, or raw wire bytes (a compression pointer)."""
    name = wire_name(owner) if isinstance(owner, str) else owner
    return name + u16(rtype) + u16(1) + bytes([ttl >> 24, (ttl >> 16) & 255, (ttl >> 8) & 255,
                                               ttl & 255]) + u16(len(rdata)) + rdata


def reply(q, answers=(), rcode=0, tc=False, qid=None):
    qid = ((q[0] << 8) | q[1]) if qid is None else qid
    _, _, end = question(q)
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    return (u16(qid) + u16(flags) + u16(1) + u16(len(answers)) + u16(0) + u16(0) + q[12:end]
            + b"".join(answers))


class Server:
    """A name server on bench.b port 53: handler(query, proto) -> reply bytes, a list of
    (reply, source port) to send from other ports too, or None to stay silent."""

    def __init__(self, bench, handler):
        self.bench = bench
        self.handler = handler
        self.queries = []   # (query bytes, source (ip, port), proto)
        b = bench.b
        self.u = b.socket(so.AF_INET, so.SOCK_DGRAM)
        self.u.bind(("", 53))
        self.u.setblocking(False)
        self.t = b.socket(so.AF_INET, so.SOCK_STREAM)
        self.t.bind(("", 53))
        self.t.listen(2)
        self.t.setblocking(False)
        self.conns = []
        bench.a.idle = self.step
        self.others = {}

    def step(self, ms=1):
        self.bench.advance(ms)
        while self.u.readable():
            q, src = self.u.recvfrom(1500)
            self.queries.append((q, src, "udp"))
            self._send(self.handler(q, "udp"), src)
        try:
            c, _ = self.t.accept()
            c.setblocking(False)
            self.conns.append([c, b""])
        except OSError:
            pass
        for e in self.conns:
            try:
                e[1] += e[0].recv(1500)
            except OSError:
                pass
            if len(e[1]) >= 2 and len(e[1]) >= 2 + ((e[1][0] << 8) | e[1][1]):
                q = e[1][2:]
                e[1] = b""
                self.queries.append((q, None, "tcp"))
                r = self.handler(q, "tcp")
                if r is not None:
                    e[0].send(u16(len(r)) + r)

    def _send(self, r, dst):
        if r is None:
            return
        if not isinstance(r, list):
            r = [(r, 53)]
        for data, port in r:
            s = self.u
            if port != 53:
                s = self.others.get(port)
                if s is None:
                    s = self.others[port] = self.bench.b.socket(so.AF_INET, so.SOCK_DGRAM)
                    s.bind(("", port))
            s.sendto(data, dst)

    def close(self):
        for e in self.conns:
            e[0].close()
        for s in [self.u, self.t] + list(self.others.values()):
            s.close()


def zone(records):
    """A handler answering from {(name, qtype): [rr, ...]}: NXDOMAIN for names not there,
    NODATA for a name there with other types only."""
    def handler(q, proto):
        qn, qt, _ = question(q)
        names = set(wire_name(k[0]) for k in records)
        ans = records.get((w.to_text(qn, len(qn)), qt))
        if ans is not None:
            return reply(q, ans)
        return reply(q, [], rcode=0 if qn in names else 3)
    return handler


@pytest.fixture
def bench():
    b = Bench({"DNS_TIMEOUT_MS": 500})
    yield b
    for s in list(b.a.sockets) + list(b.b.sockets):
        s.close()
    b.run(5000, step=50)  # ARP gives up on NOBODY, queued queries freed
    assert b.pools_full(), "packet buffers leaked"
    assert not b.a.sockets, "the resolver left a socket open"


def serve(bench, handler, servers=(IP_B,), search=None):
    srv = Server(bench, handler)
    bench.a.dns.set_servers(list(servers), search)
    return srv


def gai_code(fn):
    try:
        fn()
    except OSError as e:
        return e.args[0]
    raise AssertionError("no error raised")


WWW = {("www.example.com", w.TYPE_A): [rr("www.example.com", w.TYPE_A, 300, ADDR1),
                                       rr("www.example.com", w.TYPE_A, 300, ADDR2)],
       ("www.example.com", w.TYPE_AAAA): [rr("www.example.com", w.TYPE_AAAA, 300, ADDR6)]}


# ---- answers ---------------------------------------------------------------------------------
def test_a_query_returns_every_address_of_the_answer(bench):
    serve(bench, zone(WWW))
    assert bench.a.dns.resolve("www.example.com") == [ADDR1, ADDR2]
    assert bench.a.dns.stats.tx_udp == 1 and bench.a.dns.stats.rx_answers == 1


def test_aaaa_query_returns_sixteen_byte_addresses(bench):
    serve(bench, zone(WWW))
    assert bench.a.dns.resolve("www.example.com", dns.AF_INET6) == [ADDR6]


def test_names_compare_without_case_rfc_4343(bench):
    serve(bench, zone(WWW))
    assert bench.a.dns.resolve("WWW.Example.COM.") == [ADDR1, ADDR2]


def test_cname_chain_inside_the_answer_is_followed(bench):
    serve(bench, zone({("alias.example.com", w.TYPE_A): [
        rr("alias.example.com", w.TYPE_CNAME, 300, wire_name("mid.example.com")),
        rr("mid.example.com", w.TYPE_CNAME, 300, wire_name("www.example.com")),
        rr("www.example.com", w.TYPE_A, 300, ADDR1)]}))
    assert bench.a.dns.resolve("alias.example.com") == [ADDR1]
    assert bench.a.dns.stats.cname_followed == 2


def test_cname_to_a_name_outside_the_answer_is_asked_for_rfc_1034_5_3_3(bench):
    z = dict(WWW)
    z[("alias.example.com", w.TYPE_A)] = [
        rr("alias.example.com", w.TYPE_CNAME, 300, wire_name("www.example.com"))]
    srv = serve(bench, zone(z))
    assert bench.a.dns.resolve("alias.example.com") == [ADDR1, ADDR2]
    asked = [w.to_text(question(q)[0], 255) for q, _, _ in srv.queries]
    assert asked == ["alias.example.com", "www.example.com"]


def test_cname_loop_ends_at_the_depth_bound(bench):
    serve(bench, zone({("a.example.com", w.TYPE_A): [
        rr("a.example.com", w.TYPE_CNAME, 300, wire_name("b.example.com")),
        rr("b.example.com", w.TYPE_CNAME, 300, wire_name("a.example.com"))]}))
    assert gai_code(lambda: bench.a.dns.resolve("a.example.com")) == dns.EAI_FAIL
    assert bench.a.dns.stats.cname_too_deep >= 1


def test_compressed_answer_names_are_read(bench):
    # the answer's owner is a pointer to the question's name at offset 12
    serve(bench, lambda q, p: reply(q, [rr(b"\xc0\x0c", w.TYPE_A, 60, ADDR1)]))
    assert bench.a.dns.resolve("www.example.com") == [ADDR1]


# ---- negative answers -----------------------------------------------------------------------
def test_nxdomain_is_eai_noname(bench):
    serve(bench, zone(WWW))
    assert gai_code(lambda: bench.a.dns.resolve("nope.example.com")) == dns.EAI_NONAME
    assert bench.a.dns.stats.nxdomain == 1


def test_name_without_that_family_is_eai_nodata(bench):
    serve(bench, zone({("v4.example.com", w.TYPE_A): [rr("v4.example.com", w.TYPE_A, 60, ADDR1)]}))
    assert gai_code(lambda: bench.a.dns.resolve("v4.example.com", dns.AF_INET6)) == dns.EAI_NODATA
    assert bench.a.dns.stats.nodata == 1


def test_invalid_names_fail_without_a_query(bench):
    srv = serve(bench, zone(WWW))
    for bad in ("", "a..b", "x" * 64 + ".com", ("a" * 60 + ".") * 5 + "com"):
        assert gai_code(lambda: bench.a.dns.resolve(bad)) == dns.EAI_NONAME
    assert srv.queries == []


def test_no_servers_is_an_error_not_a_hang(bench):
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_FAIL


# ---- search domain ---------------------------------------------------------------------------
def test_single_label_name_is_tried_with_the_search_domain_first(bench):
    srv = serve(bench, zone(WWW), search="example.com")
    assert bench.a.dns.resolve("www") == [ADDR1, ADDR2]
    assert len(srv.queries) == 1


def test_dotted_name_is_tried_as_is_then_with_the_search_domain(bench):
    z = {("www.lab.example.com", w.TYPE_A): [rr("www.lab.example.com", w.TYPE_A, 60, ADDR2)]}
    srv = serve(bench, zone(z), search="example.com")
    assert bench.a.dns.resolve("www.lab") == [ADDR2]
    asked = [w.to_text(question(q)[0], 255) for q, _, _ in srv.queries]
    assert asked == ["www.lab", "www.lab.example.com"]


# ---- servers, retries, timeouts --------------------------------------------------------------
def test_silent_first_server_then_the_second_answers(bench):
    serve(bench, zone(WWW), servers=(NOBODY, IP_B))
    t0 = bench.t
    assert bench.a.dns.resolve("www.example.com") == [ADDR1, ADDR2]
    assert bench.a.dns.stats.timeouts == 1
    assert bench.t - t0 >= 500


def test_dropped_first_query_is_asked_again(bench):
    seen = []

    def drop_first(q, proto):
        seen.append(q)
        return None if len(seen) == 1 else zone(WWW)(q, proto)
    serve(bench, drop_first)
    assert bench.a.dns.resolve("www.example.com") == [ADDR1, ADDR2]
    assert len(seen) == 2 and seen[0][:2] != seen[1][:2], "a retry has a new ID"


def test_no_answer_from_any_server_is_eai_again_after_every_attempt(bench):
    srv = serve(bench, lambda q, p: None, servers=(IP_B, NOBODY))
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert len(srv.queries) == bench.a.config["DNS_ATTEMPTS"]
    assert bench.a.dns.stats.timeouts == 2 * bench.a.config["DNS_ATTEMPTS"]


def test_servfail_moves_on_to_the_next_server(bench):
    srv = serve(bench, lambda q, p: reply(q, [], rcode=2))
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert bench.a.dns.stats.rx_server_fail == len(srv.queries) == 2


# ---- truncation --------------------------------------------------------------------------------
def test_truncated_answer_is_asked_again_over_tcp_rfc_7766(bench):
    many = [rr("big.example.com", w.TYPE_A, 60, bytes([198, 51, 100, i])) for i in range(1, 31)]

    def handler(q, proto):
        if proto == "udp":
            return reply(q, many[:20], tc=True)
        return reply(q, many)
    srv = serve(bench, handler)
    got = bench.a.dns.resolve("big.example.com")
    assert len(got) == bench.a.config["DNS_CACHE_ADDRS"]
    assert got[0] == bytes([198, 51, 100, 1])
    assert [p for _, _, p in srv.queries] == ["udp", "tcp"]
    st = bench.a.dns.stats
    assert (st.truncated, st.tx_tcp, st.addrs_dropped) == (1, 1, 30 - 8)


def test_tcp_answer_larger_than_the_buffer_is_dropped_and_counted(bench):
    bench.a.config["DNS_MSG_SIZE"] = 512
    many = [rr("big.example.com", w.TYPE_A, 60, bytes([198, 51, 100, i])) for i in range(1, 41)]
    serve(bench, lambda q, p: reply(q, many[:5], tc=True) if p == "udp" else reply(q, many))
    assert gai_code(lambda: bench.a.dns.resolve("big.example.com")) == dns.EAI_FAIL
    assert bench.a.dns.stats.rx_too_big == 2


# ---- forged and hostile answers (RFC 5452) --------------------------------------------------
def test_forged_answers_are_counted_and_the_real_one_taken(bench):
    def handler(q, proto):
        good = zone(WWW)(q, proto)
        forged = reply(q, [rr("www.example.com", w.TYPE_A, 60, bytes([192, 0, 2, 66]))])
        wrong_id = reply(q, [rr("www.example.com", w.TYPE_A, 60, bytes([192, 0, 2, 66]))],
                         qid=((q[0] << 8) | q[1]) ^ 1)
        other_q = bytearray(forged)
        other_q[13] = ord("x")  # the question's name differs: wxw.example.com
        return [(forged, 5353), (wrong_id, 53), (bytes(other_q), 53), (b"\x00" * 5, 53),
                (good, 53)]
    serve(bench, handler)
    assert bench.a.dns.resolve("www.example.com") == [ADDR1, ADDR2]
    st = bench.a.dns.stats
    assert (st.rx_bad_id, st.rx_bad_question, st.rx_short) == (1, 1, 1)
    assert bench.a.udp.stats.rx_no_port == 1  # from port 5353: not where we asked


def test_query_ids_and_source_ports_are_random_rfc_5452_9_2(bench):
    srv = serve(bench, zone(WWW))
    bench.a.config["DNS_CACHE_ENTRIES"] = 0
    bench.a.dns.set_servers([IP_B])
    for i in range(8):
        bench.a.dns.flush()
        bench.a.dns.resolve("www.example.com")
    ids = set(q[:2] for q, _, _ in srv.queries)
    ports = [src[1] for _, src, _ in srv.queries]
    assert len(ids) >= 7 and len(set(ports)) >= 7
    assert sorted(ports) != ports or max(ports) - min(ports) > 8, "ports look sequential"


def test_compression_pointer_loop_is_malformed_not_a_hang(bench):
    loop = b"\xc0\x0c"  # rewritten below to point at itself

    def handler(q, proto):
        r = bytearray(reply(q, [rr(loop, w.TYPE_A, 60, ADDR1)]))
        _, _, end = question(q)
        r[end] = 0xC0
        r[end + 1] = end & 0xFF  # the answer's owner points at itself
        return bytes(r)
    serve(bench, handler)
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert bench.a.dns.stats.rx_malformed >= 1


def test_forward_pointer_is_malformed():
    msg = bytearray(b"\x00" * 12 + b"\xc0\x10" + b"\x00\x00" + b"\x03www\x00")
    assert w.read_name(msg, 12, len(msg), bytearray(255)) == -1


def test_backward_pointer_chain_is_read():
    msg = bytearray(b"\x03www\x07example\x03com\x00" + b"\x04mail\xc0\x04")
    out = bytearray(255)
    n = w.read_name(msg, 17, len(msg), out)
    assert w.to_text(out, n) == "mail.example.com"


def test_wrong_address_length_is_malformed(bench):
    serve(bench, lambda q, p: reply(q, [rr("www.example.com", w.TYPE_A, 60, b"\x01\x02\x03")]))
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert bench.a.dns.stats.rx_malformed >= 1


def test_records_past_the_message_end_are_malformed(bench):
    serve(bench, lambda q, p: reply(q, [rr("www.example.com", w.TYPE_A, 60, ADDR1)])[:-2])
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert bench.a.dns.stats.rx_malformed >= 1


# ---- the cache ----------------------------------------------------------------------------------
def test_answer_is_cached_for_its_ttl_then_asked_again(bench):
    z = {("www.example.com", w.TYPE_A): [rr("www.example.com", w.TYPE_A, 5, ADDR1)]}
    srv = serve(bench, zone(z))
    bench.a.dns.resolve("www.example.com")
    bench.run(4000, step=100)
    assert bench.a.dns.resolve("www.example.com") == [ADDR1]
    assert len(srv.queries) == 1 and bench.a.dns.stats.cache_hits == 1
    bench.run(1500, step=100)
    bench.a.dns.resolve("www.example.com")
    assert len(srv.queries) == 2


def test_a_renewed_lease_naming_the_same_servers_keeps_the_cache(bench):
    # DHCP hands the servers over at every renewal (stack._dhcp_changed): the same ones
    # again must not throw the cached answers away; other servers do
    srv = serve(bench, zone(WWW))
    servers = list(bench.a.dns.servers)
    bench.a.dns.resolve("www.example.com")
    bench.a.dns.set_servers(servers, search="example.com")
    bench.a.dns.resolve("www.example.com")
    assert len(srv.queries) == 1
    bench.a.dns.set_servers(servers + ["198.51.100.99"])
    bench.a.dns.resolve("www.example.com")
    assert len(srv.queries) == 2


def test_cache_lifetime_is_capped_by_dns_max_ttl_s(bench):
    bench.a.config["DNS_MAX_TTL_S"] = 2
    srv = serve(bench, zone(WWW))  # TTL 300
    bench.a.dns.resolve("www.example.com")
    bench.run(2100, step=100)
    bench.a.dns.resolve("www.example.com")
    assert len(srv.queries) == 2


def test_cache_holds_dns_cache_entries_names_and_evicts_the_first_to_expire(bench):
    bench.a.config["DNS_CACHE_ENTRIES"] = 2
    z = {}
    for i, ttl in ((1, 100), (2, 50), (3, 200)):
        n = "h%d.example.com" % i
        z[(n, w.TYPE_A)] = [rr(n, w.TYPE_A, ttl, bytes([198, 51, 100, i]))]
    srv = serve(bench, zone(z))
    for i in (1, 2, 3):
        bench.a.dns.resolve("h%d.example.com" % i)
    assert len(bench.a.dns.c_exp) == 2
    bench.a.dns.resolve("h1.example.com")  # still cached: h2 (first to expire) made room
    assert len(srv.queries) == 3
    bench.a.dns.resolve("h2.example.com")
    assert len(srv.queries) == 4


# ---- configuration ----------------------------------------------------------------------------
def test_set_servers_rejects_bad_values_and_keeps_the_old_ones(bench):
    bench.a.dns.set_servers(["192.0.2.1"])
    for bad in (["dns.example"], ["192.0.2.1"] * 4, [None]):
        with pytest.raises(ValueError):
            bench.a.dns.set_servers(bad)
    with pytest.raises(ValueError):
        bench.a.dns.set_servers(["192.0.2.1"], search="bad..name")
    assert bench.a.dns.servers == [bytes([192, 0, 2, 1])]


def test_dns_config_keys_are_checked():
    from ustack.core.config import make_config
    for bad in ({"DNS_SEARCH": "a..b"}, {"DNS_MSG_SIZE": 100}, {"DNS_ATTEMPTS": 0},
                {"DNS_CACHE_ADDRS": 0}):
        with pytest.raises(ValueError):
            make_config(bad)
    assert make_config({"DNS_SEARCH": "lab.example"})["DNS_SEARCH"] == "lab.example"


def test_dns_counters_are_in_the_stack_counters(bench):
    serve(bench, zone(WWW))
    bench.a.dns.resolve("www.example.com")
    c = bench.a.counters()
    assert c["dns.queries"] == 1 and c["dns.rx_answers"] == 1


def test_invalid_tld_fails_at_once_rfc_6761_6_4(bench):
    srv = serve(bench, zone(WWW))
    for name in ("example.invalid", "INVALID.", "a.b.invalid."):
        assert gai_code(lambda: bench.a.dns.resolve(name)) == dns.EAI_NONAME
    assert srv.queries == []
    assert not dns.is_invalid("notinvalid") and not dns.is_invalid("invalid.example.com")


def soa(ttl, minimum):
    """An authority-section SOA for example.com (RFC 1035 3.3.13)."""
    rdata = wire_name("ns.example.com") + wire_name("hostmaster.example.com") + bytes(12) + \
        bytes([0, 0, 0, 60]) + bytes([minimum >> 24, (minimum >> 16) & 255,
                                      (minimum >> 8) & 255, minimum & 255])
    return rr("example.com", 6, ttl, rdata)


def negative(rcode, authority):
    def handler(q, proto):
        r = bytearray(reply(q, [], rcode=rcode) + b"".join(authority))
        r[9] = len(authority)  # NSCOUNT
        return bytes(r)
    return handler


def test_nxdomain_is_cached_for_the_soa_minimum_rfc_2308_5(bench):
    srv = serve(bench, negative(3, [soa(300, 5)]))
    for _ in range(2):
        assert gai_code(lambda: bench.a.dns.resolve("nope.example.com")) == dns.EAI_NONAME
    assert len(srv.queries) == 1 and bench.a.dns.stats.cache_hits == 1
    bench.run(5100, step=100)
    assert gai_code(lambda: bench.a.dns.resolve("nope.example.com")) == dns.EAI_NONAME
    assert len(srv.queries) == 2


def test_nodata_is_cached_for_the_soa_ttl_when_smaller(bench):
    srv = serve(bench, negative(0, [soa(2, 600)]))
    for _ in range(2):
        assert gai_code(lambda: bench.a.dns.resolve("v4.example.com", dns.AF_INET6)) == \
            dns.EAI_NODATA
    assert len(srv.queries) == 1
    bench.run(2100, step=100)
    assert gai_code(lambda: bench.a.dns.resolve("v4.example.com", dns.AF_INET6)) == \
        dns.EAI_NODATA
    assert len(srv.queries) == 2


def test_negative_answer_without_soa_is_not_cached(bench):
    srv = serve(bench, negative(3, []))
    for _ in range(2):
        assert gai_code(lambda: bench.a.dns.resolve("nope.example.com")) == dns.EAI_NONAME
    assert len(srv.queries) == 2


def test_port_unreachable_moves_on_at_once_rfc_1122_4_1_3_3(bench):
    # nothing listens on B's port 53: B answers ICMP port unreachable, which a connected
    # socket reports (ECONNREFUSED), so the resolver need not wait out DNS_TIMEOUT_MS
    bench.a.dns.set_servers([IP_B])
    t0 = bench.t
    assert gai_code(lambda: bench.a.dns.resolve("www.example.com")) == dns.EAI_AGAIN
    assert bench.t - t0 < bench.a.config["DNS_TIMEOUT_MS"]
    assert bench.a.dns.stats.refused == bench.a.config["DNS_ATTEMPTS"]


def test_localhost_names_are_loopback_without_a_query_rfc_6761_6_3(bench):
    srv = serve(bench, zone(WWW))
    for name in ("localhost", "LocalHost.", "app.localhost"):
        assert bench.a.dns.resolve(name) == [bytes([127, 0, 0, 1])]
        assert bench.a.dns.resolve(name, dns.AF_INET6) == [bytes(15) + b"\x01"]
    assert srv.queries == []
