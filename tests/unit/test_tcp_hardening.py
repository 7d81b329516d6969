"""TCP cannot be wedged (issue 8): whatever peers send and however the application behaves,
the connection table, the SYN and accept queues, orphans, ephemeral ports and challenge ACKs
stay bounded, every drop is counted, and legitimate connections keep working - at the
embedded boards' sizes too (boards/w5500_evb_pico.py), not only at generous test sizes.

Single-segment tests use the Peer helper of test_tcp_segments (the test is the host);
two-stack tests use the in-memory wire of test_tcp_states (virtual clock)."""
import errno

import pytest

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from tests import frames as F
from tests.unit.test_tcp_segments import Peer, opt_bytes, SYN, RST, ACK, FIN, PSH, PORT
from tests.unit.test_tcp_states import Net, close_all


def pools_back(p):
    for s in list(p.stack.sockets):
        s.close()
    for t in list(p.tcp.conns):
        p.tcp.drop(t, 0)
    p.advance(5)
    assert p.stack.pool.full(), "packet buffers leaked"
    assert p.tcp.embryonic == 0 and (p.lsock is None or p.lsock.syn_count == 0)


def handshake(p, sport, seq=1000):
    """SYN, SYN-ACK, ACK from the test's port sport: the SYN-ACK."""
    r = p.send(seq, 0, SYN, opts=opt_bytes(mss=1460), sport=sport)
    assert [s.f for s in r] == ["S."], r
    p.send(seq + 1, r[0].seq + 1, ACK, sport=sport)
    return r[0]


# ---- hole 6: the listener's SYN count survives a connection that cannot get buffers ----------
def test_handshakes_failing_for_lack_of_memory_do_not_use_up_the_listener():
    """A passive connection whose buffers cannot be allocated is reset (RST) and must give
    its SYN-queue slot back; otherwise after 2*backlog+1 such failures every SYN is refused."""
    p = Peer()
    p.listen(backlog=1)
    rings = p.tcp.rings
    real_get = rings.share

    def no_memory(cap):
        raise MemoryError

    rings.share = no_memory
    for i in range(5):
        r = p.send(1000, 0, SYN, opts=opt_bytes(mss=1460), sport=42000 + i)
        assert [s.f for s in r] == ["S."]
        r = p.send(1001, r[0].seq + 1, ACK, sport=42000 + i)
        assert [s.f for s in r] == ["R."]
    assert p.tcp.stats.no_memory == 5 and p.lsock.syn_count == 0 and not p.tcp.conns
    rings.share = real_get
    handshake(p, 42100)
    s, _ = p.lsock.accept()
    assert s.tcb.state == T.ESTABLISHED
    pools_back(p)


# ---- hole 8: connect() to a broadcast or multicast address ------------------------------------
@pytest.mark.parametrize("dst", ["255.255.255.255", "192.0.2.255", "224.0.0.1", "239.1.2.3"])
def test_connect_to_broadcast_or_multicast_is_rejected_without_a_syn(dst):
    """RFC 1122 4.2.3.10: an active OPEN to a broadcast or multicast address MUST be
    rejected; Linux says ENETUNREACH. No SYN leaves and no TCB is taken."""
    p = Peer()
    s = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    assert s.connect_ex((dst, PORT)) == errno.ENETUNREACH
    assert p.advance(5) == [] and not p.tcp.conns
    s.close()
    pools_back(p)


# ---- hole 7: the challenge-ACK side channel (CVE-2016-5696) -------------------------------------
def two_connections(config=None):
    """A listening stack with two established connections from the test's ports 43001 (the
    victim's) and 43002 (the off-path attacker's own): (peer, {port: SYN-ACK})."""
    p = Peer(config)
    p.listen(backlog=4)
    sas = {}
    for port in (43001, 43002):
        sas[port] = handshake(p, port)
        p.lsock.accept()
    return p, sas


def challenge_acks_seen(p, port, n):
    """n in-window RSTs not at RCV.NXT on connection port: how many challenge ACKs came."""
    return sum(len(p.send(1001 + 100 + i, 0, RST, sport=port)) for i in range(n))


def test_challenge_acks_on_one_connection_do_not_reveal_those_on_another():
    """The attacker of CVE-2016-5696 spoofs RSTs on a victim connection, then counts the
    challenge ACKs its own connection gets within the same second: with one fixed global
    budget, one fewer means a guess hit the window. With a per-connection budget the count
    on the attacker's connection is the same whatever happened on the victim's."""
    counts = []
    for spoofed in (0, 1, 5, 10):
        p, _ = two_connections()
        challenge_acks_seen(p, 43001, spoofed)  # the victim's peer sees these, not us
        counts.append(challenge_acks_seen(p, 43002, 50))
        pools_back(p)
    assert counts == [counts[0]] * 4 and counts[0] == Peer().stack.config[
        "TCP_CHALLENGE_ACK_LIMIT"]


