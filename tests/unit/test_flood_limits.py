"""Staying up under a flood, one poll at a time: each poll reads a bounded batch of frames per
interface and still runs due timers, and the answers a flood provokes (RSTs for segments to
no connection) are rate-limited, each limited one counted. The floods themselves, from
hping3 against the real process, are in tests/interop/test_floods.py."""
from ustack.core import socket as so
from ustack.core.wire import tcp as w
from ustack.hal import Driver
from tests import frames as F
from tests.feed import Fed

SYN, ACK, RST = w.SYN, w.ACK_F, w.RST


class Flood(Driver):
    """A driver whose receive queue never runs dry: `frames` over and over, as a link under
    a flood looks to the stack."""

    def __init__(self, frames, mac=F.STACK_MAC):
        self.frames = frames
        self.i = 0
        self.read = 0
        self.mac = mac
        self.mtu = 1500
        self.tx = []
        self.on = True

    def recv_into(self, buf):
        if not self.on:
            return 0
        f = self.frames[self.i]
        self.i = (self.i + 1) % len(self.frames)
        n = len(f)
        buf[0:n] = f
        self.read += 1
        return n

    def send(self, buf, n):
        self.tx.append(bytes(buf[0:n]))
        return True


def flooded(frames, config=None):
    fed = Fed(config)
    drv = Flood(frames)
    fed.iface.driver = drv
    return fed, drv


def syns(dport, n=64):
    return [F.tcp_frame(dport, SYN, seq=1000 + i, sport=20000 + i) for i in range(n)]


def test_one_poll_reads_at_most_rx_batch_frames_and_counts_the_budget_hit():
    fed, drv = flooded([F.udp_frame(9, b"x")], {"RX_BATCH": 8})
    fed.stack.poll(fed.t)
    assert drv.read == 8
    assert fed.iface.stats.rx_budget_hit == 1
    drv.on = False
    fed.stack.poll(fed.t)
    assert drv.read == 8 and fed.iface.stats.rx_budget_hit == 1  # ran dry: no budget hit


def test_timers_fire_on_time_while_the_link_never_runs_dry():
    """RFC 6298 5.4: the SYN is retransmitted when its timer expires, flood or not."""
    fed, drv = flooded([F.udp_frame(9, b"x")])
    s = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("192.0.2.1", 7))
    except OSError:
        pass
    syn_count = len([f for f in drv.tx if f[23] == 6])
    for _ in range(1100):
        fed.advance(1)
    assert len([f for f in drv.tx if f[23] == 6]) == syn_count + 1
    assert fed.stack.tcp.stats.tx_retransmits == 1
    s.close()


def rsts(drv):
    return [f for f in drv.tx if f[23] == 6 and f[47] & 0x04]


def test_rsts_for_a_syn_flood_to_a_closed_port_are_rate_limited_and_counted():
    fed, drv = flooded(syns(81), {"TCP_RST_RATE_MS": 5, "TCP_RST_BURST": 50})
    for _ in range(20):
        fed.stack.poll(fed.t)  # 20 polls x 32 SYNs within one millisecond
    st = fed.stack.tcp.stats
    assert st.rx_no_conn == 640
    assert len(rsts(drv)) == st.tx_rst == 50
    assert st.tx_rst_rate_limited == 590
    fed.t += 100  # 100 ms at one RST per 5 ms: 20 more
    for _ in range(20):
        fed.stack.poll(fed.t)
    assert st.tx_rst == 70 and st.tx_rst_rate_limited == 590 + 620


def test_rsts_for_an_ack_flood_to_a_listener_share_the_limit():
    fed, drv = flooded([F.tcp_frame(80, ACK, seq=5, ack=777 + i, sport=30000 + i)
                        for i in range(64)],
                       {"TCP_RST_RATE_MS": 5, "TCP_RST_BURST": 10})
    ls = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    fed.stack.poll(fed.t)
    st = fed.stack.tcp.stats
    assert st.rx_listen_ack == 32 and st.tx_rst == 10 and st.tx_rst_rate_limited == 22
    ls.close()


def test_rst_rate_limit_zero_answers_every_segment():
    fed, drv = flooded(syns(81), {"TCP_RST_RATE_MS": 0})
    fed.stack.poll(fed.t)
    assert fed.stack.tcp.stats.tx_rst == 32 and len(rsts(drv)) == 32


