"""SEGMENT ARRIVES (RFC 9293 3.10.7) for LISTEN, SYN-SENT and the synchronized states,
with RFC 5961 (RST/SYN/ACK validation, challenge ACKs), RFC 7323 (PAWS, timestamps, window
scaling), RFC 1337 (RST ignored in TIME-WAIT), RFC 5681/6582 (duplicate ACKs feed the
congestion controller), RFC 2018/2883/6675/6937 and RFC 8985 (received SACK blocks feed the
scoreboard and SACK-based loss recovery, scoreboard.py), RFC 9293 3.8.6 (window updates),
RFC 1122 4.2.3.2 (delayed ACK) and RFC 3168 (ECN: the SYN's flags, CE marks read from the IP
header (tcp.seg_ecn, from the network layer's metadata), ECN-Echo answered by the controller's CE_ECN reduction).

The segment being processed is in the TCP object's scratch fields (seg_*, opt_*), its bytes
in b; payload is copied once, into the receive ring. Nothing is allocated per segment.
Sequence numbers, ACKs and timestamps are relative to the connection's bases (tcb.py): a
SYN sets the peer's (IRS, first TSval) here."""
from ustack.core.compat import ECONNREFUSED, ECONNRESET
from ustack.core.wire import tcp as w
from ustack.core.tcp import tcb as T
from ustack.core.tcp import options as opt
from ustack.core.tcp import output as out
from ustack.core.tcp import rto
from ustack.core.tcp import cookie
try:
    from ustack.core.tcp import undo
except ImportError:  # a board built without "undo" (ports/micropython/build.py)
    from ustack.core.tcp import undo_off as undo
try:
    from ustack.core.tcp.scoreboard import DUP_THRESH
except ImportError:  # without "sack" no scoreboard is ever made: the SACK path never runs
    DUP_THRESH = 3
from ustack.core.tcp.cc import CE_ECN
from ustack.core.ipv4 import ECN_CE
from ustack.core.net.ip import link_mtu
from ustack.core.tcp.seq import (seq_add, seq_sub, seq_diff, seq_lt, seq_le, seq_gt, seq_ge,
                                 seq_in, rel_at, hi_minus_1, lo_minus_1)

PAWS_IDLE_MS = 24 * 24 * 3600 * 1000  # RFC 7323 5.5: TS.Recent older than 24 days is stale

# Header prediction (segment(), _predicted): off only for the tests that compare it with the
# full path (tests/unit/test_header_prediction.py)
HEADER_PREDICTION = True


def _negotiate(tcp, tcb, b):
    """Options of the peer's SYN (or SYN-ACK); its sequence number becomes the IRS, its
    TSval the base of ts_recent (both as 16-bit halves), so both are 0 relative."""
    o = tcp.seg_hdr
    tcb.irs_hi = (b[o + 4] << 8) | b[o + 5]
    tcb.irs_lo = (b[o + 6] << 8) | b[o + 7]
    tcp.seg_seq = 0
    seen = tcp.opt_seen
    tcb.peer_mss = tcp.opt_mss if seen & opt.SEEN_MSS else 536
    if seen & opt.SEEN_WS and tcp.wscale:
        tcb.flags |= T.F_WS
        s = tcp.opt_ws
        if s > w.MAX_WSCALE:
            s = w.MAX_WSCALE  # RFC 7323 2.3
        tcb.snd_wscale = s
    else:
        tcb.flags &= ~T.F_WS
        tcb.snd_wscale = 0
        tcb.rcv_wscale = 0
    if seen & opt.SEEN_TS and tcp.timestamps:
        tcb.flags |= T.F_TS
        to = tcp.opt_ts_off
        tcb.tsr_hi = (b[to] << 8) | b[to + 1]
        tcb.tsr_lo = (b[to + 2] << 8) | b[to + 3]
        tcp.opt_tsval = 0
        tcp.opt_tsecr = rel_at(b, to + 4, tcb.ts_hi, tcb.ts_lo)
        tcb.ts_recent = 0
        tcb.ts_recent_age = tcp.stack.now
    else:
        tcb.flags &= ~T.F_TS
    if seen & opt.SEEN_SACK_PERM and tcp.sack:
        tcb.flags |= T.F_SACK
    else:
        tcb.flags &= ~T.F_SACK
    tcp.set_mss(tcb)


def listen(tcp, lsock, iface, b, sport, dport):
    """LISTEN (RFC 9293 3.10.7.2), with the SYN and accept queues bounded: a full SYN queue
    (TCP_SYN_QUEUE for all listeners, 2*backlog+1 for one) answers with a SYN cookie (RFC
    4987), or without cookies forgets its oldest half-open connection; the ACK that
    returns a valid cookie becomes a connection."""
    st = tcp.stats
    fl = tcp.seg_flags
    if fl & w.RST:
        st.rx_listen_rst += 1
        return
    if fl & w.ACK_F:
        if tcp.syncookies and tcp.stack.now - tcp.cookie_at < (2 << cookie.T_SHIFT) and \
                not (fl & w.SYN):
            if _cookie_ack(tcp, lsock, iface, b, sport, dport):
                return
            if tcp.seg_len:
                # A cookie connection whose completing ACK met a full accept queue: its
                # later segments carry a later SEQ and cannot prove the cookie (the peer's
                # ISN is in the MAC). A RST would kill it; dropped, the peer retransmits
                # from ISN+1, which can.
                return
        st.rx_listen_ack += 1
        out.send_rst(tcp, b, rel_at(b, tcp.seg_hdr + 8, 0, 0), 0, w.RST)
        return
    if not (fl & w.SYN):
        st.rx_listen_no_syn += 1
        return
    if fl & w.FIN:
        st.rx_syn_fin += 1  # SYN+FIN: no legitimate stack sends it (a scan); Linux drops it
        return
    if len(lsock.acc_q) >= lsock.backlog:
        st.accept_queue_full += 1
        return
    full = tcp.embryonic >= tcp.synq or lsock.syn_count >= 2 * lsock.backlog + 1
    if full or (tcp.syncookies and tcp.syn_held() >= tcp.synq):
        st.syn_queue_full += 1
        if tcp.syncookies:
            if not full:
                st.syn_queue_churn += 1  # full of slots RSTs emptied (proto.syn_held)
            _cookie(tcp, lsock, iface, b)
            return
        if not tcp.evict_embryonic(lsock if lsock.syn_count >= 2 * lsock.backlog + 1
                                   else None):
            return
    # a new connection's addresses (setup, not the per-segment path: slices are fine)
    a = tcp.seg_alen
    lip = b[tcp.seg_dst:tcp.seg_dst + a]
    rip = b[tcp.seg_src:tcp.seg_src + a]
    tcb = tcp.new_tcb(lip, dport, rip, sport)
    if tcb is None:
        st.syn_no_tcb += 1
        if tcp.syncookies:
            _cookie(tcp, lsock, iface, b)  # a TCB may be free by its ACK
        return
    _passive(tcp, tcb, lsock, iface)
    _negotiate(tcp, tcb, b)
    if tcp.ecn and (fl & (w.ECE | w.CWR)) == (w.ECE | w.CWR):
        tcb.flags |= T.F_ECN  # RFC 3168 6.1.1: an ECN-setup SYN, answered with ECE
    tcb.rcv_nxt = 1
    tcb.rcv_adv = 1
    tcb.snd_wnd = tcp.seg_wnd  # never scaled in a SYN (RFC 7323 2.2)
    tcb.max_sndwnd = tcb.snd_wnd
    tcb.snd_wl1 = 0
    st.conn_passive += 1
    out.output(tcp, tcb)


