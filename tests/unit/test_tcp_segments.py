"""TCP, one segment at a time: feed a crafted segment to a stack, assert the exact reply.
Each test names the RFC clause it checks."""
import errno
import struct

import pytest


class raises_eagain:
    """pytest.raises(BlockingIOError), also where (MicroPython) EAGAIN is a plain OSError."""

    def __enter__(self):
        return self

    def __exit__(self, t, v, tb):
        assert t is not None and issubclass(t, OSError) and v.errno == errno.EAGAIN, \
            "expected EAGAIN"
        return True

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.tcp.seq import wire_value
from ustack.core.wire import tcp as w
from tests import frames as F
from tests.feed import Fed
from tests.unit_ref import csum

PEER_PORT = 40000
PORT = 80
FIN, SYN, RST, PSH, ACK = w.FIN, w.SYN, w.RST, w.PSH, w.ACK_F


class Seg:
    def __init__(self, frame):
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        t = ip[ihl:(ip[2] << 8 | ip[3])]
        self.sport, self.dport, self.seq, self.ack, off, self.flags, self.win = \
            struct.unpack("!HHIIBBH", t[:16])
        hl = (off >> 4) * 4
        self.data = bytes(t[hl:])
        self.opts = {}
        o = t[20:hl]
        i = 0
        while i < len(o):
            k = o[i]
            if k == 0:
                break
            if k == 1:
                i += 1
                continue
            ln = o[i + 1]
            v = o[i + 2:i + ln]
            if k == 2:
                self.opts["mss"] = struct.unpack("!H", v)[0]
            elif k == 3:
                self.opts["ws"] = v[0]
            elif k == 4:
                self.opts["sackok"] = True
            elif k == 8:
                self.opts["ts"] = struct.unpack("!II", v)
            elif k == 5:
                self.opts["sack"] = [struct.unpack("!II", v[j:j + 8]) for j in range(0, len(v), 8)]
            i += ln
        ph = F.STACK_IP + F.HOST_IP + struct.pack("!BBH", 0, 6, len(t))
        assert csum(ph + t) == 0xFFFF, "bad TCP checksum in the stack's segment"

    @property
    def f(self):
        return w.flag_names(self.flags)

    def __repr__(self):
        return "<%s seq=%d ack=%d win=%d len=%d %r>" % (self.f, self.seq, self.ack, self.win,
                                                        len(self.data), self.opts)


def opt_bytes(mss=None, ws=None, sackok=False, ts=None):
    o = b""
    if mss is not None:
        o += struct.pack("!BBH", 2, 4, mss)
    if sackok:
        o += b"\x04\x02"
    if ts is not None:
        o += struct.pack("!BBII", 8, 10, ts[0], ts[1])
    if ws is not None:
        o += struct.pack("!BBB", 3, 3, ws)
    while len(o) % 4:
        o += b"\x01"
    return o


def tcp_frame(seq, ack, flags, data=b"", win=65535, opts=b"", sport=PEER_PORT, dport=PORT):
    hl = 20 + len(opts)
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                    (hl // 4) << 4, flags, win, 0, 0) + opts + data
    ph = F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 6, len(h))
    c = ~csum(ph + h) & 0xFFFF
    h = h[:16] + struct.pack("!H", c) + h[18:]
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 6, h))


