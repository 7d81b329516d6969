"""CUBIC congestion control (RFC 9438) with HyStart++ slow start (RFC 9406), in integers.

Loss recovery (RFC 6582 fast recovery: duplicate ACKs, the recovery point, partial ACKs) is
NewReno's, inherited; CUBIC replaces the growth outside recovery and the reduction at a
congestion event (cc.py has the interface):

    W_cubic(t) = C*(t - K)^3 + W_max                    RFC 9438 4.2, eq. 1
    K = cubic_root((W_max - cwnd_epoch) / C)             4.2, eq. 2
    W_est += alpha_cubic * acked / cwnd                  4.3, the Reno-friendly region
    target = W_cubic(t + RTT) within [cwnd, 1.5*cwnd]    4.4, 4.5
    cwnd += (target - cwnd) / cwnd per acked segment
    congestion: ssthresh = flight * beta_cubic, W_max = cwnd (or cwnd * (1 + beta) / 2 when
    it shrank: fast convergence 4.7), cwnd = ssthresh   4.6; an RTO 4.8

Fixed point: every value stays a MicroPython small int (below 2**30 on a 32-bit board).
Windows are bytes, at most CWND_MAX; times are ms, the cubic term works in units of 2**-10 s
(S_UNITS) and saturates at CWND_MAX past S_MAX (256 s). The bound of each product is written
beside it; tests/unit/test_cc_cubic.py checks them over MSS 536..9000 and an hour of time.
Nothing is allocated per ACK: no floats, no tuples."""
from ustack.core.compat import const
from ustack.core.tcp.cc import CE_RTO, CE_ECN, CWND_MAX
from ustack.core.tcp.cc_newreno import NewReno
from ustack.core.tcp.seq import seq_ge, seq_add

S_MAX = const(0x40000)        # 2**18 units of 2**-10 s (256 s): C*(t-K)^3 > CWND_MAX beyond
T_MAX_MS = const(0x100000)    # 2**20 ms (17 min): elapsed times are clamped here (> 2*S_MAX)
RTT_INF = const(0x3FFFFFFF)   # RFC 9406's "infinity"
# RFC 9438 4.6 / 4.2 / 4.3: beta_cubic = 7/10, C = 4/10, alpha_cubic = 3(1-beta)/(1+beta) = 9/17
# RFC 9406 4.3: the recommended HyStart++ constants (ms, segments, rounds)
MIN_RTT_THRESH = const(4)
MAX_RTT_THRESH = const(16)
MIN_RTT_DIVISOR = const(8)
N_RTT_SAMPLE = const(8)
CSS_GROWTH_DIVISOR = const(4)
CSS_ROUNDS = const(5)
L = const(8)  # RFC 9406 4.2: at most L*SMSS per ACK in slow start (not paced)

HS_SS = const(0)    # slow start with HyStart++ delay-increase detection
HS_CSS = const(1)   # Conservative Slow Start
HS_OFF = const(2)   # HyStart++ done: only the initial slow start uses it (RFC 9406 4.3)


def c_scale(mss):
    """C * MSS * 1024 as (m, sh) with m < 2**12 and m << sh the value: mss * 2048 < 2**27
    for any MSS up to 65535."""
    v = (mss * 2048) // 5
    sh = 0
    while (v >> sh) >= 4096:
        sh += 1
    return v >> sh, sh


def cubic_bytes(s, m, sh):
    """C * MSS * (s / 1024)**3 bytes (s in 2**-10 s units; C*MSS*1024 = m << sh), or
    CWND_MAX when larger. s is normalised below 2**13 by n halvings (n <= 5, 13 significant
    bits kept: relative error below 2**-11 per factor)."""
    if s >= S_MAX:
        return CWND_MAX
    n = 0
    while s >= 8192:
        s >>= 1
        n += 1
    q = ((s * s) >> 9) * s       # s*s < 2**26, >> 9 < 2**17, times s < 2**30: ~s**3 / 2**9
    q = (q >> 12) * m            # < 2**18 * 2**12 = 2**30
    e = 3 * n + sh - 19          # value = q * 2**e  (2**9 * 2**12 * 2**3n * 2**sh / 2**40)
    if e >= 0:
        if q > (CWND_MAX >> e):
            return CWND_MAX
        return q << e            # <= CWND_MAX
    return q >> (-e)


