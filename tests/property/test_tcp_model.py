"""A stateful model of one TCP connection driving the real implementation.

The stack accepts a connection from a peer played by this test (its segments go in through
the driver and the whole input path; a virtual clock drives the timers). Hypothesis then
interleaves, at random: peer segments carrying any part of the peer's byte stream (in order,
out of order, duplicated, overlapping, outside the window, with or without timestamps), ACKs
of any value, window updates, RST, SYN, FIN, random flag combinations, time passing, and the
application's send, recv, shutdown and close. After every step:

- the bytes the application has read are a prefix of the peer's stream (nothing delivered
  twice, out of order or invented), and the bytes the stack sends are the application's, each
  at its own sequence number;
- the right edge of the receive window (RCV.NXT + RCV.WND) never moves left, neither in the
  TCB nor as advertised on the wire (RFC 9293 3.8.6, RFC 1122 4.2.2.16);
- every state change is an edge of RFC 9293 figure 5;
- nothing raises; and at the end, the socket closed and 20 minutes passed, the connection
  is gone and every packet buffer is back in the pool.
"""
import random
import struct

from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.tcp.seq import seq_diff
from tests import frames as F
from tests import rig as R
from tests.property.budget import examples
from tests.feed import Fed

PORT = 80
PEER_PORT = 40000
MOD = 1 << 32
STREAM = random.Random(8).getrandbits(8 * 400000).to_bytes(400000, "little")
S, A, P, RST, FIN = 0x02, 0x10, 0x08, 0x04, 0x01
ACK_MODE = st.sampled_from([0, 0, 0, 1, 2, 3])  # see TcpModel._ack_off
RARELY = st.sampled_from([False, False, False, True])
MOSTLY = st.sampled_from([True, True, True, False])

# RFC 9293 figure 5, from ESTABLISHED on (a passive open that completed), plus FIN-WAIT-1 ->
# TIME-WAIT (a FIN that also acknowledges ours, 3.10.7.4 eighth) and any state -> CLOSED
# (RST, abort, user timeout).
LEGAL = {
    T.ESTABLISHED: {T.FIN_WAIT_1, T.CLOSE_WAIT},
    T.FIN_WAIT_1: {T.FIN_WAIT_2, T.CLOSING, T.TIME_WAIT},
    T.FIN_WAIT_2: {T.TIME_WAIT},
    T.CLOSE_WAIT: {T.LAST_ACK},
    T.CLOSING: {T.TIME_WAIT},
    T.LAST_ACK: set(),
    T.TIME_WAIT: set(),
    T.CLOSED: set(),
}


class Out:
    """One segment the stack sent."""

    def __init__(self, f):
        ip = f[14:]
        ihl = (ip[0] & 15) * 4
        t = ip[ihl:(ip[2] << 8) | ip[3]]
        self.sport, self.dport, self.seq, self.ack, off, self.flags, self.win = \
            struct.unpack("!HHIIBBH", t[:16])
        hl = (off >> 4) * 4
        self.data = bytes(t[hl:])
        self.tsval = None
        self.ws = None
        o = t[20:hl]
        i = 0
        while i < len(o) and o[i] != 0:
            if o[i] == 1:
                i += 1
                continue
            if i + 1 >= len(o) or o[i + 1] < 2:
                break
            if o[i] == 8 and o[i + 1] == 10:
                self.tsval = struct.unpack("!I", o[i + 2:i + 6])[0]
            elif o[i] == 3 and o[i + 1] == 3:
                self.ws = o[i + 2]
            i += o[i + 1]