def cookie_flood(config):
    """A listener on port 80 whose SYN queue (4) is full, then a never-ending flood of SYNs
    to it from as many source ports: every SYN past the queue is a SYN cookie's to answer."""
    cfg = {"TCP_SYN_QUEUE": 4, "TCP_MAX_CONNS": 8, "TCP_BACKLOG": 4}
    cfg.update(config)
    fed, drv = flooded(syns(80, 512), cfg)
    drv.on = False
    ls = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    drv.on = True
    return fed, drv, ls


def synacks(drv):
    return [f for f in drv.tx if f[23] == 6 and f[47] & 0x12 == 0x12]


def test_syn_cookies_beyond_the_per_poll_budget_are_dropped_and_counted():
    """RFC 4987 2: a SYN the listener has no room for is dropped. Answering a flood
    SYN with a cookie costs several times what dropping it does, so at most
    TCP_SYNCOOKIE_BUDGET cookies go out per poll; the rest of a full SYN queue's SYNs are
    dropped, each counted (syncookies_over_budget), and the frames behind them (the
    established connections' segments) are read sooner."""
    fed, drv, ls = cookie_flood({"TCP_SYNCOOKIE_BUDGET": 3, "RX_BATCH": 32})
    st = fed.stack.tcp.stats
    fed.stack.poll(fed.t)  # 4 SYNs fill the SYN queue, 3 cookies, 25 dropped
    assert st.conn_passive == 4 and st.syn_queue_full == 28
    assert st.syncookies_sent == 3 and st.syncookies_over_budget == 25
    assert len(synacks(drv)) == 4 + 3
    fed.stack.poll(fed.t)  # a new poll, a new budget
    assert st.syncookies_sent == 6 and st.syncookies_over_budget == 25 + 29
    assert len(synacks(drv)) == 4 + 6
    ls.close()


def test_syn_cookie_budget_zero_answers_every_syn():
    fed, drv, ls = cookie_flood({"TCP_SYNCOOKIE_BUDGET": 0, "RX_BATCH": 32})
    fed.stack.poll(fed.t)
    st = fed.stack.tcp.stats
    assert st.syncookies_sent == 28 and st.syncookies_over_budget == 0
    assert len(synacks(drv)) == 32
    ls.close()


def test_a_syn_we_have_no_route_back_to_is_dropped_before_its_cookie_is_computed():
    """A cookie SYN-ACK to a source no route leads to could never leave (ipv4 output drops
    it, tx_no_route): such a SYN (a random-source flood without a default route) is dropped
    first and counted (syncookies_no_route), and does not spend the poll's cookie budget
    that a client we can answer needs."""
    far = bytes([203, 0, 113, 9])
    flood = [F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(far, F.STACK_IP, 6, F.tcp(
        far, F.STACK_IP, 30000 + i, 80, 1000 + i, 0, SYN))) for i in range(40)]
    fed, drv, ls = cookie_flood({"TCP_SYNCOOKIE_BUDGET": 3, "RX_BATCH": 45})
    drv.frames = syns(80, 4) + flood + [F.tcp_frame(80, SYN, seq=99, sport=45000)]
    fed.stack.poll(fed.t)  # 4 fill the SYN queue, 40 unanswerable, 1 from a real client
    st = fed.stack.tcp.stats
    assert st.syncookies_no_route == 40 and fed.stack.ipv4.stats.tx_no_route == 0
    assert st.syncookies_sent == 1 and st.syncookies_over_budget == 0
    last = synacks(drv)[-1]  # the client's cookie
    assert last[30:34] == F.HOST_IP and last[36:38] == bytes([45000 >> 8, 45000 & 0xFF])
    ls.close()


def flood_host(config):
    """A listener on port 80 (SYN queue 4, cookies on) fed one frame a poll, and the segments
    of ours each frame brought: the test plays a flooded host."""
    cfg = {"TCP_SYN_QUEUE": 4, "TCP_MAX_CONNS": 8, "TCP_BACKLOG": 4}
    cfg.update(config)
    fed = Fed(cfg)
    ls = fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    return fed, ls


def synacks_of(out):
    return [f for f in out if f[23] == 6 and f[47] & 0x12 == 0x12]


def reset_flood(fed, n, first=0):
    """n SYNs from the host's own address (hping3's), each SYN-ACK answered by the host's
    kernel, which never sent that SYN, with a RST: every half-open connection ends at once.
    The SYN-ACKs they got: a held connection's or a cookie's."""
    got = []
    for i in range(first, first + n):
        isn = 1000 + 1000 * i
        out = synacks_of(fed.feed(F.tcp_frame(80, SYN, seq=isn, sport=30000 + i)))
        got += out
        if out:
            fed.feed(F.tcp_frame(80, RST, seq=isn + 1, sport=30000 + i))
    return got


