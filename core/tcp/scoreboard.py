"""The sender's side of SACK: a fixed-slot scoreboard of what the peer holds above SND.UNA
(RFC 2018, fed by validated blocks, input.py), SACK-based loss recovery (RFC 6675: IsLost,
pipe, NextSeg with rescue retransmission) paced by Proportional Rate Reduction (RFC 6937,
PRR-SSRB), and the tail loss probe of RACK-TLP (RFC 8985 7).

The ranges live in a RangeSet (ooo.py, the same structure as the out-of-order receive table),
TCP_SACK_SLOTS slots per connection; a block needing a slot when all are taken is forgotten
(rx_sack_no_slot) - recovery then works from less information, never from wrong information.

Bytes, not segments. IsLost(S) (RFC 6675 4) holds when DupThresh discontiguous SACKed ranges
lie above S or more than (DupThresh - 1) * SMSS bytes above S are SACKed. Both only grow as S
goes down, so the lost bytes are exactly the unSACKed ones below one boundary (lost_end): the
start of the highest range at which, counting ranges from the top, the rule first holds. Pipe
and NextSeg follow from it in one pass over at most TCP_SACK_SLOTS ranges.

Recovery stays apart from congestion control: entering it, the controller is told of the
congestion event (cc.on_loss returns ssthresh); during it PRR decides how many bytes each ACK
lets out (budget, spent by output.py); the ACK that covers RecoveryPoint ends it and goes to
the controller as a full ACK. Nothing here allocates: results are left in attributes."""
from ustack.core.compat import const
from ustack.core.tcp.ooo import RangeSet
from ustack.core.tcp.rack import Rack
from ustack.core.tcp.seq import seq_lt, seq_le, seq_gt, seq_sub, seq_add

DUP_THRESH = const(3)   # RFC 6675 2: DupThresh
SMALL = const(0x3FFFFFFF)

# what NextSeg found (RFC 6675 4, its rules)
NONE = const(0)
LOST = const(1)         # rule 1: the first lost hole above HighRxt
NEW = const(2)          # rule 2: new data (the caller decides whether it may go)
HOLE = const(3)         # rule 3: a hole below the highest SACK, not yet deemed lost
RESCUE = const(4)       # rule 4: the rescue retransmission of the highest unSACKed data


def mul_div_ceil(a, b, c):
    """ceil(a * b / c) for a, b >= 0, c > 0, with the product kept below 2**30 (a small int
    on a 32-bit MCU: b and c are halved together, a ratio's precision is all it costs)."""
    if a == 0 or b == 0:
        return 0
    lim = SMALL // a
    while b > lim and c > 1:
        b >>= 1
        c >>= 1
    return (a * b + c - 1) // c


