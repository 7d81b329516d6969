"""Path MTU Discovery for both families (RFC 1191, RFC 8201): the per-destination cache
(core/net/pmtu.py), and what a smaller link on the path does to TCP and UDP. Between the two
stacks sits a "router" that drops what A sends beyond its next-hop MTU and answers with an
ICMP Fragmentation Needed / ICMPv6 Packet Too Big, as Linux routers do."""
import struct

from ustack.core import socket as so
from ustack.core import addr6
from ustack.core.net.pmtu import PmtuCache, plateau_below
from tests.twostack import MAC_A, MAC_B
from tests.unit_ref import csum
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB

IP_A = bytes([192, 0, 2, 10])
IP_B = bytes([192, 0, 2, 11])
ROUTER4 = bytes([192, 0, 2, 1])
ROUTER6 = addr6.pton("2001:db8::1")


def cache(n=4):
    return PmtuCache({"PMTU_ENTRIES": n, "PMTU_AGE_MS": 600000})


def test_the_cache_only_ever_lowers_and_ages_back_after_10_minutes():
    c = cache()
    d = IP_B
    assert c.lookup(d, 0, 4, 1500, 0) == 1500
    assert c.learn(d, 0, 4, 1000, 0, 1500) == 1000
    assert c.lookup(d, 0, 4, 1500, 1) == 1000
    assert c.learn(d, 0, 4, 1400, 2, 1000) == 0     # RFC 1191 6.3: never raised by a report
    assert c.stats.ignored_larger == 1
    assert c.lookup(d, 0, 4, 1500, 599999) == 1000
    assert c.lookup(d, 0, 4, 1500, 600000) == 1500  # RFC 1191 6.3: 10 minutes later
    assert c.stats.expired == 1
    assert c.live == 0


def test_the_cache_clamps_to_each_familys_floor():
    c = cache()
    # RFC 8021 / RFC 8200 5: a Packet Too Big below 1280 means 1280, no atomic fragments
    assert c.learn(ROUTER6, 0, 16, 600, 0, 1500) == 1280
    assert c.stats.clamped_v6 == 1
    assert c.learn(IP_B, 0, 4, 68, 0, 1500) == 576
    assert c.stats.clamped_v4 == 1


def test_a_full_cache_forgets_the_oldest_destination():
    c = cache(2)
    a, b, d = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3])
    c.learn(a, 0, 4, 1200, 10, 1500)
    c.learn(b, 0, 4, 1200, 20, 1500)
    c.learn(d, 0, 4, 1200, 30, 1500)
    assert c.stats.evicted == 1
    assert c.live == 2
    assert c.lookup(a, 0, 4, 1500, 40) == 1500
    assert c.lookup(b, 0, 4, 1500, 40) == 1200 and c.lookup(d, 0, 4, 1500, 40) == 1200


def test_frag_needed_without_an_mtu_takes_the_plateau_below_the_datagram():
    # RFC 1191 7.1 table 7-1
    assert plateau_below(1500) == 1492
    assert plateau_below(1492) == 1006
    assert plateau_below(600) == 576


class Router:
    """Wraps A's wire port: a frame beyond the next-hop MTU is dropped and answered."""

    def __init__(self, bench, mtu4=1000, mtu6=1280, say_mtu=True):
        self.port = bench.ia.driver
        self.orig = self.port.send
        self.say_mtu = say_mtu   # False: an RFC 1191 7 old router (next-hop MTU 0)
        self.mtu4 = mtu4
        self.mtu6 = mtu6
        self.big = 0
        self.sizes4 = []
        self.sizes6 = []
        self.port.send = self.send

    def send(self, buf, n):
        f = bytes(buf[0:n])
        et = f[12:14]
        if et == b"\x08\x00":
            self.sizes4.append(n - 14)
            if n - 14 > self.mtu4:
                self.big += 1
                self.port._arrive(self.frag_needed(f[14:]))
                return True
        elif et == b"\x86\xdd":
            self.sizes6.append(n - 14)
            if n - 14 > self.mtu6:
                self.big += 1
                self.port._arrive(self.too_big(f[14:]))
                return True
        return self.orig(buf, n)

    def frag_needed(self, dgram, mtu=None):
        m = (self.mtu4 if self.say_mtu else 0) if mtu is None else mtu
        icmp = struct.pack("!BBHHH", 3, 4, 0, 0, m) + dgram[0:28]
        icmp = icmp[:2] + struct.pack("!H", ~csum(icmp) & 0xFFFF) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, ROUTER4,
                         dgram[12:16])
        ip = ip[:10] + struct.pack("!H", ~csum(ip) & 0xFFFF) + ip[12:]
        return MAC_A + MAC_B + b"\x08\x00" + ip + icmp

    def too_big(self, pkt, dst=None):
        msg = struct.pack("!BBHI", 2, 0, 0, self.mtu6) + pkt[0:1280 - 48]
        dst = pkt[8:24] if dst is None else dst
        c = ~csum(ROUTER6 + dst + struct.pack("!IBBBB", len(msg), 0, 0, 0, 58) + msg) & 0xFFFF
        msg = msg[:2] + struct.pack("!H", c) + msg[4:]
        ip = struct.pack("!IHBB", 0x60000000, len(msg), 58, 64) + ROUTER6 + dst
        return MAC_A + MAC_B + b"\x86\xdd" + ip + msg