def cubic_k(diff, m, sh):
    """K of RFC 9438 eq. 2 in 2**-10 s units: the largest k < S_MAX with C*k**3 <= diff
    bytes, found bit by bit (an integer cube root; 18 steps, only at a congestion event)."""
    k = 0
    b = S_MAX >> 1
    while b:
        if cubic_bytes(k + b, m, sh) <= diff:
            k += b
        b >>= 1
    return k


def ms_to_units(ms):
    """ms (0..T_MAX_MS) to 2**-10 s units: ms * 128 < 2**27."""
    return (ms * 128) // 125


def times_beta(x):
    """x * 7/10 rounded down for 0 <= x < 2**30, without x*7 (which would not fit)."""
    return (x // 10) * 7 + ((x % 10) * 7) // 10


def times_half_one_plus_beta(x):
    """x * (1 + 7/10) / 2 = x * 17/20 (fast convergence, RFC 9438 4.7), x < 2**30."""
    return (x // 20) * 17 + ((x % 20) * 17) // 20


class Cubic(NewReno):
    name = "cubic"
    __slots__ = ("stats", "cm", "csh", "w_max", "k", "t_epoch", "epoch", "cwnd_epoch",
                 "w_est", "est_acc", "est_frac", "cwnd_prior", "cub_rem", "srtt", "after_rto",
                 "last_ms", "hs", "hs_end", "hs_last", "hs_cur", "hs_n", "hs_base", "hs_rounds",
                 "u_w_max", "u_k", "u_epoch", "u_cwnd_prior")

    def __init__(self, mss, stats=None):
        NewReno.__init__(self, mss)
        self.stats = stats
        self.cm, self.csh = c_scale(mss)
        self.w_max = 0          # bytes; 0: no congestion event yet
        self.k = 0              # 2**-10 s units
        self.t_epoch = 0        # ms: the start of the congestion avoidance stage
        self.epoch = False      # a congestion avoidance stage is running
        self.cwnd_epoch = 0
        self.w_est = 0          # the Reno-friendly estimate (RFC 9438 4.3), bytes
        self.est_acc = 0        # bytes acked toward the next W_est step (< cwnd)
        self.est_frac = 0       # W_est's fraction, seventeenths of a byte
        self.cwnd_prior = 0     # cwnd when ssthresh was last set
        self.cub_rem = 0        # the cubic increase's fraction, 1024ths of a byte
        self.srtt = -1          # ms, smoothed from the caller's samples (-1: none yet)
        self.after_rto = False  # the next stage starts with K = 0 (RFC 9438 4.8)
        self.last_ms = 0        # when the last ACK came (ms)
        self.hs = HS_SS
        self.hs_end = 0         # RFC 9406 windowEnd: the round ends when this is acked
        self.hs_last = RTT_INF  # lastRoundMinRTT
        self.hs_cur = RTT_INF   # currentRoundMinRTT
        self.hs_n = 0           # rttSampleCount
        self.hs_base = RTT_INF  # cssBaselineMinRtt
        self.hs_rounds = 0      # rounds in CSS
        self.u_w_max = 0        # before the last congestion event (RFC 9438 4.9 undo)
        self.u_k = 0
        self.u_epoch = False
        self.u_cwnd_prior = 0

    def set_mss(self, mss):
        NewReno.set_mss(self, mss)
        self.cm, self.csh = c_scale(mss)

    # ---- the cubic function ---------------------------------------------------------------
    def w_cubic(self, t_ms):
        """W_cubic(t) in bytes, t in ms since the epoch (RFC 9438 eq. 1)."""
        if t_ms > T_MAX_MS:
            t_ms = T_MAX_MS
        t = ms_to_units(t_ms)
        k = self.k
        if t < k:
            return self.w_max - cubic_bytes(k - t, self.cm, self.csh)  # >= cwnd_epoch >= 0
        d = cubic_bytes(t - k, self.cm, self.csh)
        if d >= CWND_MAX - self.w_max:
            return CWND_MAX
        return self.w_max + d

    def _start_epoch(self, now):
        """A congestion avoidance stage begins (RFC 9438 4.2)."""
        cwnd = self.cwnd
        self.epoch = True
        self.t_epoch = now
        self.cwnd_epoch = cwnd
        self.w_est = cwnd
        self.est_acc = 0
        self.est_frac = 0
        self.cub_rem = 0
        if self.after_rto or self.w_max <= cwnd:
            # 4.8 after an RTO, or slow start left without a loss (HyStart++): the plateau
            # is where we are, K = 0
            self.w_max = cwnd
            self.k = 0
        else:
            self.k = cubic_k(self.w_max - cwnd, self.cm, self.csh)
        self.after_rto = False
        if self.stats is not None:
            self.stats.cubic_epochs += 1

    # ---- ACKs ----------------------------------------------------------------------------
    def on_ack(self, acked, ack, flight, now=0, rtt=-1):
        if rtt >= 0:
            if rtt > T_MAX_MS:
                rtt = T_MAX_MS
            s = self.srtt
            self.srtt = rtt if s < 0 else s + (rtt - s) // 8  # RFC 6298's 1/8 gain
        if self.in_recovery:
            return NewReno.on_ack(self, acked, ack, flight, now, rtt)
        self.dupacks = 0
        if acked > CWND_MAX:
            acked = CWND_MAX
        if flight > CWND_MAX:
            flight = CWND_MAX
        last = self.last_ms
        self.last_ms = now
        cwnd = self.cwnd
        if cwnd < self.ssthresh:
            if 2 * flight >= cwnd:  # cwnd-limited in slow start (Linux's rule, RFC 7661)
                self._slow_start(acked, ack, flight, rtt)
        elif flight + self.mss > cwnd:
            self._avoid(acked, now)
        elif self.epoch:
            # application-limited (RFC 9438 5.8): no growth, and the curve waits for us
            d = now - last
            if 0 < d < T_MAX_MS:
                self.t_epoch += d
        return False

    def _slow_start(self, acked, ack, flight, rtt):
        mss = self.mss
        hs = self.hs
        if hs == HS_OFF:
            inc = self.abc(acked)  # RFC 5681 3.1 with RFC 3465 2.3's byte counting
        else:
            inc = acked if acked < L * mss else L * mss  # RFC 9406 4.2: min(N, L*SMSS)
            if hs == HS_CSS:
                inc //= CSS_GROWTH_DIVISOR
            st = self.stats
            if seq_ge(ack, self.hs_end):
                # a new round (RFC 9406 4.2): it ends when what is in flight now is acked
                self.hs_last = self.hs_cur
                self.hs_cur = RTT_INF
                self.hs_n = 0
                self.hs_end = seq_add(ack, flight - acked)
                if hs == HS_CSS:
                    self.hs_rounds += 1
                    if self.hs_rounds >= CSS_ROUNDS:
                        # CSS_ROUNDS rounds without a loss: congestion avoidance
                        self.hs = HS_OFF
                        self.ssthresh = self.cwnd
                        if st is not None:
                            st.hystart_css_done += 1
                        return
            if rtt >= 0:
                if rtt < self.hs_cur:
                    self.hs_cur = rtt
                self.hs_n += 1
            if self.hs_n >= N_RTT_SAMPLE and self.hs_cur != RTT_INF:
                if hs == HS_SS and self.hs_last != RTT_INF:
                    th = self.hs_last // MIN_RTT_DIVISOR
                    if th > MAX_RTT_THRESH:
                        th = MAX_RTT_THRESH
                    if th < MIN_RTT_THRESH:
                        th = MIN_RTT_THRESH
                    if self.hs_cur >= self.hs_last + th:
                        # the delay grew: a queue builds, leave slow start for CSS
                        self.hs = HS_CSS
                        self.hs_base = self.hs_cur
                        self.hs_rounds = 0
                        if st is not None:
                            st.hystart_css += 1
                elif hs == HS_CSS and self.hs_cur < self.hs_base:
                    # the delay fell back: the exit was spurious, slow start again
                    self.hs = HS_SS
                    self.hs_base = RTT_INF
                    if st is not None:
                        st.hystart_css_spurious += 1
        w = self.cwnd + inc
        self.cwnd = w if w < CWND_MAX else CWND_MAX

    def _avoid(self, acked, now):
        if not self.epoch:
            self._start_epoch(now)
        cwnd = self.cwnd
        mss = self.mss
        # the Reno-friendly estimate (RFC 9438 4.3): alpha_cubic segments per cwnd acked,
        # 1 once it reached the window of the last reduction
        a = self.est_acc + acked  # < cwnd + CWND_MAX < 2**30
        if a >= cwnd:
            n = a // cwnd
            a -= n * cwnd
            t = n * mss            # <= a < 2**30 (cwnd >= mss)
            w = self.w_est
            if w >= self.cwnd_prior:
                w += t
            else:
                f = self.est_frac + (t % 17) * 9  # < 17 + 144
                w += (t // 17) * 9 + f // 17
                self.est_frac = f % 17
            self.w_est = w if w < CWND_MAX else CWND_MAX
        self.est_acc = a
        t_ms = now - self.t_epoch
        if t_ms < 0:
            t_ms = 0
        if self.w_cubic(t_ms) < self.w_est:
            if self.w_est > cwnd:
                self.cwnd = self.w_est  # the Reno-friendly region
            return
        # concave / convex region (4.4, 4.5): toward W_cubic one RTT ahead
        srtt = self.srtt
        target = self.w_cubic(t_ms + (srtt if srtt > 0 else 0))
        top = cwnd + (cwnd >> 1)   # 1.5 * cwnd <= 1.5 * CWND_MAX < 2**30
        if target > top:
            target = top
        if target <= cwnd:
            return
        d = target - cwnd          # <= cwnd / 2 < 2**28
        if d < 0x100000:
            r = (d << 10) // cwnd  # d << 10 < 2**30; r <= 512
        else:
            r = d // (cwnd >> 10)  # cwnd >= 2**21 here: 11 significant bits at least
        inc = (acked >> 10) * r    # < 2**19 * 2**10
        f = self.cub_rem + (acked & 1023) * r  # < 2**10 + 2**20
        inc += f >> 10
        self.cub_rem = f & 1023
        w = cwnd + inc
        self.cwnd = w if w < target else target

    # ---- congestion ----------------------------------------------------------------------
    def _save(self):
        NewReno._save(self)  # cwnd, ssthresh, the event count
        self.u_w_max = self.w_max
        self.u_k = self.k
        self.u_epoch = self.epoch
        self.u_cwnd_prior = self.cwnd_prior

    def _reduce(self, cwnd, flight, floor):
        """Multiplicative decrease (RFC 9438 4.6) from the window `cwnd` had at the event,
        with fast convergence (4.7); cwnd no lower than `floor` bytes."""
        self.epoch = False
        self.hs = HS_OFF  # a loss or ECN ends HyStart++ (RFC 9406 4.2)
        if cwnd < self.w_max:
            self.w_max = times_half_one_plus_beta(cwnd)
        else:
            self.w_max = cwnd
        self.cwnd_prior = cwnd
        if flight > CWND_MAX:
            flight = CWND_MAX
        ss = times_beta(flight)
        two = 2 * self.mss
        self.cwnd = ss if ss > floor else floor
        self.ssthresh = ss if ss > two else two
        self.acked_ca = 0

    def on_dup_ack(self, ack, flight, snd_max, now=0):
        cwnd = self.cwnd
        ssthresh = self.ssthresh
        if not NewReno.on_dup_ack(self, ack, flight, snd_max, now):
            return False
        # NewReno entered fast recovery (RFC 6582); CUBIC's reduction instead of its halving
        self.cwnd = cwnd
        self.ssthresh = ssthresh
        self._save()
        self._reduce(cwnd, self.lt_flight(flight, snd_max), 2 * self.mss)
        self.cwnd = self.ssthresh + 3 * self.mss  # RFC 5681 3.2 step 4
        return True

    def on_rto(self, flight, snd_max, now=0):
        cwnd = self.cwnd
        self._save()
        NewReno.on_rto(self, flight, snd_max, now)
        self._reduce(cwnd, flight, self.mss)
        self.cwnd = self.mss  # the loss window (RFC 5681 3.1, RFC 9438 4.8)
        self.after_rto = True

    def on_congestion(self, kind, flight, snd_max, now):
        if kind == CE_RTO:
            self.on_rto(flight, snd_max, now)
            return
        self._save()
        # RFC 9438 4.6: cwnd >= 2 segments after a loss, >= 1 after an ECN-Echo
        self._reduce(self.cwnd, flight, self.mss if kind == CE_ECN else 2 * self.mss)
        self.recover = snd_max  # one reduction per window (RFC 6582 3.2 step 2)
        self.recover_valid = True

    def undo(self):
        """The last congestion event was spurious (RFC 9438 4.9, detected by the caller with
        RFC 3522 / RFC 3708): back to the state before it."""
        NewReno.undo(self)
        self.w_max = self.u_w_max
        self.k = self.u_k
        self.epoch = self.u_epoch
        self.cwnd_prior = self.u_cwnd_prior
        self.after_rto = False
