"""Spurious retransmissions found afterwards and the congestion response taken back: Eifel
detection with timestamps (RFC 3522), D-SACK based detection (RFC 3708), the Eifel response to
a spurious timeout (RFC 4015) and the controllers' undo (RFC 9438 4.9 for CUBIC, the same
restore for NewReno and "none"). One segment at a time against a stack (tests/unit/
test_tcp_segments.Peer), then two stacks on the in-memory wire with a reordered segment.
Each test names its RFC section."""
from ustack.core.tcp import cc as ccmod
from ustack.core.tcp.cc_newreno import NewReno, INF
from ustack.core.tcp.cc_none import FixedWindow
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import filled, data_segs, sq, MSS, BIG
from tests.unit.test_tcp_sack import sack_opts, seg
from ustack.core import socket as so
from tests.twostack import Bench, IP_B

NO_TLP = dict(BIG, TCP_TLP=False)


def recovery_on_reordering(p):
    """Ten segments out; 5 ms later the peer SACKs 1, 1-2, 1-3 (segment 0 is late, not
    lost): SACK recovery retransmits segment 0. Returns (SND.UNA, the last segment of the
    first flight, the retransmission, ssthresh and window before the reduction)."""
    una, d, last = filled(p)
    cc = p.tcb().cc
    ss0, w0 = cc.ssthresh, cc.window()
    p.advance(5)
    rtx = None
    for k in (1, 2, 3):
        for s in p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, k)])):
            if s.data and s.seq == sq(una):
                rtx = s
    assert rtx is not None and p.tcp.stats.sack_recoveries == 1
    assert cc.ssthresh < ss0
    return una, last, rtx, ss0, w0


def flight_top(p):
    """The wire sequence number of SND.MAX."""
    t = p.tcb()
    return sq(((t.iss_hi << 16) | t.iss_lo) + t.snd_max)


# ---- RFC 3522: Eifel detection with timestamps ------------------------------------------------
def test_an_ack_echoing_the_original_transmission_undoes_a_spurious_fast_retransmit():
    """RFC 3522 3.2: the first acceptable ACK after the retransmission echoes a TSval older
    than the retransmission's - it acknowledges the original: the fast retransmit was
    spurious. The controller gets its window and threshold back (RFC 4015's undo of the
    congestion response, RFC 9438 4.9) and SACK recovery ends."""
    p = Peer(BIG)
    una, last, rtx, ss0, w0 = recovery_on_reordering(p)
    st = p.tcp.stats
    p.send(p.seq, una + 4 * MSS, ACK, opts=p.tsopt(last))   # the late segment 0 arrived
    cc = p.tcb().cc
    assert st.spurious_recoveries == 1 and st.cc_undos == 1 and st.spurious_dsack == 0
    assert cc.ssthresh == ss0 and cc.window() >= w0
    assert not p.tcb().sb.in_recovery and not cc.in_recovery


def test_an_ack_echoing_the_retransmission_is_a_real_loss_and_keeps_the_reduction():
    """RFC 3522 3.2 (3): TSecr not older than RetransmitTS - the retransmission repaired a
    loss: nothing is undone."""
    p = Peer(BIG)
    una, last, rtx, ss0, w0 = recovery_on_reordering(p)
    st = p.tcp.stats
    p.send(p.seq, una + 4 * MSS, ACK, opts=p.tsopt(rtx))
    cc = p.tcb().cc
    assert st.spurious_recoveries == 0 and st.cc_undos == 0
    assert cc.ssthresh < ss0


# ---- RFC 3708: every retransmission D-SACKed -------------------------------------------------
def test_a_dsack_for_every_retransmission_of_the_episode_undoes_it():
    """RFC 3708 3: once the episode's data is acknowledged and the receiver reported each
    retransmission as a duplicate (D-SACK, RFC 2883), the recovery was unnecessary - here
    without timestamps, so the D-SACK is the only witness."""
    p = Peer(BIG)
    sa = p.connect(ts=False)
    una = sa.seq + 1
    m = 1460
    assert p.sock.send(b"d" * (10 * m)) == 10 * m
    p.advance(1)
    cc = p.tcb().cc
    ss0 = cc.ssthresh
    r = []
    for k in (1, 2, 3):
        r += p.send(p.seq, una, ACK, opts=sack_opts(p, None, [(una + m, una + (k + 1) * m)]))
    assert (sq(una), m) in data_segs(r) and cc.ssthresh < ss0
    st = p.tcp.stats
    top = flight_top(p)
    p.send(p.seq, top, ACK)                                  # all of it acknowledged
    assert st.cc_undos == 0
    p.send(p.seq, top, ACK, opts=sack_opts(p, None, [(una, una + m)]))   # D-SACK: 0 twice
    assert st.rx_dsack == 1 and st.spurious_dsack == 1 and st.spurious_recoveries == 1
    assert st.cc_undos == 1 and cc.ssthresh == ss0