def test_the_global_challenge_ack_budget_is_randomised_and_still_holds():
    """Over many connections the total stays bounded (RFC 5961 section 7), but the bound is
    drawn afresh each second (as Linux does), so it is not a fixed number an observer could
    count down."""
    cfg = {"TCP_MAX_CONNS": 24, "TCP_SYN_QUEUE": 16, "TCP_BACKLOG": 24, "SOCKETS": 32,
           "TCP_CHALLENGE_ACK_LIMIT": 10, "TCP_CHALLENGE_ACK_GLOBAL": 40}
    p = Peer(cfg)
    p.listen(backlog=24)
    ports = list(range(44000, 44020))
    for port in ports:
        handshake(p, port)
        p.lsock.accept()
    totals = []
    for second in range(6):
        totals.append(sum(challenge_acks_seen(p, port, 10) for port in ports))
        p.advance(1001)
    assert all(20 <= n < 60 for n in totals), totals  # G/2 <= budget < 3G/2
    assert len(set(totals)) > 1, totals
    assert p.tcp.stats.challenge_acks_global_limited > 0
    pools_back(p)


# ---- hole 10: ephemeral ports (RFC 6056) ---------------------------------------------------------
LOW, HIGH = 49152, 65535


def connect_from(p, dst="192.0.2.1", port=PORT):
    s = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    e = s.connect_ex((dst, port))
    return s, e


def steps(ports):
    return [(b - a) % (HIGH - LOW + 1) for a, b in zip(ports, ports[1:])]


def test_tcp_ephemeral_ports_are_unique_in_range_and_not_sequential():
    """RFC 6056 algorithm 4: consecutive connections, to one destination or to several, do
    not reveal a counter - yet every port is unique and inside EPHEMERAL_LOW..HIGH."""
    p = Peer()
    same = [connect_from(p)[0].local_port for _ in range(6)]
    other = [connect_from(p, port=PORT + 1 + i)[0].local_port for i in range(6)]
    ports = same + other
    assert len(set(ports)) == len(ports) and all(LOW <= x <= HIGH for x in ports)
    assert steps(same) != [1] * 5 and steps(other) != [1] * 5, ports
    assert max(steps(other)) > 64, ports  # other destinations: unrelated places in the range
    pools_back(p)


def test_udp_ephemeral_ports_are_random_unique_and_in_range():
    p = Peer()
    socks = []
    for _ in range(8):
        u = p.stack.socket(so.AF_INET, so.SOCK_DGRAM)
        u.bind(("", 0))
        socks.append(u)
    ports = [u.local_port for u in socks]
    assert len(set(ports)) == 8 and all(LOW <= x <= HIGH for x in ports)
    assert steps(ports) != [1] * 7 and max(steps(ports)) > 64, ports
    pools_back(p)


def test_exhausted_ephemeral_range_gives_eaddrnotavail_on_connect_and_eaddrinuse_on_bind():
    """A full range is found full (the search walks it all): connect() says EADDRNOTAVAIL
    and bind to port 0 EADDRINUSE, as Linux does; UDP the same."""
    p = Peer({"EPHEMERAL_LOW": 50000, "EPHEMERAL_HIGH": 50003})
    ports = sorted(connect_from(p, port=PORT + i)[0].local_port for i in range(4))
    assert ports == [50000, 50001, 50002, 50003]
    s, e = connect_from(p, port=9)
    assert e == errno.EADDRNOTAVAIL
    t = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as ex:
        t.bind(("", 0))
    assert ex.value.errno == errno.EADDRINUSE
    us = []
    for _ in range(4):
        u = p.stack.socket(so.AF_INET, so.SOCK_DGRAM)
        u.bind(("", 0))
        us.append(u.local_port)
    assert sorted(us) == [50000, 50001, 50002, 50003]
    u = p.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    with pytest.raises(OSError) as ex:
        u.bind(("", 0))
    assert ex.value.errno == errno.EADDRINUSE
    pools_back(p)


# ---- hole 5: orphans that never die --------------------------------------------------------------
def orphan_facing_zero_window(p, sport, n=1000):
    """A connection from sport whose peer (the test) closed its window; the application
    queued n bytes and closed it: an orphan in FIN-WAIT-1 with data it cannot send."""
    sa = handshake(p, sport)
    s, _ = p.lsock.accept()
    una = sa.seq + 1
    p.send(1001, una, ACK, win=0, sport=sport)
    s.send(b"x" * n)
    assert [x.data for x in p.advance(1) if x.dport == sport] == []  # window closed: nothing
    tcb = s.tcb
    s.close()
    assert tcb.state == T.FIN_WAIT_1 and tcb.sock is None
    return tcb, una


def answer_probes_with_zero_window(p, tcb, una, sport, limit_s=7200):
    """Jump from timer to timer for up to limit_s of virtual time, answering every segment
    of the connection with an ACK offering a zero window: the number of probes seen."""
    probes = 0
    end = p.fed.t + limit_s * 1000
    while tcb.state != T.CLOSED and p.fed.t < end:
        nt = p.stack.next_timer
        if nt > p.fed.t + 1:
            p.fed.t = nt - 1
        for seg in p.advance(1):
            if seg.dport == sport and not seg.flags & RST:
                probes += 1
                p.send(1001, una, ACK, win=0, sport=sport)
    return probes


