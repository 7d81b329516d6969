"""TCP behaviours that are implemented but that no other test pinned down: congestion
window, NewReno recovery, socket buffer and linger options, shutdown, RFC 5961 ACK checks,
SYN-SENT replies, broadcast drops, select() readiness through the CPython runner, silly
window avoidance on both sides, configurable timers and the idle TCB footprint.

Each test names the RFC clause or documented behaviour it checks. Single-segment tests use
the Peer helper of test_tcp_segments (the test is the host, the stack answers); timing tests
use two stacks on the in-memory wire of test_tcp_states (virtual clock)."""
import errno
import struct

import pytest

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.wire import ipv4 as ip4
from tests import frames as F
from tests.unit.test_tcp_segments import Peer, raises_eagain, SYN, RST, PSH, ACK, FIN, PORT, PEER_PORT
from tests.unit.test_tcp_segments import peer  # noqa: F401,F811 (fixture)
from tests.unit.test_tcp_states import Net, connected, close_all
from tests.unit.test_tcp_states import net  # noqa: F401,F811 (fixture)

MSS = 1460 - 12  # the peer offers 1460; every segment carries a timestamp option (RFC 7323)
BIG = {"TCP_SND_BUF": 65536}


def sq(x):
    """A wire sequence number (ISNs are random: una + n may wrap)."""
    return x & 0xFFFFFFFF


def data_segs(segs):
    return [(s.seq, len(s.data)) for s in segs if s.data]


def filled(p, n=60000):
    """A connection whose stack side queued n bytes and sent its first flight: (SND.UNA,
    the data segments as (seq, len), the last segment)."""
    sa = p.connect()
    assert p.sock.send(b"d" * n) == n
    r = p.advance(1)
    d = data_segs(r)
    assert d[0][0] == sq(sa.seq + 1)
    return sa.seq + 1, d, r[-1]


class OptPeer(Peer):
    """A Peer whose listening socket gets SOL_SOCKET options before listen(), and whose
    segments offer window win (unless a call names another)."""

    def __init__(self, config=None, win=65535, **opts):
        Peer.__init__(self, config)
        self.opts = opts
        self.win = win

    def send(self, seq, ack, flags, data=b"", **kw):
        kw.setdefault("win", self.win)
        return Peer.send(self, seq, ack, flags, data, **kw)

    def listen(self, backlog=4):
        s = Peer.listen(self, backlog)
        for name, v in self.opts.items():
            s.setsockopt(so.SOL_SOCKET, getattr(so, name), v)
        s.listen(backlog)  # buffer sizes are fixed when listening (socket.py)
        return s


def active_open(p, rcvbuf=None):
    """The stack under test connects to the test's host (192.0.2.1, port 80): (socket, SYN)."""
    s = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, rcvbuf)
    s.setblocking(False)
    assert s.connect_ex((ip4.ntoa(F.HOST_IP), PORT)) == errno.EINPROGRESS
    r = p.advance(1)
    assert len(r) == 1
    return s, r[0]


# ---- RFC 5681 / RFC 6928: the congestion window limits the flight ------------------------
def test_initial_window_limits_first_flight_then_slow_start_grows_it():
    p = Peer(BIG)
    una, d, last = filled(p)
    iw = min(10 * MSS, max(2 * MSS, 14600))  # RFC 6928
    assert sum(n for _, n in d) == iw and [n for _, n in d] == [MSS] * 10
    # the peer offers 8 MB: only cwnd holds the rest back (until a tail loss probe would
    # go, RFC 8985 7.2: 2*SRTT + 2 ticks)
    assert p.advance(1) == []
    # slow start (RFC 5681 3.1): each ACK of a full segment lets two more out
    r = p.send(p.seq, una + MSS, ACK, opts=p.tsopt(last))
    assert data_segs(r) == [(sq(una + iw), MSS), (sq(una + iw + MSS), MSS)]
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(last))
    assert data_segs(r) == [(sq(una + iw + 2 * MSS), MSS), (sq(una + iw + 3 * MSS), MSS)]
    assert p.tcb().cc.window() == iw + 2 * MSS


