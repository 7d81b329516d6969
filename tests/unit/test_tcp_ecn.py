"""ECN for TCP (RFC 3168), off by default, TCP_ECN as Linux's tcp_ecn (0 off, 1 ask and
accept, 2 accept only). First one segment at a time against a stack (the test is the peer:
negotiation, ECT(0) on what may carry it, the receiver's ECN-Echo, the sender's one
reduction per window and its CWR), then two stacks on a wire that marks CE. Each test names
its RFC section."""
import struct

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.wire import tcp as w
from tests.unit.test_tcp_segments import Peer, Seg, tcp_frame, opt_bytes, SYN, ACK, PSH
from tests.twostack import Bench, IP_B
from tests.unit_ref import csum

ECE, CWR = w.ECE, w.CWR
NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3
ON = {"TCP_ECN": 1}
PASSIVE = {"TCP_ECN": 2}


def with_tos(frame, tos):
    """The frame with its IPv4 TOS byte (DSCP + ECN field) set and the header checksum
    made again."""
    f = bytearray(frame)
    f[15] = tos
    f[24] = f[25] = 0
    c = ~csum(f[14:34]) & 0xFFFF
    f[24] = c >> 8
    f[25] = c & 0xFF
    return bytes(f)


class ESeg(Seg):
    def __init__(self, frame):
        Seg.__init__(self, frame)
        self.tos = frame[15]
        self.ttl = frame[22]
        self.ecn = frame[15] & 3
        assert csum(frame[14:34]) == 0xFFFF, "bad IP header checksum (TOS/ECN byte set)"


def _segs(frames):
    return [ESeg(f) for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6]


class EPeer(Peer):
    """Peer whose segments may carry an IP ECN field, and whose view of the stack's
    segments includes theirs (ESeg.ecn)."""

    def send(self, seq, ack, flags, data=b"", tos=0, **kw):
        f = tcp_frame(seq, ack, flags, data, **kw)
        return _segs(self.fed.feed(with_tos(f, tos) if tos else f))

    def advance(self, ms):
        out = []
        end = self.fed.t + ms
        while self.fed.t < end:
            self.fed.advance(1)
            out += self.fed.drv.tx
            self.fed.drv.tx.clear()
        return _segs(out)

    def ecn_connect(self, syn_flags=SYN | ECE | CWR):
        """Handshake with a listening stack, our SYN an ECN-setup SYN; the SYN-ACK."""
        self.listen()
        opts = opt_bytes(mss=1460, ws=7, sackok=True, ts=(self.ts, 0))
        r = self.send(self.seq, 0, syn_flags, opts=opts)
        assert len(r) == 1 and r[0].f == "S."
        sa = r[0]
        self.seq += 1
        self.rnxt = sa.seq + 1
        assert self.send(self.seq, self.rnxt, ACK, opts=self.tsopt(sa)) == []
        self.sock, _ = self.lsock.accept()
        self.sock.setblocking(False)
        return sa

    def data(self, n, flags=ACK | PSH, tos=ECT0, last=None):
        """n bytes from us, in order; the stack's answer."""
        r = self.send(self.seq, self.rnxt, flags, b"x" * n, tos=tos, opts=self.tsopt(last))
        self.seq += n
        return r

    def close(self):
        for s in list(self.stack.sockets):
            s.close()
        self.advance(5)
        for t in list(self.tcp.conns):
            self.tcp.drop(t, 0)
        assert self.stack.pool.full(), "packet buffers leaked"


def sent_data(segs):
    return [s for s in segs if s.data]


# ---- RFC 3168 6.1.1: negotiation ------------------------------------------------------------
def test_ecn_is_off_by_default_and_an_ecn_setup_syn_gets_a_plain_synack():
    p = EPeer()
    assert p.stack.config["TCP_ECN"] == 0
    sa = p.ecn_connect()
    assert not sa.flags & (ECE | CWR)
    assert not p.tcb().flags & T.F_ECN and p.tcp.stats.ecn_negotiated == 0
    p.close()


