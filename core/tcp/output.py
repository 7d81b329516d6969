"""Segment output: what to send now (data within the send and congestion windows, sender
silly-window avoidance and Nagle, FIN after the data, SYN/SYN-ACK in the handshake states),
building one segment straight from the send ring into a packet buffer, the advertised
receive window (receiver silly-window avoidance), RSTs and probes. On an ECN connection
(RFC 3168) new data leaves ECT(0), ACKs carry ECE while the receiver echoes a CE mark, and
the first new data after a window reduction carries CWR.

Every segment is built in place: header written at pb.off, options after it, payload copied
once from the send ring (a retransmission rebuilds from the same ring - no per-segment
copies kept). The network layer's output (core/net/ip.py) fills the checksum over its
family's pseudo-header. Sequence numbers, ACKs and timestamps leave
the connection's relative space here (seq.put_rel: 16-bit halves, no 32-bit ints)."""
from ustack.core.wire import tcp as w
from ustack.core.wire.tcp import write_header_rel
from ustack.core.net.ip import PROTO_TCP, link_mtu
from ustack.core.ipv4 import ECN_MASK, ECN_ECT0
from ustack.core.tcp import tcb as T
from ustack.core.tcp import options
from ustack.core.tcp.options import write_ts
from ustack.core.tcp import rto
from ustack.core.tcp import cookie
from ustack.core.tcp import cc as ccmod
try:
    from ustack.core.tcp import scoreboard as sc
except ImportError:  # a board built without "sack": _recover never runs (no scoreboard)
    sc = None
from ustack.core.compat import const
from ustack.core.buf import OFL_GSO_SHIFT
from ustack.core.tcp.seq import seq_add, seq_sub, seq_gt, seq_lt, put_rel

# issue 13: the most payload in one TSO segment - its IPv6 Payload Length (RFC 8200 3), or
# IPv4 Total Length (RFC 791) less the header, is 16 bits - less a TCP header with options
TSO_MAX = const(65535 - 40 - 60)
WCDELACK_MS = const(200)  # RFC 8985 7.2 WCDelAckT: the peer's worst-case delayed ACK
TLP_SLACK_MS = const(2)   # added to 2*SRTT: a send time and now each read up to a tick off


def rcv_window(tcp, tcb):
    """The window field for the next segment; updates tcb.rcv_adv (RFC 9293 3.8.6.2.2:
    advertise a larger window only in steps of min(RCV.BUFF/2, MSS); never shrink it)."""
    r = tcb.rcv
    if r is not None:
        free = r.cap - r.count
        cap = r.cap
    else:
        free = tcb.rcv_cap
        cap = free
    if tcb.flags & T.F_SHUT_RD and r is not None:
        free = cap  # data after SHUT_RD is discarded: keep the window open
    cur = 0
    if seq_gt(tcb.rcv_adv, tcb.rcv_nxt):
        cur = seq_sub(tcb.rcv_adv, tcb.rcv_nxt)
    step = cap >> 1
    if tcb.mss < step:
        step = tcb.mss
    if free < cur:
        free = cur
    elif free - cur < step and free != cap:
        free = cur
    sh = tcb.rcv_wscale
    win = free >> sh
    if (win << sh) < cur:
        win += 1  # RFC 7323 2.4: round up, rounding down would shrink the offered window
    if win > 0xFFFF:
        win = 0xFFFF
    adv = seq_add(tcb.rcv_nxt, win << sh)
    if seq_gt(adv, tcb.rcv_adv):
        tcb.rcv_adv = adv
    return win