# ---- RFC 6582: NewReno partial ACK; RFC 5681 3.1: RTO collapses cwnd ------------------------
def test_newreno_partial_ack_retransmits_next_unacked_segment():
    p = Peer(BIG)
    una, d, last = filled(p)
    replies = []
    for i in range(3):
        replies.append(p.send(p.seq, una, ACK, opts=p.tsopt(last)))
    # the first two send new data (limited transmit, RFC 3042), the third duplicate ACK: fast
    # retransmit of the first segment (RFC 5681 3.2)
    assert [data_segs(x) for x in replies] == [[(sq(una + 10 * MSS), MSS)],
                                               [(sq(una + 11 * MSS), MSS)], [(sq(una), MSS)]]
    assert p.tcp.stats.fast_retransmits == 1
    # an ACK for the first two segments, below the recovery point: a partial ACK; the next
    # unacknowledged segment goes out at once (RFC 6582 3.2 step 3). It echoes the
    # retransmission's TSval (RFC 7323 4.3): the original's would say nothing was lost (RFC
    # 3522, tests/unit/test_tcp_undo.py)
    rtx = replies[2][-1]
    r = p.send(p.seq, una + 2 * MSS, ACK, opts=p.tsopt(rtx))
    assert data_segs(r) == [(sq(una + 2 * MSS), MSS)]
    assert p.tcp.stats.partial_acks == 1 and p.tcp.stats.tx_retransmits == 2
    # the full ACK (everything sent before recovery) ends it, cwnd deflated to <= ssthresh,
    # which left the limited-transmit segments out of FlightSize (RFC 5681 3.2 step 2)
    p.send(p.seq, una + 12 * MSS, ACK, opts=p.tsopt(r[-1]))
    cc = p.tcb().cc
    assert not cc.in_recovery and cc.ssthresh == 5 * MSS and cc.window() <= cc.ssthresh


def test_rto_collapses_cwnd_to_one_segment_and_halves_ssthresh():
    p = Peer(dict(BIG, TCP_TLP=False))  # no tail loss probe first (RFC 8985)
    una, d, last = filled(p)
    rto = p.tcb().rto
    assert rto == p.stack.config["TCP_RTO_MIN_MS"]
    assert p.advance(rto - 2) == []
    r = p.advance(5)
    # RFC 5681 3.1: loss window of one segment; ssthresh = max(FlightSize/2, 2*SMSS)
    assert data_segs(r) == [(sq(una), MSS)]
    cc = p.tcb().cc
    assert cc.window() == MSS and cc.ssthresh == 10 * MSS // 2
    assert p.tcp.stats.rto_expired == 1
    # slow start again: the ACK of that segment lets two out
    r = p.send(p.seq, una + MSS, ACK, opts=p.tsopt(r[-1]))
    assert data_segs(r) == [(sq(una + MSS), MSS), (sq(una + 2 * MSS), MSS)]


# ---- SO_RCVBUF / SO_SNDBUF -----------------------------------------------------------------
def test_so_rcvbuf_sets_the_window_in_synack_and_after():
    p = OptPeer(SO_RCVBUF=2048)
    sa = p.connect()
    assert sa.win == 2048 and sa.opts["ws"] == 0  # a SYN's window is never scaled
    r = p.send(p.seq, sa.seq + 1, ACK | PSH, b"x" * 1000, opts=p.tsopt(sa))
    p.seq += 1000
    r += p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [(s.f, s.ack, s.win) for s in r] == [(".", p.seq, 2048 - 1000)]
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == 2048


def test_so_rcvbuf_sets_syn_window_and_scale_of_active_open_and_is_clamped():
    p = Peer()
    s, syn = active_open(p, rcvbuf=3000)
    assert syn.f == "S" and syn.win == 3000 and syn.opts["ws"] == 0
    s2, syn = active_open(p, rcvbuf=100)  # below 1 KiB: raised to 1024 (socket.py _bufsize)
    assert syn.win == 1024 and s2.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == 1024
    s3, syn = active_open(p, rcvbuf=1 << 18)  # 256 KiB: window scaling carries it (RFC 7323)
    assert syn.win == 0xFFFF and syn.opts["ws"] == 3