def test_a_dsack_after_the_timestamp_showed_the_retransmission_was_needed_undoes_nothing():
    """RFC 3522 3.2: the first acceptable ACK echoes the retransmission's TSval - it filled
    the hole (RFC 7323 4.3), the original was lost. A D-SACK inside the episode's range
    afterwards reports some other duplicate (an earlier probe's, say) and must not make the
    repaired loss spurious (RFC 3708 3 counts the episode's retransmissions only)."""
    p = Peer(BIG)
    una, last, rtx, ss0, w0 = recovery_on_reordering(p)
    st = p.tcp.stats
    top = flight_top(p)
    p.send(p.seq, top, ACK, opts=p.tsopt(rtx))               # all of it acknowledged
    p.send(p.seq, top, ACK, opts=sack_opts(p, rtx, [seg(una, 0)]))
    assert st.rx_dsack == 1 and st.spurious_dsack == 0 and st.cc_undos == 0
    assert p.tcb().cc.ssthresh < ss0


def test_a_dsack_for_an_original_segment_outside_the_episode_undoes_nothing():
    """RFC 3708 3: only duplicates of the episode's retransmissions count - a D-SACK below
    the data outstanding at its start (a duplicate from long before) does not."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"o" * MSS) == MSS
    last = p.advance(1)[-1]
    p.send(p.seq, una + MSS, ACK, opts=p.tsopt(last))
    una2 = una + MSS
    assert p.sock.send(b"d" * (10 * MSS)) == 10 * MSS
    last = p.advance(1)[-1]
    p.advance(5)
    rtx = []
    for k in (1, 2, 3):
        rtx += [s for s in p.send(p.seq, una2, ACK, opts=sack_opts(p, last, [seg(una2, 1, k)]))
                if s.data and s.seq == sq(una2)]
    st = p.tcp.stats
    assert st.sack_recoveries == 1 and len(rtx) == 1
    top = flight_top(p)
    p.send(p.seq, top, ACK, opts=p.tsopt(rtx[0]))           # echoes the retransmission
    p.send(p.seq, top, ACK, opts=sack_opts(p, rtx[0], [(una, una + MSS)]))
    assert st.rx_dsack == 1 and st.cc_undos == 0 and st.spurious_recoveries == 0


# ---- RFC 4015: the response to a spurious timeout ------------------------------------------
def timeout_flight(p):
    una, d, last = filled(p)
    t = p.tcb()
    cc = t.cc
    ss0 = cc.ssthresh
    r = p.advance(t.rto + 1)
    assert data_segs(r) == [(sq(una), MSS)] and p.tcp.stats.rto_expired == 1
    assert cc.window() == MSS
    return una, last, r[-1], ss0


def test_an_ack_delayed_past_the_rto_is_a_spurious_timeout_no_go_back_n():
    """RFC 3522 3.2 detects it (the ACK echoes the original flight's TSval); RFC 4015 3
    responds: no further go-back-N (SND.NXT = SND.MAX, new data goes next), cwnd =
    FlightSize + min(bytes_acked, IW) and ssthresh = pipe_prev (max(FlightSize, ssthresh)
    before the timeout), and the RTO no shorter than the delayed ACK's RTT."""
    p = Peer(NO_TLP)
    t0 = p.fed.t
    una, last, rtx, ss0 = timeout_flight(p)
    st = p.tcp.stats
    t = p.tcb()
    delay = p.fed.t - t0
    r = p.send(p.seq, una + 5 * MSS, ACK, opts=p.tsopt(last))   # acks 0-4: the first flight's
    cc = t.cc
    assert st.spurious_rtos == 1 and st.cc_undos == 1 and st.spurious_dsack == 0
    # new data from SND.MAX on, as far as cwnd = 5 (still out) + min(5 acked, IW) allows
    assert data_segs(r) == [(sq(una + k * MSS), MSS) for k in range(10, 15)]
    assert st.tx_retransmits == 1 and t.snd_nxt == t.snd_max
    assert cc.window() == 5 * MSS + min(5 * MSS, ccmod.initial_window(MSS))
    assert cc.ssthresh == (ss0 if ss0 > 10 * MSS else 10 * MSS)     # pipe_prev
    assert t.srtt8 >> 3 >= delay and t.rto > delay


def test_an_ack_for_the_timeout_retransmission_keeps_the_go_back_n():
    """RFC 3522 3.2: the ACK echoes the retransmission - the timeout was real: the rest of
    the window is resent (RFC 5681 3.1, go-back-N), nothing is undone."""
    p = Peer(NO_TLP)
    una, last, rtx, ss0 = timeout_flight(p)
    st = p.tcp.stats
    r = p.send(p.seq, una + MSS, ACK, opts=p.tsopt(rtx))
    assert st.spurious_rtos == 0 and st.cc_undos == 0
    assert (sq(una + MSS), MSS) in data_segs(r)


def test_a_dsack_for_the_timeout_retransmission_restores_the_threshold():
    """RFC 3708 3 on a timeout without timestamps: the one retransmission D-SACKed once the
    flight is acknowledged - a late-found spurious timeout: ssthresh back to pipe_prev
    (RFC 4015 3), slow start resumes from the current window."""
    p = Peer(NO_TLP)
    sa = p.connect(ts=False)
    una = sa.seq + 1
    m = 1460
    assert p.sock.send(b"x" * (4 * m)) == 4 * m
    p.advance(1)
    t = p.tcb()
    r = p.advance(t.rto + 1)
    assert [(s.seq, len(s.data)) for s in r if s.data] == [(sq(una), m)]
    st = p.tcp.stats
    p.send(p.seq, una + 4 * m, ACK)
    p.send(p.seq, una + 4 * m, ACK, opts=sack_opts(p, None, [(una, una + m)]))
    assert st.rx_dsack == 1 and st.spurious_rtos == 1 and st.spurious_dsack == 1
    assert st.cc_undos == 1 and t.cc.ssthresh >= 4 * m


# ---- RFC 8985 7.4 with RFC 3522 / RFC 3708: tail loss probes -----------------------------------
def test_a_probe_whose_answer_echoes_the_original_is_no_congestion_event():
    """RFC 8985 7.4.1 says a D-SACK for the probe means the original arrived; the ACK's
    timestamp says so too (RFC 3522 3.2): the original's TSval is echoed - no reduction."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"t" * (3 * MSS)) == 3 * MSS
    first = p.advance(1)[-1]
    p.advance(10)
    st = p.tcp.stats
    assert st.tlp_probes == 1
    ss0 = p.tcb().cc.ssthresh
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(first))
    assert st.tlp_recoveries == 0 and st.spurious_tlps == 1
    assert p.tcb().cc.ssthresh == ss0


def test_a_late_dsack_for_a_probe_undoes_its_reduction():
    """RFC 8985 7.4.2 reduced the window on the probe's ACK; the D-SACK that follows (RFC
    3708 3) shows the probe was a duplicate: the reduction is undone."""
    p = Peer(BIG)
    sa = p.connect()
    una = sa.seq + 1
    assert p.sock.send(b"t" * (3 * MSS)) == 3 * MSS
    p.advance(1)
    probe = p.advance(10)[-1]
    st = p.tcp.stats
    cc = p.tcb().cc
    ss0 = cc.ssthresh
    p.send(p.seq, una + 3 * MSS, ACK, opts=p.tsopt(probe))
    assert st.tlp_recoveries == 1 and cc.ssthresh < ss0
    p.send(p.seq, una + 3 * MSS, ACK, opts=sack_opts(p, probe, [seg(una, 2)]))
    assert st.spurious_dsack == 1 and st.cc_undos == 1 and cc.ssthresh == ss0


# ---- the controllers' undo -------------------------------------------------------------------
def test_newreno_undo_restores_the_window_and_threshold_before_the_event():
    """RFC 5681 3.2's reduction taken back: cwnd and ssthresh as before the third duplicate."""
    c = NewReno(1000)
    c.cwnd = 20000
    assert not c.on_dup_ack(0, 20000, 20000) and not c.on_dup_ack(0, 20000, 20000)
    assert c.on_dup_ack(0, 20000, 20000)          # the third: fast retransmit
    assert c.in_recovery and c.ssthresh == 10000
    c.undo()
    assert c.cwnd == 20000 and c.ssthresh == INF and not c.in_recovery
    assert not c.recover_valid                    # a real loss in this window may reduce


