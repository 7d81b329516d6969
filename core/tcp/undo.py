"""Spurious retransmissions, found afterwards, and the congestion response taken back.

One loss episode at a time per connection, kept in fixed fields of its controller (ep_*,
cc_newreno.py: a TCB pays nothing until the connection is established - SYN floods make
many - and MicroPython's TCB attribute table stays its size): it starts when
a loss is declared - fast retransmit or SACK recovery (FAST), a tail loss probe that resent
data (TLP), a retransmission timeout (RTO) - before the first retransmission leaves.

Detection:
- Eifel (RFC 3522 3.2), with timestamps: RetransmitTS is our TSval on the episode's first
  retransmission. The first acceptable ACK after it (one that acknowledges new data) echoing
  an OLDER TSval was sent for the original transmission: the retransmission was not needed.
  A D-SACK on that ACK: no verdict from the timestamp, RFC 3708 decides (conservative); an
  ACK echoing the retransmission ends the episode - the loss was real, whatever D-SACKs
  follow (they seemed to undo a real loss against Linux otherwise). Our
  clock has 1 ms ticks: an original sent in the same millisecond as its retransmission cannot
  be told apart, and is not called spurious.
- D-SACK (RFC 3708 3): once the episode's data is all acknowledged, every retransmission of
  the episode was reported as a duplicate (D-SACK blocks inside the range outstanding when it
  began, counted in segments of at most SMSS).
Either way only if the controller made no other reduction since (cc.events, its count).

Response:
- FAST and TLP: the controller's undo() - cwnd and ssthresh as before the event (RFC 9438 4.9
  for CUBIC, its W_max and K too) - and SACK recovery ends, so a real loss later in the same
  window may start its own.
- RTO (RFC 4015 3, the Eifel response; "late" when found by D-SACK): ssthresh = pipe_prev =
  max(FlightSize, ssthresh) before the timeout, cwnd = FlightSize + min(bytes_acked, IW) - no
  burst; found early, by the ACK's timestamp, transmission resumes with new data (SND.NXT =
  SND.MAX: the go-back-N stops) and the RTT estimators take the delayed ACK's sample, never
  going below their values (RFC 4015 keeps SRTT_prev and RTTVAR_prev for that; ours are
  those values already moved towards the sample), so the next RTO is longer.
- a probe whose answer echoes the original's TSval is no congestion event at all (RFC 8985
  7.4.1 says so for a D-SACK; the timestamp tells the same): counted, nothing reduced.

Nothing here allocates."""
from ustack.core.compat import const
from ustack.core.tcp import tcb as T
from ustack.core.tcp import rto
from ustack.core.tcp.options import SEEN_TS
from ustack.core.tcp.cc import initial_window
from ustack.core.tcp.seq import seq_sub, seq_lt, seq_le, seq_ge

NONE = const(0)
FAST = const(1)   # fast retransmit, SACK recovery (RFC 5681 3.2, RFC 6675 5)
TLP = const(2)    # a tail loss probe that resent data (RFC 8985 7.3)
RTO = const(3)    # the retransmission timer (RFC 6298 5.5)


def start(tcp, tcb, kind, sent=0):
    """A loss episode begins: before the controller reduces and before the retransmission
    leaves (`sent`: retransmissions of it already counted in tcb.rexmits - the probe's)."""
    c = tcb.cc
    c.ep_kind = kind
    c.ep_eifel = (tcb.flags & T.F_TS) != 0 and kind != TLP
    c.ep_ts = tcp.stack.now - tcb.ts_start   # RFC 3522 3.2 (1) RetransmitTS
    c.ep_lo = tcb.snd_una
    c.ep_hi = tcb.snd_max
    c.ep_rx = tcb.rexmits - sent
    c.ep_dsack = 0
    c.ep_ev = -1
    f = seq_sub(tcb.snd_max, tcb.snd_una)
    ss = c.ssthresh
    c.ep_pipe = f if f > ss else ss           # RFC 4015 3 (0) pipe_prev


def reduced(tcb):
    """The controller has made the episode's reduction: the one an undo may take back."""
    c = tcb.cc
    c.ep_ev = c.events


def end(tcb):
    c = tcb.cc
    c.ep_kind = NONE
    c.ep_eifel = False
    c.ep_dsack = 0


def dsack(tcb, s, e):
    """A D-SACK block [s, e) (RFC 2883): the segments it reports count for the episode when
    they lie in the range outstanding at its start (RFC 3708 3)."""
    c = tcb.cc
    if c is None or c.ep_kind == NONE or not seq_le(c.ep_lo, s) or not seq_le(e, c.ep_hi):
        return
    m = tcb.mss
    c.ep_dsack += (seq_sub(e, s) + m - 1) // m


