"""RFC details a review found wrong (issue 12), one test per rule: the timestamp a delayed
ACK echoes (RFC 7323 4.3), the RTO after a retransmitted SYN (RFC 6298 5.7), how long a SYN
is retried (RFC 9293 3.8.3), NewReno's partial-ACK deflation (RFC 6582 3.2) and ICMP errors
(RFC 5927 4.1, RFC 1122 4.2.3.9)."""
import errno
import struct

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.tcp.cc_newreno import NewReno
from tests import frames as F
from tests.unit_ref import csum
from tests.unit.test_tcp_segments import Peer, tcp_frame, opt_bytes, ACK, PSH, SYN
from tests.unit.test_tcp_states import Net, connected, close_all, first_dropped
from tests.twostack import IP_B


# ---- RFC 7323 4.3: TS.Recent only from a segment at or below Last.ACK.sent -------------------

def test_delayed_ack_echoes_the_earliest_unacknowledged_tsval():
    # two small segments under one delayed ACK: the ACK must echo the FIRST one's TSval, so
    # the peer's RTT sample includes the time we held the ACK back (RFC 7323 4.3, case A)
    p = Peer({"TCP_DELACK_MS": 200})  # both segments inside one delayed ACK
    sa = p.connect()
    una = sa.seq + 1
    assert p.send(p.seq, una, ACK | PSH, b"a" * 10, opts=p.tsopt(sa, val=5000)) == []
    p.seq += 10
    p.advance(50)
    assert p.send(p.seq, una, ACK | PSH, b"b" * 10, opts=p.tsopt(sa, val=5050)) == []
    p.seq += 10
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]
    assert r[0].opts["ts"][1] == 5000
    # once that ACK is out, the next in-order segment is at Last.ACK.sent: it is taken
    assert p.send(p.seq, una, ACK | PSH, b"c" * 10, opts=p.tsopt(sa, val=6000)) == []
    p.seq += 10
    r = p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert r[0].opts["ts"][1] == 6000
    p.sock.close()


def test_ack_of_two_full_segments_echoes_the_first_ones_tsval():
    p = Peer()
    sa = p.connect()
    una = sa.seq + 1
    mss = p.tcb().mss
    assert p.send(p.seq, una, ACK, b"x" * mss, opts=p.tsopt(sa, val=7000)) == []
    p.seq += mss
    r = p.send(p.seq, una, ACK, b"y" * mss, opts=p.tsopt(sa, val=7001))
    p.seq += mss
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]  # every second segment (RFC 1122)
    assert r[0].opts["ts"][1] == 7000
    p.sock.close()


def test_retransmission_below_last_ack_sent_still_updates_ts_recent():
    # SEG.SEQ <= Last.ACK.sent, not ==: a retransmission overlapping what we acknowledged
    # carries a fresher TSval and is taken (RFC 7323 4.3 (2))
    p = Peer()
    sa = p.connect()
    una = sa.seq + 1
    p.send(p.seq, una, ACK | PSH, b"a" * 10, opts=p.tsopt(sa, val=5000))
    p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    r = p.send(p.seq, una, ACK | PSH, b"a" * 10 + b"b" * 10, opts=p.tsopt(sa, val=5500))
    p.seq += 20
    r += p.advance(p.stack.config["TCP_DELACK_MS"] + 1)
    assert r[-1].ack == p.seq and r[-1].opts["ts"][1] == 5500
    p.sock.close()