def test_the_fixed_window_undo_and_its_slow_start_after_an_undone_timeout():
    """"none" after an undone timeout (RFC 4015 3: cwnd below the fixed window) grows back to
    it by slow start, never beyond it."""
    c = FixedWindow(1000, 4)
    c.on_rto(4000, 4000)
    assert c.window() == 1000
    c.undo()
    assert c.window() == 4000 and not c.rto_recovery
    c.cwnd = 2000
    c.on_ack(1000, 5000, 2000)
    assert c.window() == 3000
    c.on_ack(1000, 6000, 3000)
    c.on_ack(1000, 7000, 3000)
    assert c.window() == 4000


def test_undo_counts_each_congestion_event():
    """The controller numbers its reductions, so an undo applies only to the one it was
    meant for (another reduction since - a new loss, an ECN-Echo - keeps it)."""
    c = NewReno(1000)
    c.cwnd = 20000
    e0 = c.events
    c.on_congestion(ccmod.CE_LOSS, 20000, 20000, 0)
    assert c.events == e0 + 1
    c.on_rto(10000, 20000)
    assert c.events == e0 + 2


# ---- two stacks: a reordered segment ----------------------------------------------------------
class LateSegment:
    """A driver wrapper that holds back the data segment with sequence number `seq` (once) and
    lets it out just before that sequence number is sent again: the original arrives late,
    ahead of its retransmission (a reordering of several segments)."""

    def __init__(self, d):
        self.d = d
        self.mac = d.mac
        self.mtu = d.mtu
        self.want = -1
        self.held = None
        self.late = 0

    def _seq(self, buf, n):
        if n < 54 or buf[12] != 8 or buf[13] != 0 or buf[23] != 6:
            return -1, 0
        o = 14 + (buf[14] & 15) * 4
        hl = (buf[o + 12] >> 4) * 4
        tot = (buf[16] << 8) | buf[17]
        s = (buf[o + 4] << 24) | (buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]
        return s, tot - (o - 14) - hl

    def send(self, buf, n):
        s, ln = self._seq(buf, n)
        if ln > 0 and self.held is None and self.want == -2:
            self.want = s + 4 * ln   # the fifth data segment from now is late
        if ln > 0 and s == self.want and self.held is None:
            self.held = bytes(buf[0:n])
            self.want = -1
            return True
        if ln > 0 and self.held is not None and s == self._seq(self.held, len(self.held))[0]:
            h = self.held
            self.held = None
            self.late += 1
            self.d.send(h, len(h))
        return self.d.send(buf, n)

    def __getattr__(self, name):
        return getattr(self.d, name)


