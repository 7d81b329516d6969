"""TCP options: parse a received segment's options into the TCP object's scratch fields
(no objects per segment), and write ours.

Parsed: MSS (RFC 9293 3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and
SACK blocks (RFC 2018; where they are: opt_sack_off, opt_sack_blocks - input.py checks
each and feeds the scoreboard, scoreboard.py). Malformed options end parsing.

Option bombs (issue 8): the walk is bounded by the 40 option bytes (every step advances at
least one byte); a length under 2 or past the header ends it (RFC 9293 3.1 MUST-7: never
crash, the segment is still processed, counted rx_bad_opts by the caller); a known option
with the wrong length is ignored and counted in rx_bad_opts; a repeated option is ignored
(the first one counts: no RFC allows repeats) and counted in rx_dup_opts.

32-bit values never pass through here as ints (they would be heap objects on a 32-bit MCU):
parse records where the timestamp values are (opt_ts_off: TSval there, TSecr 4 bytes on)
and proto.py converts them relative to the connection's bases; the writers leave the
timestamp fields for output.py to fill (seq.put_rel), and SACK blocks go out through
put_rel from the relative ranges of the out-of-order table."""
from ustack.core.wire import tcp as w
from ustack.core.tcp.seq import put_rel

# what a parse found (bits of TCP.opt_seen)
SEEN_MSS = 1
SEEN_WS = 2
SEEN_SACK_PERM = 4
SEEN_TS = 8
SEEN_SACK = 16

SYN_TS_OFF = 8  # write_syn with timestamps: TSval at o + 8, TSecr at o + 12


def parse(t, b, o, n):
    """Options at b[o:o+n] -> t.opt_seen, opt_mss, opt_ws, opt_ts_off (where TSval is),
    opt_sack_blocks, opt_sack_off. Returns False if malformed (the rest is ignored, as
    RFC 9293 3.1 lets a receiver do - the segment is still processed)."""
    seen = 0
    t.opt_sack_blocks = 0
    end = o + n
    while o < end:
        k = b[o]
        if k == w.OPT_EOL:
            break
        if k == w.OPT_NOP:
            o += 1
            continue
        if o + 1 >= end:
            t.opt_seen = seen
            return False
        ln = b[o + 1]
        if ln < 2 or o + ln > end:
            t.opt_seen = seen
            return False
        bit = 0
        if k == w.OPT_MSS:
            bit = SEEN_MSS if ln == w.LEN_MSS else -1
        elif k == w.OPT_WS:
            bit = SEEN_WS if ln == w.LEN_WS else -1
        elif k == w.OPT_SACK_PERM:
            bit = SEEN_SACK_PERM if ln == w.LEN_SACK_PERM else -1
        elif k == w.OPT_TS:
            bit = SEEN_TS if ln == w.LEN_TS else -1
        elif k == w.OPT_SACK:
            bit = SEEN_SACK if ln >= 10 and (ln - 2) % 8 == 0 else -1
        if bit < 0:
            t.stats.rx_bad_opts += 1  # a known kind with the wrong length: ignored
        elif bit and seen & bit:
            t.stats.rx_dup_opts += 1  # a repeat: the first one counts
        elif bit:
            seen |= bit
            if bit == SEEN_MSS:
                t.opt_mss = (b[o + 2] << 8) | b[o + 3]
            elif bit == SEEN_WS:
                t.opt_ws = b[o + 2]
            elif bit == SEEN_TS:
                t.opt_ts_off = o + 2
            elif bit == SEEN_SACK:
                t.opt_sack_blocks = (ln - 2) >> 3
                t.opt_sack_off = o + 2
        o += ln
    t.opt_seen = seen
    return True