def test_after_a_syn_cookie_handshake_last_ack_sent_is_the_cookies_ack():
    # the cookie SYN-ACK acknowledged the SYN: the first data segment is at Last.ACK.sent
    from tests.unit.test_tcp_hardening import cookie_peer
    from tests.unit.test_tcp_segments import opt_bytes as ob
    p = cookie_peer()
    r = p.send(5000, 0, SYN, opts=ob(mss=1460, ts=(777, 0)), sport=46001)
    sa = r[0]
    p.send(5001, sa.seq + 1, ACK, opts=ob(ts=(778, sa.opts["ts"][0])), sport=46001)
    assert p.tcp.stats.syncookies_ok == 1
    p.advance(50)
    p.send(5001, sa.seq + 1, ACK | PSH, b"hello", opts=ob(ts=(800, sa.opts["ts"][0])),
           sport=46001)
    out = [x for x in p.advance(p.stack.config["TCP_DELACK_MS"] + 1) if x.dport == 46001]
    assert out[-1].ack == 5006 and out[-1].opts["ts"][1] == 800
    s, _ = p.lsock.accept()
    assert s.recv(10) == b"hello"
    s.close()
    p.lsock.close()


# ---- RFC 6298 5.7: RTO 3 s once data flows after a retransmitted SYN (no RTT sample) -------

NO_TS = {"TCP_TIMESTAMPS": False}
# the lost segment must wait for the RTO, not for a tail loss probe first (RFC 8985 7)
NO_TS_NO_TLP = {"TCP_TIMESTAMPS": False, "TCP_TLP": False}



def test_rto_is_three_seconds_after_a_retransmitted_syn_without_timestamps():
    net = Net(NO_TS_NO_TLP)
    net.drop_a = first_dropped(lambda seg: seg[0] == "S")
    c, s = connected(net)
    assert net.a.tcp.stats.rto_expired == 1  # the SYN was retransmitted
    assert c.tcb.rto == 3000
    # the first data segment, lost, is retransmitted 3 s later (not after the 1 s initial RTO)
    net.drop_a = first_dropped(lambda seg: seg[3] > 0)
    t0 = net.t
    c.send(b"data")
    net.jump(10 ** 5, lambda: s.readable())
    sends = [x[0] for x in net.segs("a", t0) if x[5] > 0]
    assert len(sends) == 2 and sends[1] - sends[0] == 3000
    assert s.recv(10) == b"data"
    close_all(net)


def test_rto_is_three_seconds_after_a_retransmitted_synack_without_timestamps():
    net = Net(NO_TS)
    net.drop_b = first_dropped(lambda seg: seg[0] == "S.")
    c, s = connected(net)
    assert net.b.tcp.stats.rto_expired == 1
    assert s.tcb.rto == 3000
    close_all(net)


def test_rtt_sample_from_timestamps_after_a_retransmitted_syn_keeps_the_measured_rto():
    # with timestamps the handshake still yields a sample (RFC 7323 4): no fallback to 3 s
    net = Net()
    net.drop_a = first_dropped(lambda seg: seg[0] == "S")
    c, s = connected(net)
    assert net.a.tcp.stats.rto_expired == 1
    assert c.tcb.srtt8 != 0 and c.tcb.rto < 3000
    close_all(net)


def test_rto_without_a_retransmitted_syn_comes_from_the_handshake_sample():
    net = Net(NO_TS)
    c, s = connected(net)
    assert c.tcb.rto == net.a.config["TCP_RTO_MIN_MS"]
    close_all(net)


# ---- RFC 9293 3.8.3: R2 for a SYN is at least 3 minutes (RFC 1122 4.2.3.5) -----------------

def test_syn_is_retransmitted_for_at_least_three_minutes_with_the_rto_capped():
    net = Net()
    net.drop_a = lambda seg: True
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex((IP_B, 7)) == errno.EINPROGRESS
    t = c.tcb
    net.jump(10 ** 6, lambda: t.state == T.CLOSED)
    syns = [x[0] for x in net.segs("a") if x[2] == "S"]
    gaps = [b - a for a, b in zip(syns, syns[1:])]
    assert net.t - syns[0] >= 180000       # still trying after 3 minutes
    assert syns[-1] - syns[0] < 180000     # ... and the last SYN went out before that
    assert max(gaps) <= net.a.config["TCP_RTO_MAX_MS"]  # RFC 6298 2.5: back-off capped
    assert net.t - syns[-1] <= net.a.config["TCP_RTO_MAX_MS"] + 1
    assert c.connect_ex((IP_B, 7)) == errno.ETIMEDOUT
    assert net.a.tcp.stats.conn_timeout == 1
    close_all(net)