def test_orphan_facing_a_zero_window_for_ever_is_dropped_after_tcp_orphan_retries():
    """Every probe is answered (the peer is alive) but the window never opens: a
    connection the application still holds keeps probing (RFC 1122 4.2.2.17), an orphan
    gives up after TCP_ORPHAN_RETRIES probes (Linux's tcp_orphan_retries) with a RST."""
    p = Peer({"TCP_ORPHAN_RETRIES": 4})
    p.listen(backlog=4)
    tcb, una = orphan_facing_zero_window(p, 45000)
    probes = answer_probes_with_zero_window(p, tcb, una, 45000)
    assert tcb.state == T.CLOSED and not p.tcp.conns
    assert probes == 4 and p.tcp.stats.orphan_retries_exceeded == 1
    pools_back(p)


def test_connection_still_held_keeps_probing_a_zero_window():
    p = Peer({"TCP_ORPHAN_RETRIES": 4})
    p.listen(backlog=4)
    sa = handshake(p, 45001)
    s, _ = p.lsock.accept()
    una = sa.seq + 1
    p.send(1001, una, ACK, win=0, sport=45001)
    s.send(b"x" * 1000)
    probes = answer_probes_with_zero_window(p, s.tcb, una, 45001, limit_s=1800)
    assert s.tcb.state == T.ESTABLISHED and probes > 20
    pools_back(p)


@pytest.mark.parametrize("cfg", [{"TCP_MAX_ORPHANS": 2}, None], ids=["explicit", "w5500"])
def test_orphans_are_bounded_by_tcp_max_orphans_and_the_oldest_is_reset(cfg):
    """At the W5500-EVB-Pico's 4 TCBs the derived limit is 2: orphans never hold them all."""
    p = Peer(cfg if cfg is not None else W5500_EVB_PICO)
    p.listen(backlog=4)
    tcbs = [orphan_facing_zero_window(p, 45010 + i)[0] for i in range(3)]
    assert p.stack.config["TCP_MAX_ORPHANS"] == 2
    assert [t.state for t in tcbs] == [T.CLOSED, T.FIN_WAIT_1, T.FIN_WAIT_1]
    assert p.tcp.stats.orphans_evicted == 1 and len(p.tcp.conns) == 2
    s, e = connect_from(p)  # the table still has room
    assert e == errno.EINPROGRESS
    pools_back(p)


class CountedWalks(list):
    """tcp.conns that counts walks over it (a walk per close is quadratic at scale)."""
    walks = 0

    def __iter__(self):
        CountedWalks.walks += 1
        return iter(self[:])


def test_closing_connections_below_the_orphan_limit_walks_no_table():
    """The orphan count is kept as orphans come and go (close, eviction, TIME-WAIT, reset),
    not recounted over every connection at each close(): closing 10 000 connections would
    otherwise cost 10 000 walks of a 10 000-entry table (the stack's own shutdown did)."""
    p = Peer({"TCP_MAX_ORPHANS": 3, "TCP_MAX_CONNS": 16})
    p.listen(backlog=8)
    tcbs = [orphan_facing_zero_window(p, 45030 + i)[0] for i in range(2)]
    p.tcp.conns = CountedWalks(p.tcp.conns)
    CountedWalks.walks = 0
    tcbs.append(orphan_facing_zero_window(p, 45032)[0])
    assert p.tcp.orphans == 3 and CountedWalks.walks == 0
    # a fourth goes over the limit: the oldest is found (one walk) and reset
    tcbs.append(orphan_facing_zero_window(p, 45033)[0])
    assert tcbs[0].state == T.CLOSED and p.tcp.stats.orphans_evicted == 1
    assert p.tcp.orphans == 3 == sum(1 for t in p.tcp.conns[:]
                                     if p.tcp.is_orphan(t))
    # one ends by a reset from the peer: no longer counted
    p.send(1001, tcbs[1].snd_una, RST, sport=45031)
    assert tcbs[1].state == T.CLOSED and p.tcp.orphans == 2


def test_an_orphan_entering_time_wait_is_no_longer_counted():
    p = Peer({"TCP_MAX_ORPHANS": 3})
    p.listen(backlog=4)
    sa = handshake(p, 45040)
    s, _ = p.lsock.accept()
    tcb = s.tcb
    s.close()
    assert p.tcp.orphans == 1
    assert len([x for x in p.advance(1) if x.flags & FIN]) == 1
    p.send(1001, sa.seq + 2, ACK | FIN, sport=45040)   # ACK of our FIN and the peer's FIN
    assert tcb.state == T.TIME_WAIT and p.tcp.orphans == 0
    pools_back(p)