def test_an_ecn_setup_syn_gets_an_ecn_setup_synack_with_ece_only():
    """6.1.1: SYN with ECE and CWR -> SYN-ACK with ECE, without CWR."""
    for cfg in (ON, PASSIVE):
        p = EPeer(cfg)
        sa = p.ecn_connect()
        assert sa.flags & (ECE | CWR) == ECE and sa.ecn == NOT_ECT  # 6.1.1: no ECT on SYNs
        assert p.tcb().flags & T.F_ECN and p.tcp.stats.ecn_negotiated == 1
        p.close()


def test_a_syn_with_ece_alone_is_not_ecn_setup():
    """6.1.1: an ECN-setup SYN has both ECE and CWR set."""
    p = EPeer(ON)
    sa = p.ecn_connect(SYN | ECE)
    assert not sa.flags & (ECE | CWR) and not p.tcb().flags & T.F_ECN
    p.close()


def _active(cfg, tos=0):
    p = EPeer(cfg)
    s = p.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    if tos:
        s.setsockopt(so.IPPROTO_IP, so.IP_TOS, tos)
    try:
        s.connect(("192.0.2.1", 40000))
    except OSError:
        pass
    r = p.advance(1)
    assert len(r) == 1 and r[0].f == "S"
    return p, s, r[0]


def _synack(p, syn, flags):
    r = p.send(5000, syn.seq + 1, SYN | ACK | flags, sport=40000, dport=syn.sport,
               opts=opt_bytes(mss=1460))
    return r


def test_tcp_ecn_1_asks_in_its_syn_and_2_does_not():
    """6.1.1: an ECN-setup SYN carries ECE and CWR; TCP_ECN 2 (Linux's default) only
    answers one."""
    p, s, syn = _active(ON)
    assert syn.flags & (ECE | CWR) == ECE | CWR and syn.ecn == NOT_ECT
    p.close()
    p, s, syn = _active(PASSIVE)
    assert not syn.flags & (ECE | CWR)
    p.close()


def test_an_ecn_setup_synack_makes_an_ecn_connection_whose_data_is_ect0():
    p, s, syn = _active(ON)
    r = _synack(p, syn, ECE)
    assert [x.f for x in r] == ["."] and r[0].ecn == NOT_ECT and not r[0].flags & (ECE | CWR)
    assert s.tcb.flags & T.F_ECN and p.tcp.stats.ecn_negotiated == 1
    s.send(b"hello")
    d = sent_data(p.advance(1))
    assert len(d) == 1 and d[0].ecn == ECT0  # 6.1.2: data of an ECN-capable connection
    p.close()


def test_a_synack_with_ece_and_cwr_is_not_ecn_setup():
    """6.1.1: a SYN-ACK with both flags is what a middlebox reflecting our SYN's flags sends:
    no ECN, so no ECT on the data."""
    for flags in (ECE | CWR, 0, CWR):
        p, s, syn = _active(ON)
        _synack(p, syn, flags)
        assert s.tcb.state == T.ESTABLISHED and not s.tcb.flags & T.F_ECN
        s.send(b"hello")
        d = sent_data(p.advance(1))
        assert d[0].ecn == NOT_ECT and p.tcp.stats.ecn_negotiated == 0
        p.close()


def test_a_resent_syn_is_not_ecn_setup_and_the_connection_goes_without_ecn():
    """6.1.1.1: an ECN-setup SYN may be dropped by a middlebox; the resent one asks no
    more (Linux's tcp_ecn_fallback), and then ECN is not used even if the SYN-ACK has ECE
    (we sent a non-ECN-setup SYN)."""
    p, s, syn = _active(ON)
    r = p.advance(1100)  # the initial RTO, 1 s
    assert [x.f for x in r] == ["S"] and not r[0].flags & (ECE | CWR)
    assert p.tcp.stats.ecn_syn_fallback == 1
    _synack(p, r[0], ECE)
    assert s.tcb.state == T.ESTABLISHED and not s.tcb.flags & T.F_ECN
    p.close()


def test_a_resent_plain_syn_from_the_peer_turns_ecn_off():
    """6.1.1: "If a host has received at least one non-ECN-setup SYN ... it SHOULD NOT
    set ECT on data packets": the peer fell back (6.1.1.1) after our ECN-setup SYN-ACK."""
    p = EPeer(ON)
    p.listen()
    opts = opt_bytes(mss=1460)
    sa = p.send(1000, 0, SYN | ECE | CWR, opts=opts)[0]
    assert sa.flags & (ECE | CWR) == ECE
    p.send(1000, 0, SYN, opts=opts)  # its SYN again, without ECN
    p.send(1001, sa.seq + 1, ACK)
    s, _ = p.lsock.accept()
    assert not s.tcb.flags & T.F_ECN and p.tcp.stats.ecn_negotiated == 0
    s.send(b"x" * 10)
    d = sent_data(p.advance(1))
    assert d[0].ecn == NOT_ECT
    s.close()
    p.close()


