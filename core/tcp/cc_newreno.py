"""NewReno congestion control: RFC 5681 (slow start, congestion avoidance, fast
retransmit/fast recovery) with RFC 6582's recovery point and partial-ACK handling, and
RFC 3465's byte counting in slow start (L = 2*SMSS, 1*SMSS after an RTO) and congestion
avoidance. See cc.py for the interface."""
from ustack.core.tcp.cc import initial_window, CE_RTO, CE_LOSS, CWND_MAX, ABC_L
from ustack.core.tcp.seq import seq_ge, seq_lt, seq_sub

INF = 0x3FFFFFFF  # "arbitrarily high" initial ssthresh (RFC 5681 3.1), a small int on MCUs


class NewReno:
    name = "newreno"
    __slots__ = ("mss", "cwnd", "ssthresh", "dupacks", "recover", "in_recovery",
                 "acked_ca", "recovered", "recover_valid", "u_cwnd", "u_ssthresh", "events",
                 "ep_kind", "ep_eifel", "ep_ts", "ep_lo", "ep_hi", "ep_rx", "ep_dsack", "ep_ev",
                 "ep_pipe", "ss_rto", "lt_hi")

    def __init__(self, mss):
        self.mss = mss
        self.cwnd = initial_window(mss)
        self.ssthresh = INF
        self.dupacks = 0
        self.recover = 0
        self.in_recovery = False
        self.acked_ca = 0
        self.recovered = 0
        self.recover_valid = False
        self.u_cwnd = 0          # cwnd and ssthresh before the last reduction (undo)
        self.u_ssthresh = 0
        self.events = 0          # reductions so far: an undo names the one it takes back
        # the last loss episode, for spurious-retransmission detection (undo.py)
        self.ep_kind = 0         # undo.NONE, FAST, TLP or RTO
        self.ep_eifel = False    # its first acceptable ACK is still to come (RFC 3522 3.2)
        self.ep_ts = 0           # RetransmitTS: our TSval on its first retransmission
        self.ep_lo = 0           # SND.UNA and SND.MAX when it began
        self.ep_hi = 0
        self.ep_rx = 0           # tcb.rexmits when it began: its retransmissions are the rest
        self.ep_dsack = 0        # segments in [ep_lo, ep_hi) D-SACKed since (RFC 3708)
        self.ep_ev = -1          # events after its reduction (-1: none made yet)
        self.ep_pipe = 0         # RFC 4015 3 (0) pipe_prev
        self.ss_rto = False      # slow start after an RTO: ABC's L = 1*SMSS (RFC 3465 2.3)
        self.lt_hi = 0           # SND.MAX at the first duplicate ACK: limited transmit above

    def set_mss(self, mss):
        if mss != self.mss:
            self.mss = mss
            self.cwnd = initial_window(mss)

    def syn_lost(self):
        """Our SYN or SYN-ACK was retransmitted: "the initial window used by a sender after
        a correctly transmitted SYN MUST be one segment" (RFC 5681 3.1, RFC 6928 2), then
        slow start."""
        self.cwnd = self.mss

    def window(self):
        return self.cwnd

    def on_ack(self, acked, ack, flight, now=0, rtt=-1):
        mss = self.mss
        self.dupacks = 0
        if self.in_recovery:
            if seq_ge(ack, self.recover):
                # full ACK (RFC 6582 3.2 step 3): deflate the window
                f = flight - acked
                if f < mss:
                    f = mss
                w = f + mss
                self.cwnd = w if w < self.ssthresh else self.ssthresh
                self.in_recovery = False
                self.recovered += 1
                return False
            # partial ACK (RFC 6582 3.2 step 3): deflate by the amount acked, add back one
            # MSS only if at least one MSS of new data was acknowledged (so about ssthresh
            # stays in flight once recovery ends), retransmit the next hole
            w = self.cwnd - acked
            if acked >= mss:
                w += mss
            self.cwnd = w if w > mss else mss  # room for the retransmission at least
            return True
        # grow only a window that was used (RFC 7661, RFC 5681 4.1: an application-limited
        # sender has not shown the path can take more); CUBIC's rule (RFC 9438 5.8):
        # `flight` is what was outstanding before this ACK
        cwnd = self.cwnd
        if cwnd < self.ssthresh:
            if flight >= (cwnd >> 1):
                # slow start (RFC 5681 3.1) with byte counting (RFC 3465 2.3)
                cwnd += self.abc(acked)
        elif flight + mss > cwnd:
            # congestion avoidance: about one MSS per RTT (RFC 5681 3.1, byte counting)
            self.acked_ca += acked
            if self.acked_ca >= cwnd:
                self.acked_ca -= cwnd
                cwnd += mss
        self.cwnd = cwnd if cwnd < CWND_MAX else CWND_MAX  # a small int on an MCU
        return False

    def abc(self, acked):
        """RFC 3465 2.3: slow start's growth for an ACK of `acked` bytes, min(acked, L);
        L = 2*SMSS, or 1*SMSS until the slow start after an RTO reaches ssthresh."""
        lim = self.mss if self.ss_rto else ABC_L * self.mss
        inc = acked if acked < lim else lim
        if self.ss_rto and self.cwnd + inc >= self.ssthresh:
            self.ss_rto = False  # the slow start after the RTO is over
        return inc

    def lt_flight(self, flight, snd_max):
        """RFC 5681 3.2 (2): FlightSize for ssthresh at the third duplicate ACK leaves out
        what limited transmit (RFC 3042) sent since the first."""
        x = seq_sub(snd_max, self.lt_hi)
        return flight - x if 0 < x < flight else flight

    def on_dup_ack(self, ack, flight, snd_max, now=0):
        mss = self.mss
        self.dupacks += 1
        if self.dupacks == 1:
            self.lt_hi = snd_max
        if self.in_recovery:
            w = self.cwnd + mss  # inflate: another segment left the network
            self.cwnd = w if w < CWND_MAX else CWND_MAX  # a peer's endless dup ACKs
            return False
        if self.dupacks == 3:
            # RFC 6582 3.2 step 2: only when this ACK covers more than the last recovery
            # point, the highest sequence number sent then - `recover` keeps SND.MAX, one
            # past it, so an ACK of SND.MAX covers more (the segment sent next was lost)
            if self.recover_valid and seq_lt(ack, self.recover):
                return False
            self._save()
            half = self.lt_flight(flight, snd_max) >> 1
            self.ssthresh = half if half > 2 * mss else 2 * mss
            self.recover = snd_max
            self.recover_valid = True
            self.cwnd = self.ssthresh + 3 * mss
            self.in_recovery = True
            return True
        return False

    def on_loss(self, flight, snd_max, now=0):
        """SACK loss recovery (RFC 6675 5 (4.2)) found a loss: the controller's reduction
        (on_congestion CE_LOSS: RFC 5681 eq. 4 here, RFC 9438 4.6 for CUBIC), then in
        recovery until snd_max is acknowledged - PRR paces the sending meanwhile. Returns
        ssthresh."""
        self.on_congestion(CE_LOSS, flight, snd_max, now)
        self.in_recovery = True
        self.dupacks = 0
        return self.ssthresh

    def on_rto(self, flight, snd_max, now=0):
        self._save()
        mss = self.mss
        half = flight >> 1
        self.ssthresh = half if half > 2 * mss else 2 * mss
        self.cwnd = mss  # loss window (RFC 5681 3.1)
        self.ss_rto = True
        self.in_recovery = False
        self.dupacks = 0
        self.acked_ca = 0
        self.recover = snd_max  # RFC 6582 3.2 step 4
        self.recover_valid = True

    def on_congestion(self, kind, flight, snd_max, now):
        """Congestion the caller found (cc.py): RFC 5681 3.1 eq. 4 and RFC 3168 6.1.2 halve
        once; the caller's loss recovery (RFC 6675) runs with cwnd = ssthresh."""
        if kind == CE_RTO:
            self.on_rto(flight, snd_max, now)
            return
        self._save()
        mss = self.mss
        half = flight >> 1
        self.ssthresh = half if half > 2 * mss else 2 * mss
        self.cwnd = self.ssthresh
        self.acked_ca = 0
        self.recover = snd_max  # RFC 6582 3.2 step 2: no second reduction for this window
        self.recover_valid = True

    def _save(self):
        """A reduction is about to be made: what undo() gives back."""
        self.u_cwnd = self.cwnd
        self.u_ssthresh = self.ssthresh
        self.events += 1
        self.ss_rto = False

    def undo(self):
        """The last reduction was spurious (undo.py: RFC 3522 / RFC 3708 found it): cwnd and
        ssthresh as before it, the larger of then and now (as Linux's
        tcp_undo_cwnd_reduction), recovery over; the recovery point is forgotten, so a real
        loss in the same window may reduce (RFC 6582 3.2 step 2 guarded the undone one)."""
        if self.cwnd < self.u_cwnd:
            self.cwnd = self.u_cwnd
        if self.ssthresh < self.u_ssthresh:
            self.ssthresh = self.u_ssthresh
        self.in_recovery = False
        self.recover_valid = False
        self.dupacks = 0
        self.ss_rto = False
