"""Neighbor Discovery end to end between two hosts on an in-memory link with a virtual clock:
the cache (core/nd.py) and DAD driven by real NS/NA packets built and checked by
core/wire/icmp6 - the plumbing an IPv6 input/output will do, written small. A resolves B,
B learns A from the solicitation, NUD re-probes B after the reachable time, a silent B
makes A give up with Address Unreachable, and DAD finds an address another host holds."""
from ustack.core import addr6
from ustack.core.nd import NeighbourCache, Dad, REACHABLE, STALE, PROBE, DELAY
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6


class Host:
    """One IPv6 host's ND glue: packets out go onto `wire` as (sender, bytes)."""

    def __init__(self, name, mac, addr, wire):
        self.name = name
        self.mac = mac
        self.addr = addr
        self.wire = wire
        self.up = True
        self.cache = NeighbourCache(self, 16, 6, {"ND_CACHE_SIZE": 4})
        self.dad = Dad(self, 16, None, rand=lambda: 0)
        self.delivered = []
        self.unreachable = []
        self.duplicates = []
        self.now = 0

    # ---- out ------------------------------------------------------------------------------
    def _send_icmp(self, src, dst, msg, n):
        b = bytearray(40 + n)
        ip6.write_header(b, 0, 0, 0, n, ip6.NH_ICMPV6, 255, src, dst)
        b[40:] = msg[:n]
        icmp6.fill_checksum(b, 0, 40, n)
        if self.up:
            self.wire.append((self, b))

    def nd_solicit(self, cache, i, unicast):
        msg = bytearray(32)
        n = icmp6.write_ns(msg, 0, cache.addr[i], self.mac)
        dst = bytearray(16)
        if unicast:
            addr6.copy16(dst, 0, cache.addr[i], 0)
        else:
            addr6.solicited_node(cache.addr[i], 0, dst, 0)
        self._send_icmp(self.addr, dst, msg, n)

    def nd_transmit(self, cache, i, pkt):
        self.delivered.append((pkt, bytes(cache.ll[i])))

    def nd_unreachable(self, cache, i, pkt):
        self.unreachable.append((pkt, bytes(cache.addr[i])))

    def nd_discard(self, cache, pkt):
        pass

    def dad_solicit(self, dad, i):
        msg = bytearray(24)
        n = icmp6.write_ns(msg, 0, dad.addr[i], None)
        dst = bytearray(16)
        addr6.solicited_node(dad.addr[i], 0, dst, 0)
        self._send_icmp(addr6.ANY, dst, msg, n)

    def dad_done(self, dad, i, ok):
        if not ok:
            self.duplicates.append(bytes(dad.addr[i]))

    # ---- in -------------------------------------------------------------------------------
    def receive(self, b):
        if not self.up:
            return
        n = len(b) - 40
        assert icmp6.checksum_ok(b, 0, 40, n)
        assert icmp6.nd_check(b, 0, 40, n) is None
        t = b[40]
        tgt = 40 + icmp6.ND_TARGET
        src_unspec = addr6.is_unspecified(b, ip6.SRC)
        if t == icmp6.NEIGHBOR_SOLICIT:
            if self.dad.on_ns(b, tgt, src_unspec):
                return                               # our tentative address: no answer
            if not addr6.eq16(b, tgt, self.addr, 0):
                return
            o = icmp6.find_option(b, 40 + icmp6.NS_LEN, len(b), icmp6.OPT_SLLA)
            if o >= 0:
                self.cache.learn(b, ip6.SRC, b, o + 2, self.now)
            msg = bytearray(32)
            dst = bytearray(16)
            if src_unspec:
                flags = icmp6.NA_FLAG_OVERRIDE               # 7.2.4: to all-nodes, S=0
                addr6.copy16(dst, 0, addr6.ALL_NODES, 0)
            else:
                flags = icmp6.NA_FLAG_SOLICITED | icmp6.NA_FLAG_OVERRIDE
                addr6.copy16(dst, 0, b, ip6.SRC)
            k = icmp6.write_na(msg, 0, flags, self.addr, self.mac)
            self._send_icmp(self.addr, dst, msg, k)
        elif t == icmp6.NEIGHBOR_ADVERT:
            if self.dad.on_na(b, tgt):
                return
            o = icmp6.find_option(b, 40 + icmp6.NA_LEN, len(b), icmp6.OPT_TLLA)
            self.cache.advert(b, tgt, b if o >= 0 else None, o + 2, b[40 + icmp6.NA_FLAGS],
                              self.now)

    def send(self, dst, pkt):
        i = self.cache.resolve(dst, 0, pkt, self.now)
        if i >= 0:
            self.delivered.append((pkt, bytes(self.cache.ll[i])))