class Peer:
    """The test's side of one connection to the stack under test."""

    def __init__(self, config=None, mtu=1500):
        self.fed = Fed(config)
        if mtu != 1500:
            self.fed.iface.mtu = mtu
        self.stack = self.fed.stack
        self.tcp = self.stack.tcp
        self.seq = 1000  # our next sequence number
        self.ts = 100
        self.sock = None
        self.lsock = None

    def send(self, seq, ack, flags, data=b"", **kw):
        out = self.fed.feed(tcp_frame(seq, ack, flags, data, **kw))
        return [Seg(f) for f in out if f[12:14] == b"\x08\x00" and f[23] == 6]

    def advance(self, ms):
        out = []
        end = self.fed.t + ms
        while self.fed.t < end:
            self.fed.advance(1)
            out += self.fed.drv.tx
            self.fed.drv.tx.clear()
        return [Seg(f) for f in out if f[12:14] == b"\x08\x00" and f[23] == 6]

    def listen(self, backlog=4):
        s = self.stack.socket(so.AF_INET, so.SOCK_STREAM)
        s.bind(("", PORT))
        s.listen(backlog)
        s.setblocking(False)
        self.lsock = s
        return s

    def connect(self, ts=True, ws=7, sack=True):
        """Handshake with a listening stack; returns the SYN-ACK."""
        self.listen()
        opts = opt_bytes(mss=1460, ws=ws, sackok=sack, ts=(self.ts, 0) if ts else None)
        r = self.send(self.seq, 0, SYN, opts=opts)
        assert len(r) == 1 and r[0].f == "S."
        sa = r[0]
        self.seq += 1
        self.rnxt = sa.seq + 1
        r = self.send(self.seq, self.rnxt, ACK, opts=self.tsopt(sa))
        assert r == []
        self.sock, _ = self.lsock.accept()
        self.sock.setblocking(False)
        return sa

    def tsopt(self, last=None, val=None):
        if "ts" not in getattr(last, "opts", {"ts": 0}) and last is not None:
            return b""
        self.ts += 1
        ecr = last.opts["ts"][0] if last is not None else 0
        return opt_bytes(ts=(val if val is not None else self.ts, ecr))

    def tcb(self):
        return self.sock.tcb


@pytest.fixture
def peer():
    p = Peer()
    yield p
    for s in list(p.stack.sockets):
        s.close()
    p.advance(5)
    p.tcp.conns and [p.tcp.drop(t, 0) for t in list(p.tcp.conns)]
    assert p.stack.pool.full(), "packet buffers leaked"


# ---- RFC 9293 3.10.7.1: CLOSED ---------------------------------------------------------------
def test_syn_to_closed_port_gets_rst_ack(peer):
    r = peer.send(1000, 0, SYN)
    assert [(s.f, s.seq, s.ack, s.sport, s.dport) for s in r] == [("R.", 0, 1001, PORT, PEER_PORT)]
    assert peer.tcp.stats.rx_no_conn == 1 and peer.tcp.stats.tx_rst == 1


def test_ack_to_closed_port_gets_rst_with_seq_from_ack(peer):
    r = peer.send(5, 777, ACK, b"abc")
    assert [(s.f, s.seq) for s in r] == [("R", 777)]


def test_fin_with_data_to_closed_port_rst_acks_all_of_it(peer):
    r = peer.send(5, 0, FIN | PSH, b"abcd")
    assert [(s.f, s.seq, s.ack) for s in r] == [("R.", 0, 5 + 4 + 1)]


def test_rst_to_closed_port_gets_nothing(peer):
    assert peer.send(5, 0, RST) == []
    assert peer.tcp.stats.rx_no_conn == 1 and peer.tcp.stats.tx_rst == 0


def test_bad_checksum_is_dropped_and_counted(peer):
    f = bytearray(tcp_frame(1000, 0, SYN))
    f[-1] ^= 0xFF
    assert peer.fed.feed(bytes(f)) == []
    assert peer.tcp.stats.rx_bad_csum == 1


# ---- RFC 9293 3.10.7.2: LISTEN -----------------------------------------------------------------
def test_syn_to_listener_gets_synack_with_negotiated_options(peer):
    sa = peer.connect()
    assert sa.ack == 1001
    assert sa.opts["mss"] == 1460 and sa.opts["sackok"] and sa.opts["ts"][1] == 100
    assert sa.opts["ws"] == peer.tcp.wscale_for(peer.stack.config["TCP_RCV_BUF"])
    t = peer.tcb()
    assert t.state == T.ESTABLISHED and t.flags & T.F_TS and t.flags & T.F_SACK
    assert t.snd_wscale == 7 and t.mss == 1460 - 12


def test_syn_without_options_gets_only_mss_and_defaults_to_536(peer):
    peer.listen()
    r = peer.send(1000, 0, SYN)
    assert r[0].f == "S." and set(r[0].opts) == {"mss"}
    peer.send(1001, r[0].seq + 1, ACK)
    s, _ = peer.lsock.accept()
    assert s.tcb.mss == 536 and s.tcb.snd_wscale == 0 and s.tcb.rcv_wscale == 0


def test_synack_mss_is_clamped_to_interface_mtu():
    p = Peer(mtu=1000)
    p.listen()
    r = p.send(1000, 0, SYN, opts=opt_bytes(mss=1460))
    assert r[0].opts["mss"] == 960  # RFC 9293 3.7.1: MTU - 40
    p.send(1001, r[0].seq + 1, ACK)
    s, _ = p.lsock.accept()
    assert s.tcb.mss == 960
    s.close()