def test_two_stacks_a_reordered_segment_costs_no_window():
    """A segment overtaken by the next ones: duplicate ACKs with SACK blocks start recovery
    (RFC 6675) and retransmit it, then the original arrives and its ACK echoes the original's
    TSval (RFC 7323 4.3 on the receiver, RFC 3522 3.2 on the sender): undone, the transfer
    ends intact, no timeout."""
    late = []

    def wrap(d, bench):
        if d is bench.pa:
            late.append(LateSegment(d))
            return late[0]
        return d
    b = Bench(BIG, wrap=wrap)
    srv = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    srv.bind(("", 9000))
    srv.listen(1)
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.connect((IP_B, 9000))
    s, _ = srv.accept()
    srv.close()
    c.setblocking(False)
    s.setblocking(False)
    b.pump()
    data = bytes((i * 7) & 0xFF for i in range(40000))
    late[0].want = -2
    sent = 0
    got = bytearray()
    buf = bytearray(65536)
    end = b.t + 5000
    while len(got) < len(data) and b.t < end:
        if sent < len(data):
            try:
                sent += c.send(data[sent:sent + 8192])
            except OSError:
                pass
        try:
            n = s.recv_into(buf)
            got += buf[:n]
        except OSError:
            pass
        b.advance(1)
    st = b.a.tcp.stats
    assert bytes(got) == data and late[0].late == 1
    assert st.fast_retransmits == 1 and st.spurious_recoveries == 1 and st.cc_undos == 1
    assert st.rto_expired == 0
    c.close()
    s.close()
    b.close_all()
