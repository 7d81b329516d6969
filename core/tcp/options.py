"""TCP options: parse a received segment's options into the TCP object's scratch fields
(no objects per segment), and write ours.

Parsed: MSS (RFC 9293 3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and
SACK blocks (RFC 2018; blocks are counted and their bounds kept in sack_lo/sack_hi - we
tolerate them, retransmission does not use them). Malformed options end parsing."""
from ustack.core.wire import tcp as w

# what a parse found (bits of TCP.opt_seen)
SEEN_MSS = 1
SEEN_WS = 2
SEEN_SACK_PERM = 4
SEEN_TS = 8
SEEN_SACK = 16


def parse(t, b, o, n):
    """Options at b[o:o+n] -> t.opt_seen, opt_mss, opt_ws, opt_tsval, opt_tsecr,
    opt_sack_blocks. Returns False if malformed (the rest is ignored, as RFC 9293 3.1 lets
    a receiver do - the segment is still processed)."""
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
        if k == w.OPT_MSS and ln == w.LEN_MSS:
            t.opt_mss = (b[o + 2] << 8) | b[o + 3]
            seen |= SEEN_MSS
        elif k == w.OPT_WS and ln == w.LEN_WS:
            t.opt_ws = b[o + 2]
            seen |= SEEN_WS
        elif k == w.OPT_SACK_PERM and ln == w.LEN_SACK_PERM:
            seen |= SEEN_SACK_PERM
        elif k == w.OPT_TS and ln == w.LEN_TS:
            t.opt_tsval = (b[o + 2] << 24) | (b[o + 3] << 16) | (b[o + 4] << 8) | b[o + 5]
            t.opt_tsecr = (b[o + 6] << 24) | (b[o + 7] << 16) | (b[o + 8] << 8) | b[o + 9]
            seen |= SEEN_TS
        elif k == w.OPT_SACK and ln >= 10 and (ln - 2) % 8 == 0:
            t.opt_sack_blocks = (ln - 2) >> 3
            t.opt_sack_off = o + 2
            seen |= SEEN_SACK
        o += ln
    t.opt_seen = seen
    return True


def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def write_syn(b, o, mss, ws, sack, ts, tsval, tsecr):
    """SYN / SYN-ACK options in Linux's order; ws < 0 = no window scale option.
    Returns the length (a multiple of 4)."""
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
        put32(b, p + 4, tsval)
        put32(b, p + 8, tsecr)
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


def write_ts(b, o, tsval, tsecr):
    """NOP NOP TS: 12 bytes (RFC 7323 appendix A layout)."""
    b[o] = w.OPT_NOP
    b[o + 1] = w.OPT_NOP
    b[o + 2] = w.OPT_TS
    b[o + 3] = w.LEN_TS
    put32(b, o + 4, tsval)
    put32(b, o + 8, tsecr)
    return 12


def write_sack(b, o, ooo, maxblocks):
    """NOP NOP SACK with up to maxblocks ranges from the out-of-order table, most recent
    first (RFC 2018 4). Returns the length, 0 when there is nothing to report."""
    n = ooo.n
    if n == 0 or maxblocks <= 0:
        return 0
    if n > maxblocks:
        n = maxblocks
    b[o] = w.OPT_NOP
    b[o + 1] = w.OPT_NOP
    b[o + 2] = w.OPT_SACK
    b[o + 3] = 2 + 8 * n
    p = o + 4
    first = ooo.latest
    if first < 0:
        first = 0
    put32(b, p, ooo.start[first])
    put32(b, p + 4, ooo.end[first])
    p += 8
    k = 1
    i = 0
    while k < n and i < ooo.n:
        if i != first:
            put32(b, p, ooo.start[i])
            put32(b, p + 4, ooo.end[i])
            p += 8
            k += 1
        i += 1
    return p - o