def test_syn_retries_beyond_three_minutes_are_kept():
    # more retries than three minutes need: the count decides, the 3 minutes is a floor
    net = Net({"TCP_SYN_RETRIES": 10})
    net.drop_a = lambda seg: True
    c = net.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 7))
    t = c.tcb
    net.jump(10 ** 7, lambda: t.state == T.CLOSED)
    assert len([x for x in net.segs("a") if x[2] == "S"]) == 11
    close_all(net)


# ---- RFC 6582 3.2 step 3: partial ACK deflation -------------------------------------------------

def _in_recovery(mss=1000, flight=10000):
    cc = NewReno(mss)
    cc.cwnd = flight
    for _ in range(3):
        cc.on_dup_ack(0, flight, flight)
    assert cc.in_recovery and cc.ssthresh == flight // 2
    assert cc.cwnd == flight // 2 + 3 * mss
    return cc


def test_partial_ack_of_less_than_one_mss_deflates_without_adding_one_back():
    cc = _in_recovery()
    w = cc.cwnd
    assert cc.on_ack(500, 500, 10000) is True  # partial: retransmit the next hole
    assert cc.cwnd == w - 500 and cc.in_recovery


def test_partial_ack_of_at_least_one_mss_deflates_and_adds_one_mss_back():
    cc = _in_recovery()
    w = cc.cwnd
    assert cc.on_ack(2500, 2500, 10000) is True
    assert cc.cwnd == w - 2500 + 1000 and cc.in_recovery
    w = cc.cwnd
    assert cc.on_ack(1000, 3500, 7500) is True  # exactly one MSS: it is added back
    assert cc.cwnd == w


def test_full_ack_ends_recovery_with_cwnd_at_most_ssthresh():
    cc = _in_recovery()
    assert cc.on_ack(10000, 10000, 10000) is False
    assert not cc.in_recovery and cc.cwnd == 1000 + 1000  # min(ssthresh, max(0, MSS) + MSS)


# ---- ICMP errors: RFC 5927 4.1 sequence check, RFC 1122 4.2.3.9 soft and hard ---------------

def _icmp_quoting(dgram, t, code, seq_delta=0):
    """An ICMP error about our datagram dgram (IP header + TCP header), its quoted sequence
    number moved by seq_delta."""
    ihl = (dgram[0] & 15) * 4
    q = bytearray(dgram[:ihl + 28])
    seq = struct.unpack("!I", q[ihl + 4:ihl + 8])[0]
    q[ihl + 4:ihl + 8] = struct.pack("!I", (seq + seq_delta) & 0xFFFFFFFF)
    h = struct.pack("!BBHI", t, code, 0, 0) + bytes(q)
    c = ~csum(h) & 0xFFFF
    h = h[:2] + struct.pack("!H", c) + h[4:]
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 1, h))


def _tcp_dgrams(frames):
    return [f[14:] for f in frames if f[12:14] == b"\x08\x00" and f[23] == 6]


def _connecting(fed):
    c = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex(("192.0.2.1", 9)) == errno.EINPROGRESS
    syn = _tcp_dgrams(fed.drv.tx)
    fed.drv.tx.clear()
    assert len(syn) == 1
    return c, syn[0]


def test_port_unreachable_in_syn_sent_refuses_the_connection():
    p = Peer()
    c, syn = _connecting(p.fed)
    p.fed.feed(_icmp_quoting(syn, 3, 3))
    assert c.tcb.state == T.CLOSED
    assert c.connect_ex(("192.0.2.1", 9)) == errno.ECONNREFUSED
    c.close()


def test_icmp_error_in_syn_sent_quoting_another_sequence_number_is_dropped():
    # RFC 5927 4.1: a blind attacker does not know our ISS; the quote must carry it
    p = Peer()
    c, syn = _connecting(p.fed)
    for delta in (1, -1, 1000, 0x80000000):
        p.fed.feed(_icmp_quoting(syn, 3, 3, delta))
        assert c.tcb.state == T.SYN_SENT
    assert p.stack.counters()["tcp.icmp_out_of_window"] == 4
    assert c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    p.fed.feed(_icmp_quoting(syn, 3, 3))  # control: the real quote still works
    assert c.tcb.state == T.CLOSED
    c.close()