def test_a_syn_cookie_connection_goes_without_ecn():
    """A SYN cookie keeps no room for ECN (Linux hides it in the TS option): its SYN-ACK
    carries no ECE, so the connection is not ECN-capable on either side."""
    p = EPeer({"TCP_ECN": 1, "TCP_SYN_QUEUE": 1})
    p.listen()
    p.send(1000, 0, SYN, sport=41000)  # fills the SYN queue
    r = p.send(2000, 0, SYN | ECE | CWR, sport=41001, opts=opt_bytes(mss=1460))
    assert p.tcp.stats.syncookies_sent == 1 and not r[0].flags & (ECE | CWR)
    p.send(2001, r[0].seq + 1, ACK, sport=41001)
    s, _ = p.lsock.accept()
    assert s.tcb.state == T.ESTABLISHED and not s.tcb.flags & T.F_ECN
    s.close()
    p.close()


# ---- RFC 3168 6.1.2, 6.1.5, 6.1.6: what carries ECT(0) -------------------------------------------
def test_only_new_data_is_ect0_not_pure_acks_nor_retransmissions():
    """6.1.1/6.1.4: pure ACKs not ECT; 6.1.5: retransmitted data not ECT."""
    p = EPeer(ON)
    sa = p.ecn_connect()
    r = p.data(100, tos=NOT_ECT, last=sa)
    r += p.advance(100)
    acks = [x for x in r if not x.data]
    assert acks and all(a.ecn == NOT_ECT for a in acks)
    p.sock.send(b"y" * 100)
    d = sent_data(p.advance(1))
    assert [x.ecn for x in d] == [ECT0]
    re = sent_data(p.advance(1500))  # unacknowledged: the RTO resends it
    assert re and re[0].seq == d[0].seq and re[0].ecn == NOT_ECT
    assert p.tcp.stats.tx_retransmits >= 1
    p.close()


def test_a_zero_window_probe_is_not_ect():
    """6.1.6: window probes MUST NOT be ECT (a router may not drop-or-mark them)."""
    p = EPeer(ON)
    sa = p.ecn_connect()
    una = sa.seq + 1
    p.send(p.seq, una, ACK, win=0, opts=p.tsopt(sa))  # the peer closes its window
    p.sock.send(b"z" * 50)
    r = p.advance(3000)  # the persist timer's probes
    assert p.tcp.stats.persist_probes > 0 and r and all(x.ecn == NOT_ECT for x in r)
    p.close()


def test_ip_tos_cannot_set_the_ecn_field_of_a_tcp_socket():
    """RFC 3168 6.1.1: only TCP sets ECT (Linux masks IP_TOS's ECN bits on TCP sockets);
    the DSCP part of the value stays."""
    for cfg in (None, ON):
        p, s, syn = _active(cfg, 0x28 | CE)
        assert syn.tos == 0x28
        _synack(p, syn, ECE)
        s.send(b"q" * 10)
        d = sent_data(p.advance(1))
        assert d[0].tos == 0x28 | (ECT0 if cfg else NOT_ECT)
        p.close()


def test_ip_tos_and_ip_ttl_set_on_a_connected_socket_apply_to_its_next_segments():
    """As on Linux, IP_TOS and IP_TTL set after connect() change what the connection sends
    from then on (a DSCP chosen once the peer is known, e.g. after a protocol upgrade)."""
    p, s, syn = _active(None)
    _synack(p, syn, 0)
    s.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)  # the second write goes before an ACK
    s.send(b"a" * 10)
    d = sent_data(p.advance(1))
    assert d[0].tos == 0 and d[0].ttl == 64
    s.setsockopt(so.IPPROTO_IP, so.IP_TOS, 0xB8)     # DSCP EF
    s.setsockopt(so.IPPROTO_IP, so.IP_TTL, 9)
    s.send(b"b" * 10)
    d = sent_data(p.advance(1))
    assert d[0].tos == 0xB8 and d[0].ttl == 9
    p.close()


