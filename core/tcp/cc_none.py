"""The "none" congestion controller for the tiniest boards: a fixed window of
TCP_CC_NONE_SEGMENTS segments, no growth beyond it (no slow start probing, no congestion
avoidance state to speak of), and no more than RFC 6928's initial window.

It still answers loss, because RFC 5681 3.1's MUSTs hold for every TCP (RFC 2914):
- three duplicate ACKs: NewReno's fast recovery (RFC 6582, inherited), so the window is
  halved (ssthresh = max(FlightSize/2, 2*SMSS), eq. 4) until the recovery point is acked;
- an RTO: the loss window, one segment (cwnd MUST be no more than LW), then slow start
  (RFC 5681 3.1 eq. 2) until the data outstanding at the timeout is acked.
When recovery ends the window is the fixed one again. Why that is safe enough: the fixed
window never exceeds the initial window a fresh connection may send into an unknown path
(RFC 6928, RFC 5681 4.1's restart window), so the connection is never more aggressive than
one that had just started; each loss still costs it a halving for a round trip, and
repeated timeouts back off exponentially (RFC 6298 5.5)."""
from ustack.core.tcp.cc import initial_window, CE_RTO
from ustack.core.tcp.cc_newreno import NewReno
from ustack.core.tcp.seq import seq_ge


class FixedWindow(NewReno):
    name = "none"
    __slots__ = ("segs", "fixed", "rto_recovery")

    def __init__(self, mss, segs):
        NewReno.__init__(self, mss)
        self.segs = segs
        self.fixed = 0
        self.rto_recovery = False
        self._size(mss)

    def _size(self, mss):
        w = self.segs * mss  # <= 10 * 65535
        iw = initial_window(mss)
        self.fixed = w if w < iw else iw
        self.cwnd = self.fixed
        self.ssthresh = self.fixed

    def set_mss(self, mss):
        if mss != self.mss:
            self.mss = mss
            self._size(mss)

    def syn_lost(self):
        """RFC 5681 3.1 / RFC 6928 2: one segment after a retransmitted SYN, then slow
        start up to the fixed window (as after an RTO)."""
        self.cwnd = self.mss
        self.rto_recovery = True
        self.recover_valid = False

    def window(self):
        c = self.cwnd
        return c if c < self.fixed else self.fixed

    def on_ack(self, acked, ack, flight, now=0, rtt=-1):
        if self.in_recovery:
            r = NewReno.on_ack(self, acked, ack, flight, now, rtt)
            if not self.in_recovery:
                self.cwnd = self.fixed  # a full ACK: fast recovery is over
            return r
        self.dupacks = 0
        if self.rto_recovery:
            if self.recover_valid and seq_ge(ack, self.recover):
                self.rto_recovery = False  # all that was out at the timeout is acked
                self.cwnd = self.fixed
                return False
            w = self.cwnd + (acked if acked < self.mss else self.mss)  # slow start
            self.cwnd = w if w < self.fixed else self.fixed
        elif self.cwnd < self.fixed:
            # an undone timeout left cwnd = FlightSize + min(acked, IW) (RFC 4015 3 (5)):
            # slow start back to the fixed window
            w = self.cwnd + (acked if acked < self.mss else self.mss)
            self.cwnd = w if w < self.fixed else self.fixed
        return False

    def on_rto(self, flight, snd_max, now=0):
        NewReno.on_rto(self, flight, snd_max, now)  # cwnd = 1 segment, recover = snd_max
        self.rto_recovery = True

    def undo(self):
        """A spurious reduction (undo.py): the fixed window again, recovery over."""
        NewReno.undo(self)
        self.rto_recovery = False

    def on_congestion(self, kind, flight, snd_max, now):
        if kind == CE_RTO:
            self.on_rto(flight, snd_max, now)
            return
        NewReno.on_congestion(self, kind, flight, snd_max, now)  # halved until recover
        self.rto_recovery = True