class Scoreboard:
    __slots__ = ("rs", "sacked", "dupacks", "in_recovery", "point", "point_valid",
                 "high_rxt", "rescue", "rescue_valid", "first", "ssthresh", "recover_fs",
                 "prr_delivered", "prr_out", "budget", "seg", "seg_len",
                 "tlp_high", "tlp_out", "lost_to", "una_rxt_at", "una_rxt_hi",
                 "una_rxt_end", "una_rxt_est", "tlp_lo", "tlp_rxt", "rack", "freed")

    def __init__(self, slots, rack_slots=0):
        self.rs = RangeSet(slots)
        # RFC 8985 RACK (rack.py) decides what is lost, in place of DupThresh; None: RFC 6675
        self.rack = Rack(rack_slots) if rack_slots else None
        self.freed = -1          # the stack's clock when it became a spare (proto.scoreboard)
        self.fresh()

    def fresh(self):
        """As made: a spare scoreboard taken for a new connection (proto.scoreboard)."""
        self.rs.clear()
        if self.rack is not None:
            self.rack.fresh()
        self.sacked = 0          # bytes the ranges cover (all above SND.UNA)
        self.dupacks = 0         # RFC 6675 DupAcks
        self.in_recovery = False
        self.point = 0           # RecoveryPoint (HighData at entry)
        self.point_valid = False
        self.high_rxt = 0        # HighRxt, as the end of the highest retransmitted byte + 1
        self.rescue = 0          # RescueRxt
        self.rescue_valid = False
        self.first = False       # entering: the first segment at SND.UNA goes first (4.3)
        self.ssthresh = 0
        self.recover_fs = 0      # RFC 6937 RecoverFS
        self.prr_delivered = 0
        self.prr_out = 0
        self.budget = 0          # bytes this ACK lets out (PRR sndcnt)
        self.seg = 0             # NextSeg's answer: where and how long
        self.seg_len = 0
        self.tlp_high = 0        # RFC 8985 7.3 TLPHighRxt (the probe's end)
        self.tlp_out = False     # a probe is out, unanswered: no second one for this tail
        self.tlp_lo = 0          # where the probe started
        self.tlp_rxt = False     # the probe was a retransmission (not new data)
        self.lost_to = 0         # RFC 8985 6.2 after a probe: unSACKed below it is lost
        self.una_rxt_at = 0      # when the segment at SND.UNA was last retransmitted
        self.una_rxt_hi = 0      # and SND.MAX then: SACKs beyond it came from later sends
        self.una_rxt_end = 0     # the end of that retransmission
        self.una_rxt_est = False  # una_rxt_at is a bound (una_moved), not the send time

    def reset(self):
        """After a retransmission timeout the SACKed bits are turned off (RFC 2018 8: the
        receiver may have reneged) and recovery ends."""
        self.rs.clear()
        self.sacked = 0
        self.dupacks = 0
        self.in_recovery = False
        self.first = False
        self.budget = 0
        self.tlp_out = False
        self.lost_to = 0
        if self.rack is not None:
            self.rack.reset()

    # ---- the scoreboard (RFC 6675 Update) ---------------------------------------------------
    def cut(self, una):
        """SND.UNA moved: forget what it covers."""
        rs = self.rs
        if rs.n:
            rs.cut(una)
            self.sacked = rs.total()
        if seq_lt(self.lost_to, una):
            self.lost_to = una

    def add(self, s, e):
        """A validated SACK block [s, e); False when it needed a slot and none was free."""
        ok = self.rs.add(s, e)
        self.sacked = self.rs.total()
        return ok

    def lost_end(self, una, mss):
        """The boundary below which every unSACKed byte IsLost (RFC 6675 4); una if none.
        RACK's verdicts (and the probe's) are lost_to (RFC 8985 6.2); once RACK has seen
        reordering only they count - DupThresh would retransmit what is merely late (as
        Linux, where the measured reordering degree replaces DupThresh)."""
        if self.rack is not None and self.rack.reo_seen:
            return self.lost_to if seq_gt(self.lost_to, una) else una
        rs = self.rs
        st = rs.start
        en = rs.end
        i = rs.n - 1
        acc = 0
        cnt = 0
        lim = (DUP_THRESH - 1) * mss
        e = una
        while i >= 0:
            acc += seq_sub(en[i], st[i])
            cnt += 1
            if cnt >= DUP_THRESH or acc > lim:
                e = st[i]
                break
            i -= 1
        if seq_gt(self.lost_to, e):
            e = self.lost_to
        return e

    def is_lost(self, seq, una, mss):
        return seq_lt(seq, self.lost_end(una, mss)) and self.rs.covered(seq, seq_add(seq, 1)) == 0

    def pipe(self, una, hi, mss):
        """RFC 6675 4 SetPipe, in bytes: the unSACKed bytes in [SND.UNA, HighData) not deemed
        lost, plus those retransmitted (below HighRxt) and still not SACKed."""
        rs = self.rs
        p = seq_sub(hi, una) - self.sacked
        le = self.lost_end(una, mss)
        if seq_gt(le, una):
            p -= seq_sub(le, una) - rs.covered(una, le)
        h = self.high_rxt
        if seq_gt(h, una):
            if seq_gt(h, hi):
                h = hi
            p += seq_sub(h, una) - rs.covered(una, h)
        return p

    def next_seg(self, una, hi, mss, new_ok):
        """RFC 6675 4 NextSeg: what to send next (kind), where (seg) and how much (seg_len,
        at most mss and never into SACKed bytes); new_ok: rule 2's new data may go."""
        rs = self.rs
        n = rs.n
        st = rs.start
        en = rs.end
        s = self.high_rxt if seq_gt(self.high_rxt, una) else una
        i = 0
        while i < n and seq_le(st[i], s):
            if seq_gt(en[i], s):
                s = en[i]  # inside a SACKed range: the hole starts at its end
            i += 1
        if i < n:
            # s is unSACKed, below the highest SACKed byte (1.a, 1.b; 3.a, 3.b)
            ln = seq_sub(st[i], s)
            self.seg = s
            self.seg_len = ln if ln < mss else mss
            if seq_lt(s, self.lost_end(una, mss)):
                return LOST
            if new_ok:
                return NEW
            if self.rack is not None and self.rack.reo_seen:
                # rule 3 would resend a hole RACK holds back as maybe reordered (RFC 8985
                # 6.2: lost only once its reordering window passed; the timer, 6.3, comes
                # back for it): under reordering, most of these resends were the storm
                return NONE
            return HOLE
        if new_ok:
            return NEW
        # rule 4: once per recovery, a segment holding the highest unSACKed byte, so a lost
        # tail is repaired without a timeout. Not before the cumulative ACK reaches
        # RescueRxt (kept here as an end, one past the RFC's highest byte: reaching it is
        # the RFC's HighACK > RescueRxt once the first retransmission is acknowledged)
        if self.rescue_valid and seq_lt(una, self.rescue):
            return NONE
        top = hi
        below = una
        if n and en[n - 1] == hi:
            top = st[n - 1]
            if n > 1:
                below = en[n - 2]
        elif n:
            below = en[n - 1]
        if not seq_gt(top, una):
            return NONE
        lo = top - mss if seq_sub(top, below) > mss else below
        if seq_lt(lo, una):
            lo = una
        self.seg = lo
        self.seg_len = seq_sub(top, lo)
        return RESCUE

    # ---- recovery (RFC 6675 5) and PRR (RFC 6937 3) ------------------------------------------
    def may_enter(self, ack):
        """Not already recovering, and no earlier loss event or the ACK is beyond its
        RecoveryPoint (RFC 6675 5 step 4: one reduction per window of data). point is
        SND.MAX, one past the RFC's HighData: covering HighData is reaching point."""
        return not self.in_recovery and (not self.point_valid or seq_le(self.point, ack))

    def enter(self, una, hi, ssthresh):
        """RFC 6675 5 (4.1)-(4.3) with RFC 6937's initialisation: RecoveryPoint = HighData,
        the first segment is retransmitted first, PRR counts from zero."""
        self.in_recovery = True
        self.point = hi
        self.point_valid = True
        self.high_rxt = una
        self.una_rxt_end = una
        self.una_rxt_est = False
        self.rescue = una
        self.rescue_valid = False
        self.first = True
        self.ssthresh = ssthresh
        self.recover_fs = seq_sub(hi, una)
        self.prr_delivered = 0
        self.prr_out = 0
        self.budget = 0

    def una_moved(self, una, hi, now, mss):
        """SND.UNA passed the timed retransmission and stops in bytes recovery already
        retransmitted (below HighRxt: a later hole, resent before this ACK). Its resend time
        is unknown but not after now, nor SND.MAX then above hi: timing it from (now, hi)
        lets una_rxt_lost find it lost too - later than exactly, never falsely (RFC 8985
        6.2). Without it a lost retransmission of a later hole waited for the RTO."""
        if not self.in_recovery or self.first or seq_lt(una, self.una_rxt_end) or \
                not seq_lt(una, self.high_rxt):
            return
        e = seq_add(una, mss)
        self.una_rxt_end = e if seq_lt(e, self.high_rxt) else self.high_rxt
        self.una_rxt_at = now
        self.una_rxt_hi = hi
        self.una_rxt_est = True  # no RTT sample from it (rack.py step 1)

    def una_rxt_lost(self, una, now, srtt, reo_wnd, delivered):
        """RACK's rule (RFC 8985 6.2) for the one retransmission that blocks everything: the
        segment at SND.UNA, retransmitted at una_rxt_at, is lost when a segment sent after
        it was delivered and the reordering window has passed: new data beyond una_rxt_hi
        SACKed, or any bytes newly SACKed more than SRTT + reo_wnd after it (they left an
        RTT ago: after it). Then it goes again (the caller's output sends it first)."""
        rs = self.rs
        if not self.in_recovery or self.first or not rs.n or not seq_lt(una, self.una_rxt_end):
            return False
        age = now - self.una_rxt_at
        if age < reo_wnd:
            return False
        if seq_gt(rs.end[rs.n - 1], self.una_rxt_hi) or (delivered > 0 and age > srtt + reo_wnd):
            self.first = True
            self.una_rxt_est = False  # output.py times the resend exactly
            return True
        return False

    def tlp_answered(self, ack, dsack):
        """RFC 8985 7.4 on an ACK while a probe is out. The probe's SACK or ACK proves that
        everything unSACKed sent before it is lost (RACK, 6.2: all of it went out a PTO
        earlier, more than an RTT plus the reordering window). Returns True when the
        episode ended with the probe having repaired a loss (7.4.2: a congestion event),
        i.e. it was a retransmission, it is now acknowledged and no D-SACK says it was a
        duplicate."""
        rs = self.rs
        if rs.n and seq_le(self.tlp_high, rs.end[rs.n - 1]) and seq_gt(self.tlp_lo, self.lost_to):
            self.lost_to = self.tlp_lo
        if seq_lt(ack, self.tlp_high):
            return False
        self.tlp_out = False
        return self.tlp_rxt and not dsack

    def leave(self):
        self.in_recovery = False
        self.first = False
        self.budget = 0

    def prr(self, delivered, pipe, mss):
        """RFC 6937 3, on every ACK in recovery: sndcnt, the bytes this ACK lets out - in
        proportion to what was delivered while pipe is above ssthresh, then slow start
        back up to ssthresh bounded by what was delivered (PRR-SSRB). The fast retransmit
        goes out regardless (prr_out 0: as Linux's tcp_cwnd_reduction)."""
        self.prr_delivered += delivered
        ss = self.ssthresh
        if pipe > ss:
            snd = mul_div_ceil(self.prr_delivered, ss, self.recover_fs or 1) - self.prr_out
        else:
            lim = self.prr_delivered - self.prr_out
            if delivered > lim:
                lim = delivered
            lim += mss
            snd = ss - pipe
            if snd > lim:
                snd = lim
        if snd < 0:
            snd = 0
        if self.prr_out == 0 and snd < mss:
            snd = mss
        self.budget = snd
        return snd

    def sent(self, n):
        """n bytes left during recovery (RFC 6937: prr_out += data sent)."""
        self.prr_out += n
        b = self.budget - n
        self.budget = b if b > 0 else 0