def _cookie(tcp, lsock, iface, b):
    """Answer a SYN the listener cannot hold with a SYN cookie, at most TCP_SYNCOOKIE_BUDGET
    per poll. Under a flood a cookie costs several times what reading and dropping the SYN
    does (the SYN-ACK's MAC, build and checksums, its write, and the peer's RST to read back
    when the SYN was forged): past the budget the SYN is dropped, as a listener without
    room does (RFC 4987 2), so the established connections' segments queued behind the flood
    are read in time. A real client retransmits its SYN (RFC 6298 5.7).
    A SYN from a source no route leads back to (a random-source flood without a default
    route) is dropped before its cookie is made: its SYN-ACK could not leave, and it must
    not spend the budget a client we can answer needs (once the budget is spent, every SYN
    is dropped as over budget, without the route lookup)."""
    if tcp.cookie_budget and tcp.cookies_left <= 0:
        if not getattr(iface.driver, "rx_syn_again", False):
            tcp.stats.syncookies_over_budget += 1
            return
        tcp.stats.syncookies_again += 1
    if tcp.stack.ip.route_out(b, tcp.seg_src, tcp.seg_alen) is None:
        tcp.stats.syncookies_no_route += 1
        return
    if tcp.cookie_budget:
        tcp.cookies_left -= 1
    out.send_synack_cookie(tcp, lsock, iface, b)


def _passive(tcp, tcb, lsock, iface):
    """A new TCB becomes the listener's half-open connection (SYN-RECEIVED)."""
    tcb.state = T.SYN_RECEIVED
    tcb.flags |= T.F_PASSIVE | (lsock.tflags & (T.F_NODELAY | T.F_KEEPALIVE))
    tcb.listener = lsock
    lsock.syn_count += 1
    tcp.embryonic += 1
    tcb.iface_mtu = link_mtu(iface, tcp.seg_alen)  # the family's: IPv6's may be an RA's
    tcb.rcv_cap = lsock.rcvbuf
    tcb.snd_cap = lsock.sndbuf
    tcb.ttl = lsock.ttl
    tcb.tos = lsock.tos
    if lsock.keep_idle:  # each the listener's if it set it, else the board's (new_tcb)
        tcb.keep_idle = lsock.keep_idle
    if lsock.keep_intvl:
        tcb.keep_intvl = lsock.keep_intvl
    if lsock.keep_cnt:
        tcb.keep_cnt = lsock.keep_cnt
    tcb.rcv_wscale = tcp.wscale_for(tcb.rcv_cap)


def _cookie_ack(tcp, lsock, iface, b, sport, dport):
    """An ACK to a listener while SYN cookies are in use (RFC 4987 3.6): if it returns a
    valid cookie, rebuild the connection its SYN asked for and let the SYN-RECEIVED path
    take the ACK (and any data). False: not a cookie of ours (the caller sends a RST)."""
    st = tcp.stats
    o = tcp.seg_hdr
    if len(lsock.acc_q) >= lsock.backlog:
        st.accept_queue_full += 1  # the peer retransmits; no state kept meanwhile
        return True
    idx = cookie.check(tcp.cookie_mac, b, tcp.seg_src, tcp.seg_dst, tcp.seg_alen, o,
                       tcp.stack.now)
    if idx < 0:
        if tcp.seg_len:
            st.syncookies_unproven += 1  # see listen(): dropped, not reset
        else:
            st.syncookies_bad += 1
        return False
    a = tcp.seg_alen
    tcb = tcp.new_tcb(b[tcp.seg_dst:tcp.seg_dst + a], dport, b[tcp.seg_src:tcp.seg_src + a],
                      sport)
    if tcb is None:
        st.syncookies_no_tcb += 1
        return True
    st.syncookies_ok += 1
    st.conn_passive += 1
    _passive(tcp, tcb, lsock, iface)
    # the SYN's ISN and ours are the ACK's SEQ - 1 and ACK - 1: 0 relative, as in listen()
    tcb.irs_hi = hi_minus_1(b, o + 4)
    tcb.irs_lo = lo_minus_1(b, o + 4)
    tcb.iss_hi = hi_minus_1(b, o + 8)
    tcb.iss_lo = lo_minus_1(b, o + 8)
    tcb.peer_mss = cookie.MSS_TABLE[idx]
    tcb.rcv_wscale = 0
    tcb.snd_wscale = 0
    if tcp.opt_seen & opt.SEEN_TS and tcp.timestamps:
        to = tcp.opt_ts_off
        bits = b[to + 7] & cookie.TS_MASK  # our TSval, echoed: what the SYN offered
        if bits & cookie.TS_ON:
            tcb.flags |= T.F_TS
            tcb.tsr_hi = (b[to] << 8) | b[to + 1]
            tcb.tsr_lo = (b[to + 2] << 8) | b[to + 3]
            tcb.ts_recent = 0
            tcb.ts_recent_age = tcp.stack.now
            # our TSvals go on from the cookie's (RFC 7323 5.4: monotonic), so the peer's
            # echo of it is 0 relative, like any connection's first
            tcb.ts_hi = (b[to + 4] << 8) | b[to + 5]
            tcb.ts_lo = (b[to + 6] << 8) | b[to + 7]
            tcb.ts_start = tcp.stack.now
            ws = bits & 0x0F
            if ws != cookie.TS_WS_NONE and tcp.wscale:
                tcb.flags |= T.F_WS
                tcb.snd_wscale = ws if ws <= w.MAX_WSCALE else w.MAX_WSCALE
                tcb.rcv_wscale = tcp.wscale_for(tcb.rcv_cap)
            if bits & cookie.TS_SACK and tcp.sack:
                tcb.flags |= T.F_SACK
    tcp.set_mss(tcb)
    win = tcb.rcv_cap if tcb.rcv_cap < 0xFFFF else 0xFFFF  # what the SYN-ACK offered
    tcb.rcv_nxt = 1
    tcb.rcv_adv = 1 + win
    tcb.snd_una = 0
    tcb.snd_nxt = tcb.snd_max = 1  # our SYN-ACK (the cookie) is acknowledged by this ACK
    tcb.retries = 1  # no RTT sample from a SYN-ACK we did not time (Karn)
    tcp.seg_seq = 1
    tcp.seg_ack = 1
    tcp.opt_seen &= ~opt.SEEN_TS  # its timestamps are taken: no PAWS, no RTT sample
    segment(tcp, tcb, b)
    if tcb.state == T.SYN_RECEIVED:
        tcp.drop(tcb, 0)  # the ACK was not taken after all: stateless again
    return True


def _rtt_from_ts(tcp, tcb):
    """An RTT sample from the echoed timestamp, fed to the RTO: the sample in ms, -1 none."""
    if tcb.flags & T.F_TS and tcp.opt_seen & opt.SEEN_TS:
        r = seq_sub(tcp.stack.now - tcb.ts_start, tcp.opt_tsecr)
        if r < 600000:
            rto.sample(tcb, r, tcp.rto_min, tcp.rto_max)
            return r
    return -1


