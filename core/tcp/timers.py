"""Per-connection timers, run from TCP.tick: retransmission (RFC 6298 5.4-5.6, go-back-N from
SND.UNA, exponential backoff capped at TCP_RTO_MAX_MS, give up after TCP_MAX_RETRIES /
TCP_SYN_RETRIES - an active open never before R2_SYN_MS, RFC 9293 3.8.3), persist
(zero-window probes with backoff, RFC 9293 3.8.6.1), delayed ACK, keepalive (RFC 1122
4.2.3.6), the tail loss probe (RFC 8985 7) and RACK's reordering timer (RFC 8985 6.3),
TIME-WAIT / orphaned FIN-WAIT-2 expiry. Returns the connection's next deadline."""
from ustack.core.tcp import tcb as T
from ustack.core.tcp import output as out
from ustack.core.tcp import rto
try:
    from ustack.core.tcp import undo
except ImportError:  # a board built without "undo" (ports/micropython/build.py)
    from ustack.core.tcp import undo_off as undo
from ustack.core.tcp import input as inp
from ustack.core.tcp.seq import seq_sub
from ustack.core.compat import const

# RFC 9293 3.8.3 (RFC 1122 4.2.3.5): "R2 for a SYN segment MUST be set large enough to
# provide retransmission of the segment for at least 3 minutes" - the application may
# give up sooner (a connect timeout, close()), the stack does not
R2_SYN_MS = const(180000)


def run(tcp, tcb, now):
    if tcb.flags & T.F_PENDING:
        tcb.flags &= ~T.F_PENDING
        out.output(tcp, tcb)
    if tcb.t_conn and now >= tcb.t_conn:
        tcb.t_conn = 0
        if tcb.state == T.FIN_WAIT_2:
            tcp.stats.fin_wait2_timeouts += 1
            tcp.drop(tcb, 0)
            return 0
        if tcb.state == T.TIME_WAIT:
            tcp.drop(tcb, 0)
            return 0
    if tcb.t_delack and now >= tcb.t_delack:
        tcb.t_delack = 0
        tcb.flags |= T.F_ACKNOW
        tcp.stats.delayed_acks += 1
        out.output(tcp, tcb)
    if tcb.t_rexmt and now >= tcb.t_rexmt:
        _rexmt(tcp, tcb, now)
        if tcb.state == T.CLOSED:
            return 0
    if tcb.t_tlp and now >= tcb.t_tlp:
        tcb.t_tlp = 0
        sb = tcb.sb
        if sb is not None and not sb.tlp_out and \
                tcb.snd_max != tcb.snd_una and tcb.state in T.TCP_STATE_OPEN:
            rec = sb.in_recovery  # a probe at a recovery's tail (output.arm_tlp)
            out.send_tlp(tcp, tcb)  # RFC 8985 7.3: a probe, not yet an RTO
            if sb.tlp_out and sb.tlp_rxt and tcb.cc is not None and not rec:
                undo.start(tcp, tcb, undo.TLP, 1)  # the probe resent data: an episode
    sb = tcb.sb
    rk = sb.rack if sb is not None else None
    if rk is not None and rk.t_reo and now >= rk.t_reo:
        rk.t_reo = 0
        if tcb.state in T.TCP_STATE_OPEN:
            inp.rack_timeout(tcp, tcb)  # RFC 8985 6.3: the reordering timer
    if tcb.t_persist and now >= tcb.t_persist:
        _persist(tcp, tcb, now)
        if tcb.state == T.CLOSED:
            return 0
    if tcb.t_keep and now >= tcb.t_keep:
        _keepalive(tcp, tcb, now)
        if tcb.state == T.CLOSED:
            return 0
    d = 0
    t = tcb.t_rexmt
    if t:
        d = t
    t = tcb.t_persist
    if t and (d == 0 or t < d):
        d = t
    t = tcb.t_tlp
    if t and (d == 0 or t < d):
        d = t
    t = tcb.t_delack
    if t and (d == 0 or t < d):
        d = t
    if rk is not None:
        t = rk.t_reo
        if t and (d == 0 or t < d):
            d = t
    t = tcb.t_keep
    if t and (d == 0 or t < d):
        d = t
    t = tcb.t_conn
    if t and (d == 0 or t < d):
        d = t
    if tcb.flags & T.F_PENDING and (d == 0 or now + 10 < d):
        d = now + 10
    return d