def test_orphaned_fin_wait_2_ends_after_tcp_fin_timeout_ms():
    """The peer acknowledged our FIN but never sends its own: an orphan in FIN-WAIT-2 goes
    after TCP_FIN_TIMEOUT_MS (Linux's tcp_fin_timeout), not after 2*MSL nor never."""
    p = Peer({"TCP_FIN_TIMEOUT_MS": 5000, "TCP_MSL_MS": 60000})
    p.listen(backlog=4)
    sa = handshake(p, 45020)
    s, _ = p.lsock.accept()
    tcb = s.tcb
    s.close()
    fin = [x for x in p.advance(1) if x.flags & FIN]
    assert len(fin) == 1
    p.send(1001, sa.seq + 2, ACK, sport=45020)
    assert tcb.state == T.FIN_WAIT_2
    p.fed.t += 4800
    p.advance(1)
    assert tcb.state == T.FIN_WAIT_2
    p.fed.t += 1300
    p.advance(1)
    assert tcb.state == T.CLOSED and p.tcp.stats.fin_wait2_timeouts == 1
    pools_back(p)


# ---- hole 4: half-open connections cannot take every TCB (SYN cookies, RFC 4987) ----------------
W5500_EVB_PICO = {  # boards/w5500_evb_pico.py CONFIG (tests/ports checks they agree)
    "PBUF_COUNT": 8, "PBUF_SIZE": 1536, "RX_BATCH": 4, "PBUF_RESERVE_TX": 2,
    "SOCK_QUEUE_PBUFS": 4, "ARP_PENDING_PBUFS": 1, "UDP_RCVBUF": 3072,
    "ARP_ENTRIES": 8, "ROUTE_ENTRIES": 4,
    "REASS_SLOTS": 1, "REASS_SIZE": 3072, "SOCKETS": 8, "UDP_RX_QUEUE": 4,
    "TCP_MAX_CONNS": 4, "TCP_SND_BUF": 4096, "TCP_RCV_BUF": 4096, "TCP_BACKLOG": 2,
    "TCP_SYN_QUEUE": 2, "TCP_OOO_SEGMENTS": 4, "TCP_WSCALE": False,
}
FAKE_MAC = b"\x02\x00\x00\x00\x00\x99"
FAKE_IP = bytes([192, 0, 2, 99])
IP_B_BYTES = bytes([192, 0, 2, 11])


def half_open_flood(net, n, port=80):
    """n SYNs to B:port from a fake peer that never completes a handshake."""
    fake = net.wire.port(FAKE_MAC)
    net.ib.arp.add_static(FAKE_IP, FAKE_MAC)
    opts = opt_bytes(mss=1460, ws=7, sackok=True, ts=(1, 0))
    for i in range(n):
        seg = F.tcp(FAKE_IP, IP_B_BYTES, 30000 + i, port, 7000 + i * 1000, 0, SYN, options=opts)
        f = F.eth(net.ib.mac, FAKE_MAC, 0x0800, F.ipv4(FAKE_IP, IP_B_BYTES, 6, seg))
        fake.send(f, len(f))
        net.pump(2)
    return fake


def exchange(net, c, s, n=3000):
    """Data both ways over c (on A) and s (on B): True when all of it arrived intact."""
    up = bytes(i & 0xFF for i in range(n))
    down = bytes((7 * i) & 0xFF for i in range(n))
    c.sendall(up)
    s.sendall(down)
    got_s = bytearray()
    got_c = bytearray()
    end = net.t + 20000
    while (len(got_s) < n or len(got_c) < n) and net.t < end:
        net.advance(1)
        for sock, got in ((s, got_s), (c, got_c)):
            try:
                got += sock.recv(4096)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
    return bytes(got_s) == up and bytes(got_c) == down


@pytest.mark.parametrize("cfg", [None, W5500_EVB_PICO], ids=["defaults", "w5500_evb_pico"])
def test_half_open_flood_of_max_conns_syns_leaves_room_for_real_connections(cfg):
    """As many never-completing SYNs as there are TCBs (16 by default, 4 on the W5500 board)
    hold at most TCP_SYN_QUEUE of them, the rest get stateless cookies; then a real client
    still connects (through a cookie) and data flows, and the stack can still connect out."""
    net = Net(cfg)
    b = net.b
    tcp = b.tcp
    ls = b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen()
    ls.setblocking(False)
    n = b.config["TCP_MAX_CONNS"]
    half_open_flood(net, n)
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex(("192.0.2.11", 80)) == errno.EINPROGRESS
    assert net.until(lambda: ls.readable(), 5000)
    s, _ = ls.accept()
    s.setblocking(False)
    assert c.tcb.state == T.ESTABLISHED
    assert exchange(net, c, s)
    assert tcp.embryonic == b.config["TCP_SYN_QUEUE"] < n
    assert tcp.stats.syncookies_sent == n - tcp.synq + 1 and tcp.stats.syncookies_ok == 1
    # outward: B connects to A (no ENOBUFS though half-open connections remain)
    la = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    la.bind(("", 81))
    la.listen()
    la.setblocking(False)
    o = b.socket(so.AF_INET, so.SOCK_STREAM)
    o.setblocking(False)
    assert o.connect_ex(("192.0.2.10", 81)) == errno.EINPROGRESS
    assert net.until(lambda: la.readable(), 5000)
    a2, _ = la.accept()
    a2.setblocking(False)
    assert exchange(net, a2, o, 1000)
    close_all(net)