def test_ack_to_listener_gets_rst(peer):
    peer.listen()
    r = peer.send(1000, 4242, ACK)
    assert [(s.f, s.seq) for s in r] == [("R", 4242)]
    assert peer.tcp.stats.rx_listen_ack == 1


def test_rst_to_listener_is_ignored(peer):
    peer.listen()
    assert peer.send(1000, 0, RST) == []


def test_syn_queue_is_bounded_and_excess_syns_get_stateless_cookies():
    """RFC 4987 3.6: beyond TCP_SYN_QUEUE half-open connections a SYN is answered with a
    SYN cookie and nothing is kept."""
    p = Peer({"TCP_SYN_QUEUE": 2})
    p.listen(backlog=4)
    replies = []
    for i in range(4):
        replies += p.send(1000, 0, SYN, sport=41000 + i)
    assert [s.f for s in replies] == ["S.", "S.", "S.", "S."]
    assert p.tcp.stats.syn_queue_full == 2 and p.tcp.stats.syncookies_sent == 2
    assert len(p.tcp.conns) == 2
    p.lsock.close()
    assert not p.tcp.conns


def test_without_cookies_a_full_syn_queue_forgets_its_oldest_half_open_connection():
    p = Peer({"TCP_SYN_QUEUE": 2, "TCP_SYNCOOKIES": False})
    p.listen(backlog=4)
    replies = []
    for i in range(4):
        replies += p.send(1000, 0, SYN, sport=41000 + i)
    assert [s.f for s in replies] == ["S.", "S.", "S.", "S."]
    assert p.tcp.stats.syn_queue_full == 2 and p.tcp.stats.syn_evicted == 2
    assert sorted(t.remote_port for t in p.tcp.conns) == [41002, 41003]
    p.lsock.close()
    assert not p.tcp.conns


def test_isn_is_not_a_counter(peer):
    peer.listen()
    isns = [peer.send(1000, 0, SYN, sport=41000 + i)[0].seq for i in range(3)]
    d1 = (isns[1] - isns[0]) & 0xFFFFFFFF
    d2 = (isns[2] - isns[1]) & 0xFFFFFFFF
    assert d1 != d2 and len(set(isns)) == 3  # RFC 6528: keyed hash of the 4-tuple + clock
    # same 4-tuple later: ISN advanced by the 4 us clock (250 per ms)
    a = peer.tcp.isn(b"\1\2\3\4", 1, b"\5\6\7\x08", 2)
    peer.stack.now += 1000
    b = peer.tcp.isn(b"\1\2\3\4", 1, b"\5\6\7\x08", 2)
    assert (b - a) & 0xFFFFFFFF == 250000


# ---- synchronized states: RFC 5961 -----------------------------------------------------------
def test_rst_with_exact_sequence_resets_connection(peer):
    peer.connect()
    assert peer.send(peer.seq, 0, RST) == []
    assert peer.tcb().state == T.CLOSED
    with pytest.raises(OSError) as e:
        peer.sock.recv(10)
    assert e.value.errno == errno.ECONNRESET


def test_rst_out_of_window_gets_challenge_ack(peer):
    """RFC 5961 3.2: a RST inside the window but not at RCV.NXT draws a challenge ACK."""
    sa = peer.connect()
    r = peer.send(peer.seq + 100, 0, RST)
    assert [(s.f, s.seq, s.ack) for s in r] == [(".", sa.seq + 1, peer.seq)]
    assert peer.tcb().state == T.ESTABLISHED
    assert peer.tcp.stats.challenge_acks == 1


def test_rst_outside_window_is_silently_dropped(peer):
    peer.connect()
    assert peer.send(peer.seq + 10 ** 7, 0, RST) == []
    assert peer.send(peer.seq - 10, 0, RST) == []
    assert peer.tcb().state == T.ESTABLISHED
    assert peer.tcp.stats.rx_rst_out_of_window == 2


def test_syn_in_established_gets_challenge_ack(peer):
    sa = peer.connect()
    r = peer.send(peer.seq + 5, 0, SYN)
    assert [(s.f, s.seq, s.ack) for s in r] == [(".", sa.seq + 1, peer.seq)]
    assert peer.tcb().state == T.ESTABLISHED and peer.tcp.stats.rx_syn_in_window == 1


