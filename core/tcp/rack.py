"""RACK, time-based loss detection (RFC 8985 6), in fixed memory.

RACK deems a segment lost when a segment sent after it was delivered and more than one RTT
plus a reordering window has passed since it was sent; the timestamps, not a count of
duplicate ACKs, decide. So a segment held back a few ms by reordering is not retransmitted
while the window lasts, and a lost retransmission is found without a timeout.

Transmit times without per-segment objects: new data leaves in sequence order, so its send
time never decreases with its sequence number. A run log holds that function as at most
TCP_RACK_SLOTS runs (seq[i], ts[i]): the bytes from seq[i] up to seq[i + 1] (the last run:
up to SND.MAX) were first sent at ts[i] ms. Every segment sent in one clock tick joins the
tick's run; a run starts only when the clock has moved. A full log merges the two runs
closest in time into one with the earlier time: a segment then looks sent earlier than it
was, so an RTT measured on it looks longer and every deadline (send time + RACK.rtt +
reo_wnd) comes no sooner than with exact times - coarsening delays a loss verdict, never
makes a false one; inside one run the sequence order is the send order. Runs below
SND.UNA go.
Memory per connection (with its scoreboard, made when SACK data is first sent): two lists of
TCP_RACK_SLOTS small ints and the scalars below - measured on the 64-bit unix port, Rack(16)
is 736 bytes (4 slots 546, 32 slots 992: 16 bytes a slot, 8 on a 32-bit MCU, where the whole
object is about half).

Retransmitted bytes are everything below rxt_hi (the end of the highest byte resent in
sequence: fast retransmit, RFC 6675 NextSeg holes, go-back-N - not a rescue's or a probe's
single segment at the tail): their send time is not the log's, so RACK takes no RTT from
them (ambiguous, RFC 8985 6.2 step 1) and no reordering either (step 3); the
one retransmission that blocks everything (the segment at SND.UNA) is timed apart
(scoreboard.una_rxt_lost).

Since send times grow with sequence numbers, the lost originals are a prefix of the unSACKed
bytes: detect() returns the boundary, which the scoreboard's lost_to takes, and RFC 6675's
NextSeg then retransmits them (scoreboard.py), paced by PRR. Nothing here allocates."""
from ustack.core.compat import const
from ustack.core.tcp.seq import seq_lt, seq_le, seq_gt, seq_sub

DUP_THRESH = const(3)       # RFC 8985 6.2 step 4 (RFC 6675's DupThresh)
REO_PERSIST = const(16)     # RFC 8985 6.2 step 4: recoveries a grown window lasts
REORDERING_INIT = const(3)  # Linux's tcp_reordering: the degree before any is measured
REORDERING_MAX = const(300)  # Linux's tcp_max_reordering
NO_RTT = const(0x3FFFFFFF)
REO_WND_MIN_MS = const(1)   # one tick of the stack clock: a shorter delay reads as none
REO_WND_FLOOR_MAX_MS = const(4)  # the floor's growth by D-SACK rounds may reach at least this
CLOCK_SLACK_MS = const(2)   # a send time and RACK.rtt each read up to a tick off on our clock