class TcpModel(RuleBasedStateMachine):
    # ---- setup ---------------------------------------------------------------------------
    @initialize(iss=st.sampled_from([0x10000000, MOD - 300, 5]),
                irs=st.sampled_from([0x20000000, MOD - 200, 7]),
                ts=st.booleans(), ws=st.sampled_from([None, 0, 7, 14]), sack=st.booleans(),
                rcvbuf=st.sampled_from([2048, 16384, 200000]),
                mss=st.sampled_from([536, 1460]))
    def handshake(self, iss, irs, ts, ws, sack, rcvbuf, mss):
        self.fed = Fed({"TCP_RCV_BUF": rcvbuf, "TCP_SND_BUF": 8192})
        self.stack = self.fed.stack
        self.stack.tcp.isn_hook = lambda *a: iss
        self.iss = iss
        self.irs = irs
        self.peer_ts = 1000 if ts else None
        self.stack_tsval = 0
        lsock = self.stack.socket(so.AF_INET, so.SOCK_STREAM)
        lsock.bind(("", PORT))
        lsock.listen(2)
        lsock.setblocking(False)
        self.lsock = lsock
        opts = struct.pack("!BBH", 2, 4, mss)
        if sack:
            opts += b"\x01\x01\x04\x02"
        if ts:
            opts += b"\x01\x01\x08\x0a" + struct.pack("!II", self.peer_ts, 0)
        if ws is not None:
            opts += b"\x01\x03\x03" + bytes([ws])
        self.rcv_shift = 0
        self.edge = None        # the right edge the stack advertised, relative to irs + 1
        self.sent_max = 0       # the stack's stream: highest offset seen + 1 (incl. FIN)
        self.stack_fin = None   # offset of the stack's FIN
        self.app_sent = bytearray()
        self.app_read = bytearray()
        self.fin_at = None      # the peer's FIN: its stream ends here
        self.peer_max = 0       # highest offset of the peer's stream sent so far
        self.app_closed = False
        self.steps = 0
        out = self._send(S, -1, 0, b"", 65535, opts=opts, ts_ok=False)
        synack = [o for o in out if o.flags & S]
        assert len(synack) == 1 and synack[0].ack == (irs + 1) % MOD
        if ws is not None and synack[0].ws is not None:
            self.rcv_shift = synack[0].ws
        self._send(A, 0, 0, b"", 65535)
        self.sock, _ = lsock.accept()
        self.sock.setblocking(False)
        lsock.close()  # one incarnation: a later SYN on this 4-tuple is answered by a RST
        self.tcb = self.sock.tcb
        self.state = self.tcb.state
        assert self.state == T.ESTABLISHED
        self.adv = self.tcb.rcv_adv

    # ---- the wire ------------------------------------------------------------------------
    def _send(self, flags, off, ack_off, data, win, opts=None, ts_ok=True, old_ts=False):
        """A segment from the peer: its sequence number is irs + 1 + off, its ACK iss + 1 +
        ack_off (both taken modulo 2**32)."""
        if opts is None:
            opts = b""
            if self.peer_ts is not None and ts_ok:
                self.peer_ts += 1
                v = self.peer_ts - 500 if old_ts else self.peer_ts
                opts = b"\x01\x01\x08\x0a" + struct.pack("!II", v % MOD, self.stack_tsval)
        seq = (self.irs + 1 + off) % MOD
        ack = (self.iss + 1 + ack_off) % MOD if flags & A else 0
        out = self.fed.feed(R.tcp_to(PORT, flags, seq, ack, bytes(data), options=opts,
                                     sport=PEER_PORT, window=win))
        return self._absorb(out)

    def _absorb(self, frames):
        segs = [Out(f) for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6]
        for o in segs:
            assert o.dport == PEER_PORT
            if o.tsval is not None:
                self.stack_tsval = o.tsval
            if o.flags & (S | RST):
                continue
            off = (o.seq - self.iss - 1) % MOD
            if o.data:
                want = bytes(self.app_sent[off:off + len(o.data)])
                assert o.data == want, "the stack sent bytes the application never wrote " \
                    "at offset %d" % off
            end = off + len(o.data)
            if o.flags & FIN:
                assert end == len(self.app_sent), "FIN at %d, the stream has %d bytes" % (
                    end, len(self.app_sent))
                self.stack_fin = end
                end += 1
            if end > self.sent_max:
                self.sent_max = end
            if o.flags & A:
                edge = (o.ack - self.irs - 1 + (o.win << self.rcv_shift)) % MOD
                if self.edge is not None:
                    d = (edge - self.edge) % MOD
                    assert d < (1 << 31), "the advertised window shrank: right edge %d -> %d " \
                        "(RFC 9293 3.8.6)" % (self.edge, edge)
                self.edge = edge
        return segs

    def _clamp(self, off, n):
        """The peer's stream is consistent: nothing beyond its FIN."""
        if self.fin_at is not None and off + n > self.fin_at:
            n = max(0, self.fin_at - off)
        return n

    def _ack_off(self, mode, k):
        if mode == 0:
            return self.sent_max
        if mode == 1:
            return k % (self.sent_max + 1)
        if mode == 2:
            return self.sent_max + 1 + k  # something not yet sent
        return k * 7919 - 1000000  # anywhere

    # ---- peer rules ----------------------------------------------------------------------
    @rule(where=st.sampled_from(["next", "next", "ahead", "behind", "anywhere"]),
          delta=st.integers(0, 3000) | st.integers(0, 300000), n=st.integers(0, 1460),
          fin=st.booleans(), mode=ACK_MODE, k=st.integers(0, 5000),
          win=st.sampled_from([0, 1, 100, 8192, 65535]), old_ts=RARELY, ts_ok=MOSTLY)
    def peer_data(self, where, delta, n, fin, mode, k, win, old_ts, ts_ok):
        rn = self._rcv_next()
        off = {"next": rn, "ahead": rn + delta, "behind": rn - delta % 2000,
               "anywhere": delta - 3000}[where]
        self._data(off, n, fin, mode, k, win, old_ts, ts_ok)

    @rule(n=st.integers(1, 1460), fin=st.sampled_from([False] * 7 + [True]), read=MOSTLY)
    def peer_in_order(self, n, fin, read):
        """The common case: the next bytes of the stream, acknowledging all, full window;
        mostly the application reads them at once."""
        self._data(self._rcv_next(), n, fin, 0, 0, 65535, False, True)
        if read and not self.app_closed:
            self.app_recv(100000)

    @rule()
    def peer_closes(self):
        """FIN after the bytes sent so far, acknowledging everything."""
        self._data(self._rcv_next(), 0, True, 0, 0, 65535, False, True)

    def _data(self, off, n, fin, mode, k, win, old_ts, ts_ok):
        if off < 0:
            pre = min(-off, n)  # bytes before the SYN: the stack must never deliver them
            data = bytes(pre) + STREAM[0:self._clamp(0, n - pre)]
        else:
            data = STREAM[off:off + self._clamp(off, n)]
        flags = A | P
        end = off + len(data)
        if fin and end >= self.peer_max and (self.fin_at is None or end == self.fin_at):
            flags |= FIN
            self.fin_at = end
        if end > self.peer_max:
            self.peer_max = end
        self._send(flags, off, self._ack_off(mode, k), data, win, ts_ok=ts_ok, old_ts=old_ts)

    @rule(mode=ACK_MODE, k=st.integers(0, 5000),
          win=st.sampled_from([0, 1, 512, 65535]), back=st.integers(0, 3))
    def peer_ack(self, mode, k, win, back):
        self._send(A, self._rcv_next() - back, self._ack_off(mode, k), b"", win)

    @rule(where=st.sampled_from(["exact", "in_window", "before", "far"]),
          with_ack=st.booleans())
    def peer_rst(self, where, with_ack):
        off = {"exact": self._rcv_next(), "in_window": self._rcv_next() + 100,
               "before": self._rcv_next() - 10, "far": 1 << 30}[where]
        self._send(RST | (A if with_ack else 0), off, self.sent_max, b"", 0, ts_ok=False)

    @rule(where=st.sampled_from(["exact", "in_window", "old"]))
    def peer_syn(self, where):
        off = {"exact": self._rcv_next(), "in_window": self._rcv_next() + 10, "old": -1}[where]
        self._send(S, off, 0, b"", 65535)

    @rule(flags=st.integers(0, 255), off=st.integers(-10, 3000), n=st.integers(0, 50),
          mode=st.integers(0, 3), k=st.integers(0, 100))
    def peer_any_flags(self, flags, off, n, mode, k):
        if flags & FIN:
            flags &= ~FIN  # FIN only where the model keeps the peer's stream consistent
        data = STREAM[off:off + self._clamp(off, n)] if off >= 0 else b""
        if off >= 0 and off + len(data) > self.peer_max:
            self.peer_max = off + len(data)
        self._send(flags, off, self._ack_off(mode, k), data, 4096)

    def _rcv_next(self):
        """Where the peer believes the stack's RCV.NXT is: the last ACK it sent us."""
        t = self.tcb
        if t.state == T.CLOSED:
            return 0
        return t.rcv_nxt - 1

    # ---- time ----------------------------------------------------------------------------
    @rule(ms=st.sampled_from([1, 50, 200, 1000, 5000, 60000]))
    def time_passes(self, ms):
        out = []
        end = self.fed.t + ms
        step = max(1, ms // 20)
        while self.fed.t < end:
            self.fed.advance(step)
            out += self.fed.drv.tx
            self.fed.drv.tx.clear()
        self._absorb(out)

    # ---- the application -----------------------------------------------------------------
    @precondition(lambda self: not self.app_closed)
    @rule(n=st.integers(1, 3000))
    def app_send(self, n):
        data = bytes((len(self.app_sent) + i) * 13 & 0xFF for i in range(n))
        try:
            k = self.sock.send(data)
        except OSError:
            k = 0
        self.app_sent += data[:k]
        self._absorb(self._drain())

    @precondition(lambda self: not self.app_closed)
    @rule(n=st.integers(1, 5000))
    def app_recv(self, n):
        try:
            d = self.sock.recv(n)
        except OSError:
            d = b""
        self.app_read += d
        self._absorb(self._drain())

    @precondition(lambda self: not self.app_closed and self.steps >= 10)
    @rule(how=st.sampled_from([so.SHUT_RD, so.SHUT_WR, so.SHUT_RDWR]))
    def app_shutdown(self, how):
        try:
            self.sock.shutdown(how)
        except OSError:
            pass
        self._absorb(self._drain())

    @precondition(lambda self: not self.app_closed and self.steps >= 10)
    @rule()
    def app_close(self):
        self.sock.close()
        self.app_closed = True
        self._absorb(self._drain())

    def _drain(self):
        out = self.fed.drv.tx[:]
        self.fed.drv.tx.clear()
        return out

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def read_bytes_are_a_prefix_of_the_peer_stream(self):
        if not hasattr(self, "tcb"):
            return
        self.steps += 1
        n = len(self.app_read)
        assert bytes(self.app_read) == STREAM[:n], "the application read bytes the peer " \
            "did not send in that order"
        if self.fin_at is not None:
            assert n <= self.fin_at

    @invariant()
    def state_changes_follow_figure_5(self):
        if not hasattr(self, "tcb"):
            return
        new = self.tcb.state
        if new != self.state:
            assert new == T.CLOSED or new in LEGAL[self.state], "%s -> %s" % (
                T.STATE_NAMES[self.state], T.STATE_NAMES[new])
            event("%s -> %s" % (T.STATE_NAMES[self.state], T.STATE_NAMES[new]))
            self.state = new

    @invariant()
    def receive_window_right_edge_never_moves_left(self):
        if not hasattr(self, "tcb") or self.tcb.state == T.CLOSED:
            return
        d = seq_diff(self.tcb.rcv_adv, self.adv)
        assert d >= 0, "RCV.NXT + RCV.WND moved left by %d (RFC 9293 3.8.6)" % -d
        self.adv = self.tcb.rcv_adv

    @invariant()
    def send_sequence_variables_stay_ordered(self):
        """SND.UNA <= SND.NXT <= SND.MAX (RFC 9293 3.3.1), and nothing is acknowledged that
        the stack did not send."""
        if not hasattr(self, "tcb") or self.tcb.state == T.CLOSED:
            return
        t = self.tcb
        assert seq_diff(t.snd_nxt, t.snd_una) >= 0 and seq_diff(t.snd_max, t.snd_nxt) >= 0, \
            (t.snd_una, t.snd_nxt, t.snd_max)
        if t.rcv is not None:
            assert 0 <= t.rcv.count <= t.rcv.cap

    def teardown(self):
        if not hasattr(self, "tcb"):
            return
        event("application read %s" % ("nothing" if not self.app_read else "bytes"))
        event("peer stream %s" % ("ended by FIN" if self.fin_at is not None else "open"))
        for s in list(self.stack.sockets):
            s.close()
        for _ in range(40):
            self.fed.advance(30000)
        self.fed.drv.tx.clear()
        assert self.stack.pool.full(), "packet buffers leaked"
        assert not self.stack.tcp.conns, "connections alive after 20 minutes: %s" % ",".join(
            T.STATE_NAMES[t.state] for t in self.stack.tcp.conns)


TcpModel.TestCase.settings = settings(max_examples=examples(150), stateful_step_count=40)
TestTcpModel = TcpModel.TestCase