def test_so_sndbuf_bounds_what_send_accepts():
    p = OptPeer(SO_SNDBUF=2048)
    p.connect()
    assert p.sock.send(b"a" * 10000) == 2048  # non-blocking: the part that fits
    with raises_eagain():
        p.sock.send(b"a")
    assert not p.sock.writable()
    # a small value is raised to 1 KiB (socket.py _bufsize)
    p2 = OptPeer(SO_SNDBUF=10)
    p2.connect()
    assert p2.sock.send(b"a" * 10000) == 1024


def test_writable_again_only_once_a_third_of_the_send_buffer_is_free():
    # Linux (tcp_poll, sk_stream_is_writeable): POLLOUT once the free space is at least half
    # of what is queued, so a writer that waits for it gets room for a worthwhile chunk
    # instead of being woken for every acknowledged segment (uiperf3's end-of-test loop
    # "send while writable" never ended on a big buffer that a reader kept draining)
    p = OptPeer(SO_SNDBUF=3000)
    sa = p.connect()
    una = sa.seq + 1
    cap = p.sock.tcb.snd.cap
    assert p.sock.send(b"a" * 10000) == cap
    last = [s for s in p.advance(1) if s.data][-1]
    assert not p.sock.writable()
    k = cap // 6
    p.send(p.seq, sq(una + k), ACK, opts=p.tsopt(last))  # free k, queued cap - k
    assert not p.sock.writable()
    assert p.sock.send(b"b" * 10000) == k  # but what fits is still taken, as on Linux
    p.send(p.seq, sq(una + 2 * k), ACK, opts=p.tsopt(last))
    assert not p.sock.writable()
    third = cap - (cap * 2) // 3
    p.send(p.seq, sq(una + k + third), ACK, opts=p.tsopt(last))  # free >= queued / 2
    assert p.sock.writable()


# ---- SO_LINGER with a timeout --------------------------------------------------------------
def read_to_eof(s):
    got = b""
    while True:
        d = s.recv(10000)
        if not d:
            return got
        got += d


def linger(sock, secs):
    sock.setsockopt(so.SOL_SOCKET, so.SO_LINGER, struct.pack("ii", 1, secs))


def test_linger_close_waits_until_data_and_fin_are_acked(net):
    c, s = connected(net)
    linger(c, 5)
    ct = c.tcb
    c.send(b"q" * 5000)
    t0 = net.t
    c.close()  # blocking: returns once the FIN is acknowledged, well before 5 s
    assert ct.state == T.FIN_WAIT_2 and ct.flags & T.F_FIN_ACKED
    assert 0 < net.t - t0 < 1000
    assert [x[2] for x in net.segs("a") if "R" in x[2]] == []  # orderly: FIN, no RST
    got = read_to_eof(s)
    assert got == b"q" * 5000


def test_linger_close_returns_after_the_timeout_and_the_orphan_finishes_the_close(net):
    c, s = connected(net)
    linger(c, 2)
    ct = c.tcb
    net.drop_b = lambda seg: True  # the peer goes quiet: nothing is acknowledged
    c.send(b"q" * 3000)
    t0 = net.t
    c.close()
    assert 2000 <= net.t - t0 <= 2005  # waited the linger time (virtual clock), no more
    # socket.py: the connection is then left to the stack, still closing in order
    assert ct.state == T.FIN_WAIT_1 and ct.sock is None and ct in net.a.tcp.conns
    assert net.a.tcp.stats.tx_rst == 0 and net.a.tcp.stats.tx_retransmits > 0
    net.drop_b = None  # the peer is back: data then FIN arrive, the orphan completes
    s.setblocking(True)
    got = read_to_eof(s)
    assert got == b"q" * 3000
    net.jump(10 ** 5, lambda: ct.state == T.FIN_WAIT_2)
    assert ct.state == T.FIN_WAIT_2