class Rack:
    __slots__ = ("seq", "ts", "n", "slots", "valid", "xmit_ts", "end_seq", "rtt", "min_rtt",
                 "fack", "fack_next", "rxt_hi", "reo_seen", "reo_mult", "reo_persist",
                 "dsack_round", "dsack_valid", "t_reo", "reordering", "reord_seen", "cand",
                 "cand_valid", "reo_wnd", "acked_ts", "rxt_lo2", "rxt_hi2")

    def __init__(self, slots):
        self.seq = [0] * slots   # the run log: first sent at ts[i] from seq[i] on
        self.ts = [0] * slots
        self.slots = slots
        self.fresh()

    def fresh(self):
        """As made, the log empty (its slots stay): a spare scoreboard's (Scoreboard.fresh)."""
        self.n = 0
        self.valid = False       # RACK.xmit_ts/end_seq/rtt hold a delivered segment's
        self.xmit_ts = 0         # RFC 8985 6.1 RACK.xmit_ts: the latest sent, delivered
        self.end_seq = 0         # RACK.end_seq: its end
        self.rtt = 0             # RACK.rtt: its RTT (ms)
        self.min_rtt = NO_RTT    # RACK.min_RTT (ms), over the connection's samples
        self.fack = 0            # RACK.fack: the highest delivered end
        self.fack_next = 0       # and with this ACK's deliveries (update() moves it on)
        self.rxt_hi = 0          # bytes below were (maybe) retransmitted
        self.rxt_lo2 = 0         # and [rxt_lo2, rxt_hi2): the last probe's or rescue's
        self.rxt_hi2 = 0
        self.reo_seen = False    # RACK.reordering_seen
        self.reo_mult = 1        # RACK.reo_wnd_mult
        self.reo_persist = 0     # RACK.reo_wnd_persist
        self.dsack_round = 0     # RACK.dsack_round (valid when dsack_valid)
        self.dsack_valid = False
        self.t_reo = 0           # the reordering timer (RFC 8985 6.3), 0 = off
        self.reordering = REORDERING_INIT  # the degree seen, in segments (ss -ti)
        self.reord_seen = 0      # reordering events (ss -ti reord_seen)
        self.cand = 0            # this ACK's most recently sent original delivered (its end)
        self.cand_valid = False
        self.reo_wnd = 0         # the window of the last detect() (ms, ss -ti)
        self.acked_ts = 0        # the log's time of the lowest byte the last ACK covered

    # ---- the run log ----------------------------------------------------------------------
    def sent(self, seq, now):
        """New data from seq (SND.MAX) on leaves at now."""
        n = self.n
        if n and self.ts[n - 1] == now:
            return  # the tick's run reaches SND.MAX already
        if n >= self.slots:
            n = self._merge()
        self.seq[n] = seq
        self.ts[n] = now
        self.n = n + 1

    def _merge(self):
        """Full: the two runs closest in time become one, with the earlier time."""
        sq = self.seq
        ts = self.ts
        n = self.n
        k = 1
        best = ts[1] - ts[0]
        i = 2
        while i < n:
            d = ts[i] - ts[i - 1]
            if d < best:
                best = d
                k = i
            i += 1
        while k + 1 < n:
            sq[k] = sq[k + 1]
            ts[k] = ts[k + 1]
            k += 1
        return n - 1

    def cut(self, una, hi):
        """SND.UNA moved to una (SND.MAX hi): runs wholly below it go. The marks below it
        follow it up, so none falls 2**31 behind (sequence comparisons would turn over)."""
        if seq_lt(self.rxt_hi, una):
            self.rxt_hi = una
        if seq_lt(self.rxt_hi2, una):
            self.rxt_lo2 = self.rxt_hi2 = una
        if seq_lt(self.fack, una):
            self.fack = una
        if seq_lt(self.fack_next, una):
            self.fack_next = una
        if self.dsack_valid and seq_le(self.dsack_round, una):
            self.dsack_valid = False  # the D-SACK round is over (6.2 step 4)
        if una == hi:
            self.n = 0
            return
        sq = self.seq
        ts = self.ts
        n = self.n
        k = 0
        while k + 1 < n and seq_le(sq[k + 1], una):
            k += 1
        if k:
            i = k
            while i < n:
                sq[i - k] = sq[i]
                ts[i - k] = ts[i]
                i += 1
            self.n = n - k

    def ts_at(self, s):
        """When the byte s was first sent (the log's time of the run holding it)."""
        sq = self.seq
        i = self.n - 1
        while i > 0 and seq_lt(s, sq[i]):
            i -= 1
        return self.ts[i] if i >= 0 else 0

    def rxt(self, e):
        """Bytes up to e were retransmitted."""
        if seq_gt(e, self.rxt_hi):
            self.rxt_hi = e

    def rxt_range(self, s, e):
        """[s, e) went again as a tail loss probe or the rescue retransmission: the last
        MSS sent, above what NextSeg resent (rxt_hi would call everything below it resent
        too, and step 5 would never find those originals lost)."""
        self.rxt_lo2 = s
        self.rxt_hi2 = e

    def reset(self):
        """A retransmission timeout: everything outstanding goes again."""
        self.t_reo = 0

    # ---- RFC 8985 6.2, steps 1-4 -----------------------------------------------------------
    def delivered(self, s, e, mss):
        """[s, e) was newly delivered (cumulatively or SACKed; e its highest new byte + 1).
        Step 3 (reordering: delivered below RACK.fack, never retransmitted) and the candidate
        for step 2 (the most recently sent original: the highest)."""
        if not seq_gt(e, self.rxt_hi) or (seq_lt(s, self.rxt_hi2) and seq_lt(self.rxt_lo2, e)):
            return  # retransmitted: ambiguous (step 1), no reordering proof (step 3)
        f = self.fack  # as before this ACK: two blocks of one ACK are not reordering
        if seq_gt(e, self.fack_next):
            self.fack_next = e
        if seq_lt(e, f):
            self.reo_seen = True
            self.reord_seen += 1
            d = (seq_sub(f, s) + mss - 1) // mss
            if d > self.reordering:
                self.reordering = d if d < REORDERING_MAX else REORDERING_MAX
        if not self.cand_valid or seq_gt(e, self.cand):
            self.cand = e
            self.cand_valid = True

    def update(self, now):
        """Step 2 with this ACK's candidate (an original, so its log time is its send
        time): RACK.xmit_ts, end_seq and rtt move to it if it was sent after theirs."""
        if seq_gt(self.fack_next, self.fack):
            self.fack = self.fack_next
        if not self.cand_valid:
            return
        self.cand_valid = False
        e = self.cand
        t = self.ts_at(e - 1)
        self.sample(t, e, now)

    def sample(self, t, e, now):
        """A delivered segment ending at e, sent at t (RFC 8985 6.2 steps 1 and 2)."""
        r = now - t
        if r < 0:
            r = 0
        if r < self.min_rtt:
            self.min_rtt = r
        if not self.valid or t > self.xmit_ts or (t == self.xmit_ts and
                                                   seq_gt(e, self.end_seq)):
            self.valid = True
            self.xmit_ts = t
            self.end_seq = e
            self.rtt = r

    def dsack(self, una, nxt):
        """Step 4: a D-SACK arrived - grow the window once per round trip (until SND.NXT of
        now is acknowledged) and keep it for REO_PERSIST recoveries."""
        if self.dsack_valid and seq_le(self.dsack_round, una):
            self.dsack_valid = False
        if not self.dsack_valid:
            self.dsack_round = nxt
            self.dsack_valid = True
            self.reo_mult += 1
            self.reo_persist = REO_PERSIST

    def recovered(self):
        """Step 4: a recovery ended without a D-SACK round growing the window again."""
        if self.reo_persist > 0:
            self.reo_persist -= 1
            if self.reo_persist == 0:
                self.reo_mult = 1

    def window(self, recovering, sacked, mss, srtt):
        """Step 4's RACK.reo_wnd (ms): none before any reordering was seen once recovery runs
        or DupThresh segments are SACKed; else reo_wnd_mult * min_RTT / 4, at most SRTT -
        and at least REO_WND_MIN_MS: on a LAN min_RTT and SRTT read 0 ms on our 1 ms clock,
        and a window of 0 would call every swapped pair of segments a loss. There the
        product stays 0 however many D-SACK rounds grew the multiplier, so the floor grows
        with it instead (one tick a round): step 4's response to premature retransmissions,
        on a clock too coarse for the RTT. Its bound is step 4's, SRTT (srtt: ms, rounded
        up), plus CLOCK_SLACK_MS: step 5 compares tick-rounded times, where up to two ticks
        of the window vanish - and at least REO_WND_FLOOR_MAX_MS. (A fixed 4 ms was too
        small for 1 ms of jitter each way at sub-ms RTT: the grown window sat at it while
        every D-SACK round asked for more - issue 12.)"""
        if not self.reo_seen and (recovering or sacked > (DUP_THRESH - 1) * mss):
            return 0
        m = self.min_rtt
        if m == NO_RTT:
            m = 0
        w = (self.reo_mult * m) >> 2
        if w > srtt:
            w = srtt
        f = REO_WND_MIN_MS * self.reo_mult
        c = srtt + CLOCK_SLACK_MS
        if c < REO_WND_FLOOR_MAX_MS:
            c = REO_WND_FLOOR_MAX_MS
        if f > c:
            f = c
        return w if w > f else f

    # ---- step 5 ------------------------------------------------------------------------------
    def detect(self, rs, una, hi, lost_to, now, reo_wnd):
        """RFC 8985 6.2 step 5 over the original transmissions: returns the new lost boundary
        (every unSACKed original below it is lost, as lost_to) and arms t_reo for the rest
        sent before RACK.xmit_ts (6.3: the reordering timer, the latest of their deadlines)."""
        self.reo_wnd = reo_wnd
        self.t_reo = 0
        if not self.valid or not rs.n:
            return lost_to
        x = self.xmit_ts
        top = self.end_seq
        b = lost_to
        if seq_lt(b, una):
            b = una
        if seq_lt(b, self.rxt_hi):
            b = self.rxt_hi  # below: retransmissions (timed apart)
        sq = self.seq
        ts = self.ts
        n = self.n
        wait = 0
        lost = False
        i = 0
        while i < n:
            t = ts[i]
            if t > x:
                break  # sent after RACK.xmit_ts
            e = sq[i + 1] if i + 1 < n else hi
            if t == x and seq_gt(e, top):
                e = top  # the same tick: only what was sent before RACK.end_seq
            if seq_gt(e, b):
                s = sq[i] if seq_gt(sq[i], b) else b
                if rs.covered(s, e) < seq_sub(e, s):  # something unSACKed in it
                    rem = t + self.rtt + reo_wnd - now
                    if rem <= 0:
                        b = e
                        lost = True
                    elif rem > wait:
                        wait = rem
            i += 1
        if wait:
            self.t_reo = now + wait
        if lost and seq_gt(b, lost_to):
            return b
        return lost_to