def cookie_peer(config=None):
    """A listening stack whose one-entry SYN queue is already taken by port 46000."""
    cfg = {"TCP_SYN_QUEUE": 1}
    cfg.update(config or {})
    p = Peer(cfg)
    p.listen(backlog=4)
    r = p.send(1000, 0, SYN, opts=opt_bytes(mss=1460), sport=46000)
    assert [s.f for s in r] == ["S."] and p.tcp.stats.syncookies_sent == 0
    return p


def test_cookie_connection_keeps_mss_window_scale_sack_and_timestamps():
    """With the peer's timestamps, window scale and SACK-permitted survive the stateless
    round trip in our TSval's low bits (as Linux does); the MSS in the cookie."""
    p = cookie_peer()
    r = p.send(5000, 0, SYN, opts=opt_bytes(mss=1460, ws=5, sackok=True, ts=(777, 0)),
               sport=46001)
    assert [s.f for s in r] == ["S."] and p.tcp.stats.syncookies_sent == 1
    sa = r[0]
    assert sa.ack == 5001 and sa.opts["mss"] == 1460 and sa.opts["sackok"]
    assert sa.opts["ws"] == p.tcp.wscale_for(p.stack.config["TCP_RCV_BUF"])
    assert sa.opts["ts"][1] == 777
    assert len(p.tcp.conns) == 1  # nothing kept for the cookie
    r = p.send(5001, sa.seq + 1, ACK | PSH, b"hello", opts=opt_bytes(ts=(778, sa.opts["ts"][0])),
               sport=46001)
    assert p.tcp.stats.syncookies_ok == 1
    s, _ = p.lsock.accept()
    t = s.tcb
    assert t.state == T.ESTABLISHED and t.flags & T.F_TS and t.flags & T.F_SACK
    assert t.flags & T.F_WS and t.snd_wscale == 5 and t.mss == 1460 - 12
    assert s.recv(100) == b"hello"
    s.send(b"world")
    out = [x for x in p.advance(300) if x.dport == 46001]
    assert out[0].data == b"world" and out[0].seq == (sa.seq + 1) & 0xFFFFFFFF
    assert out[-1].ack == 5006
    tsv = out[0].opts["ts"][0]
    assert (tsv - sa.opts["ts"][0]) & 0xFFFFFFFF < 1 << 20  # never behind the cookie's: PAWS
    pools_back(p)


def test_cookie_without_timestamps_keeps_only_the_mss():
    """RFC 4987 3.6's known cost: without timestamps only the MSS (from a 4-entry table,
    rounded down) survives; window scale and SACK are not offered, so both sides agree."""
    p = cookie_peer()
    r = p.send(5000, 0, SYN, opts=opt_bytes(mss=1400, ws=5, sackok=True), sport=46002)
    sa = r[0]
    assert set(sa.opts) == {"mss"}
    p.send(5001, sa.seq + 1, ACK, sport=46002)
    s, _ = p.lsock.accept()
    t = s.tcb
    assert t.state == T.ESTABLISHED and t.mss == 1300
    assert not t.flags & (T.F_TS | T.F_WS | T.F_SACK) and t.snd_wscale == 0 and t.rcv_wscale == 0
    pools_back(p)


def test_ack_with_a_wrong_or_stale_cookie_gets_rst_and_no_connection():
    p = cookie_peer()
    sa = p.send(5000, 0, SYN, opts=opt_bytes(mss=1460), sport=46003)[0]
    r = p.send(5001, sa.seq + 0x1001, ACK, sport=46003)  # not our cookie
    assert [(x.f, x.seq) for x in r] == [("R", (sa.seq + 0x1001) & 0xFFFFFFFF)]
    r = p.send(5002, sa.seq + 1, ACK, sport=46003)  # the SYN's ISN is part of the cookie
    assert [x.f for x in r] == ["R"]
    assert p.tcp.stats.syncookies_bad == 2 and p.tcp.stats.syncookies_ok == 0
    sa = p.send(9000, 0, SYN, opts=opt_bytes(mss=1460), sport=46004)[0]
    p.fed.t += 3 * 65536  # older than two time counts (about two minutes)
    r = p.send(9001, sa.seq + 1, ACK, sport=46004)
    assert [x.f for x in r if x.dport == 46004] == ["R"]
    assert p.tcp.stats.syncookies_ok == 0
    pools_back(p)