# ---- RFC 3168 6.1.3: the receiver ------------------------------------------------------------
def test_a_ce_mark_sets_ece_on_every_ack_until_a_cwr_arrives():
    p = EPeer(ON)
    sa = p.ecn_connect()
    r = p.data(100, tos=CE, last=sa)
    # at once, not delayed: the sender's window may be one segment (as Linux)
    assert [x.f for x in r] == ["."] and r[0].flags & ECE and r[0].ecn == NOT_ECT
    assert p.tcp.stats.rx_ce == 1
    r = p.data(100, last=r[0]) + p.advance(100)
    assert r and all(x.flags & ECE for x in r)        # unmarked data: still echoed
    r = p.data(100, flags=ACK | PSH | CWR, last=r[-1]) + p.advance(100)
    assert r and not any(x.flags & ECE for x in r)    # CWR: the echo stops
    assert p.tcp.stats.rx_cwr == 1
    r = p.data(100, flags=ACK | PSH | CWR, tos=CE, last=r[-1])
    assert r[0].flags & ECE   # CWR and a new CE on one segment: a new echo (Linux's order)
    p.close()


def test_ece_also_goes_on_data_segments_and_a_ce_without_ecn_is_ignored():
    p = EPeer(ON)
    sa = p.ecn_connect()
    r = p.data(100, tos=CE, last=sa)
    p.sock.send(b"a" * 10)
    d = sent_data(p.advance(1))
    assert d[0].flags & ECE and d[0].ecn == ECT0
    p.close()
    p = EPeer()  # no ECN negotiated: a CE mark means nothing
    sa = p.ecn_connect()
    r = p.data(100, tos=CE, last=sa) + p.advance(100)
    assert r and not any(x.flags & ECE for x in r) and p.tcp.stats.rx_ce == 0
    p.close()


# ---- RFC 3168 6.1.2: the sender ----------------------------------------------------------------
def _flight(p, n=20000):
    sa = p.ecn_connect()
    p.sock.send(b"d" * n)
    d = sent_data(p.advance(1))
    assert d and all(x.ecn == ECT0 for x in d)
    return sa, d