def _established(tcp, tcb):
    """Handshake done: buffers, congestion controller, timers. The state changes only once
    the buffers are there: a failure leaves it SYN-RECEIVED, so drop() gives the listener's
    SYN-queue slot back (issue 8 hole 6)."""
    if not tcp.open_buffers(tcb):
        tcp.abort(tcb)  # no memory for its buffers: RST rather than a half-made connection
        return False
    tcb.state = T.ESTABLISHED  # (the controller comes with the first send: cc.of)
    # RFC 7323 4.3: our SYN-ACK (a SYN cookie's too), or the ACK about to answer theirs,
    # acknowledges the peer's SYN: Last.ACK.sent is RCV.NXT
    tcb.last_ack_sent = tcb.rcv_nxt
    if _rtt_from_ts(tcp, tcb) < 0:
        if tcb.retries == 0:
            rto.sample(tcb, tcp.stack.now - tcb.rtt_start, tcp.rto_min, tcp.rto_max)  # Karn
        elif tcb.rexmits and tcb.srtt8 == 0:
            rto.fallback(tcb, tcp.rto_max)  # RFC 6298 5.7 (rexmits: not a SYN cookie's)
    tcb.t_rexmt = 0
    tcb.retries = 0
    tcb.backoff = 0
    tcb.t_conn = 0
    if tcb.flags & T.F_KEEPALIVE:
        t = tcp.stack.now + tcb.keep_idle
        tcb.t_keep = t
        tcp.arm(t)
    tcp.stats.conn_established += 1
    if tcb.flags & T.F_ECN:
        tcp.stats.ecn_negotiated += 1
    return True


def syn_sent(tcp, tcb, b):
    """SYN-SENT (RFC 9293 3.10.7.3)."""
    st = tcp.stats
    fl = tcp.seg_flags
    ack = tcp.seg_ack
    if fl & w.ACK_F:
        if seq_le(ack, 0) or seq_gt(ack, tcb.snd_max):  # 0: our ISS
            st.rx_bad_synack += 1
            if not (fl & w.RST):
                out.send_rst(tcp, b, rel_at(b, tcp.seg_hdr + 8, 0, 0), 0, w.RST)
            return
    if fl & w.RST:
        if fl & w.ACK_F:
            st.conn_refused += 1
            tcp.drop(tcb, ECONNREFUSED)
        else:
            st.rx_rst_bad_ack += 1  # RFC 5961 3.2: a RST in SYN-SENT must acknowledge our SYN
        return
    if not (fl & w.SYN):
        st.rx_bad_synack += 1
        return
    _negotiate(tcp, tcb, b)
    if tcb.flags & T.F_ECN and (fl & (w.ECE | w.CWR)) != (w.ECE if fl & w.ACK_F else
                                                          w.ECE | w.CWR):
        # RFC 3168 6.1.1: only an ECN-setup SYN-ACK (ECE without CWR: a middlebox that
        # reflects our flags sends both) or, opening simultaneously, an ECN-setup SYN
        tcb.flags &= ~T.F_ECN
    tcb.rcv_nxt = 1
    tcb.rcv_adv = 1
    tcb.snd_wnd = tcp.seg_wnd
    tcb.max_sndwnd = tcb.snd_wnd
    tcb.snd_wl1 = 0
    tcb.snd_wl2 = ack
    if fl & w.ACK_F:
        tcb.snd_una = ack
        if seq_lt(tcb.snd_nxt, ack):
            tcb.snd_nxt = ack
        if _established(tcp, tcb):
            tcb.flags |= T.F_ACKNOW
            out.output(tcp, tcb)
        if tcb.sock is not None:
            tcb.sock._event()
        return
    # simultaneous open (RFC 9293 figure 8): SYN-RECEIVED, answer SYN,ACK with our ISS
    tcb.state = T.SYN_RECEIVED
    tcb.snd_nxt = 0  # our ISS
    tcb.t_rexmt = 0
    out.output(tcp, tcb)