def test_cookie_connection_whose_ack_met_a_full_accept_queue_recovers_without_rst():
    """The ACK returning a cookie met a full accept queue and was dropped (the peer thinks it
    is connected); its next data segments carry a later SEQ, so they cannot prove the cookie
    (the peer's ISN is in the MAC). They are dropped without a RST - a RST would kill the
    peer's connection - and its retransmission from ISN+1 then makes the connection, every
    byte delivered once. (100 Linux clients on a backlog-5 socketserver found this.)"""
    p = Peer({"TCP_SYN_QUEUE": 1})
    p.listen(backlog=1)
    first = p.send(1000, 0, SYN, opts=opt_bytes(mss=1460), sport=46000)[0]
    sa = p.send(5000, 0, SYN, opts=opt_bytes(mss=1460), sport=46001)[0]
    assert p.tcp.stats.syncookies_sent == 1
    p.send(1001, first.seq + 1, ACK, sport=46000)        # the accept queue is now full
    assert p.send(5001, sa.seq + 1, ACK | PSH, b"hello", sport=46001) == []
    assert p.tcp.stats.syncookies_ok == 0 and p.tcp.stats.accept_queue_full >= 1
    s0, _ = p.lsock.accept()                             # room again
    assert p.send(5006, sa.seq + 1, ACK | PSH, b"world", sport=46001) == []  # no RST
    assert p.tcp.stats.syncookies_ok == 0 and p.tcp.stats.syncookies_unproven == 1
    assert p.tcp.stats.syncookies_bad == 0
    p.send(5001, sa.seq + 1, ACK | PSH, b"hello", sport=46001)   # the peer's retransmission
    p.send(5006, sa.seq + 1, ACK | PSH, b"world", sport=46001)
    assert p.tcp.stats.syncookies_ok == 1
    s1, _ = p.lsock.accept()
    assert s1.recv(100) == b"helloworld"
    s0.close()
    s1.close()


def test_a_cookie_syn_ack_is_marked_stateless_for_the_driver_and_a_held_one_is_not():
    """A driver with a `stateless` attribute (hal/tap.py) sees it set while a cookie SYN-ACK
    is sent - it keeps such replies off the queue our own flows use - and clear otherwise."""
    p = Peer({"TCP_SYN_QUEUE": 1})
    drv = p.fed.drv
    drv.stateless = False
    seen = []
    send = drv.send

    def spy(buf, n):
        seen.append(drv.stateless)
        return send(buf, n)

    drv.send = spy
    p.listen(backlog=4)
    p.send(1000, 0, SYN, opts=opt_bytes(mss=1460), sport=46100)   # held: SYN-RECEIVED
    p.send(5000, 0, SYN, opts=opt_bytes(mss=1460), sport=46101)   # the queue is full: cookie
    assert p.tcp.stats.syncookies_sent == 1
    assert seen == [False, True] and drv.stateless is False


def test_syn_fin_to_a_listener_is_dropped_and_counted():
    """SYN+FIN is no legitimate opening (a scan): Linux drops it silently; so do we."""
    p = Peer()
    p.listen()
    assert p.send(1000, 0, SYN | FIN) == []
    assert p.tcp.stats.rx_syn_fin == 1 and not p.tcp.conns
    pools_back(p)


def test_synack_retransmissions_are_bounded_by_tcp_synack_retries():
    p = Peer({"TCP_SYNACK_RETRIES": 2})
    p.listen()
    r = p.send(1000, 0, SYN, opts=opt_bytes(mss=1460))
    assert [x.f for x in r] == ["S."]
    again = [x.f for x in p.advance(30000)]
    assert again == ["S.", "S."] and not p.tcp.conns and p.lsock.syn_count == 0
    assert p.tcp.embryonic == 0
    pools_back(p)


# ---- TCP option bombs (RFC 9293 3.1/3.2, RFC 7323) ----------------------------------------------
def syn_with_options(p, opts, sport=47000):
    """A SYN to the listener carrying raw option bytes (padded to a multiple of 4)."""
    while len(opts) % 4:
        opts += b"\x00"
    return p.send(1000, 0, SYN, opts=opts, sport=sport)


def test_forty_nops_are_walked_and_the_syn_answered_with_defaults():
    p = Peer()
    p.listen()
    r = syn_with_options(p, b"\x01" * 40)
    assert [x.f for x in r] == ["S."] and set(r[0].opts) == {"mss"}
    assert p.tcp.stats.rx_bad_opts == 0
    pools_back(p)


@pytest.mark.parametrize("bomb", [
    b"\x02\x04\x03\xe8" + b"\xfe\x00",            # length 0
    b"\x02\x04\x03\xe8" + b"\xfe\x01",            # length 1
    b"\x02\x04\x03\xe8" + b"\xfe\x28" + b"\x00" * 6,  # length past the header
    b"\x02\x04\x03\xe8" + b"\x08",                # kind without a length byte at the end
], ids=["len0", "len1", "past_header", "truncated"])
def test_malformed_option_ends_parsing_counted_and_the_segment_is_still_processed(bomb):
    """RFC 9293 3.1 (MUST-7): an illegal option length must not crash; the options before
    it count (MSS 1000 here), the rest is ignored, the SYN is answered."""
    p = Peer()
    p.listen()
    r = syn_with_options(p, bomb)
    assert [x.f for x in r] == ["S."] and p.tcp.stats.rx_bad_opts == 1
    p.send(1001, r[0].seq + 1, ACK, sport=47000)
    s, _ = p.lsock.accept()
    assert s.tcb.mss == 1000
    pools_back(p)