DATA = bytes(range(251)) * 80   # 20080 bytes


def transfer(bench, family, dst):
    """A connects to B and sends DATA; what B read."""
    lst = bench.b.socket(family, so.SOCK_STREAM)
    lst.bind((dst, 5001))
    lst.listen(1)
    lst.setblocking(False)
    c = bench.a.socket(family, so.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect((dst, 5001))
    except OSError:
        pass
    conn = []
    assert bench.until(lambda: _accept(lst, conn), 3000)
    s = conn[0]
    s.setblocking(False)
    got = bytearray()
    sent = 0
    end = bench.t + 20000
    while len(got) < len(DATA) and bench.t < end:
        if sent < len(DATA):
            try:
                sent += c.send(DATA[sent:sent + 4096])
            except OSError:
                pass
        bench.advance(1)
        try:
            got += s.recv(65536)
        except OSError:
            pass
    tcb = c.tcb
    c.close()
    s.close()
    lst.close()
    return bytes(got), tcb


def last_index(xs, pred):
    i = len(xs) - 1
    while i >= 0 and not pred(xs[i]):
        i -= 1
    return i


def _accept(lst, conn):
    try:
        conn.append(lst.accept()[0])
        return True
    except OSError:
        return False


def test_tcp_lowers_its_mss_on_frag_needed_and_resends_at_once_ipv4():
    bench = Bench6()
    r = Router(bench)
    got, tcb = transfer(bench, so.AF_INET, "192.0.2.11")
    assert got == DATA
    st = bench.a.tcp.stats
    assert r.big >= 1
    assert bench.a.icmp.stats.rx_frag_needed >= 1
    assert st.pmtu_mss_lowered == 1
    assert bench.a.ip.pmtu.stats.learned == 1
    assert tcb.mss == 1000 - 20 - 20 - 12    # MTU - IPv4 - TCP - timestamps
    # RFC 1191 6.4 / RFC 9293 3.7.3: resent right away, not after an RTO
    assert st.rto_expired == 0
    # every too-big segment went before the first at the new size (DF: none fragmented)
    assert last_index(r.sizes4, lambda x: x > 1000) < r.sizes4.index(1000)


def test_frag_needed_from_an_old_router_walks_down_the_plateaus():
    bench = Bench6()
    Router(bench, say_mtu=False)
    got, tcb = transfer(bench, so.AF_INET, "192.0.2.11")
    assert got == DATA
    # RFC 1191 7.1: 1500 -> 1492 -> 1006 -> 576, each step learnt and resent at once
    assert bench.a.icmp.stats.rx_frag_needed_no_mtu >= 3   # one per segment dropped
    assert bench.a.tcp.stats.pmtu_mss_lowered == 3
    assert tcb.mss == 576 - 20 - 20 - 12
    assert bench.a.tcp.stats.rto_expired == 0


def test_tcp_lowers_its_mss_on_packet_too_big_ipv6():
    bench = Bench6()
    r = Router(bench)
    got, tcb = transfer(bench, so.AF_INET6, GB)
    assert got == DATA
    assert bench.a.icmp6.stats.rx_packet_too_big >= 1
    assert bench.a.tcp.stats.pmtu_mss_lowered == 1
    assert tcb.mss == 1280 - 40 - 20 - 12
    assert bench.a.tcp.stats.rto_expired == 0
    # every too-big segment went before the first at the new size, unfragmented: TCP
    # never relies on fragmentation
    assert last_index(r.sizes6, lambda x: x > 1280) < r.sizes6.index(1280)


def test_a_frag_needed_quoting_a_sequence_not_in_flight_is_ignored():
    bench = Bench6()
    frames = []
    bench.a.capture = lambda iface, buf, n, out: out and frames.append(bytes(buf[:n]))
    lst = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    lst.bind(("192.0.2.11", 5002))
    lst.listen(1)
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(("192.0.2.11", 5002))
    except OSError:
        pass
    bench.run(50)
    seg = [f for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6][-1][14:]
    # RFC 5927 4.1: a blind attacker's guess of the sequence number
    seq = (struct.unpack("!I", seg[24:28])[0] + 1000000) & 0xFFFFFFFF
    forged = seg[:24] + struct.pack("!I", seq) + seg[28:]
    r = Router(bench)
    r.port._arrive(r.frag_needed(forged, 600))
    bench.run(20)
    assert bench.a.tcp.stats.icmp_out_of_window == 1
    assert bench.a.ip.pmtu.stats.learned == 0
    assert c.tcb.mss > 1000
    c.close()
    lst.close()


def test_udp6_after_packet_too_big_fragments_at_the_learnt_pmtu():
    bench = Bench6()
    r = Router(bench)
    srv = bench.b.socket(so.AF_INET6, so.SOCK_DGRAM)
    srv.bind(("::", 7))
    srv.setblocking(False)
    cli = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    data = bytes(3000)
    cli.sendto(data, (GB, 7))
    bench.run(50)
    assert r.big >= 1
    assert bench.a.ip.pmtu.stats.learned == 1
    cli.sendto(data, (GB, 7))
    bench.run(50)
    assert srv.recvfrom(4000)[0] == data
    assert max(r.sizes6[-3:]) <= 1280
    cli.close()
    srv.close()


def test_a_second_connection_to_the_same_destination_follows_its_own_packet_too_big():
    bench = Bench6()
    Router(bench)
    lst = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    lst.bind((GB, 5003))
    lst.listen(2)
    lst.setblocking(False)
    cs = []
    for _ in range(2):
        c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((GB, 5003))
        except OSError:
            pass
        cs.append(c)
    conns = []
    assert bench.until(lambda: _accept(lst, conns) and len(conns) == 2, 3000)
    for s in conns:
        s.setblocking(False)
    for c in cs:
        c.send(DATA[0:8000])   # both in flight before any Packet Too Big
    got = [bytearray(), bytearray()]
    end = bench.t + 5000
    while (len(got[0]) < 8000 or len(got[1]) < 8000) and bench.t < end:
        bench.advance(1)
        for i in range(2):
            try:
                got[i] += conns[i].recv(65536)
            except OSError:
                pass
    assert got[0] == DATA[0:8000] and got[1] == DATA[0:8000]
    # the second Packet Too Big no longer lowers the cache, but its connection follows
    assert bench.a.tcp.stats.pmtu_mss_lowered == 2
    assert [c.tcb.mss for c in cs] == [1280 - 40 - 20 - 12] * 2
    for s in cs + conns + [lst]:
        s.close()


def test_a_packet_too_big_quoting_a_packet_we_did_not_send_teaches_nothing():
    bench = Bench6()
    r = Router(bench)
    # RFC 4443 2.4 (d) / RFC 5927 4.1: the quote's source must be one of our addresses
    other = addr6.pton("2001:db8::99")
    pkt = struct.pack("!IHBB", 0x60000000, 1460, 17, 64) + other + addr6.pton(GB) + \
        struct.pack("!HHHH", 1, 7, 1460, 0) + bytes(1452)
    r.port._arrive(r.too_big(pkt, addr6.pton(GA)))
    bench.run(20)
    assert bench.a.icmp6.stats.rx_error_not_ours == 1
    assert bench.a.ip.pmtu.stats.learned == 0