def segment(tcp, tcb, b):
    """The synchronized states and SYN-RECEIVED (RFC 9293 3.10.7.4)."""
    st = tcp.stats
    fl = tcp.seg_flags
    seq = tcp.seg_seq
    ack = tcp.seg_ack
    dlen = tcp.seg_len
    doff = tcp.seg_doff
    state = tcb.state
    # header prediction's cheapest tests first: a request that acknowledges our last answer
    # (an echo) goes on at once, with no call
    if state == T.ESTABLISHED and dlen > 0 and seq == tcb.rcv_nxt and ack == tcb.snd_una and \
            (fl & ~w.PSH) == w.ACK_F and HEADER_PREDICTION and _predicted(tcp, tcb, b):
        return
    now = tcp.stack.now
    if state == T.SYN_RECEIVED and fl & w.SYN and tcb.flags & T.F_ECN and \
            (fl & (w.ECE | w.CWR)) != (w.ECE | w.CWR) and not (fl & w.ACK_F):
        # RFC 3168 6.1.1: the peer resent its SYN without ECN (its 6.1.1.1 fallback), so
        # it will not echo CE marks: no ECT from us ("SHOULD NOT" after a non-ECN SYN)
        tcb.flags &= ~T.F_ECN

    # PAWS (RFC 7323 5.3): a timestamp older than TS.Recent marks an old duplicate
    if tcb.flags & T.F_TS and tcp.opt_seen & opt.SEEN_TS and not (fl & w.RST):
        if seq_lt(tcp.opt_tsval, tcb.ts_recent):
            if now - tcb.ts_recent_age > PAWS_IDLE_MS:
                tcb.ts_recent = tcp.opt_tsval  # stale TS.Recent: accept (RFC 7323 5.5)
            else:
                st.rx_paws += 1
                out.send_ack(tcp, tcb)
                return

    # acceptability (RFC 9293 3.10.7.4 first check)
    rcv_wnd = 0
    if seq_gt(tcb.rcv_adv, tcb.rcv_nxt):
        rcv_wnd = seq_sub(tcb.rcv_adv, tcb.rcv_nxt)
    nxt = tcb.rcv_nxt
    seglen = dlen
    if fl & w.SYN:
        seglen += 1
    if fl & w.FIN:
        seglen += 1
    if seglen == 0:
        if rcv_wnd == 0:
            ok = seq == nxt
        else:
            ok = seq_in(seq, nxt, rcv_wnd)
    elif rcv_wnd == 0:
        ok = False
    else:
        ok = seq_in(seq, nxt, rcv_wnd) or seq_in(seq_add(seq, seglen - 1), nxt, rcv_wnd)
    if not ok:
        if fl & w.RST:
            st.rx_rst_out_of_window += 1  # RFC 5961 3.2: silently dropped
            return
        st.rx_out_of_window += 1
        if seglen and seq_diff(seq, nxt) == -1:
            st.rx_window_probes += 1
        if dlen > 0 and not (fl & w.SYN) and seq_le(seq_add(seq, dlen), nxt):
            _dsack(tcb, seq, seq_add(seq, dlen))  # RFC 2883 4.1.1: all of it came before
        if state == T.TIME_WAIT and fl & w.FIN:
            t = tcp.linger_deadline(now)  # retransmitted FIN: ACK it, restart 2*MSL
            tcb.t_conn = t
            tcp.arm(t)
        out.send_ack(tcp, tcb)
        return

    # trim to the window: bytes already received in front, beyond the window behind
    if seq_lt(seq, nxt):
        cut = seq_sub(nxt, seq)
        if fl & w.SYN:
            fl &= ~w.SYN
            cut -= 1
            seq = seq_add(seq, 1)
        if cut > dlen:
            cut = dlen
            fl &= ~w.FIN
        if cut:
            st.rx_dup_data += 1
            _dsack(tcb, seq, seq_add(seq, cut))  # RFC 2883 4.1.1: the part that came before
        doff += cut
        dlen -= cut
        seq = seq_add(seq, cut)
        tcb.flags |= T.F_ACKNOW
    if dlen > 0:
        room = rcv_wnd - seq_sub(seq, nxt)
        if dlen > room:
            dlen = room if room > 0 else 0
            fl &= ~w.FIN

    # RST (RFC 5961 3.2: only an exact match resets; in-window others get a challenge ACK)
    if fl & w.RST:
        if state == T.TIME_WAIT:
            st.rx_rst_time_wait += 1  # RFC 1337: TIME-WAIT ignores RSTs
            return
        if seq != nxt:
            tcp.challenge_ack(tcb)
            return
        st.rx_rst += 1
        if state == T.SYN_RECEIVED:
            if tcb.flags & T.F_PASSIVE:
                tcp.drop(tcb, 0)  # back to LISTEN: just forget the embryonic connection
            else:
                st.conn_refused += 1
                tcp.drop(tcb, ECONNREFUSED)
        elif state == T.CLOSING or state == T.LAST_ACK:
            tcp.drop(tcb, 0)
        else:
            st.conn_reset += 1
            tcp.drop(tcb, ECONNRESET)
        return

    # SYN in a synchronized state (RFC 5961 4.2): challenge ACK, never a reset
    if fl & w.SYN:
        st.rx_syn_in_window += 1
        tcp.challenge_ack(tcb)
        return

    if not (fl & w.ACK_F):
        st.rx_no_ack += 1
        return

    tcb.last_rx = now
    tcb.keep_probes = 0
    # RFC 7323 4.3 (2): TS.Recent from a segment at or below Last.ACK.sent only, so an ACK
    # we delay echoes the EARLIEST TSval it covers and the peer's RTT includes our delay
    if tcb.flags & T.F_TS and tcp.opt_seen & opt.SEEN_TS and \
            seq_le(tcp.seg_seq, tcb.last_ack_sent) and seq_ge(tcp.opt_tsval, tcb.ts_recent):
        tcb.ts_recent = tcp.opt_tsval
        tcb.ts_recent_age = now
    if tcb.flags & T.F_ECN:
        _ecn_in(tcp, tcb, b, fl, ack, dlen)

    if state == T.SYN_RECEIVED:
        if not (seq_lt(tcb.snd_una, ack) and seq_le(ack, tcb.snd_max)):
            st.rx_bad_synack += 1
            out.send_rst(tcp, b, ack, 0, w.RST)
            return
        ls = tcb.listener
        if ls is not None and len(ls.acc_q) >= ls.backlog:
            st.accept_queue_full += 1  # keep SYN-RECEIVED; our SYN,ACK retransmits
            return
        tcb.snd_una = ack
        tcb.snd_wnd = tcp.seg_wnd << tcb.snd_wscale
        tcb.max_sndwnd = tcb.snd_wnd
        tcb.snd_wl1 = seq
        tcb.snd_wl2 = ack
        if not _established(tcp, tcb):
            return
        state = T.ESTABLISHED
        if ls is not None:
            ls.syn_count -= 1
            tcp.embryonic -= 1
            ls.acc_q.append(tcb)
            ls._event()
        elif tcb.sock is not None:
            tcb.sock._event()

    if not _ack(tcp, tcb, b, fl, seq, ack, dlen):
        return
    state = tcb.state

    # segment text (RFC 9293 3.10.7.4 seventh)
    if dlen > 0:
        if state == T.ESTABLISHED or state == T.FIN_WAIT_1 or state == T.FIN_WAIT_2:
            if tcb.sock is None and tcb.listener is None:
                # the application closed: nobody will read this (RFC 9293 3.10.4, RFC 2525)
                # (a connection still in the accept queue has no socket yet: it keeps data)
                st.rx_after_close += 1
                tcp.abort(tcb)
                return
            _data(tcp, tcb, b, doff, seq, dlen)
    # FIN (eighth)
    if fl & w.FIN:
        fs = seq_add(seq, dlen)
        if fs == tcb.rcv_nxt:
            _fin(tcp, tcb)
        elif seq_gt(fs, tcb.rcv_nxt) and not (tcb.flags & T.F_RCVD_FIN):
            tcb.flags |= T.F_OOO_FIN | T.F_ACKNOW
            tcb.ooo_fin = fs
    if tcb.flags & T.F_OOO_FIN and tcb.rcv_nxt == tcb.ooo_fin:
        tcb.flags &= ~T.F_OOO_FIN
        _fin(tcp, tcb)
    if tcb.state != T.CLOSED:
        out.output(tcp, tcb)


def _predicted(tcp, tcb, b):
    """Header prediction (as BSD's tcp_input and Linux's fast path): the next in-order data
    segment on an ESTABLISHED connection that acknowledges nothing new and leaves the send
    window as it is - a receiver's common case - taken with what RFC 9293 3.10.7.4's checks
    would do to it, False (nothing changed) for everything else, which the full path takes.
    The caller checked the state, ACK (PSH allowed) as the only flag, SEG.SEQ = RCV.NXT,
    SEG.ACK = SND.UNA and data. What is left of the checks: PAWS (RFC 7323 5.3: TSval at
    least TS.Recent; a segment without timestamps on a connection with them goes the full
    way), all of it inside the window (first check, nothing to trim), the same send window
    (fifth: with SEG.ACK = SND.UNA no new ACK, no duplicate ACK as it carries data, no window
    update but its WL1/WL2 bookkeeping), and nothing that needs the full path: ECN, SACK
    blocks or a scoreboard with SACKed data, a recovery or a probe out, a D-SACK undo watch,
    a persist timer, a FIN waiting out of order, SHUT_RD, no socket."""
    tf = tcb.flags
    if tf & (T.F_ECN | T.F_OOO_FIN | T.F_SHUT_RD) or tcp.opt_sack_blocks or tcb.t_persist:
        return False
    if tf & T.F_TS and (not (tcp.opt_seen & opt.SEEN_TS) or
                        seq_lt(tcp.opt_tsval, tcb.ts_recent)):
        return False
    seq = tcp.seg_seq
    ack = tcp.seg_ack
    dlen = tcp.seg_len
    if (tcp.seg_wnd << tcb.snd_wscale) != tcb.snd_wnd:
        return False
    if not seq_gt(tcb.rcv_adv, seq) or dlen > seq_sub(tcb.rcv_adv, seq):
        return False
    if tcb.sock is None or tcb.rcv is None:
        return False
    sb = tcb.sb
    if sb is not None and (sb.rs.n or sb.in_recovery or sb.tlp_out):
        return False
    cc = tcb.cc
    if cc is not None and cc.ep_dsack:
        return False
    tcp.stats.rx_predicted += 1
    now = tcp.stack.now
    tcb.last_rx = now
    tcb.keep_probes = 0
    if tf & T.F_TS and seq_le(seq, tcb.last_ack_sent):
        tcb.ts_recent = tcp.opt_tsval  # RFC 7323 4.3 (2), as segment() does
        tcb.ts_recent_age = now
    if seq_lt(tcb.snd_wl1, seq) or (tcb.snd_wl1 == seq and seq_le(tcb.snd_wl2, ack)):
        tcb.snd_wl1 = seq  # the window itself is unchanged (checked above)
        tcb.snd_wl2 = ack
        if tcb.snd_wnd > tcb.max_sndwnd:
            tcb.max_sndwnd = tcb.snd_wnd
    _data(tcp, tcb, b, tcp.seg_doff, seq, dlen)
    out.output(tcp, tcb)
    return True