def eifel(tcp, tcb, acked, rtt, dsacked):
    """The first acceptable ACK after the episode's retransmission (RFC 3522 3.2 (2)-(4)):
    True when it acknowledges the original transmission and the response was taken."""
    c = tcb.cc
    c.ep_eifel = False
    if not (tcp.opt_seen & SEEN_TS) or dsacked:   # a D-SACK on it: RFC 3708's call
        return False
    if not seq_lt(tcp.opt_tsecr, c.ep_ts):
        # it echoes the retransmission: that filled the hole, the loss was real - a D-SACK
        # later is some other duplicate's (an earlier probe's), not this episode's verdict
        end(tcb)
        return False
    if c.ep_kind == RTO:
        return _spurious_rto(tcp, tcb, acked, rtt)
    return _spurious_recovery(tcp, tcb, False)


def tlp_spurious(tcp, tcb):
    """The ACK that covers a probe echoes a TSval older than the probe's (RFC 3522 3.2): the
    original arrived, the probe was a duplicate - RFC 8985 7.4.1's no-loss outcome."""
    c = tcb.cc
    if c is None or c.ep_kind != TLP or not (tcb.flags & T.F_TS) or not (tcp.opt_seen & SEEN_TS):
        return False
    return seq_lt(tcp.opt_tsecr, c.ep_ts)


def check_dsack(tcp, tcb, acked):
    """RFC 3708 3 after an ACK: the episode's data all acknowledged and each of its
    retransmissions D-SACKed - spurious. True when the response was taken."""
    c = tcb.cc
    n = tcb.rexmits - c.ep_rx
    if c.ep_kind == NONE or n <= 0 or c.ep_dsack < n or c.ep_ev < 0 or \
            not seq_ge(tcb.snd_una, c.ep_hi):
        return False
    tcp.stats.spurious_dsack += 1
    if c.ep_kind == RTO:
        return _spurious_rto(tcp, tcb, acked, -1)
    return _spurious_recovery(tcp, tcb, True)


def _undo_cc(tcp, tcb):
    """The controller's undo, only for the reduction this episode made (none since)."""
    cc = tcb.cc
    if cc is None or cc.ep_ev < 0 or cc.events != cc.ep_ev:
        return False
    cc.undo()
    tcp.stats.cc_undos += 1
    sb = tcb.sb
    if sb is not None:
        if sb.in_recovery:
            sb.leave()
        sb.point_valid = False  # the event is taken back: a real loss may start recovery
    return True


def _spurious_recovery(tcp, tcb, late):
    tcp.stats.spurious_recoveries += 1
    sb = tcb.sb
    rk = sb.rack if sb is not None else None
    if rk is not None and not rk.reo_seen and not late and \
            tcp.opt_tsecr + tcb.ts_start <= rk.acked_ts:
        # the ACK echoes the ORIGINAL transmission (sent no later than the run log says):
        # it arrived after its retransmission left - reordering, which RFC 8985 6.2 step 3
        # cannot see (the segment counts as retransmitted). RACK decides from now on.
        # (An echo of an earlier retransmission - a rescue's, a probe's - proves nothing.)
        rk.reo_seen = True
        rk.reord_seen += 1
        tcp.stats.rack_reordering += 1
    done = _undo_cc(tcp, tcb)
    end(tcb)
    return done


def _spurious_rto(tcp, tcb, acked, rtt):
    """RFC 4015 3: steps (3)-(6) (early, rtt >= 0) or the congestion part alone (late)."""
    tcp.stats.spurious_rtos += 1
    cc = tcb.cc
    cw = cc.cwnd if cc is not None else 0
    done = _undo_cc(tcp, tcb)
    if done:
        # (5) cwnd = FlightSize + min(bytes_acked, IW), never lower than the window now;
        # ssthresh = pipe_prev
        iw = initial_window(tcb.mss)
        lim = seq_sub(tcb.snd_max, tcb.snd_una) + (acked if acked < iw else iw)
        if lim < cw:
            lim = cw
        if cc.cwnd > lim:
            cc.cwnd = lim
        if cc.ssthresh < cc.ep_pipe:
            cc.ssthresh = cc.ep_pipe
    if rtt >= 0:
        # (4) resume with new data: no more go-back-N
        if seq_lt(tcb.snd_nxt, tcb.snd_max):
            tcb.snd_nxt = tcb.snd_max
        # (6) SRTT = max(SRTT, sample), RTTVAR = max(RTTVAR, sample/2), RTO from them
        s8 = rtt << 3
        if s8 > tcb.srtt8:
            tcb.srtt8 = s8
        v4 = rtt << 1
        if v4 > tcb.rttvar4:
            tcb.rttvar4 = v4
        tcb.rto = rto.compute(tcb, tcp.rto_min, tcp.rto_max)
    end(tcb)
    return done