# ---- shutdown --------------------------------------------------------------------------------
def test_shut_rd_reads_eof_and_later_data_is_acked_and_discarded(peer):
    """socket.py/input.py document BSD behaviour: unread and later data are discarded (but
    acknowledged, window kept open). Linux would still deliver them."""
    sa = peer.connect()
    una = sa.seq + 1
    peer.send(peer.seq, una, ACK | PSH, b"before", opts=peer.tsopt(sa))
    peer.seq += 6
    peer.sock.shutdown(so.SHUT_RD)
    assert peer.sock.recv(10) == b""
    assert peer.sock.readable()
    r = peer.send(peer.seq, una, ACK | PSH, b"after", opts=peer.tsopt(sa))
    peer.seq += 5
    win = peer.stack.config["TCP_RCV_BUF"]
    assert [(s.f, s.ack, s.win) for s in r] == [(".", peer.seq, win)]
    assert peer.sock.recv(10) == b""
    assert peer.tcb().state == T.ESTABLISHED  # the other direction is untouched
    peer.sock.send(b"reply")
    assert [s.data for s in peer.advance(1)] == [b"reply"]


def test_shut_rdwr_sends_fin_then_send_is_epipe_and_recv_is_eof(peer):
    sa = peer.connect()
    peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"unread", opts=peer.tsopt(sa))
    peer.seq += 6
    peer.sock.shutdown(so.SHUT_RDWR)
    r = peer.advance(1)
    assert [(s.f, s.seq) for s in r] == [("F.", sq(sa.seq + 1))]
    assert peer.tcb().state == T.FIN_WAIT_1
    assert peer.sock.recv(10) == b""  # as Python's socket does after SHUT_RDWR
    with pytest.raises(OSError) as e:
        peer.sock.send(b"x")
    assert e.value.errno == errno.EPIPE


# ---- RFC 5961 5.2: ACKs older than SND.UNA - MAX.SND.WND -----------------------------------
def test_ack_older_than_max_window_gets_challenge_ack_and_is_dropped():
    p = OptPeer(win=20000)
    sa = p.connect(ws=None)  # unscaled windows
    assert p.tcb().max_sndwnd == 20000
    p.win = maxwnd = 40000  # a later, larger offer: MAX.SND.WND is the largest ever seen
    una = sa.seq + 1
    total = 0
    while total < maxwnd + 5000:  # move SND.UNA more than MAX.SND.WND past the ISS
        assert p.sock.send(b"z" * (7 * MSS)) == 7 * MSS  # full segments: no Nagle hold
        r = p.advance(1)
        assert sum(n for _, n in data_segs(r)) == 7 * MSS
        total += 7 * MSS
        p.send(p.seq, una + total, ACK, opts=p.tsopt(r[-1]))
    una += total
    assert p.tcb().max_sndwnd == maxwnd
    # SND.UNA - MAX.SND.WND <= SEG.ACK: an old duplicate, acceptable, its data accepted
    r = p.send(p.seq, una - maxwnd, ACK | PSH, b"ok", opts=p.tsopt(sa))
    p.seq += 2
    assert p.tcp.stats.rx_ack_too_old == 0 and p.sock.recv(10) == b"ok"
    p.advance(300)
    # older than that (RFC 5961 5.2): challenge ACK, segment dropped (data not delivered)
    r = p.send(p.seq, una - maxwnd - 1, ACK | PSH, b"no", opts=p.tsopt(sa))
    assert [(s.f, s.seq, s.ack) for s in r] == [(".", sq(una), p.seq)]
    assert p.tcp.stats.rx_ack_too_old == 1 and p.tcp.stats.challenge_acks == 1
    with raises_eagain():
        p.sock.recv(10)


# ---- RFC 9293 3.10.7.3: SYN-SENT -------------------------------------------------------------
def test_synack_with_unacceptable_ack_gets_rst_from_its_ack():
    p = Peer()
    s, syn = active_open(p)
    lport = syn.sport
    for bad in (sq(syn.seq + 1000), syn.seq):  # beyond SND.NXT, and not above our ISS
        r = p.send(5000, bad, SYN | ACK, sport=PORT, dport=lport)
        assert [(x.f, x.seq) for x in r] == [("R", bad)]
    assert p.tcp.stats.rx_bad_synack == 2
    assert s.tcb.state == T.SYN_SENT
    # the real SYN-ACK still completes the handshake
    r = p.send(5000, syn.seq + 1, SYN | ACK, sport=PORT, dport=lport)
    assert [(x.f, x.seq, x.ack) for x in r] == [(".", sq(syn.seq + 1), 5001)]
    assert s.tcb.state == T.ESTABLISHED
    s.close()