def _ack(tcp, tcb, b, fl, seq, ack, dlen):
    """ACK processing (fifth check); False when the segment is done with."""
    st = tcp.stats
    state = tcb.state
    una = tcb.snd_una
    if seq_gt(ack, tcb.snd_max):
        st.rx_ack_unsent += 1  # acknowledges something not yet sent: ACK and drop
        out.send_ack(tcp, tcb)
        return False
    if seq_lt(ack, una) and seq_sub(una, ack) > tcb.max_sndwnd:
        st.rx_ack_too_old += 1  # RFC 5961 5.2
        tcp.challenge_ack(tcb)
        return False
    wnd = tcp.seg_wnd << tcb.snd_wscale
    # SACK-based recovery once the peer reports SACK blocks (a peer that negotiated SACK
    # but sends none gets NewReno: RFC 6675 has nothing to work from)
    sb = tcb.sb
    sack = sb is not None and (tcp.opt_sack_blocks or sb.rs.n or sb.in_recovery)
    sacked0 = sb.sacked if sb is not None else 0
    if seq_gt(ack, una):
        acked = seq_sub(ack, una)
        flight = seq_sub(tcb.snd_max, una)
        data = acked
        fin_acked = False
        if tcb.flags & T.F_FIN_SENT and ack == tcb.snd_max and not (tcb.flags & T.F_FIN_ACKED):
            data -= 1
            fin_acked = True
            tcb.flags |= T.F_FIN_ACKED
        snd = tcb.snd
        if snd is not None and data > 0:
            snd.discard(data)
            if snd.count == 0:
                # all acknowledged: the buffer (and ring) go back until the next send
                tcb.snd = tcp.rings.shed(snd)
        tcb.snd_una = ack
        if seq_lt(tcb.snd_nxt, ack):
            tcb.snd_nxt = ack
        # RTT sample: timestamps, or the timed segment (Karn: never a retransmitted one)
        rtt = _rtt_from_ts(tcp, tcb)
        if rtt < 0 and tcb.flags & T.F_TIMING and seq_gt(ack, tcb.rtt_seq):
            tcb.flags &= ~T.F_TIMING
            rtt = tcp.stack.now - tcb.rtt_start
            rto.sample(tcb, rtt, tcp.rto_min, tcp.rto_max)
        tcb.retries = 0
        tcb.backoff = 0
        tcb.t_rexmt = 0
        if ack != tcb.snd_max:
            out.arm_rexmt(tcp, tcb)  # RFC 6298 5.3: restart for the rest
        if sb is not None:
            if sb.rack is not None:
                _rack_cum(tcp, tcb, sb, sb.rack, una, ack)
            sb.cut(ack)
        undone = False
        cc = tcb.cc
        if cc is not None and cc.ep_eifel:
            # RFC 3522 3.2: the first acceptable ACK after a retransmission decides
            undone = undo.eifel(tcp, tcb, data, rtt, _dsack_first(tcp, b, ack, tcb))
        if undone:
            pass  # the window was just set from the state before the event (undo.py)
        elif sack and sb.in_recovery:
            if seq_ge(ack, sb.point):
                sb.leave()  # RFC 6675 5: RecoveryPoint acknowledged, recovery over
                if sb.rack is not None:
                    sb.rack.recovered()
                if cc is not None and data > 0:
                    # the controller's full ACK
                    cc.on_ack(data, ack, flight, tcp.stack.now, rtt)
            # a partial ACK in SACK recovery: PRR paces (_sack_ack), not the controller
        elif cc is not None and data > 0:
            if cc.on_ack(data, ack, flight, tcp.stack.now, rtt):
                st.partial_acks += 1
                out.retransmit_first(tcp, tcb)
        if sb is not None:
            out.arm_tlp(tcp, tcb)  # RFC 8985 7.2: the probe timeout restarts too
        s = tcb.sock
        if s is not None:
            s.soft_error = 0  # new data acknowledged: the path works again (as Linux)
            s._event()
        if fin_acked:
            if state == T.FIN_WAIT_1:
                tcb.state = T.FIN_WAIT_2
                if tcb.sock is None:
                    t = tcp.fin_deadline(tcp.stack.now)  # orphaned: do not wait for ever
                    tcb.t_conn = t
                    tcp.arm(t)
            elif state == T.CLOSING:
                _time_wait(tcp, tcb)
            elif state == T.LAST_ACK:
                tcp.drop(tcb, 0)
                return False
    if sack:
        _sack_ack(tcp, tcb, sb, b, fl, ack, dlen, una, sacked0, wnd)
    elif sb is not None and sb.tlp_out:
        _tlp_ack(tcp, tcb, sb, ack, una, False)  # no SACK option: no D-SACK either
    elif ack == una and dlen == 0 and not (fl & (w.SYN | w.FIN)) and wnd == tcb.snd_wnd and \
            tcb.snd_max != una and tcb.cc is not None:
        # duplicate ACK (RFC 5681 2)
        st.rx_dup_acks += 1
        cc = tcb.cc
        ecn = _ecn_reduced(tcb, una)
        cw = cc.cwnd
        ss = cc.ssthresh
        if cc.on_dup_ack(ack, seq_sub(tcb.snd_max, una), tcb.snd_max, tcp.stack.now):
            st.fast_retransmits += 1
            if ecn:
                # RFC 3168 6.1.2: the ECN-Echo's reduction was this window's: fast recovery
                # repairs the loss from the window as it is (RFC 5681 3.2 step 4's inflation
                # on top), not reduced a second time
                cc.undo()
                cc.cwnd = cw + 3 * tcb.mss
                cc.ssthresh = ss
                cc.in_recovery = True
                cc.recover = tcb.snd_max
                cc.recover_valid = True
            else:
                undo.start(tcp, tcb, undo.FAST)
                undo.reduced(tcb)
            if sb is not None:
                sb.point = tcb.snd_max  # NewReno's recovery: no SACK one inside it
                sb.point_valid = True
            out.retransmit_first(tcp, tcb)
    cc = tcb.cc
    if cc is not None and cc.ep_dsack:
        undo.check_dsack(tcp, tcb, seq_sub(ack, una) if seq_gt(ack, una) else 0)  # RFC 3708
    if fl & w.ECE and tcb.flags & T.F_ECN:
        _ecn_echo(tcp, tcb, ack, una)
    # window update (RFC 9293 3.10.7.4: only from newer segments)
    if seq_lt(tcb.snd_wl1, seq) or (tcb.snd_wl1 == seq and seq_le(tcb.snd_wl2, ack)):
        tcb.snd_wnd = wnd
        tcb.snd_wl1 = seq
        tcb.snd_wl2 = ack
        if wnd > tcb.max_sndwnd:
            tcb.max_sndwnd = wnd
        if wnd > 0 and tcb.t_persist:
            tcb.t_persist = 0
            tcb.backoff = 0
            tcb.retries = 0
    if tcb.snd_nxt == tcb.snd_una and tcb.t_persist and tcb.sock is not None:
        # the peer answers our probes: keep probing (RFC 1122 4.2.2.17) - but not for an
        # orphan: nobody waits for its data, TCP_ORPHAN_RETRIES probes is all it gets
        tcb.retries = 0
    return True