def test_ece_halves_the_window_once_per_window_without_retransmitting():
    """6.1.2: an ECN-Echo is congestion without a loss: cwnd and ssthresh reduced (the
    controller's CE_ECN), nothing resent; echoes for the same window of data do not reduce
    it again; CWR goes on the first new data segment after the reduction only."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    flight = tcb.snd_max - tcb.snd_una
    top = tcb.snd_max
    st = p.tcp.stats
    r = p.send(p.seq, d[0].seq + len(d[0].data), ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.rx_ece == 1 and st.ecn_reductions == 1 and st.tx_retransmits == 0
    assert tcb.cc.ssthresh == (flight >> 1) and tcb.cc.window() == tcb.cc.ssthresh
    assert sent_data(r) == []  # the reduced window is full
    # more echoes for data sent before the reduction, up to all of it: the same congestion
    for x in d[1:]:
        r += p.send(p.seq, x.seq + len(x.data), ACK | ECE, opts=p.tsopt(d[-1]))
    assert tcb.snd_una == top and tcb.snd_max > top, "new data went out"
    assert st.rx_ece == len(d) and st.ecn_reductions == 1
    r += p.advance(1)
    new = sent_data(r)
    cwr = [x for x in new if x.flags & CWR]
    assert new[0].flags & CWR and len(cwr) == 1 and st.tx_cwr == 1 and cwr[0].ecn == ECT0
    assert st.tx_retransmits == 0
    p.close()


def test_ece_beyond_the_reduced_window_is_a_new_congestion_event():
    p = EPeer(dict(ON, TCP_SND_BUF=65536))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    p.send(p.seq, d[0].seq + len(d[0].data), ACK | ECE, opts=p.tsopt(d[-1]))
    top = d[-1].seq + len(d[-1].data)
    r = p.send(p.seq, top, ACK | ECE, opts=p.tsopt(d[-1]))  # up to the reduction's point
    new = sent_data(r + p.advance(1))
    assert new and new[0].flags & CWR and st.ecn_reductions == 1
    # an echo for data sent after the reduction: a new congestion event
    r = p.send(p.seq, new[0].seq + len(new[0].data), ACK | ECE, opts=p.tsopt(new[-1]))
    assert st.ecn_reductions == 2 and st.tx_retransmits == 0
    r += p.advance(1)
    r += p.send(p.seq, new[-1].seq + len(new[-1].data), ACK, opts=p.tsopt(new[-1]))
    r += p.advance(1)
    assert [x for x in sent_data(r) if x.flags & CWR] and st.tx_cwr == 2
    p.close()


def test_ece_inside_loss_recovery_does_not_reduce_again_but_still_sends_cwr():
    """6.1.2: the window is reduced once for a series of drops and CE marks from one
    window of data; the CWR still tells the receiver to stop echoing."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    una = d[0].seq
    for i in range(3):  # three duplicate ACKs without SACK blocks: NewReno's fast recovery
        p.send(p.seq, una, ACK, opts=p.tsopt(d[-1]))
    assert st.fast_retransmits == 1
    ss = tcb.cc.ssthresh
    r = p.send(p.seq, una, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.rx_ece == 1 and st.ecn_reductions == 0 and tcb.cc.ssthresh == ss
    assert tcb.flags & T.F_ECN_CWR or st.tx_cwr == 1
    p.close()


# ---- two stacks, a wire marking CE ------------------------------------------------------------
class CeMarker:
    """A driver wrapper: every `every`-th ECT IPv4 packet it sends leaves CE-marked (an AQM
    router's mark), its IP header checksum made again."""

    def __init__(self, driver, every):
        self.driver = driver
        self.mac = driver.mac
        self.mtu = driver.mtu
        self.every = every
        self.ect = 0
        self.marked = 0
        self.enabled = True

    def send(self, buf, n):
        if self.enabled and n >= 34 and buf[12] == 8 and buf[13] == 0 and buf[15] & 3 == ECT0:
            self.ect += 1
            if self.ect % self.every == 0:
                buf[15] |= CE
                buf[24] = buf[25] = 0
                c = ~csum(buf[14:34]) & 0xFFFF
                buf[24] = c >> 8
                buf[25] = c & 0xFF
                self.marked += 1
        return self.driver.send(buf, n)

    def recv_into(self, buf):
        return self.driver.recv_into(buf)

    def poll_obj(self):
        return self.driver.poll_obj()

    def service(self):
        return self.driver.service()

    def link_up(self):
        return self.driver.link_up()

    def close(self):
        return self.driver.close()


def _transfer(cfg_a, cfg_b, every, n=200000):
    marks = []

    def wrap(d, bench):
        m = CeMarker(d, every)
        marks.append(m)
        return m
    bench = Bench(cfg_a, cfg_b, wrap=wrap)
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7000))
    ls.listen(2)
    ls.setblocking(False)
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect((IP_B, 7000))
    except OSError:
        pass
    got = []

    def acc():
        try:
            got.append(ls.accept()[0])
            return True
        except OSError:
            return False
    assert bench.until(acc)
    s = got[0]
    s.setblocking(False)
    payload = bytes(i & 0xFF for i in range(n))
    sent = [0]
    rx = bytearray()

    def step():
        if sent[0] < n:
            try:
                sent[0] += c.send(payload[sent[0]:sent[0] + 8192])
            except OSError:
                pass
        try:
            while True:
                x = s.recv(8192)
                if not x:
                    break
                rx.extend(x)
        except OSError:
            pass
        return len(rx) >= n
    assert bench.until(step, 120000)
    assert bytes(rx) == payload
    return bench, c, s, marks


def test_two_stacks_ce_marks_reduce_the_senders_window_and_nothing_is_resent():
    """6.1.2/6.1.3 end to end: a's data leaves ECT(0), the wire marks some CE, b echoes
    ECE until a's CWR, a reduces its window (no retransmission: no loss), bytes intact."""
    bench, c, s, marks = _transfer(ON, PASSIVE, 25)
    sa, sb = bench.a.tcp.stats, bench.b.tcp.stats
    assert sa.ecn_negotiated == 1 and sb.ecn_negotiated == 1
    assert marks[0].marked > 0 and sb.rx_ce == marks[0].marked
    assert sa.rx_ece > 0 and sa.ecn_reductions > 0 and sa.tx_cwr > 0 and sb.rx_cwr == sa.tx_cwr
    assert sa.ecn_reductions <= sb.rx_ce    # at most once per congestion event
    assert sa.tx_retransmits == 0 and sa.rto_expired == 0
    assert c.tcb.cc.ssthresh < 0x3FFFFFFF   # a reduction, the controller's own
    bench.close_all()