def test_every_option_kind_and_length_is_parsed_without_error():
    """Each kind 0-255 with length bytes 0-40: no exception, every SYN answered once."""
    p = Peer()
    p.listen(backlog=1)
    n = 0
    for kind in (0, 1, 2, 3, 4, 5, 8, 30, 34, 254, 255):
        for ln in range(0, 41, 3):
            opts = bytes([kind, ln]) + bytes(range(2, 40))[:38]
            r = syn_with_options(p, opts[:40], sport=48000 + n)
            assert [x.f for x in r] == ["S."], (kind, ln)
            p.send(1000, 0, RST | ACK, sport=48000 + n)  # never mind: drop it again
            for t in list(p.tcp.conns):
                p.tcp.drop(t, 0)
            n += 1
    pools_back(p)


def test_repeated_option_counts_and_the_first_one_wins():
    """Two MSS options in one SYN: no RFC allows it; the first is used, the repeat ignored
    and counted (rx_dup_opts)."""
    p = Peer()
    p.listen()
    r = syn_with_options(p, b"\x02\x04\x03\xe8" + b"\x02\x04\x05\xb4" + b"\x03\x03\x07"
                         + b"\x03\x03\x0e")
    assert [x.f for x in r] == ["S."] and p.tcp.stats.rx_dup_opts == 2
    p.send(1001, r[0].seq + 1, ACK, sport=47000)
    s, _ = p.lsock.accept()
    assert s.tcb.mss == 1000 and s.tcb.snd_wscale == 7
    pools_back(p)


# ---- scans: SYN+FIN, Xmas, NULL, answered per state as RFC 9293 3.10.7 says ---------------------
XMAS = FIN | PSH | 0x20  # FIN, PSH, URG
NULL = 0


@pytest.mark.parametrize("flags,reply", [
    (NULL, [("R.", 0, 1000)]),               # 3.10.7.1: RST, ACK = SEG.SEQ + SEG.LEN
    (XMAS, [("R.", 0, 1001)]),               # the FIN counts
    (SYN | FIN, [("R.", 0, 1002)]),
], ids=["null", "xmas", "synfin"])
def test_scans_of_a_closed_port_get_rst(flags, reply):
    p = Peer()
    r = p.send(1000, 0, flags)
    assert [(x.f, x.seq, x.ack) for x in r] == reply
    pools_back(p)


@pytest.mark.parametrize("flags,counter", [
    (NULL, "rx_listen_no_syn"), (XMAS, "rx_listen_no_syn"), (SYN | FIN, "rx_syn_fin"),
], ids=["null", "xmas", "synfin"])
def test_scans_of_a_listener_are_dropped_silently_and_counted(flags, counter):
    """3.10.7.2: without SYN (and without ACK or RST) a segment to LISTEN is dropped; a
    SYN+FIN too (Linux): no reply tells a scanner the port is open."""
    p = Peer()
    p.listen()
    assert p.send(1000, 0, flags) == []
    assert getattr(p.tcp.stats, counter) == 1 and not p.tcp.conns
    pools_back(p)


@pytest.mark.parametrize("flags", [NULL, XMAS], ids=["null", "xmas"])
def test_scans_without_ack_in_a_synchronized_state_are_dropped(flags):
    """3.10.7.4 fifth: in-window but no ACK bit: drop (even with a FIN), state unchanged."""
    p = Peer()
    p.connect()
    assert p.send(p.seq, 0, flags) == []
    assert p.tcb().state == T.ESTABLISHED and p.tcp.stats.rx_no_ack == 1
    pools_back(p)


def test_syn_fin_in_a_synchronized_state_gets_a_challenge_ack():
    """RFC 5961 4.2: any SYN in a synchronized state draws a challenge ACK, never a reset."""
    p = Peer()
    sa = p.connect()
    r = p.send(p.seq, 0, SYN | FIN)
    assert [(x.f, x.seq, x.ack) for x in r] == [(".", sa.seq + 1, p.seq)]
    assert p.tcb().state == T.ESTABLISHED
    pools_back(p)


@pytest.mark.parametrize("flags", [NULL, XMAS], ids=["null", "xmas"])
def test_scans_in_syn_sent_are_dropped(flags):
    """3.10.7.3 fifth: neither SYN nor RST: drop."""
    p = Peer()
    s = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("192.0.2.1", PORT))
    syn = p.advance(1)[0]
    assert p.send(5000, 0, flags, sport=PORT, dport=syn.sport) == []
    assert s.tcb.state == T.SYN_SENT
    pools_back(p)