def _ecn_in(tcp, tcb, b, fl, ack, dlen):
    """An acceptable segment of an ECN connection (RFC 3168 6.1.3), the receiver's part: a
    CWR ends our ECN-Echo, a CE mark on data (re)starts it - ACKed at once, as Linux does:
    the sender's window may be one segment. A CE mark on a segment without data is ignored
    (we never send those ECT, so no router may mark them; Linux ignores it too)."""
    st = tcp.stats
    if fl & w.CWR:
        st.rx_cwr += 1
        tcb.flags &= ~T.F_ECN_ECHO
    if dlen > 0 and tcp.seg_ecn == ECN_CE:
        # a GRO super-frame merged segments with equal IP headers: each was marked
        st.rx_ce += 1 if dlen <= tcb.mss else (dlen + tcb.mss - 1) // tcb.mss
        if not (tcb.flags & T.F_ECN_ECHO):
            tcb.flags |= T.F_ECN_ECHO | T.F_ACKNOW
    if tcb.flags & T.F_ECN_POINT and seq_gt(ack, tcb.ecn_point):
        tcb.flags &= ~T.F_ECN_POINT  # the reduced window is acknowledged (_ecn_echo)


def _ecn_echo(tcp, tcb, ack, una):
    """An ECN-Echo ACK (RFC 3168 6.1.2), the sender's part: congestion without a loss.
    The window is reduced once per window of data (the controller's CE_ECN, no
    retransmission) and CWR goes on the next new data; echoes up to ecn_point (SND.MAX at
    the reduction, cleared by _ecn_in once an ACK passes it) repeat the same congestion.
    Inside loss recovery the window was already reduced for this data: only the CWR."""
    tcp.stats.rx_ece += 1
    if tcb.flags & T.F_ECN_POINT:
        return
    hi = tcb.snd_max
    tcb.ecn_point = hi
    tcb.flags |= T.F_ECN_POINT | T.F_ECN_CWR
    cc = tcb.cc
    sb = tcb.sb
    if cc is None or cc.in_recovery or (sb is not None and sb.in_recovery):
        return
    tcp.stats.ecn_reductions += 1
    r = cc.recover
    rv = cc.recover_valid
    cc.on_congestion(CE_ECN, seq_sub(hi, una), hi, tcp.stack.now)
    # a drop in this window must still be fast-retransmitted (RFC 5681 3.2): RFC 6582's
    # recovery point (which on_congestion moves) would hold it back until the RTO
    cc.recover = r
    cc.recover_valid = rv


def _sack_ack(tcp, tcb, sb, b, fl, ack, dlen, una0, sacked0, wnd):
    """SACK-based loss recovery on an ACK (RFC 6675 5): the scoreboard takes the blocks,
    a duplicate ACK (RFC 6675 2: it SACKs new data) counts towards DupThresh, recovery
    starts at DupThresh duplicates or as soon as SND.UNA IsLost, and inside it PRR (RFC
    6937) turns each ACK's delivered bytes into a sending budget output() spends."""
    st = tcp.stats
    mid = sb.sacked
    dsack = st.rx_dsack
    if tcp.opt_sack_blocks and seq_ge(ack, una0):
        _sack_blocks(tcp, tcb, sb, b, ack, tcp.opt_sack_blocks)
    una = tcb.snd_una
    hi = tcb.snd_max
    mss = tcb.mss
    cc = tcb.cc
    if sb.tlp_out:
        _tlp_ack(tcp, tcb, sb, ack, una0, st.rx_dsack != dsack)
    delivered = sb.sacked - sacked0  # RFC 6937: DeliveredData = change in SND.UNA + in SACKd
    if seq_gt(una, una0):
        delivered += seq_sub(una, una0)
        sb.dupacks = 0
    dup = False
    if dlen == 0 and not (fl & (w.SYN | w.FIN)) and hi != una0 and seq_ge(ack, una0):
        if sb.sacked > mid:
            dup = True
        elif not tcp.opt_sack_blocks and ack == una0 and wnd == tcb.snd_wnd:
            dup = True  # RFC 5681 2: a duplicate ACK without SACK blocks still counts
    if dup:
        st.rx_dup_acks += 1
        sb.dupacks += 1
    rk = sb.rack
    if rk is not None:
        rk.update(tcp.stack.now)
    if cc is None:
        return
    if rk is not None:
        _rack_detect(tcp, tcb, sb, rk)
    if sb.in_recovery:
        sb.una_moved(una, hi, tcp.stack.now, mss)
        # reo_wnd: RACK's once it has seen reordering (RFC 8985 6.2 step 4), else SRTT/4
        rw = rk.reo_wnd if rk is not None and rk.reo_seen else tcb.srtt8 >> 5
        if sb.una_rxt_lost(una, tcp.stack.now, tcb.srtt8 >> 3, rw, sb.sacked - mid):
            st.lost_rexmits += 1
        sb.prr(delivered if delivered > 0 else 0, sb.pipe(una, hi, mss), mss)
        out.arm_tlp(tcp, tcb)  # an ACK in recovery: the tail's probe counts from it
    elif hi != una and sb.may_enter(ack) and (
            seq_gt(sb.lost_end(una, mss), una) if rk is not None and rk.reo_seen
            else dup and (sb.dupacks >= DUP_THRESH or seq_gt(sb.lost_end(una, mss), una))):
        # RFC 6675 5: DupThresh duplicates or SND.UNA lost; once RACK has seen reordering
        # only its verdict (RFC 8985 6.2) - reordering within the window starts no recovery
        _enter(tcp, tcb, sb, delivered)


def _enter(tcp, tcb, sb, delivered):
    """SACK loss recovery begins (RFC 6675 5 (4)): the congestion event, RecoveryPoint, PRR
    (RFC 6937) from this ACK's delivered bytes."""
    st = tcp.stats
    una = tcb.snd_una
    hi = tcb.snd_max
    mss = tcb.mss
    cc = tcb.cc
    if _ecn_reduced(tcb, una):
        # RFC 3168 6.1.2: an ECN-Echo reduced the window for this window of data already -
        # the loss is the same congestion: recovery repairs it without a second reduction
        # (as Linux's tcp_enter_recovery while in CWR); nothing an undo could take back
        ss = cc.ssthresh
        cc.in_recovery = True
        cc.dupacks = 0
        cc.recover = hi
        cc.recover_valid = True
    else:
        undo.start(tcp, tcb, undo.FAST)
        ss = cc.on_loss(seq_sub(hi, una), hi, tcp.stack.now)
        undo.reduced(tcb)
    h = sb.high_rxt  # what was resent before this recovery: HighRxt is exact (not rxt_hi)
    sb.enter(una, hi, ss)
    rk = sb.rack
    if rk is not None and rk.reo_seen and seq_gt(rk.rxt_hi, una):
        # SND.UNA was resent already and RACK does not know it lost again (a recovery undone
        # as spurious: the segment was late, not lost): NextSeg goes on above what was
        # resent (RFC 6675 HighRxt)
        sb.high_rxt = rk.rxt_hi if seq_lt(rk.rxt_hi, hi) else hi
        sb.first = False
    elif seq_gt(h, una):
        # SND.UNA was resent by the recovery that just ended: a retransmission is lost only
        # by its own send time (RFC 8985 6.2 step 5; una_rxt_lost watches it from now on)
        sb.high_rxt = h if seq_lt(h, hi) else hi
        sb.first = False
        # and the episode's first retransmission was before it began: an ACK echoing that
        # one's TSval is no Eifel verdict (RFC 3522 3.2 RetransmitTS); D-SACKs still decide
        cc.ep_eifel = False
    st.sack_recoveries += 1
    st.fast_retransmits += 1
    sb.prr(delivered if delivered > 0 else 0, sb.pipe(una, hi, mss), mss)


def _ecn_reduced(tcb, una):
    """An ECN-Echo reduced the window since SND.UNA's data was sent (ecn_point: SND.MAX then,
    RFC 3168 6.1.2): a loss found in that data is the same congestion event."""
    return tcb.flags & T.F_ECN_POINT and seq_lt(una, tcb.ecn_point)