def test_two_stacks_without_ecn_send_nothing_ect_and_nothing_is_marked():
    bench, c, s, marks = _transfer(None, ON, 25, 50000)
    sa, sb = bench.a.tcp.stats, bench.b.tcp.stats
    assert sa.ecn_negotiated == 0 and sb.ecn_negotiated == 0
    assert marks[0].ect == 0 and marks[1].ect == 0 and sb.rx_ce == 0 and sa.rx_ece == 0
    bench.close_all()


def test_two_stacks_with_cubic_reduce_by_its_ecn_rule():
    """RFC 9438 4.6 through RFC 3168 6.1.2: CUBIC's reduction answers ECN-Echo too."""
    cfg = dict(ON, TCP_CC="cubic")
    bench, c, s, marks = _transfer(cfg, cfg, 25)
    sa = bench.a.tcp.stats
    assert c.tcb.cc.name == "cubic" and sa.ecn_reductions > 0 and sa.tx_retransmits == 0
    bench.close_all()


def test_a_loss_after_an_ece_in_the_same_window_is_still_fast_retransmitted():
    """6.1.2: CE marks and drops from one window of data reduce the window once - but the
    dropped segment is still repaired by fast retransmit (RFC 5681 3.2), not left to the
    retransmission timer."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    ack = d[0].seq + len(d[0].data)
    p.send(p.seq, ack, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.ecn_reductions == 1
    r = []
    for i in range(3):  # d[1] lost: three duplicate ACKs
        r += p.send(p.seq, ack, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.fast_retransmits == 1 and st.tx_retransmits == 1
    assert [x.seq for x in sent_data(r)] == [ack]
    p.close()


def test_ece_inside_sack_recovery_does_not_reduce_again():
    """6.1.2 with RFC 6675: ECN-Echo ACKs while SACK recovery repairs the same window
    leave ssthresh as the loss set it; the CWR still goes on the next new data."""

    def sack(last, blocks):
        o = p.tsopt(last) + struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(blocks))
        for a, b in blocks:
            o += struct.pack("!II", a & 0xFFFFFFFF, b & 0xFFFFFFFF)
        return o
    p = EPeer(dict(ON, TCP_SND_BUF=65536))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    una = d[0].seq
    for k in range(1, 4):  # segment 0 lost: SACKs for 1, 1-2, 1-3
        p.send(p.seq, una, ACK, opts=sack(d[-1], [(d[1].seq, d[k].seq + len(d[k].data))]))
    assert st.sack_recoveries == 1 and tcb.sb.in_recovery
    ss = tcb.cc.ssthresh
    p.send(p.seq, una, ACK | ECE, opts=sack(d[-1], [(d[1].seq, d[4].seq + len(d[4].data))]))
    assert st.rx_ece == 1 and st.ecn_reductions == 0 and tcb.cc.ssthresh == ss
    assert tcb.flags & T.F_ECN_CWR or st.tx_cwr == 1
    p.close()


def _sack_opt(p, last, blocks):
    o = p.tsopt(last) + struct.pack("!BBBB", 1, 1, 5, 2 + 8 * len(blocks))
    for a, b in blocks:
        o += struct.pack("!II", a & 0xFFFFFFFF, b & 0xFFFFFFFF)
    return o


def test_cubic_ece_inside_sack_recovery_does_not_reduce_again():
    """6.1.2 with RFC 6675 and CUBIC (RFC 9438 4.6): ECN-Echo ACKs while SACK recovery
    repairs the same window leave cwnd, ssthresh and W_max as the loss set them."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536, TCP_CC="cubic"))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    una = d[0].seq
    r = []
    for k in range(1, 4):  # segment 0 lost: SACKs for 1, 1-2, 1-3
        r += p.send(p.seq, una, ACK,
                    opts=_sack_opt(p, d[-1], [(d[1].seq, d[k].seq + len(d[k].data))]))
    assert st.sack_recoveries == 1 and tcb.sb.in_recovery
    rxt = [x for x in sent_data(r) if x.seq == una][0]
    cc = tcb.cc
    ss, w_max, ev = cc.ssthresh, cc.w_max, cc.events
    for k in range(4, 8):
        p.send(p.seq, una, ACK | ECE,
               opts=_sack_opt(p, rxt, [(d[1].seq, d[k].seq + len(d[k].data))]))
    assert st.rx_ece == 4 and st.ecn_reductions == 0
    assert cc.ssthresh == ss and cc.w_max == w_max and cc.events == ev
    # recovery ends; the receiver still echoes until our CWR reaches it: the same event
    top = una + (tcb.sb.point - tcb.snd_una)             # RecoveryPoint
    p.send(p.seq, top, ACK | ECE, opts=p.tsopt(rxt))    # echoes the retransmission: real
    assert not tcb.sb.in_recovery
    assert st.ecn_reductions == 0 and cc.events == ev and cc.ssthresh == ss
    p.close()