def test_cookie_math_and_the_rebuilt_connection_stay_small_ints():
    """On a 32-bit MicroPython ints from 2**30 up are heap objects: the cookie MAC works in
    16-bit lanes, and the connection rebuilt from a cookie is relative to its bases like
    any other (tcb.py) - also when the peer's ISN and TSval wrap right after the SYN."""
    from tests.unit.test_tcp_small_ints import _bad, _check_tcb, SMALL
    p = cookie_peer()
    isn = 0xFFFFFFF0
    r = p.send(isn, 0, SYN, opts=opt_bytes(mss=1460, ws=5, sackok=True, ts=(0xFFFFFFF8, 0)),
               sport=46005)
    sa = r[0]
    m = p.tcp.cookie_mac
    assert all(abs(v) < SMALL for v in m.rk + [m.x, m.y, p.tcp.cookie_at])
    seq = isn + 1
    for i in range(4):
        p.send(seq & 0xFFFFFFFF, sa.seq + 1, ACK | PSH, b"z" * 10,
               opts=opt_bytes(ts=((0xFFFFFFF9 + i) & 0xFFFFFFFF, sa.opts["ts"][0])), sport=46005)
        seq += 10
    s, _ = p.lsock.accept()
    assert s.recv(100) == b"z" * 40
    bad = []
    _check_tcb(s.tcb, "tcb", bad)
    _bad(p.tcp, [n for n in dir(p.tcp) if n.startswith("seg_") or n.startswith("opt_")],
         "tcp", bad)
    assert not bad, bad
    pools_back(p)


def test_full_connection_table_gives_connect_a_half_open_slot_then_enobufs():
    """Table policy (W5500-EVB-Pico sizes, 4 TCBs): a full table recycles the oldest
    TIME-WAIT, else forgets the oldest half-open passive connection (syn_evicted); only
    a table of real connections makes connect() fail (ENOBUFS, conn_no_tcb)."""
    p = Peer(W5500_EVB_PICO)
    p.listen(backlog=2)
    for port in (49001, 49002):
        handshake(p, port)
        p.lsock.accept()
    for port in (49003, 49004):
        assert [x.f for x in p.send(1000, 0, SYN, sport=port)] == ["S."]
    assert len(p.tcp.conns) == 4 and p.tcp.embryonic == 2
    s, e = connect_from(p)
    assert e == errno.EINPROGRESS and p.tcp.stats.syn_evicted == 1
    assert sorted(t.remote_port for t in p.tcp.conns if t.state == T.SYN_RECEIVED) == [49004]
    s2, e = connect_from(p, port=PORT + 1)
    assert e == errno.EINPROGRESS and p.tcp.stats.syn_evicted == 2 and p.tcp.embryonic == 0
    s3, e = connect_from(p, port=PORT + 2)
    assert e == errno.ENOBUFS and p.tcp.stats.conn_no_tcb == 1
    pools_back(p)


def test_cookie_mac_is_speck32_64_and_an_mss_index_rounds_down():
    """The MAC's block cipher against the Speck paper's test vector (Speck32/64: key
    1918 1110 0908 0100, plaintext 6574 694c, ciphertext a868 42f2)."""
    from ustack.core.tcp import cookie
    m = cookie.Mac(cookie.schedule(0x0100, 0x0908, 0x1110, 0x1918))
    m.block(0x6574, 0x694C)
    assert (m.x, m.y) == (0xA868, 0x42F2)
    assert [cookie.MSS_TABLE[cookie.mss_index(v)] for v in (100, 536, 1299, 1300, 1459, 9000)] \
        == [536, 536, 536, 1300, 1440, 1460]


def test_syn_flood_at_w5500_sizes_keeps_every_bound_and_an_established_connection():
    """500 SYNs from as many ports against the 4-TCB board, interleaved with data on an
    established connection: the table and the SYN queue stay within their bounds, the
    excess is answered statelessly, the connection's data keeps flowing, no buffer leaks."""
    p = Peer(W5500_EVB_PICO)
    p.listen(backlog=2)
    sa = handshake(p, 50000)
    s, _ = p.lsock.accept()
    s.setblocking(False)
    seq = 1001
    got = b""
    for i in range(500):
        p.send(100000 + i, 0, SYN, opts=opt_bytes(mss=1460), sport=1024 + i)
        assert len(p.tcp.conns) <= 4 and p.tcp.embryonic <= 2
        if i % 50 == 0:
            p.send(seq, sa.seq + 1, ACK | PSH, ("%03d" % i).encode(), sport=50000)
            seq += 3
            got += s.recv(100)
    assert got == "".join("%03d" % i for i in range(0, 500, 50)).encode()
    st = p.tcp.stats
    assert st.syncookies_sent + st.syn_evicted + st.conn_passive >= 500
    assert s.tcb.state == T.ESTABLISHED
    pools_back(p)