def send_segment(tcp, tcb, seq, flags, doff, n):
    """Build and send one segment: flags, n bytes from the send ring at offset doff, seq
    relative to our ISS. False when no packet buffer was free (retried from tick)."""
    stack = tcp.stack
    ipl = stack.ip
    if n > tcb.mss:
        pb = ipl.alloc_tx_large(tcb.remote_ip)  # a TSO segment: output() checked
    else:
        pb = ipl.alloc_tx(tcb.remote_ip)
    if pb is None:
        tcp.stats.tx_no_buffer += 1
        tcb.flags |= T.F_PENDING
        stack.timer_at(stack.now + 10)
        return False
    b = pb.buf
    o = pb.off
    now = stack.now
    hl = 20
    tf = tcb.flags
    tos = tcb.tos & ~ECN_MASK  # RFC 3168 6.1.1: TCP alone sets the ECN field, not IP_TOS
    if flags & w.SYN:
        win = tcb.rcv_cap if tcb.rcv_cap < 0xFFFF else 0xFFFF  # never scaled (RFC 7323 2.2)
        tcb.rcv_adv = seq_add(tcb.rcv_nxt, win)
        ws = tcb.rcv_wscale if (tf & T.F_WS or tcb.state == T.SYN_SENT) and tcp.wscale else -1
        ts = (tf & T.F_TS or tcb.state == T.SYN_SENT) and tcp.timestamps
        hl += options.write_syn(b, o + 20, tcp.adv_mss(tcb), ws,
                                (tf & T.F_SACK or tcb.state == T.SYN_SENT) and tcp.sack, ts)
        if ts:
            t = o + 20 + options.SYN_TS_OFF
            put_rel(b, t, now - tcb.ts_start, tcb.ts_hi, tcb.ts_lo)
            put_rel(b, t + 4, tcb.ts_recent, tcb.tsr_hi, tcb.tsr_lo)  # 0 before the peer's
    else:
        win = rcv_window(tcp, tcb)
        if tf & T.F_TS:
            hl += write_ts(b, o + 20, now - tcb.ts_start, tcb.ts_hi, tcb.ts_lo,
                           tcb.ts_recent, tcb.tsr_hi, tcb.tsr_lo)
        if tf & T.F_SACK and (tf & T.F_DSACK or tcb.ooo is not None and tcb.ooo.n):
            # RFC 2018 4: while we hold data out of order every ACK reports it, one that
            # carries data too; 3 blocks beside timestamps (40 option bytes, RFC 2018 3), and
            # on data only the blocks that fit in the MSS beside the payload (RFC 6691; new
            # data leaves room for them: sack_room)
            k = 3 if tf & T.F_TS else 4
            if n > 0:
                r = (tcb.mss - n - 4) >> 3
                if r < k:
                    k = r
            if k > 0:
                hl += options.write_sack(b, o + hl, tcb.ooo, k, tcb.irs_hi, tcb.irs_lo,
                                         tf & T.F_DSACK, tcb.dsack_s, tcb.dsack_e)
                if tf & T.F_DSACK:
                    tcp.stats.dsack_sent += 1
                    tcb.flags &= ~T.F_DSACK  # RFC 2883 4: a D-SACK in this ACK only
        if tf & T.F_ECN:
            if tf & T.F_ECN_ECHO:
                flags |= w.ECE  # RFC 3168 6.1.3: on every ACK until the peer's CWR
            if n > 0 and seq == tcb.snd_max and seq_sub(seq, tcb.snd_una) < tcb.snd_wnd:
                # new data inside the offered window: ECT(0) - never on a retransmission
                # (6.1.5), a window probe (6.1.6), a pure ACK or a SYN (6.1.1)
                tos |= ECN_ECT0
                if tf & T.F_ECN_CWR:
                    flags |= w.CWR  # 6.1.2: the first new data after the window reduction
                    tcb.flags &= ~T.F_ECN_CWR
                    tcp.stats.tx_cwr += 1
    if not (flags & w.SYN) or tcb.state != T.SYN_SENT or flags & w.ACK_F:
        flags |= w.ACK_F
        write_header_rel(b, o, tcb.local_port, tcb.remote_port, seq, tcb.iss_hi, tcb.iss_lo,
                         tcb.rcv_nxt, tcb.irs_hi, tcb.irs_lo, hl, flags, win)
    else:  # our SYN: no ACK yet
        write_header_rel(b, o, tcb.local_port, tcb.remote_port, seq, tcb.iss_hi, tcb.iss_lo,
                         0, 0, 0, hl, flags, win)
    if n > 0:
        tcb.snd.peek_into(b, o + hl, doff, n)
        tcp.stats.tx_data_bytes += n
        if n > tcb.mss:
            # the driver cuts it into MSS-sized segments, each with this header (PSH and
            # FIN on the last only) and its own checksum (core/net/ip.py partial_csum)
            pb.offload = tcb.mss << OFL_GSO_SHIFT
            tcp.stats.tx_tso_segments += 1
    pb.n = hl + n
    tcp.stats.tx_segments += 1
    if flags & w.ACK_F:
        tcb.last_ack_sent = tcb.rcv_nxt  # RFC 7323 4.3: Last.ACK.sent, for TS.Recent
        tcb.rcv_unacked = 0
        tcb.t_delack = 0
        tcb.flags &= ~T.F_ACKNOW
    # RFC 1191 3: DF on every segment of a connection (IPv4), so a smaller link on the
    # path answers with Fragmentation Needed and the MSS follows (proto.pmtu_lower);
    # rc: the connection's route cache, no route or ARP lookup per segment
    ipl.output(pb, PROTO_TCP, tcb.local_ip, tcb.remote_ip, w.CSUM, tcb.ttl, tos, True, None,
               tcb.rc)
    return True