def write_syn(b, o, mss, ws, sack, ts):
    """SYN / SYN-ACK options in Linux's order; ws < 0 = no window scale option. With ts
    the caller fills TSval and TSecr at o + SYN_TS_OFF. Returns the length (a multiple
    of 4)."""
    p = o
    b[p] = w.OPT_MSS
    b[p + 1] = w.LEN_MSS
    b[p + 2] = mss >> 8
    b[p + 3] = mss & 0xFF
    p += 4
    if ts:
        if sack:
            b[p] = w.OPT_SACK_PERM
            b[p + 1] = w.LEN_SACK_PERM
        else:
            b[p] = w.OPT_NOP
            b[p + 1] = w.OPT_NOP
        b[p + 2] = w.OPT_TS
        b[p + 3] = w.LEN_TS
        p += 12
    elif sack:
        b[p] = w.OPT_NOP
        b[p + 1] = w.OPT_NOP
        b[p + 2] = w.OPT_SACK_PERM
        b[p + 3] = w.LEN_SACK_PERM
        p += 4
    if ws >= 0:
        b[p] = w.OPT_NOP
        b[p + 1] = w.OPT_WS
        b[p + 2] = w.LEN_WS
        b[p + 3] = ws
        p += 4
    return p - o


def write_ts(b, o, tsval, vhi, vlo, tsecr, ehi, elo):
    """NOP NOP TS: 12 bytes (RFC 7323 appendix A layout). TSval = vhi:vlo + tsval and
    TSecr = ehi:elo + tsecr (bases in 16-bit halves, modulo 2**32: seq.put_rel inlined)."""
    b[o] = w.OPT_NOP
    b[o + 1] = w.OPT_NOP
    b[o + 2] = w.OPT_TS
    b[o + 3] = w.LEN_TS
    lo = vlo + (tsval & 0xFFFF)
    hi = vhi + (tsval >> 16) + (lo >> 16)
    b[o + 4] = (hi >> 8) & 0xFF
    b[o + 5] = hi & 0xFF
    b[o + 6] = (lo >> 8) & 0xFF
    b[o + 7] = lo & 0xFF
    lo = elo + (tsecr & 0xFFFF)
    hi = ehi + (tsecr >> 16) + (lo >> 16)
    b[o + 8] = (hi >> 8) & 0xFF
    b[o + 9] = hi & 0xFF
    b[o + 10] = (lo >> 8) & 0xFF
    b[o + 11] = lo & 0xFF
    return 12


def write_sack(b, o, ooo, maxblocks, bhi, blo, dsack, ds, de):
    """NOP NOP SACK with up to maxblocks ranges from the out-of-order table (relative to
    the peer's ISN bhi:blo; ooo may be None), most recent first (RFC 2018 4). With dsack,
    the first block is the duplicate ds..de (RFC 2883 4), and the block holding the most
    recent segment, which then contains a duplicate above RCV.NXT, comes second (4.1.2).
    Returns the length, 0 when there is nothing to report."""
    n = ooo.n if ooo is not None else 0
    if dsack:
        n += 1
    if n == 0 or maxblocks <= 0:
        return 0
    if n > maxblocks:
        n = maxblocks
    b[o] = w.OPT_NOP
    b[o + 1] = w.OPT_NOP
    b[o + 2] = w.OPT_SACK
    b[o + 3] = 2 + 8 * n
    p = o + 4
    k = 0
    if dsack:
        put_rel(b, p, ds, bhi, blo)
        put_rel(b, p + 4, de, bhi, blo)
        p += 8
        k = 1
    if k >= n:
        return p - o
    first = ooo.latest
    if first < 0:
        first = 0
    put_rel(b, p, ooo.start[first], bhi, blo)
    put_rel(b, p + 4, ooo.end[first], bhi, blo)
    p += 8
    k += 1
    i = 0
    while k < n and i < ooo.n:
        if i != first:
            put_rel(b, p, ooo.start[i], bhi, blo)
            put_rel(b, p + 4, ooo.end[i], bhi, blo)
            p += 8
            k += 1
        i += 1
    return p - o