def _rack_cum(tcp, tcb, sb, rk, una, ack):
    """The cumulative ACK's part of RACK (RFC 8985 6.2 steps 1-3), before the scoreboard
    forgets what it covers: the unSACKed bytes it newly delivers; and the retransmission
    at SND.UNA, when this ACK is unambiguously its own (it echoes the retransmission's
    TSval, or without timestamps it came at least min_RTT after it, step 1)."""
    rk.acked_ts = rk.ts_at(una)  # when the original of SND.UNA left (undo.py: reordering)
    # the ACK's unSACKed top: with nothing SACKed (no loss seen) all of it, without a call
    top = sb.rs.top_uncovered(una, ack) if sb.rs.n else ack
    if seq_gt(top, una):
        n = rk.reord_seen
        rk.delivered(una, top, tcb.mss)
        if rk.reord_seen != n:
            tcp.stats.rack_reordering += rk.reord_seen - n
    if sb.in_recovery and not sb.first and not sb.una_rxt_est and \
            seq_lt(una, sb.una_rxt_end) and seq_le(sb.una_rxt_end, ack):
        now = tcp.stack.now
        t = sb.una_rxt_at
        if tcb.flags & T.F_TS and tcp.opt_seen & opt.SEEN_TS:
            ok = not seq_lt(tcp.opt_tsecr, t - tcb.ts_start)
        else:
            ok = now - t >= rk.min_rtt
        if ok:
            rk.sample(t, sb.una_rxt_end, now)
    rk.update(tcp.stack.now)  # before the cut: the log still holds what it delivered
    rk.cut(ack, tcb.snd_max)


def _rack_detect(tcp, tcb, sb, rk):
    """RFC 8985 6.2 steps 4-5: the reordering window, then the originals sent before
    RACK.xmit_ts whose RTT plus the window has passed are lost (lost_to, which NextSeg
    retransmits); the rest wait for the reordering timer (6.3)."""
    if not rk.reo_seen:
        # no reordering seen: RFC 6675's DupThresh decides, RACK only watches (its reo_wnd
        # would be 0 there, 6.2 step 4; in the simulator's loss grid its verdicts alone
        # split one loss window into several recoveries - benchmarks/loss.md)
        return
    una = tcb.snd_una
    recovering = sb.in_recovery or (sb.point_valid and seq_lt(una, sb.point))
    w = rk.window(recovering, sb.sacked, tcb.mss, (tcb.srtt8 + 7) >> 3)  # SRTT rounded up
    now = tcp.stack.now
    sb.lost_to = rk.detect(sb.rs, una, tcb.snd_max, sb.lost_to, now, w)
    if rk.t_reo:
        tcp.arm(rk.t_reo)


def rack_timeout(tcp, tcb):
    """The reordering timer (RFC 8985 6.3): detect again; a loss found starts recovery (or
    lets PRR send inside it), then output retransmits."""
    sb = tcb.sb
    rk = sb.rack
    rk.t_reo = 0
    if tcb.cc is None or tcb.snd_max == tcb.snd_una:
        return
    tcp.stats.rack_reo_timeouts += 1
    _rack_detect(tcp, tcb, sb, rk)
    una = tcb.snd_una
    if not seq_gt(sb.lost_end(una, tcb.mss), una):
        return
    if sb.in_recovery:
        sb.prr(0, sb.pipe(una, tcb.snd_max, tcb.mss), tcb.mss)
    elif sb.may_enter(una):
        _enter(tcp, tcb, sb, 0)
    else:
        return
    out.output(tcp, tcb)


def _tlp_ack(tcp, tcb, sb, ack, una0, dsack):
    """An ACK while a tail loss probe is out (RFC 8985 7.4)."""
    cc = tcb.cc
    if seq_ge(ack, sb.tlp_high) and sb.tlp_rxt:
        # RFC 8985 7.4.1: the peer had the original - a D-SACK for the probe, or (RFC 3522
        # 3.2) the ACK covering it echoes a TSval older than the probe's
        if dsack or undo.tlp_spurious(tcp, tcb):
            dsack = True
            tcp.stats.spurious_tlps += 1
            if cc is not None and cc.ep_kind == undo.TLP:
                undo.end(tcb)
    if sb.tlp_answered(ack, dsack) and cc is not None and not sb.in_recovery:
        # RFC 8985 7.4.2: the probe repaired a loss - the congestion response of a fast
        # recovery; with data still out, as one (PRR) until it is acknowledged
        una = tcb.snd_una
        hi = tcb.snd_max
        ss = cc.on_loss(seq_sub(sb.tlp_high, una0), hi, tcp.stack.now)
        if cc.ep_kind == undo.TLP:
            undo.reduced(tcb)  # a D-SACK for the probe may still take it back (RFC 3708)
        tcp.stats.tlp_recoveries += 1
        if hi != una:
            sb.enter(una, hi, ss)
            sb.first = False


def _dsack_first(tcp, b, ack, tcb):
    """Whether this segment's first SACK block reports a duplicate below the cumulative ACK
    (RFC 2883 4) - read before the blocks are taken."""
    if not tcp.opt_sack_blocks or not (tcb.flags & T.F_SACK):
        return False
    o = tcp.opt_sack_off
    return seq_lt(rel_at(b, o, tcb.iss_hi, tcb.iss_lo), ack)


def _sack_blocks(tcp, tcb, sb, b, ack, k):
    """Each received SACK block checked before the scoreboard takes it (RFC 2018 3): above
    SND.UNA, up to SND.MAX, left edge before right, else counted (rx_sack_bad) and ignored. A
    first block below the cumulative ACK, or inside the second block, is a D-SACK (RFC 2883
    4): a duplicate the peer received - counted (rx_dsack), not SACKed data."""
    st = tcp.stats
    una = tcb.snd_una
    hi = tcb.snd_max
    o = tcp.opt_sack_off
    bh = tcb.iss_hi
    bl = tcb.iss_lo
    rk = sb.rack
    i = 0
    while i < k:
        p = o + (i << 3)
        s = rel_at(b, p, bh, bl)
        e = rel_at(b, p + 4, bh, bl)
        if i == 0 and seq_lt(s, e):
            if seq_lt(s, ack) or (k > 1 and seq_le(rel_at(b, p + 8, bh, bl), s) and
                                  seq_le(e, rel_at(b, p + 12, bh, bl))):
                st.rx_dsack += 1
                undo.dsack(tcb, s, e)
                if rk is not None:
                    _rack_dsack(tcp, tcb, rk)
                i += 1
                continue
        if seq_lt(s, e) and seq_lt(una, s) and seq_le(e, hi):  # data at SND.UNA: ACKed
            if rk is not None:
                t = sb.rs.top_uncovered(s, e)
                if seq_gt(t, s):
                    n = rk.reord_seen
                    rk.delivered(s, t, tcb.mss)
                    st.rack_reordering += rk.reord_seen - n
            if not sb.add(s, e):
                st.rx_sack_no_slot += 1
        else:
            st.rx_sack_bad += 1
        i += 1


def _rack_dsack(tcp, tcb, rk):
    """RFC 8985 6.2 step 4: a D-SACK - our retransmission or the reordering window was
    premature - grows the window, once per round trip. (Not reordering by itself: a probe
    or a doubly resent segment is D-SACKed on a path that never reorders.)"""
    m = rk.reo_mult
    rk.dsack(tcb.snd_una, tcb.snd_max)
    if rk.reo_mult != m:
        tcp.stats.rack_reo_wnd_grown += 1