def _sent_data(p):
    p.sock.send(b"hello")
    out = []
    end = p.fed.t + 1
    while p.fed.t < end:
        p.fed.advance(1)
        out += _tcp_dgrams(p.fed.drv.tx)
        p.fed.drv.tx.clear()
    assert len(out) == 1
    return out[0]


def test_soft_icmp_error_on_an_established_connection_is_reported_not_fatal():
    # host unreachable (code 1) is soft: the connection goes on, SO_ERROR tells it once
    p = Peer()
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 1))
    assert p.tcb().state == T.ESTABLISHED
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.EHOSTUNREACH
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    p.sock.send(b"more")  # send and recv do not raise it
    p.sock.close()


def test_hard_icmp_error_on_an_established_connection_is_soft_too():
    # RFC 5927 5.2: in synchronized states hard errors are treated as soft (blind resets)
    p = Peer()
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 3))
    assert p.tcb().state == T.ESTABLISHED
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.ECONNREFUSED
    p.sock.close()


def test_time_exceeded_is_a_soft_error():
    p = Peer()
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 11, 0))
    assert p.tcb().state == T.ESTABLISHED
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.EHOSTUNREACH
    p.sock.close()


def test_icmp_error_on_an_established_connection_outside_snd_una_snd_nxt_is_dropped():
    p = Peer()
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 1, 100000))
    p.fed.feed(_icmp_quoting(d, 3, 1, -1))
    assert p.stack.counters()["tcp.icmp_out_of_window"] == 2
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    p.sock.close()


def test_connection_timing_out_after_a_soft_error_reports_that_error():
    # RFC 1122 4.2.3.9: the soft error is made available; a timeout is explained by it
    p = Peer({"TCP_MAX_RETRIES": 2})
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 1))
    p.advance(60000)
    assert p.tcb().state == T.CLOSED
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.EHOSTUNREACH
    p.sock.close()


def test_an_ack_of_new_data_clears_a_soft_error():
    p = Peer()
    sa = p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 1))
    p.send(p.seq, sa.seq + 1 + 5, ACK, opts=p.tsopt(sa))  # something worked
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    p.sock.close()



def _half_open(p):
    """A SYN to the stack's listener; the stack's SYN-ACK (IP datagram)."""
    p.listen()
    d = _tcp_dgrams(p.fed.feed(tcp_frame(p.seq, 0, SYN, opts=opt_bytes(mss=1460))))
    assert len(d) == 1 and p.tcp.conns[0].state == T.SYN_RECEIVED
    return d[0]


def test_icmp_error_about_our_synack_forgets_the_half_open_connection():
    # its SYN-ACK cannot arrive; the SYN queue slot is worth more (as Linux's tcp_req_err)
    p = Peer()
    sa = _half_open(p)
    p.fed.feed(_icmp_quoting(sa, 3, 1, 1))   # not our ISS: a blind guess
    assert p.stack.counters()["tcp.icmp_out_of_window"] == 1 and len(p.tcp.conns) == 1
    p.fed.feed(_icmp_quoting(sa, 3, 1))
    assert p.tcp.conns == [] and p.lsock.syn_count == 0 and p.tcp.embryonic == 0
    assert p.stack.counters()["tcp.icmp_embryonic_dropped"] == 1
    p.lsock.close()


def test_net_unreachable_is_reported_as_enetunreach():
    # errno as Linux's icmp_err_convert: code 0 is the network, code 1 the host
    p = Peer()
    p.connect()
    d = _sent_data(p)
    p.fed.feed(_icmp_quoting(d, 3, 0))
    assert p.tcb().state == T.ESTABLISHED
    assert p.sock.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == errno.ENETUNREACH
    p.sock.close()