def test_cubic_a_sack_loss_after_an_ece_in_the_same_window_does_not_reduce_again():
    """6.1.2: CE marks and drops from one window of data reduce the window once - the ECE
    reduced it, so the SACK recovery (RFC 6675) that repairs the drop from the same window
    retransmits without a second reduction (Linux: no new reduction while in CWR)."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536, TCP_CC="cubic"))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    cc = tcb.cc
    ack = d[0].seq + len(d[0].data)
    p.send(p.seq, ack, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.ecn_reductions == 1
    ss, cwnd, ev = cc.ssthresh, cc.cwnd, cc.events
    r = []
    for k in range(2, 5):  # d[1] lost: SACKs for 2, 2-3, 2-4
        r += p.send(p.seq, ack, ACK | ECE,
                    opts=_sack_opt(p, d[-1], [(d[2].seq, d[k].seq + len(d[k].data))]))
    assert st.sack_recoveries == 1 and ack in [x.seq for x in sent_data(r)]
    assert cc.events == ev and cc.ssthresh == ss, (cc.ssthresh, ss)
    p.close()


def test_cubic_a_newreno_recovery_loss_after_an_ece_in_the_same_window_does_not_reduce_again():
    """6.1.2 without SACK (RFC 5681 3.2 fast retransmit): the drop after the ECE in the same
    window is repaired, the window not reduced a second time."""
    p = EPeer(dict(ON, TCP_SND_BUF=65536, TCP_CC="cubic", TCP_SACK=False))
    sa, d = _flight(p, 60000)
    tcb = p.tcb()
    st = p.tcp.stats
    cc = tcb.cc
    ack = d[0].seq + len(d[0].data)
    p.send(p.seq, ack, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.ecn_reductions == 1
    ss, w_max = cc.ssthresh, cc.w_max
    r = []
    for i in range(3):  # d[1] lost: three duplicate ACKs
        r += p.send(p.seq, ack, ACK | ECE, opts=p.tsopt(d[-1]))
    assert st.fast_retransmits == 1 and [x.seq for x in sent_data(r)][0] == ack
    assert cc.ssthresh == ss and cc.w_max == w_max and cc.in_recovery
    p.close()


def test_a_ce_marked_super_frame_counts_each_segment_it_merged():
    """A TAP with GRO hands the stack consecutive segments merged into one super-frame;
    the kernel merges only segments whose IP headers match, so CE-marked ones merge with
    each other. rx_ce counts CE-marked segments (RFC 3168 6.1.3) - the merged ones too,
    as a router's marks were counted (CI: 40 marked by nftables, 39 counted)."""
    from ustack.core.tcp import input as tin
    p = EPeer(ON)
    p.ecn_connect()
    tcb = p.sock.tcb
    p.tcp.seg_ecn = CE & 3
    before = p.tcp.stats.rx_ce
    tin._ecn_in(p.tcp, tcb, None, 0, tcb.snd_una, 3 * tcb.mss)
    assert p.tcp.stats.rx_ce - before == 3
    tin._ecn_in(p.tcp, tcb, None, 0, tcb.snd_una, tcb.mss)
    assert p.tcp.stats.rx_ce - before == 4
    p.close()