def test_rst_without_ack_in_syn_sent_is_ignored():
    p = Peer()
    s, syn = active_open(p)
    assert p.send(0, 0, RST, sport=PORT, dport=syn.sport) == []
    assert s.tcb.state == T.SYN_SENT and p.tcp.stats.rx_rst_bad_ack == 1
    assert p.tcp.stats.conn_refused == 0
    # a RST that acknowledges our SYN refuses the connection
    p.send(0, syn.seq + 1, RST | ACK, sport=PORT, dport=syn.sport)
    assert s.tcb.state == T.CLOSED and p.tcp.stats.conn_refused == 1
    assert s.connect_ex((ip4.ntoa(F.HOST_IP), PORT)) == errno.ECONNREFUSED
    s.close()


# ---- RFC 1122 4.2.3.10: no TCP to broadcast addresses ----------------------------------------
def test_segments_to_broadcast_addresses_are_dropped_silently(peer):
    peer.listen()

    def syn_to(dst):
        t = F.tcp(F.HOST_IP, dst, PEER_PORT, PORT, 1000, 0, SYN)
        return F.eth(b"\xff" * 6, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, dst, 6, t))
    assert peer.fed.feed(syn_to(bytes([192, 0, 2, 255]))) == []  # subnet-directed
    assert peer.fed.feed(syn_to(b"\xff\xff\xff\xff")) == []  # limited broadcast
    assert peer.fed.counters()["tcp.rx_bcast"] == 2
    assert not peer.tcp.conns
    assert [s.f for s in peer.send(1000, 0, SYN)] == ["S."]  # the same SYN, unicast


# ---- RFC 9293 3.8.6.2: silly window syndrome avoidance ---------------------------------------
def test_sender_holds_a_tiny_window_limited_segment_until_the_persist_timer():
    """3.8.6.2.1: with Nagle on, send only if a full segment fits or at least half the
    largest window the peer ever offered; the persist timer overrides (timers.py)."""
    p = Peer(BIG)
    sa = p.connect(ws=None)
    assert p.sock.getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY) == 0
    p.sock.send(b"s" * 20000)
    r = p.advance(1)
    d = data_segs(r)
    una = sa.seq + 1
    sent = sum(n for _, n in d)
    assert d[0][0] == sq(una) and 0 < sent < 20000
    # everything acknowledged, but the window shrinks to 1000 bytes (< MSS, < 65535/2)
    r = p.send(p.seq, una + sent, ACK, win=1000, opts=p.tsopt(r[-1]))
    assert data_segs(r) == []
    rto = p.tcb().rto
    assert data_segs(p.advance(rto - 1)) == []
    assert data_segs(p.advance(2)) == [(sq(una + sent), 1000)]
    assert p.tcp.stats.persist_probes == 1