def _rexmt(tcp, tcb, now):
    tcb.t_rexmt = 0
    st = tcb.state
    syn = st == T.SYN_SENT or st == T.SYN_RECEIVED
    limit = tcp.syn_retries if syn else tcp.max_retries
    if st == T.SYN_RECEIVED and tcb.flags & T.F_PASSIVE:
        limit = tcp.synack_retries  # Linux's tcp_synack_retries: half-open ones go sooner
    orphan = not syn and tcp.is_orphan(tcb)
    if orphan and tcp.orphan_retries < limit:
        limit = tcp.orphan_retries  # Linux's tcp_orphan_retries
    if tcb.retries >= limit and syn and not (tcb.flags & T.F_PASSIVE) and \
            now - tcb.rtt_start < R2_SYN_MS:
        # rtt_start: when our first SYN went out (output.py times it); retry it at the
        # capped RTO until 3 minutes have passed
        limit = tcb.retries + 1
    if tcb.retries >= limit:
        if syn and tcb.flags & T.F_PASSIVE:
            tcp.drop(tcb, 0)  # an embryonic connection simply goes away
        else:
            if orphan:
                tcp.stats.orphan_retries_exceeded += 1
            tcp.timed_out(tcb)
        return
    if st == T.TIME_WAIT or st == T.CLOSED:
        return
    tcb.retries += 1
    tcb.backoff += 1
    tcp.stats.rto_expired += 1  # the resent segments count in output.py (tx_retransmits)
    if not syn and tcb.cc is not None:
        if tcb.cc.ep_kind != undo.RTO or tcb.retries == 1:
            # a loss episode (undo.py); a repeated timeout keeps the first one's
            # RetransmitTS and pipe_prev (RFC 3522 3.2 (1), RFC 4015 3 (0))
            undo.start(tcp, tcb, undo.RTO)
        tcb.cc.on_rto(seq_sub(tcb.snd_max, tcb.snd_una), tcb.snd_max, tcp.stack.now)
        undo.reduced(tcb)
    sb = tcb.sb
    if sb is not None and not syn:
        tcb.t_tlp = 0
        sb.reset()  # RFC 2018 8: SACKed bits off; RFC 6675 5.1: RecoveryPoint = HighData
        # everything outstanding is lost and go-back-N resends it (RFC 6298 5.4, RFC 8985
        # 6.3): SACK blocks arriving afterwards must not count the holes as still in flight,
        # or pipe stays above cwnd until the next timeout. HighRxt follows the resends
        sb.lost_to = tcb.snd_max
        sb.high_rxt = tcb.snd_una
        sb.point = tcb.snd_max
        sb.point_valid = True
        if sb.rack is not None:
            # go-back-N resends all of it, and SACKed bytes forgotten now come back as new:
            # none of it is evidence of reordering or an RTT sample (RFC 8985 6.2 steps 1, 3)
            sb.rack.rxt(tcb.snd_max)
    tcb.flags &= ~T.F_TIMING  # Karn
    if syn:
        tcb.snd_nxt = 0  # our ISS: resend the SYN
    else:
        tcb.snd_nxt = tcb.snd_una
    out.output(tcp, tcb, True)


def _persist(tcp, tcb, now):
    tcb.t_persist = 0
    if tcb.snd is None or tcb.snd.count == 0 or tcb.snd_nxt != tcb.snd_una or tcb.t_rexmt:
        return
    limit = tcp.max_retries
    orphan = tcp.is_orphan(tcb)
    if orphan and tcp.orphan_retries < limit:
        limit = tcp.orphan_retries
    if tcb.retries >= limit:
        if orphan:
            # nobody will read the answer and the window stays shut: reset, as Linux's
            # tcp_orphan_retries does (probe ACKs do not reset an orphan's count, input.py)
            tcp.stats.orphan_retries_exceeded += 1
            tcp.abort(tcb)
        else:
            tcp.timed_out(tcb)  # the peer stopped answering our probes altogether
        return
    tcb.retries += 1
    tcp.stats.persist_probes += 1
    usable = tcb.snd_wnd
    cc = tcb.cc  # made when the data waiting here was first sent (None: no heap for it)
    cw = cc.window() if cc is not None else 0
    if cw < usable:
        usable = cw
    if usable > 0:
        out.output(tcp, tcb, True)  # the sender SWS override: send what the window allows
    else:
        out.send_probe(tcp, tcb)
    if tcb.t_rexmt == 0 and tcb.state != T.CLOSED:
        if tcb.backoff < 16:
            tcb.backoff += 1
        t = now + rto.current(tcb, tcp.rto_max)
        tcb.t_persist = t
        tcp.arm(t)


def _keepalive(tcp, tcb, now):
    tcb.t_keep = 0
    st = tcb.state
    if not (tcb.flags & T.F_KEEPALIVE) or not (st == T.ESTABLISHED or st == T.CLOSE_WAIT or
                                               st == T.FIN_WAIT_1 or st == T.FIN_WAIT_2):
        return
    idle = now - tcb.last_rx
    if idle < tcb.keep_idle and tcb.keep_probes == 0:
        t = tcb.last_rx + tcb.keep_idle
    else:
        if tcb.keep_probes >= tcb.keep_cnt:
            tcp.timed_out(tcb)
            return
        tcb.keep_probes += 1
        tcp.stats.keepalive_probes += 1
        out.send_probe(tcp, tcb)
        t = now + tcb.keep_intvl
    tcb.t_keep = t
    tcp.arm(t)