def test_challenge_acks_are_rate_limited_per_second(peer):
    peer.connect()
    lim = peer.stack.config["TCP_CHALLENGE_ACK_LIMIT"]
    n = sum(len(peer.send(peer.seq + 100 + i, 0, RST)) for i in range(lim + 5))
    assert n == lim and peer.tcp.stats.challenge_acks_limited == 5
    peer.advance(1001)
    assert len(peer.send(peer.seq + 100, 0, RST)) == 1


def test_ack_for_unsent_data_gets_ack_and_is_dropped(peer):
    sa = peer.connect()
    r = peer.send(peer.seq, sa.seq + 1 + 5000, ACK | PSH, b"data", opts=peer.tsopt(sa))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]
    assert peer.tcp.stats.rx_ack_unsent == 1
    with raises_eagain():
        peer.sock.recv(10)


# ---- RFC 7323 ---------------------------------------------------------------------------------
def test_paws_drops_old_timestamp(peer):
    sa = peer.connect()
    r = peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"new", opts=peer.tsopt(sa))
    assert peer.sock.recv(10) == b"new"
    peer.seq += 3
    r = peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"old", opts=peer.tsopt(sa, val=50))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]  # RFC 7323 5.3 R1: ACK, drop
    assert peer.tcp.stats.rx_paws == 1
    with raises_eagain():
        peer.sock.recv(10)


def test_timestamps_echoed_and_ts_recent_tracks_in_order_segments(peer):
    sa = peer.connect()
    peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"x" * 10, opts=peer.tsopt(sa, val=5000))
    t = peer.tcb()
    assert wire_value(t.ts_recent, t.tsr_hi, t.tsr_lo) == 5000  # kept relative (tcb.py)
    peer.sock.send(b"hello")
    r = peer.advance(1)
    assert r[0].data == b"hello" and r[0].opts["ts"][1] == 5000


# ---- data, windows, acknowledgments ------------------------------------------------------------
def test_data_is_acked_after_delay_or_on_second_full_segment(peer):
    sa = peer.connect()
    una = sa.seq + 1
    assert peer.send(peer.seq, una, ACK, b"a" * 100, opts=peer.tsopt(sa)) == []
    peer.seq += 100
    r = peer.advance(peer.stack.config["TCP_DELACK_MS"] + 1)
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]  # RFC 1122 4.2.3.2: <= 200 ms
    mss = peer.tcb().mss
    assert peer.send(peer.seq, una, ACK, b"b" * mss, opts=peer.tsopt(sa)) == []
    peer.seq += mss
    r = peer.send(peer.seq, una, ACK, b"c" * mss, opts=peer.tsopt(sa))
    peer.seq += mss
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]  # every second full segment


def test_out_of_window_data_gets_ack(peer):
    sa = peer.connect()
    r = peer.send(peer.seq + 10 ** 6, sa.seq + 1, ACK, b"zz", opts=peer.tsopt(sa))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]
    assert peer.tcp.stats.rx_out_of_window == 1


def test_out_of_order_segment_gets_dup_ack_with_sack_then_delivered_in_order(peer):
    sa = peer.connect()
    una = sa.seq + 1
    r = peer.send(peer.seq + 5, una, ACK, b"world", opts=peer.tsopt(sa))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]
    assert r[0].opts["sack"] == [(peer.seq + 5, peer.seq + 10)]  # RFC 2018
    with raises_eagain():
        peer.sock.recv(10)
    r = peer.send(peer.seq, una, ACK, b"hello", opts=peer.tsopt(sa))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq + 10)]  # hole filled: ACK at once
    assert "sack" not in r[0].opts
    assert peer.sock.recv(100) == b"helloworld"
    assert peer.tcp.stats.rx_ooo == 1


def test_overlapping_and_duplicate_segments_deliver_each_byte_once(peer):
    sa = peer.connect()
    una = sa.seq + 1
    s0 = peer.seq
    data = bytes(range(60))
    peer.send(s0 + 40, una, ACK, data[40:60], opts=peer.tsopt(sa))
    peer.send(s0 + 20, una, ACK, data[20:50], opts=peer.tsopt(sa))
    peer.send(s0 + 10, una, ACK, data[10:25], opts=peer.tsopt(sa))
    peer.send(s0, una, ACK, data[0:15], opts=peer.tsopt(sa))
    peer.send(s0, una, ACK, data[0:15], opts=peer.tsopt(sa))
    assert peer.sock.recv(100) == data
    t = peer.tcb()
    assert wire_value(t.rcv_nxt, t.irs_hi, t.irs_lo) == (s0 + 60) & 0xFFFFFFFF