@pytest.mark.parametrize("buf", [4096, 2048])  # step = MSS, then step = half the buffer
def test_receiver_opens_its_window_only_in_steps_of_min_mss_half_buffer(buf):
    """3.8.6.2.2: the window advertised stays shut until min(MSS, RCV.BUFF/2) is free."""
    p = Peer({"TCP_RCV_BUF": buf})
    sa = p.connect(ws=None)
    una = sa.seq + 1
    step = min(MSS, buf // 2)
    for i in range(buf // 1024):
        p.send(p.seq, una, ACK, b"x" * 1024, opts=p.tsopt(sa))
        p.seq += 1024
    r = p.advance(300)
    assert r[-1].win == 0

    def probe_win():
        r = p.send(p.seq - 1, una, ACK, opts=p.tsopt(sa))
        assert len(r) == 1
        return r[0].win
    assert len(p.sock.recv(step - 100)) == step - 100
    assert p.advance(1) == []  # no window update for less than a step
    assert probe_win() == 0  # nor in any other segment
    p.sock.recv(200)  # now step + 100 bytes are free: an update at once
    r = p.advance(1)
    assert [(s.f, s.win) for s in r] == [(".", step + 100)]
    p.sock.recv(100)
    assert p.advance(1) == [] and probe_win() == step + 100


def test_a_small_read_after_the_handshake_sends_no_update_for_the_syns_unscaled_window():
    """The SYN-ACK offers at most 65535 unscaled (RFC 7323 2.2), so a 1 MB buffer leaves
    the peer a window far below what is free; that gap is no read's doing. A read sends an
    update only when it is the one that makes the window worth one: a 1-byte read does not,
    and the delayed ACK covers the peer's next segment too (Linux's interop test:
    tests/interop/test_linux_tcp_rfc_details.py)."""
    p = Peer({"TCP_RCV_BUF": 1 << 20, "TCP_DELACK_MS": 200})
    sa = p.connect()
    una = sa.seq + 1
    assert sa.win == 65535
    assert p.send(p.seq, una, ACK | PSH, b"a", opts=p.tsopt(sa)) == []
    p.seq += 1
    assert p.sock.recv(10) == b"a"
    assert p.advance(1) == []   # no window update for the 1 byte read
    assert p.send(p.seq, una, ACK | PSH, b"b", opts=p.tsopt(sa)) == []
    p.seq += 1
    r = p.advance(200)
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]   # one delayed ACK for both
    assert r[0].win << p.tcb().rcv_wscale >= (1 << 20) - 1024   # the whole buffer


# ---- configuration knobs -----------------------------------------------------------------------
def test_delayed_ack_timeout_follows_tcp_delack_ms():
    p = Peer({"TCP_DELACK_MS": 499})  # RFC 9293 3.8.6.3: under 0.5 s
    sa = p.connect()
    assert p.send(p.seq, sa.seq + 1, ACK | PSH, b"a" * 100, opts=p.tsopt(sa)) == []
    p.seq += 100
    assert p.advance(498) == []
    assert [(s.f, s.ack) for s in p.advance(1)] == [(".", p.seq)]


def test_time_wait_lasts_twice_tcp_msl_ms():
    p = Peer({"TCP_MSL_MS": 5000})
    sa = p.connect()
    una = sa.seq + 1
    p.sock.close()
    fin = p.advance(1)[0]
    assert fin.f == "F."
    p.send(p.seq, una + 1, ACK | FIN, opts=p.tsopt(fin))
    p.seq += 1
    t = p.tcp.conns[0]
    assert t.state == T.TIME_WAIT
    p.advance(2 * 5000 - 10)
    assert p.tcp.conns == [t]
    p.advance(1024 + 20)  # expiries are rounded up to 1024 ms ticks
    assert not p.tcp.conns


def test_retransmission_backoff_is_capped_at_tcp_rto_max_ms():
    n = Net({"TCP_RTO_MAX_MS": 60000, "TCP_MAX_RETRIES": 11})  # RFC 6298 2.5: >= 60 s
    c, s = connected(n)
    n.jump(10)
    rto = c.tcb.rto
    assert rto == 200
    n.drop_a = lambda seg: seg[3] > 0
    t0 = n.t
    c.send(b"lost")
    ct = c.tcb
    n.jump(10 ** 6, lambda: ct.state == T.CLOSED)
    sends = [x[0] for x in n.segs("a", t0) if x[5] > 0]
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert gaps == [200 << i for i in range(9)] + [60000, 60000]  # RFC 6298 5.5, the ceiling
    assert n.a.tcp.stats.conn_timeout == 1
    close_all(n)


# ---- buffers only while they hold data -------------------------------------------------------
def test_no_memory_for_arriving_bytes_drops_them_unacknowledged_until_memory_returns(net):
    """A receiver whose heap cannot give the receive buffer right now drops the segment
    without ACKing it (counted as no_memory); the sender's retransmission gets through later.
    A sender without memory for its buffer gets ENOBUFS, like a BSD socket."""
    c, s = connected(net)
    pool = net.b.tcp.rings
    take = pool.take
    pool.take = lambda size: None
    c.sendall(b"hello")
    net.jump(100)
    assert net.b.tcp.stats.no_memory >= 1 and c.tcb.snd_una != c.tcb.snd_max
    pool.take = take
    net.jump(3000)                               # the RTO resends it
    assert s.recv(10) == b"hello" and c.tcb.snd_una == c.tcb.snd_max
    net.a.tcp.rings.take = lambda size: None
    with pytest.raises(OSError) as e:
        c.send(b"more")
    assert e.value.errno == errno.ENOBUFS
    close_all(net)