def _data(tcp, tcb, b, doff, seq, dlen):
    """Payload into the receive ring: in order, or parked beyond a hole (ooo.py)."""
    st = tcp.stats
    rcv = tcb.rcv
    if tcb.flags & T.F_SHUT_RD or rcv is None:
        if seq == tcb.rcv_nxt:
            tcb.rcv_nxt = seq_add(seq, dlen)  # SHUT_RD: acknowledged and discarded
        tcb.flags |= T.F_ACKNOW
        return
    nxt = tcb.rcv_nxt
    if seq == nxt:
        room = rcv.cap - rcv.count
        if dlen > room:
            dlen = room
        if rcv.count + dlen > rcv.held():
            rcv = tcp.rings.reserve(rcv, rcv.count + dlen)  # its own ring, grown (ring.py)
            tcb.rcv = rcv
            if rcv.held() == 0:
                st.no_memory += 1  # no room for the bytes: dropped unacknowledged, resent
                return
            room = rcv.held() - rcv.count
            if dlen > room:
                st.mem_limited += 1  # TCP_MEM spent: the tail waits for the peer's resend
                dlen = room
        rcv.write_at(rcv.count, b, doff, dlen)
        rcv.count += dlen
        nxt = seq_add(nxt, dlen)
        st.rx_data_bytes += dlen
        ooo = tcb.ooo
        if ooo is not None:
            _dsack_ooo(tcb, ooo, seq, nxt)  # a retransmission repeating parked data
            n2 = ooo.advance(nxt)
            if n2 != nxt:
                k = seq_sub(n2, nxt)
                rcv.count += k
                st.rx_data_bytes += k  # delivered now: counted once, as in order
                nxt = n2
            if ooo.n == 0:
                tcp.ooo_put(tcb)  # the holes are filled: the table goes back (issue 13)
            tcb.flags |= T.F_ACKNOW  # filled (part of) a hole: ACK at once (RFC 5681 4.2)
        tcb.rcv_nxt = nxt
        tcb.rcv_unacked += dlen
        un = tcb.rcv_unacked
        if un >= tcp.ack_burst * tcb.mss and (dlen <= tcb.mss or un >= (rcv.cap >> 2)):
            tcb.flags |= T.F_ACKNOW  # TCP_ACK_BURST full-sized segments: at once
        elif un >= 2 * tcb.mss:
            # every second full-sized segment (RFC 9293 3.8.6.3, RFC 5681 4.2), counted per
            # burst: the rest of this poll's segments may ride the same ACK (flush_acks)
            if not (tcb.flags & T.F_ACK_BURST):
                tcb.flags |= T.F_ACK_BURST
                tcp.ack_q.append(tcb)
            if tcb.t_delack == 0:  # input outside a poll: the delayed ACK still comes
                t = tcp.stack.now + tcp.delack
                tcb.t_delack = t
                tcp.arm(t)
        elif tcb.t_delack == 0 and not (tcb.flags & T.F_ACKNOW):
            t = tcp.stack.now + tcp.delack
            tcb.t_delack = t
            tcp.arm(t)
        if tcb.sock is not None:
            tcb.sock._event()
        return
    # out of order: store at its place, ACK at once (a duplicate ACK, RFC 5681 4.2)
    off = seq_sub(seq, nxt)
    room = rcv.cap - rcv.count - off
    if dlen > room:
        dlen = room
    tcb.flags |= T.F_ACKNOW
    if dlen <= 0:
        return
    room = rcv.count + off + dlen
    if room > rcv.held():
        rcv = tcp.rings.reserve(rcv, room)  # its own ring, grown (ring.py)
        tcb.rcv = rcv
        if rcv.held() == 0:
            st.no_memory += 1  # the heap is out: the peer resends it
            return
        if room > rcv.held():
            # storage grows only as far as TCP_MEM allows (ring.py): one byte parked at the
            # window's edge must not cost the whole window; it is dropped, the peer resends
            st.mem_limited += 1
            return
    e = seq_add(seq, dlen)
    if not tcp.ooo_slots:
        st.rx_ooo_full += 1
        return
    ooo = tcp.ooo_get(tcb)
    if ooo is None:
        return  # no table could be made (no_memory): the peer resends it
    _dsack_ooo(tcb, ooo, seq, e)
    if ooo.add(seq, e):
        rcv.write_at(rcv.count + off, b, doff, dlen)
        st.rx_ooo += 1
    else:
        st.rx_ooo_full += 1
        if ooo.n == 0:
            tcp.ooo_put(tcb)


def _dsack(tcb, s, e):
    """RFC 2883 4: s..e arrived twice - the next ACK's first SACK block says so (only when
    SACK was agreed; a later duplicate before that ACK replaces it: the most recent one)."""
    if tcb.flags & T.F_SACK:
        tcb.dsack_s = s
        tcb.dsack_e = e
        tcb.flags |= T.F_DSACK


def _dsack_ooo(tcb, ooo, s, e):
    """A segment s..e repeating bytes parked above RCV.NXT: the repeated part of the first
    stored range it meets is the duplicate (RFC 2883 4.1.2; ooo.add then makes the range
    containing it the most recent, the second block)."""
    i = ooo.overlap(s, e)
    if i >= 0:
        a = ooo.start[i]
        z = ooo.end[i]
        _dsack(tcb, s if seq_gt(s, a) else a, e if seq_lt(e, z) else z)


def _fin(tcp, tcb):
    tcb.rcv_nxt = seq_add(tcb.rcv_nxt, 1)
    tcb.flags |= T.F_RCVD_FIN
    # its ACK (RFC 9293 3.10.7.4 eighth) at the end of this poll's burst (flush_acks), so
    # an application that closes at once sends it on its own FIN: one segment, not two
    # (RFC 1122 4.2.3.2 lets an ACK wait; outside a poll the delayed-ACK timer sends it)
    if not (tcb.flags & T.F_ACK_BURST):
        tcb.flags |= T.F_ACK_BURST
        tcp.ack_q.append(tcb)
    if tcb.t_delack == 0:
        t = tcp.stack.now + tcp.delack
        tcb.t_delack = t
        tcp.arm(t)
    st = tcb.state
    if st == T.ESTABLISHED or st == T.SYN_RECEIVED:
        tcb.state = T.CLOSE_WAIT
    elif st == T.FIN_WAIT_1:
        if tcb.flags & T.F_FIN_ACKED:
            _time_wait(tcp, tcb)
        else:
            tcb.state = T.CLOSING  # simultaneous close
    elif st == T.FIN_WAIT_2:
        _time_wait(tcp, tcb)
    elif st == T.TIME_WAIT:
        t = tcp.linger_deadline(tcp.stack.now)
        tcb.t_conn = t
        tcp.arm(t)
    if tcb.sock is not None:
        tcb.sock._event()


def _time_wait(tcp, tcb):
    """TIME-WAIT for 2*MSL (RFC 9293 3.10.7.4); the send buffer goes back at once."""
    tcb.state = T.TIME_WAIT
    if tcp.tw is not None:
        tcp.tw.push(tcb)  # the oldest is recycled first when the table is full (proto.py)
    tcp.not_orphan(tcb)
    tcb.t_rexmt = tcb.t_persist = tcb.t_keep = 0
    t = tcp.linger_deadline(tcp.stack.now)
    tcb.t_conn = t
    tcp.arm(t)
    tcp.release_buffers(tcb, tcb.sock is None)