def test_half_open_connections_reset_at_once_still_fill_the_syn_queue_for_a_second():
    """hping3 flooding from its host's own address: the host's kernel answers each SYN-ACK
    with a RST, which ends the half-open connection at once, so the SYN queue never held
    more than one and never filled, cookies never started, and every flood SYN cost a TCB,
    a SYN-ACK and a RST (on the queue the stack reads first: a SYN-ACK notes its flow in
    hal/tap.py). A half-open connection that ends unfinished counts as held for 1 s
    (RFC 6298 2.1's initial RTO, the least a silent peer's slot is held): TCP_SYN_QUEUE of
    them within a second, and SYN cookies answer the next SYNs (syn_queue_churn); a second
    later a SYN is held again."""
    fed, ls = flood_host({})
    tcp = fed.stack.tcp
    st = tcp.stats
    assert len(reset_flood(fed, 4)) == 4
    assert st.conn_passive == 4 and st.rx_rst == 4 and tcp.embryonic == 0
    got = reset_flood(fed, 10, 4)   # the queue is full of slots RSTs emptied: cookies
    assert len(got) == 10 and st.syncookies_sent == 10 and st.conn_passive == 4
    assert st.syn_queue_churn == st.syn_queue_full == 10 and st.rx_listen_rst == 10
    assert tcp.conns == [] and tcp.embryonic == 0
    fed.t += 999
    assert len(reset_flood(fed, 1, 14)) == 1 and st.syncookies_sent == 11
    fed.t += 1
    assert len(reset_flood(fed, 1, 15)) == 1 and st.conn_passive == 5   # held again
    assert st.syncookies_sent == 11
    ls.close()


def test_without_syn_cookies_reset_half_open_connections_do_not_hold_the_queue():
    """With TCP_SYNCOOKIES off there is nothing cheaper to answer with: a SYN queue whose
    slots RSTs emptied takes the next SYN as before (only a full one evicts its oldest)."""
    fed, ls = flood_host({"TCP_SYNCOOKIES": False})
    st = fed.stack.tcp.stats
    assert len(reset_flood(fed, 14)) == 14
    assert st.conn_passive == 14 and st.syn_queue_full == 0 and st.syncookies_sent == 0
    ls.close()


class Resent(Flood):
    """A flooded link that tells a SYN seen before (a client's retransmission) from the rest,
    as hal/tap.py's steering program does (its AGAIN queue): rx_syn_again, per frame read."""

    def __init__(self, frames, again):
        Flood.__init__(self, frames)
        self.again = again
        self.rx_syn_again = False

    def recv_into(self, buf):
        n = Flood.recv_into(self, buf)
        self.rx_syn_again = n > 0 and self.frames[self.i - 1] is self.again
        return n


def test_a_syn_the_link_saw_before_gets_its_cookie_past_the_poll_budget():
    """A client resends its SYN (RFC 6298 2.1: after 1 s), a flood does not send one twice.
    The poll's cookie budget spent on the flood, the client's SYN that the link says it saw
    before still gets its cookie (syncookies_again); a SYN the link did not see before is
    dropped over the budget."""
    fed, drv, ls = cookie_flood({"TCP_SYNCOOKIE_BUDGET": 3, "RX_BATCH": 32})
    client = F.tcp_frame(80, SYN, seq=99, sport=45000)
    fresh = F.tcp_frame(80, SYN, seq=77, sport=45001)
    frames = syns(80, 30) + [client, fresh]
    r = Resent(frames, frames[30])
    r.mac = drv.mac
    fed.iface.driver = r
    fed.stack.poll(fed.t)  # 4 SYNs fill the SYN queue, 3 cookies, 23 + 1 dropped, 1 again
    st = fed.stack.tcp.stats
    assert st.syncookies_sent == 4 and st.syncookies_again == 1
    assert st.syncookies_over_budget == 23 + 1
    last = synacks(r)[-1]  # the client's cookie
    assert last[36:38] == bytes([45000 >> 8, 45000 & 0xFF]) and last[47] & 0x12 == 0x12
    assert not [f for f in synacks(r) if f[36:38] == bytes([45001 >> 8, 45001 & 0xFF])]
    ls.close()