def sack_room(tcb):
    """The option bytes SACK blocks take on our next segment (RFC 2018 4: on every one while
    we hold data out of order, a D-SACK first, RFC 2883 4): NOP NOP kind length and 8 a
    block, at most 3 beside timestamps, else 4 (RFC 2018 3). New data is that much shorter
    (RFC 6691), so the blocks fit within the MSS. 0: nothing to report."""
    tf = tcb.flags
    if not (tf & T.F_SACK):
        return 0
    k = 1 if tf & T.F_DSACK else 0
    if tcb.ooo is not None:
        k += tcb.ooo.n
    if k == 0:
        return 0
    m = 3 if tf & T.F_TS else 4
    return 4 + 8 * (k if k < m else m)


def arm_rexmt(tcp, tcb):
    if tcb.t_rexmt == 0:
        t = tcp.stack.now + rto.current(tcb, tcp.rto_max)
        tcb.t_rexmt = t
        tcp.stack.timer_at(t)


def output(tcp, tcb, force=False):
    """Send whatever the state, windows and send ring allow; then a pending ACK. force
    sends one segment regardless of silly-window/Nagle rules (persist timer override)."""
    if not (tcb.flags & T.F_TIMED):
        tcp.watch(tcb)  # it may arm a timer: TCP.tick visits it
    st = tcb.state
    if st == T.SYN_SENT or st == T.SYN_RECEIVED:
        if tcb.snd_nxt == 0:  # our ISS: the SYN is (re)sent
            fl = w.SYN if st == T.SYN_SENT else (w.SYN | w.ACK_F)
            if st == T.SYN_SENT and tcb.retries == 0 and tcp.ecn == T.ECN_ON:
                tcb.flags |= T.F_ECN  # until the SYN-ACK says otherwise (input.syn_sent)
            if tcb.flags & T.F_ECN:
                if st == T.SYN_RECEIVED:
                    fl |= w.ECE  # RFC 3168 6.1.1: an ECN-setup SYN-ACK
                elif tcb.retries == 0:
                    fl |= w.ECE | w.CWR  # an ECN-setup SYN
                else:
                    # 6.1.1.1: a SYN that went unanswered is resent without ECN (a middlebox
                    # may drop ECN-setup SYNs; Linux's tcp_ecn_fallback): no ECN after that
                    tcb.flags &= ~T.F_ECN
                    tcp.stats.ecn_syn_fallback += 1
            if tcb.retries == 0:
                tcb.rtt_start = tcp.stack.now
            if send_segment(tcp, tcb, 0, fl, 0, 0):
                if tcb.retries:
                    tcp.stats.tx_retransmits += 1  # every segment resent (Linux RetransSegs)
                    tcb.rexmits += 1
                tcb.snd_nxt = 1
                tcb.snd_max = tcb.snd_nxt
                arm_rexmt(tcp, tcb)
        elif tcb.flags & T.F_ACKNOW:
            send_segment(tcp, tcb, tcb.snd_nxt, 0, 0, 0)
        return
    if st < T.ESTABLISHED or st == T.TIME_WAIT:
        if tcb.flags & T.F_ACKNOW and st == T.TIME_WAIT:
            send_segment(tcp, tcb, tcb.snd_nxt, 0, 0, 0)
        return
    snd = tcb.snd
    sent = False
    mss = tcb.mss
    now = tcp.stack.now
    sb = tcb.sb
    if sb is None and snd.count:
        sb = tcp.scoreboard(tcb)
    rec = sb is not None and sb.in_recovery
    if rec:
        sent = _recover(tcp, tcb, sb, now)  # SACK recovery: PRR and NextSeg decide
    cc = tcb.cc
    if cc is None and (snd.count or tcb.flags & T.F_FIN_QUEUED):
        # the controller comes with the first data or FIN to send: an idle connection
        # holds none (issue 13). Without one nothing new goes (n is 0 then anyway)
        cc = ccmod.of(tcp, tcb)
        if cc is None:
            tcb.flags |= T.F_PENDING  # no heap for it now: retried from tick
            tcp.stack.timer_at(now + 10)
    smss = mss - sack_room(tcb)  # new data leaves room for our SACK blocks (RFC 2018 4)
    while not rec and cc is not None:
        count = snd.count
        off = seq_sub(tcb.snd_nxt, tcb.snd_una)
        avail = count - off
        if avail < 0:
            break  # everything, FIN included, is in flight
        usable = tcb.snd_wnd - off
        cw = cc.window()
        if sb is not None and sb.sacked:
            # RFC 6675 5 (3): with SACKed data out, cwnd - pipe gates new data (SACKed
            # bytes have left the network: limited transmit, RFC 3042, for free)
            cw -= sb.pipe(tcb.snd_una, tcb.snd_max, mss)
        else:
            cw -= off
            d = cc.dupacks
            if 0 < d < 3 and not cc.in_recovery:
                # limited transmit (RFC 5681 3.2 (1), RFC 3042): a new segment for each of
                # the first two duplicate ACKs, cwnd unchanged, at most cwnd + 2*SMSS out
                cw += d * mss
        if cw < usable:
            usable = cw
        n = avail
        lim = smss
        if tcb.flags & T.F_TSO and not (tcb.flags & T.F_ECN_CWR) and smss == mss and \
                tcp.stack.pool.nlarge > 1 and avail > mss:
            # issue 13: one segment of many MSS for the driver to cut (CWR goes on one
            # MSS-sized segment: RFC 3168 6.1.2 marks only the first new data). The last
            # large buffer stays for a GRO driver's next frame (core/offload.py recv_large),
            # whatever a neighbour's resolution holds
            lim = (TSO_MAX // mss) * mss
        if n > lim:
            n = lim
        if n > usable:
            n = usable if usable > 0 else 0
        if n > mss and n < avail:
            n -= n % mss  # whole segments; the window's or the ring's rest goes on its own
        resend = seq_lt(tcb.snd_nxt, tcb.snd_max)
        if resend and n > seq_sub(tcb.snd_max, tcb.snd_nxt):
            # go-back-N after a timeout ends its resends at SND.MAX, as the originals did:
            # data queued since goes in segments of its own (RFC 9293 3.8.1 lets a resend
            # carry more, but then neither RACK's send times nor a trace's reader - tshark's
            # "ACKed unseen segment" - see those bytes as ever sent new)
            n = seq_sub(tcb.snd_max, tcb.snd_nxt)
        else:
            resend = False
        fin = (tcb.flags & (T.F_FIN_QUEUED | T.F_FIN_ACKED)) == T.F_FIN_QUEUED and n == avail
        if n == 0 and not fin:
            break
        if n > 0 and n < smss and not force and not resend:
            if n < avail:
                # window-limited partial segment: only if it is at least half the largest
                # window the peer ever offered (RFC 9293 3.8.6.2.1)
                if n < (tcb.max_sndwnd >> 1):
                    break
            elif off > 0 and not (tcb.flags & T.F_NODELAY) and not fin:
                break  # Nagle (RFC 896): one small segment in flight at a time
        fl = 0
        if fin:
            fl = w.FIN
        if n > 0 and n == avail:
            fl |= w.PSH
        seq = tcb.snd_nxt
        if not send_segment(tcp, tcb, seq, fl, off, n):
            break
        sent = True
        force = False
        if seq_gt(tcb.snd_max, seq):
            tcp.stats.tx_retransmits += 1  # go-back-N after an RTO: each one (RetransSegs)
            tcb.rexmits += 1
            if sb is not None:
                e = seq_add(seq, n)
                if seq_gt(e, sb.high_rxt):
                    sb.high_rxt = e   # resent and in flight again: pipe counts it (RFC 6675 4)
                if sb.rack is not None:
                    sb.rack.rxt(e)
        _sent_new(tcp, tcb, seq, n, fin, now)
        if fin:
            break
    if not sent and tcb.flags & T.F_ACKNOW:
        send_segment(tcp, tcb, tcb.snd_nxt, 0, 0, 0)
    # zero (or too small) window with data waiting and nothing in flight: persist timer
    if tcb.t_rexmt == 0 and tcb.t_persist == 0 and tcb.snd_nxt == tcb.snd_una and \
            snd.count > 0 and not (tcb.flags & T.F_FIN_ACKED):
        t = now + rto.current(tcb, tcp.rto_max)
        tcb.t_persist = t
        tcp.stack.timer_at(t)


def _sent_new(tcp, tcb, seq, n, fin, now):
    """Bookkeeping after a segment from SND.NXT went out: RTT timing, FIN, SND.NXT/SND.MAX,
    the timers. Returns the sequence space it used."""
    if n > 0 and seq == tcb.snd_max:
        if not (tcb.flags & (T.F_TIMING | T.F_TS)):
            tcb.flags |= T.F_TIMING
            tcb.rtt_seq = seq
            tcb.rtt_start = now
        sb = tcb.sb
        if sb is not None and sb.rack is not None:
            sb.rack.sent(seq, now)  # RFC 8985 6.1: the original's transmit time
    if fin:
        tcb.flags |= T.F_FIN_SENT
        n += 1
    tcb.snd_nxt = seq_add(seq, n)
    if seq_gt(tcb.snd_nxt, tcb.snd_max):
        tcb.snd_max = tcb.snd_nxt
    arm_rexmt(tcp, tcb)
    tcb.t_persist = 0
    arm_tlp(tcp, tcb)
    return n


def arm_tlp(tcp, tcb):
    """RFC 8985 7.2: (re)start the probe timeout after new data went out or an ACK moved
    SND.UNA - with SACK, no probe already out, not while a timeout's go-back-N runs: PTO =
    2*SRTT (a 0 ms RTT sample on a LAN counts: SRTT 0) + TLP_SLACK_MS for our 1 ms clock,
    plus the peer's worst-case delayed ACK when one segment is in flight. Not when the RTO
    would fire first (it repairs the tail then anyway). (It had a 10 ms floor, the RFC has
    none: at sub-ms RTT each lost ACK at the end of a flight cost 10 ms - issue 12.)

    Also inside SACK recovery, restarted by every ACK there (input.py): 7.2 recommends (a
    SHOULD) probes outside recovery, where RACK (6.2-6.3) finds a lost retransmission from
    a later delivery. At a recovery's tail nothing goes after the last retransmission, so
    when it or its ACK is lost no ACK comes again and only the RTO was left: 5-13 a run in
    issue 12's 0 ms / 2 % cell (200 ms each, most of them spurious: the ACK was lost)."""
    sb = tcb.sb
    tcb.t_tlp = 0
    if sb is None or sb.tlp_out or not tcp.tlp or tcb.snd_max == tcb.snd_una:
        return
    if not sb.in_recovery and sb.point_valid and seq_lt(tcb.snd_una, sb.point):
        return  # recovering from a timeout (RecoveryPoint not yet reached): no probes
    pto = (tcb.srtt8 >> 2) + TLP_SLACK_MS
    if seq_sub(tcb.snd_max, tcb.snd_una) <= tcb.mss:
        pto += WCDELACK_MS
    t = tcp.stack.now + pto
    if tcb.t_rexmt and t >= tcb.t_rexmt:
        return
    tcb.t_tlp = t
    tcp.stack.timer_at(t)


def send_tlp(tcp, tcb):
    """RFC 8985 7.3: the probe, so the peer's ACK or SACK for it tells what was lost at
    the tail (input.py) instead of a retransmission timeout; then the RTO is rearmed.

    The RFC's preference (a SHOULD) is one new segment if the receive window lets one out,
    else the last segment sent again. We send new data when at most one segment is in
    flight, or when it is the last the application queued (the probe then completes what
    the receiver can be given, whatever its ACK does); otherwise the last segment goes
    again. With several segments unacknowledged after 2*SRTT, a lost ACK is the likely
    cause - a receiver ACKs at least every second full-sized segment (RFC 5681 4.2), so
    the flight's own ACK was due. One new in-order
    segment then waits out the receiver's delayed ACK (Linux: 40-200 ms, issue 12: the
    most probes of the 0 ms / 2 % cell), while a segment it already has is answered at once
    (RFC 9293 3.10.7.4: an unacceptable segment is acknowledged; RFC 2883: with a D-SACK,
    which tells us the probe was not needed, RFC 8985 7.4.1: no congestion response). If
    data was lost instead, the last segment again repairs it or lies beyond it: SACKed at
    once, it marks the rest lost (input.py) as a new segment's SACK would."""
    sb = tcb.sb
    snd = tcb.snd
    una = tcb.snd_una
    hi = tcb.snd_max
    mss = tcb.mss
    if sb.in_recovery:
        # the segment at SND.UNA again (up to the first SACKed byte): at a recovery's tail
        # the last retransmission, whose ACK (or itself) went missing - a receiver that has
        # it answers at once (RFC 9293 3.10.7.4), one that does not is repaired. Outside
        # PRR's budget, as any probe (7.3); no episode of its own (recovery's stands)
        e = sb.rs.start[0] if sb.rs.n else hi
        n = seq_sub(e, una)
        if n > mss:
            n = mss
        if n <= 0 or not resend(tcp, tcb, una, n):
            return
        if sb.rack is not None:
            sb.rack.rxt_range(una, seq_add(una, n))
        sb.tlp_rxt = False  # the recovery's repair: no 7.4 episode, no second reduction
        sb.tlp_lo = una
        sb.tlp_out = True
        sb.tlp_high = hi
        tcp.stats.tlp_probes += 1
        tcb.t_rexmt = 0
        arm_rexmt(tcp, tcb)
        return
    off = seq_sub(tcb.snd_nxt, una)
    avail = snd.count - off
    n = avail if avail < mss else mss
    fin = (tcb.flags & (T.F_FIN_QUEUED | T.F_FIN_SENT)) == T.F_FIN_QUEUED and n == avail
    if tcb.snd_nxt == hi and (n > 0 or fin) and off + n <= tcb.snd_wnd and \
            (seq_sub(hi, una) <= mss or n == avail):
        fl = w.FIN if fin else 0
        if n > 0 and n == avail:
            fl |= w.PSH
        if not send_segment(tcp, tcb, hi, fl, off, n):
            return
        sb.tlp_rxt = False
        sb.tlp_lo = hi
        sb.tlp_out = True  # before _sent_new: no PTO for the probe itself
        _sent_new(tcp, tcb, hi, n, fin, tcp.stack.now)
    else:
        lo = seq_sub(hi, mss) if seq_sub(hi, una) > mss else una
        if not resend(tcp, tcb, lo, seq_sub(hi, lo)):
            return
        if sb.rack is not None:
            sb.rack.rxt_range(lo, hi)
        sb.tlp_rxt = True
        sb.tlp_lo = lo
        sb.tlp_out = True
    sb.tlp_high = tcb.snd_max
    tcp.stats.tlp_probes += 1
    tcb.t_rexmt = 0
    arm_rexmt(tcp, tcb)


def _recover(tcp, tcb, sb, now):
    """SACK loss recovery's sending (RFC 6675 5 (C)): while this ACK's PRR budget (RFC 6937)
    lasts, NextSeg names the next segment - a lost hole, new data, a hole not yet deemed
    lost, or once the rescue retransmission. Entering, the segment at SND.UNA goes first
    (RFC 6675 5 (4.3)). True when something was sent."""
    snd = tcb.snd
    mss = tcb.mss
    sent = False
    while sb.budget > 0:
        una = tcb.snd_una
        hi = tcb.snd_max
        if sb.first:
            e = sb.rs.start[0] if sb.rs.n else hi
            ln = seq_sub(e, una)
            if ln == 0:
                sb.first = False  # SACKed from SND.UNA on (a peer that reneged): NextSeg
                continue
            sb.seg = una
            sb.seg_len = ln if ln < mss else mss
            kind = sc.LOST
        else:
            off = seq_sub(tcb.snd_nxt, una)
            avail = snd.count - off
            n = avail if avail < mss else mss
            fin = (tcb.flags & (T.F_FIN_QUEUED | T.F_FIN_SENT)) == T.F_FIN_QUEUED
            new_ok = tcb.snd_nxt == hi and (avail > 0 or fin) and off + n <= tcb.snd_wnd
            kind = sb.next_seg(una, hi, mss, new_ok)
        if kind == sc.NONE:
            break
        if kind == sc.NEW:
            off = seq_sub(tcb.snd_nxt, una)
            avail = snd.count - off
            n = mss - sack_room(tcb)  # room for our SACK blocks (RFC 2018 4)
            if avail < n:
                n = avail
            fin = (tcb.flags & (T.F_FIN_QUEUED | T.F_FIN_SENT)) == T.F_FIN_QUEUED and n == avail
            fl = w.FIN if fin else 0
            if n > 0 and n == avail:
                fl |= w.PSH
            seq = tcb.snd_nxt
            if not send_segment(tcp, tcb, seq, fl, off, n):
                break
            sb.sent(_sent_new(tcp, tcb, seq, n, fin, now))
        else:
            if not resend(tcp, tcb, sb.seg, sb.seg_len):
                break
            if kind == sc.RESCUE:
                sb.rescue = sb.point  # RFC 6675 4 rule 4: one rescue per recovery
                sb.rescue_valid = True
                tcp.stats.rescue_rexmits += 1
                if sb.rack is not None:
                    sb.rack.rxt_range(sb.seg, seq_add(sb.seg, sb.seg_len))
            else:
                e = seq_add(sb.seg, sb.seg_len)
                if seq_gt(e, sb.high_rxt):
                    sb.high_rxt = e
                if sb.rack is not None:
                    sb.rack.rxt(e)  # HighRxt's: not the rescue's or a probe's (one segment)
                if sb.first:
                    sb.first = False
                    sb.una_rxt_at = now
                    sb.una_rxt_hi = hi
                    sb.una_rxt_end = e
                    if not sb.rescue_valid:
                        sb.rescue = e  # (4.3): no premature rescue
                        sb.rescue_valid = True
            sb.sent(sb.seg_len)
        sent = True
    return sent


def resend(tcp, tcb, seq, n):
    """Retransmit the sequence range [seq, seq + n) of what is in flight (its data from the
    send ring, the FIN if the range reaches it). False when nothing could be sent."""
    count = tcb.snd.count
    off = seq_sub(seq, tcb.snd_una)
    dn = count - off
    if dn > n:
        dn = n
    if dn < 0:
        dn = 0
    fl = 0
    if off + n > count and tcb.flags & T.F_FIN_SENT and not (tcb.flags & T.F_FIN_ACKED):
        fl = w.FIN
    if dn == 0 and not fl:
        return False
    tcb.flags &= ~T.F_TIMING  # Karn
    if not send_segment(tcp, tcb, seq, fl, off, dn):
        return False
    tcp.stats.tx_retransmits += 1
    tcb.rexmits += 1
    arm_rexmt(tcp, tcb)
    return True


def send_ack(tcp, tcb):
    send_segment(tcp, tcb, tcb.snd_nxt, 0, 0, 0)


def send_probe(tcp, tcb):
    """A segment one below SND.UNA with no data: the peer must answer with an ACK showing
    its current window (zero-window probe and keepalive, Linux style)."""
    send_segment(tcp, tcb, seq_sub(tcb.snd_una, 1), 0, 0, 0)


def retransmit_first(tcp, tcb):
    """Fast retransmit / partial ACK: resend one segment from SND.UNA (snd_nxt unchanged),
    no further than SND.MAX: bytes never sent are new data, not this resend's (output())."""
    count = tcb.snd.count
    sent = seq_sub(tcb.snd_max, tcb.snd_una)
    if sent < count:
        count = sent
    n = count if count < tcb.mss else tcb.mss
    fl = 0
    if n == count and tcb.flags & T.F_FIN_SENT and not (tcb.flags & T.F_FIN_ACKED):
        fl = w.FIN
    if n == 0 and not fl:
        return
    tcb.flags &= ~T.F_TIMING  # Karn
    tcp.stats.tx_retransmits += 1
    tcb.rexmits += 1
    sb = tcb.sb
    if sb is not None and sb.rack is not None:
        sb.rack.rxt(seq_add(tcb.snd_una, n))
    if send_segment(tcp, tcb, tcb.snd_una, fl, 0, n):
        arm_rexmt(tcp, tcb)


def _reply_addrs(tcp, b):
    """A stateless reply's addresses (a RST, a SYN cookie's SYN-ACK): the segment's destination
    (at b[tcp.seg_dst], as the network layer located it) as our source and its source as our
    destination, copied into the preallocated buffers of its family, which become
    tcp.reply_src and tcp.reply_dst."""
    a = tcp.seg_alen
    if a == 4:
        src = tcp.rst_src
        dst = tcp.rst_dst
    else:
        src = tcp.rst_src6
        dst = tcp.rst_dst6
    d = tcp.seg_dst
    s = tcp.seg_src
    i = 0
    while i < a:
        src[i] = b[d + i]
        dst[i] = b[s + i]
        i += 1
    tcp.reply_src = src
    tcp.reply_dst = dst


def send_rst(tcp, b, seq, ack, flags):
    """A RST answering the segment being processed (its TCP header at b[tcp.seg_hdr]; its
    addresses and ports swapped); flags is RST or RST|ACK. Nothing is kept.
    Rate-limited (TCP_RST_RATE_MS, TCP_RST_BURST): a flood of segments to closed ports or
    of stray ACKs must not buy one transmission each. RFC 9293 3.10.7.1 asks for the RST;
    like the BSDs (icmplim covers RSTs too), we send at most a burst and then one per
    TCP_RST_RATE_MS; an unanswered peer times out as if the RST were lost."""
    stack = tcp.stack
    if tcp.rst_rate:
        now = stack.now
        add = (now - tcp.rst_refill) // tcp.rst_rate
        if add > 0:
            t = tcp.rst_tokens + add
            tcp.rst_tokens = t if t < tcp.rst_burst else tcp.rst_burst
            tcp.rst_refill += add * tcp.rst_rate  # the rest of a period counts towards the next
        if tcp.rst_tokens <= 0:
            tcp.stats.tx_rst_rate_limited += 1
            return
        tcp.rst_tokens -= 1
    _reply_addrs(tcp, b)
    dst = tcp.reply_dst
    pb = stack.ip.alloc_tx(dst)
    if pb is None:
        tcp.stats.tx_no_buffer += 1
        return
    t = tcp.seg_hdr
    o = pb.off
    w.write_header(pb.buf, o, (b[t + 2] << 8) | b[t + 3], (b[t] << 8) | b[t + 1], seq, ack,
                   20, flags, 0)
    pb.n = 20
    tcp.stats.tx_rst += 1
    tcp.stats.tx_segments += 1
    stack.ip.output(pb, PROTO_TCP, tcp.reply_src, dst, w.CSUM)


def send_synack_cookie(tcp, lsock, iface, b):
    """SYN-ACK to the SYN being processed whose ISN is a SYN cookie (cookie.py,
    RFC 4987 3.6). Nothing is kept: the options the connection will need travel in the
    cookie (MSS) and in our TSval's low bits (window scale, SACK-permitted) - so without
    the peer's timestamps only the MSS is offered back (as Linux does)."""
    stack = tcp.stack
    st = tcp.stats
    _reply_addrs(tcp, b)
    src = tcp.reply_src
    dst = tcp.reply_dst
    pb = stack.ip.alloc_tx(dst)
    if pb is None:
        st.tx_no_buffer += 1
        return
    o = tcp.seg_hdr
    seen = tcp.opt_seen
    m = tcp.cookie_mac
    idx = cookie.mss_index(tcp.opt_mss if seen & options.SEEN_MSS else 536)
    cookie.compute(m, b, tcp.seg_src, tcp.seg_dst, tcp.seg_alen, o,
                   (b[o + 4] << 8) | b[o + 5], (b[o + 6] << 8) | b[o + 7],
                   stack.now >> cookie.T_SHIFT)
    ihi = m.x
    ilo = m.y ^ idx
    ts = seen & options.SEEN_TS and tcp.timestamps
    ws = -1
    sack = False
    if ts:
        ws = tcp.wscale_for(lsock.rcvbuf) if seen & options.SEEN_WS and tcp.wscale else -1
        sack = seen & options.SEEN_SACK_PERM and tcp.sack
    q = pb.buf
    p = pb.off
    mss = tcp.adv_mss_for(link_mtu(iface, tcp.seg_alen), tcp.seg_alen)  # the family's MTU
    hl = 20 + options.write_syn(q, p + 20, mss, ws, sack, ts)
    if ts:
        bits = cookie.TS_ON | cookie.TS_WS_NONE
        if ws >= 0:
            bits = cookie.TS_ON | (tcp.opt_ws if tcp.opt_ws < w.MAX_WSCALE else w.MAX_WSCALE)
        if sack:
            bits |= cookie.TS_SACK
        t = p + 20 + options.SYN_TS_OFF
        v = m.x ^ m.y
        q[t] = v >> 8
        q[t + 1] = v & 0xFF
        q[t + 2] = m.y >> 8
        q[t + 3] = (m.y & 0xC0) | bits
        f = tcp.opt_ts_off
        q[t + 4] = b[f]  # TSecr: the peer's TSval
        q[t + 5] = b[f + 1]
        q[t + 6] = b[f + 2]
        q[t + 7] = b[f + 3]
    win = lsock.rcvbuf if lsock.rcvbuf < 0xFFFF else 0xFFFF
    lo = ((b[o + 6] << 8) | b[o + 7]) + 1  # ACK: the SYN's sequence number + 1
    hi = (((b[o + 4] << 8) | b[o + 5]) + (lo >> 16)) & 0xFFFF
    w.write_header_rel(q, p, (b[o + 2] << 8) | b[o + 3], (b[o] << 8) | b[o + 1], 0, ihi, ilo,
                       0, hi, lo & 0xFFFF, hl, w.SYN | w.ACK_F, win)
    pb.n = hl
    st.syncookies_sent += 1
    st.tx_segments += 1
    tcp.cookie_at = stack.now
    # a cookie keeps no state: a driver that can keep such replies apart from the flows we
    # talk to (hal/tap.py's last queue) is told so, and the flood it answers stays off ours
    drv = iface.driver
    hint = getattr(drv, "stateless", None)
    if hint is not None:
        drv.stateless = True
    stack.ip.output(pb, PROTO_TCP, src, dst, w.CSUM, lsock.ttl, lsock.tos & ~ECN_MASK)
    if hint is not None:
        drv.stateless = False


def send_rst_tcb(tcp, tcb):
    """Abortive close (SO_LINGER 0, close with unread data, RFC 9293 3.10.5 ABORT)."""
    stack = tcp.stack
    pb = stack.ip.alloc_tx(tcb.remote_ip)
    if pb is None:
        tcp.stats.tx_no_buffer += 1
        return
    b = pb.buf
    o = pb.off
    w.write_header_rel(b, o, tcb.local_port, tcb.remote_port, tcb.snd_nxt, tcb.iss_hi,
                       tcb.iss_lo, tcb.rcv_nxt, tcb.irs_hi, tcb.irs_lo, 20, w.RST | w.ACK_F, 0)
    pb.n = 20
    tcp.stats.tx_rst += 1
    tcp.stats.tx_segments += 1
    stack.ip.output(pb, PROTO_TCP, tcb.local_ip, tcb.remote_ip, w.CSUM, tcb.ttl,
                    tcb.tos & ~ECN_MASK)