def test_zero_window_then_probe_answered_then_window_update_on_read():
    p = Peer({"TCP_RCV_BUF": 4096})
    sa = p.connect(ws=None)
    una = sa.seq + 1
    for i in range(4):
        p.send(p.seq, una, ACK, b"x" * 1024, opts=p.tsopt(sa))
        p.seq += 1024
    r = p.advance(300)
    assert r[-1].win == 0 and r[-1].ack == p.seq
    # window probe (one byte below the window): answered with the current (zero) window
    r = p.send(p.seq - 1, una, ACK, opts=p.tsopt(sa))
    assert [(s.f, s.ack, s.win) for s in r] == [(".", p.seq, 0)]
    # data beyond a zero window is not accepted
    r = p.send(p.seq, una, ACK, b"y", opts=p.tsopt(sa))
    assert [(s.ack, s.win) for s in r] == [(p.seq, 0)]
    p.sock.recv(100)  # less than min(buffer/2, MSS) freed: no update (RFC 9293 3.8.6.2.2)
    assert p.advance(1) == []
    p.sock.recv(4000)
    r = p.advance(1)
    assert [(s.f, s.win) for s in r] == [(".", 4096)]
    p.sock.close()


def test_time_wait_ignores_rst_rfc1337(peer):
    sa = peer.connect()
    una = sa.seq + 1
    peer.sock.close()  # active close: FIN
    r = peer.advance(1)
    assert [(s.f, s.seq) for s in r] == [("F.", una)]
    peer.send(peer.seq, una + 1, ACK | FIN, opts=peer.tsopt(r[0]))
    peer.seq += 1
    t = peer.tcp.conns[0]
    assert t.state == T.TIME_WAIT
    assert peer.send(peer.seq, 0, RST) == []
    assert t.state == T.TIME_WAIT and peer.tcp.stats.rx_rst_time_wait == 1
    # a retransmitted FIN is acked again and restarts 2*MSL
    r = peer.send(peer.seq - 1, una + 1, ACK | FIN, opts=peer.tsopt(r[0]))
    assert [(s.f, s.ack) for s in r] == [(".", peer.seq)]
    peer.advance(2 * peer.stack.config["TCP_MSL_MS"] - 10)
    assert peer.tcp.conns  # still in TIME-WAIT short of 2*MSL
    peer.advance(1024 + 20)  # expiries are rounded up to 1024 ms ticks
    assert not peer.tcp.conns


def test_data_after_close_gets_rst(peer):
    sa = peer.connect()
    peer.sock.close()
    fin = peer.advance(1)[0]
    r = peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"late", opts=peer.tsopt(fin))
    assert [s.f for s in r] == ["R."]
    assert not peer.tcp.conns and peer.tcp.stats.rx_after_close == 1


def test_linger_zero_close_sends_rst(peer):
    sa = peer.connect()
    peer.sock.setsockopt(so.SOL_SOCKET, so.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()
    r = peer.advance(1)
    assert [(s.f, s.seq) for s in r] == [("R.", sa.seq + 1)]
    assert not peer.tcp.conns


def test_close_with_unread_data_sends_rst(peer):
    sa = peer.connect()
    peer.send(peer.seq, sa.seq + 1, ACK | PSH, b"unread", opts=peer.tsopt(sa))
    peer.sock.close()
    r = peer.advance(1)
    assert [s.f for s in r] == ["R."]  # RFC 2525 2.17


def test_passive_close_walks_close_wait_and_last_ack(peer):
    sa = peer.connect()
    una = sa.seq + 1
    r = peer.send(peer.seq, una, ACK | FIN, opts=peer.tsopt(sa))
    peer.seq += 1
    assert peer.tcb().state == T.CLOSE_WAIT and [(s.f, s.ack) for s in r] == [(".", peer.seq)]
    assert peer.sock.recv(10) == b""
    t = peer.tcb()
    peer.sock.close()
    assert t.state == T.LAST_ACK
    r = peer.advance(1)
    assert [(s.f, s.seq) for s in r] == [("F.", una)]
    peer.send(peer.seq, una + 1, ACK, opts=peer.tsopt(r[0]))
    assert t.state == T.CLOSED and not peer.tcp.conns