class Link:
    def __init__(self):
        self.wire = []
        self.hosts = []
        self.now = 0

    def host(self, name, mac, addr):
        h = Host(name, mac, addr, self.wire)
        self.hosts.append(h)
        return h

    def run(self, until):
        """Deliver frames and run timers up to virtual time `until`, 10 ms steps."""
        while self.now <= until:
            for h in self.hosts:
                h.now = self.now
                h.cache.tick(self.now)
                h.dad.tick(self.now)
            while self.wire:
                sender, b = self.wire.pop(0)
                for h in self.hosts:
                    if h is not sender:
                        h.now = self.now
                        h.receive(b)
            self.now += 10


MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"
ADDR_A = addr6.pton("2001:db8::a")
ADDR_B = addr6.pton("2001:db8::b")


def pair():
    link = Link()
    return link, link.host("a", MAC_A, ADDR_A), link.host("b", MAC_B, ADDR_B)


def test_address_resolution_delivers_the_waiting_packet_and_teaches_both_sides():
    link, a, b = pair()
    a.send(ADDR_B, "hello")
    link.run(20)
    assert a.delivered == [("hello", MAC_B)]
    assert a.cache.state[a.cache.find(ADDR_B)] == REACHABLE
    # B learnt A from the solicitation's source link-layer address (7.2.3)
    i = b.cache.find(ADDR_A)
    assert b.cache.state[i] == STALE and bytes(b.cache.ll[i]) == MAC_A


def test_nud_reprobes_after_reachable_time_and_stays_reachable():
    link, a, b = pair()
    a.send(ADDR_B, "1")
    link.run(20)
    link.run(20 + a.cache.reachable_ms + 10)
    i = a.cache.find(ADDR_B)
    assert a.cache.state[i] == STALE
    a.send(ADDR_B, "2")                       # sent at once, DELAY starts
    assert a.cache.state[i] == DELAY and a.delivered[-1] == ("2", MAC_B)
    link.run(link.now + a.cache.delay_ms + 20)  # unicast probe answered
    assert a.cache.state[i] == REACHABLE


def test_a_silent_neighbour_ends_in_address_unreachable():
    link, a, b = pair()
    b.up = False
    a.send(ADDR_B, "lost")
    link.run(3000)
    assert a.unreachable == [("lost", ADDR_B)] and a.cache.find(ADDR_B) == -1
    assert a.cache.stats.solicits_mcast == 3


def test_a_neighbour_that_stops_answering_is_probed_then_forgotten():
    link, a, b = pair()
    a.send(ADDR_B, "1")
    link.run(20)
    b.up = False
    link.run(20 + a.cache.reachable_ms + 10)
    a.send(ADDR_B, "2")
    link.run(link.now + a.cache.delay_ms + 10)
    assert a.cache.state[a.cache.find(ADDR_B)] == PROBE
    link.run(link.now + 3 * a.cache.retrans_ms)
    assert a.cache.find(ADDR_B) == -1 and a.cache.stats.probe_failed == 1


def test_dad_succeeds_on_a_free_address():
    link, a, b = pair()
    new = addr6.pton("2001:db8::c")
    a.dad.start(new, 0)
    link.run(2000)
    assert a.dad.stats.dad_succeeded == 1 and a.duplicates == []


def test_dad_finds_an_address_another_host_holds():
    """RFC 4862 5.4.4: B answers the probe for its own address: A's copy is a duplicate."""
    link, a, b = pair()
    a.dad.start(ADDR_B, 0)
    link.run(2000)
    assert a.duplicates == [ADDR_B] and a.dad.stats.dad_succeeded == 0


def test_two_hosts_probing_the_same_tentative_address_both_see_a_duplicate():
    """RFC 4862 5.4.3: an NS from :: for our tentative target."""
    link, a, b = pair()
    same = addr6.pton("2001:db8::d")
    a.dad.start(same, 0)
    b.dad.start(same, 0)
    link.run(2000)
    assert a.duplicates == [same] and b.duplicates == [same]
