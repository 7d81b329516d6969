"""NewReno congestion control: RFC 5681 (slow start, congestion avoidance, fast
retransmit/fast recovery) with RFC 6582's recovery point and partial-ACK handling.
See cc.py for the interface."""
from ustack.core.tcp.cc import initial_window
from ustack.core.tcp.seq import seq_ge, seq_gt

INF = 0x3FFFFFFF  # "arbitrarily high" initial ssthresh (RFC 5681 3.1), a small int on MCUs


class NewReno:
    __slots__ = ("mss", "cwnd", "ssthresh", "dupacks", "recover", "in_recovery",
                 "acked_ca", "recovered", "recover_valid")

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

    def set_mss(self, mss):
        if mss != self.mss:
            self.mss = mss
            self.cwnd = initial_window(mss)

    def window(self):
        return self.cwnd

    def on_ack(self, acked, ack, flight):
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
            # partial ACK: deflate by the amount acked, add back one MSS, retransmit
            self.cwnd -= acked
            if self.cwnd < mss:
                self.cwnd = mss
            self.cwnd += mss
            return True
        if self.cwnd < self.ssthresh:
            # slow start (RFC 5681 3.1, eq. 2)
            self.cwnd += acked if acked < mss else mss
        else:
            # congestion avoidance: about one MSS per RTT (RFC 5681 3.1, byte counting)
            self.acked_ca += acked
            if self.acked_ca >= self.cwnd:
                self.acked_ca -= self.cwnd
                self.cwnd += mss
        return False

    def on_dup_ack(self, ack, flight, snd_max):
        mss = self.mss
        self.dupacks += 1
        if self.in_recovery:
            self.cwnd += mss  # inflate: another segment left the network
            return False
        if self.dupacks == 3:
            # RFC 6582 3.2 step 2: only when this ACK covers the last recovery point
            if self.recover_valid and not seq_gt(ack, self.recover):
                return False
            half = flight >> 1
            self.ssthresh = half if half > 2 * mss else 2 * mss
            self.recover = snd_max
            self.recover_valid = True
            self.cwnd = self.ssthresh + 3 * mss
            self.in_recovery = True
            return True
        return False

    def on_loss(self, flight, snd_max):
        """SACK loss recovery (RFC 6675 5 (4.2)) found a loss: ssthresh = FlightSize / 2
        (RFC 5681 eq. 4), in recovery until snd_max is acknowledged - the recovery paces
        the sending (PRR) meanwhile. Returns ssthresh."""
        mss = self.mss
        half = flight >> 1
        self.ssthresh = half if half > 2 * mss else 2 * mss
        self.cwnd = self.ssthresh
        self.recover = snd_max
        self.recover_valid = True
        self.in_recovery = True
        self.dupacks = 0
        return self.ssthresh

    def on_rto(self, flight, snd_max):
        mss = self.mss
        half = flight >> 1
        self.ssthresh = half if half > 2 * mss else 2 * mss
        self.cwnd = mss  # loss window (RFC 5681 3.1)
        self.in_recovery = False
        self.dupacks = 0
        self.acked_ca = 0
        self.recover = snd_max  # RFC 6582 3.2 step 4
        self.recover_valid = True
