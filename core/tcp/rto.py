"""Retransmission timeout (RFC 6298), kept in the TCB as scaled integers (BSD style):
srtt8 = SRTT * 8, rttvar4 = RTTVAR * 4, all in milliseconds.

    first sample R:  SRTT = R, RTTVAR = R/2
    later samples:   RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|;  SRTT = 7/8 SRTT + 1/8 R
    RTO = SRTT + max(G, 4 * RTTVAR), clamped to [TCP_RTO_MIN_MS, TCP_RTO_MAX_MS]

Karn's algorithm (RFC 6298 3): no samples from retransmitted segments - the caller clears
the timed segment on retransmission (timestamps, RFC 7323 4, are unambiguous). Backoff
(5.5) doubles the RTO per expiry; a new sample after backoff recomputes it (5.7)."""
from ustack.core.compat import const

G = const(1)  # clock granularity: 1 ms
RTO_FALLBACK_MS = const(3000)  # RFC 6298 5.7: the RTO once data flows after a lost SYN


def sample(tcb, r, rto_min, rto_max):
    if r < 1:
        r = 1
    if tcb.srtt8 == 0:
        tcb.srtt8 = r << 3
        tcb.rttvar4 = r << 1
    else:
        delta = r - (tcb.srtt8 >> 3)
        tcb.srtt8 += delta  # srtt += delta/8, in units of 1/8
        if tcb.srtt8 < 1:
            tcb.srtt8 = 1
        if delta < 0:
            delta = -delta
        tcb.rttvar4 += delta - (tcb.rttvar4 >> 2)  # rttvar += (|delta| - rttvar)/4
        if tcb.rttvar4 < 1:
            tcb.rttvar4 = 1
    tcb.rto = compute(tcb, rto_min, rto_max)
    tcb.backoff = 0


def compute(tcb, rto_min, rto_max):
    v = tcb.rttvar4
    if v < G:
        v = G
    rto = (tcb.srtt8 >> 3) + v
    if rto < rto_min:
        rto = rto_min
    if rto > rto_max:
        rto = rto_max
    return rto


def fallback(tcb, rto_max):
    """RFC 6298 5.7: our SYN (or SYN-ACK) timed out and the handshake gave no RTT sample
    (no timestamps, Karn): the initial RTO proved too short for this path, so data starts
    with 3 s (at most rto_max) until a real sample comes."""
    r = RTO_FALLBACK_MS
    if r > rto_max:
        r = rto_max
    if tcb.rto < r:
        tcb.rto = r


def current(tcb, rto_max):
    """The RTO with exponential backoff applied (RFC 6298 5.5), capped at rto_max (past 16
    doublings at once: the shift stays within 64 bits, so it is a C expression compiled)."""
    if tcb.backoff > 16:
        return rto_max
    r = tcb.rto
    r <<= tcb.backoff  # (r is 64-bit compiled: the shift too)
    if r > rto_max:
        r = rto_max
    return r
