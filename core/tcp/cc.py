"""Congestion control interface. A controller is one small object per connection. Loss
recovery decides WHAT is lost and what to retransmit; the controller only sets cwnd and
ssthresh from what the caller tells it:

    on_ack(acked, ack, flight, now, rtt) -> bool
                          new data acknowledged: `acked` bytes, `ack` the new SND.UNA,
                          `flight` the bytes outstanding before this ACK, `now` the stack
                          clock (ms), `rtt` this ACK's RTT sample in ms (-1: none). True asks
                          the caller to retransmit the first unacked segment now (a NewReno
                          partial ACK, RFC 6582 3.2 step 3)
    on_dup_ack(ack, flight, snd_max, now) -> bool
                          a duplicate ACK; True = the third: fast retransmit now
    on_rto(flight, snd_max, now)
                          the retransmission timer expired (RFC 5681 3.1 loss window)
    on_congestion(kind, flight, snd_max, now)
                          the caller found congestion itself (SACK/RACK loss recovery,
                          an ECN-Echo): CE_LOSS, CE_RTO or CE_ECN. The controller reduces
                          ssthresh and cwnd once; the caller runs the recovery
    window() -> int       the congestion window in bytes
    set_mss(mss)          the send MSS became known (after the handshake)
    syn_lost()            our SYN or SYN-ACK was retransmitted: start from one segment
                          (RFC 5681 3.1, RFC 6928 2), called once the connection is
                          established
    undo()                the last reduction was spurious (undo.py found it with RFC 3522 or
                          RFC 3708): cwnd and ssthresh as before it (never lower than now),
                          recovery over
    events                how many reductions so far (an undo applies to the one it names)
    name                  "newreno", "cubic" or "none" (TCP_CONGESTION, ss -ti)
    on_loss(flight, snd_max, now) -> ssthresh
                          SACK loss recovery (scoreboard.py) found a loss: on_congestion
                          (CE_LOSS), then in recovery until snd_max is acknowledged (on_ack's
                          full ACK ends it; PRR paces the sending meanwhile)

`make(name, mss, stats, cfg)` returns the controller a name selects (config TCP_CC, or a
socket's TCP_CONGESTION); `stats` is the TCP Counters (CC_COUNTERS are among them). A
connection gets its controller from of() when it first sends: until then tcb.cc is None.
"""

CE_LOSS = 1  # a loss found by fast retransmit, SACK (RFC 6675) or RACK (RFC 8985)
CE_RTO = 2   # the retransmission timer expired (RFC 5681 3.1)
CE_ECN = 3   # an ECN-Echo: congestion without a loss (RFC 3168 6.1.2)

# every window stays a MicroPython small int on a 32-bit board: 2**29 - 1 bytes, so two of them
# still add up below 2**30
CWND_MAX = 0x1FFFFFFF

# RFC 3465 2.3: slow start grows cwnd by the bytes an ACK acknowledges, at most L = 2*SMSS
# (a receiver ACKing several segments at once slows the sender no more than one ACKing every
# second); L = 1*SMSS in the slow start after an RTO
ABC_L = 2

NAMES = ("newreno", "cubic", "none")
NAME_MAX = 16  # Linux's TCP_CA_NAME_MAX: getsockopt(TCP_CONGESTION) returns this many bytes

# counters the controllers keep (in the TCP group: tcp.stats)
# and those of spurious-retransmission detection and undo (undo.py)
UNDO_COUNTERS = ("spurious_rtos", "spurious_recoveries", "spurious_tlps", "spurious_dsack",
                 "cc_undos")
CC_COUNTERS = ("cubic_epochs", "hystart_css", "hystart_css_spurious", "hystart_css_done",
               "cc_switched") + UNDO_COUNTERS


def initial_window(mss):
    """RFC 6928: min(10*MSS, max(2*MSS, 14600))."""
    w = 2 * mss
    if w < 14600:
        w = 14600
    if w > 10 * mss:
        w = 10 * mss
    return w


def available(name):
    """Whether this build has the controller: a board's build leaves cc_cubic.py out unless
    its FEATURES name "cubic" (ports/micropython/build.py)."""
    if name not in NAMES:
        return False
    if name == "cubic":
        try:
            from ustack.core.tcp import cc_cubic  # noqa: F401
        except ImportError:
            return False
    return True


def check(name):
    """The board's TCP_CC at start: a controller this build lacks is a clear error."""
    if not available(name):
        raise ValueError("config: TCP_CC %r is not in this build (a board needs \"cubic\" "
                         "in its FEATURES for it)" % (name,))


def make(name, mss, stats=None, cfg=None):
    if name == "newreno":
        from ustack.core.tcp.cc_newreno import NewReno
        return NewReno(mss)
    if name == "cubic":
        from ustack.core.tcp.cc_cubic import Cubic
        return Cubic(mss, stats)
    if name == "none":
        from ustack.core.tcp.cc_none import FixedWindow
        return FixedWindow(mss, cfg["TCP_CC_NONE_SEGMENTS"] if cfg is not None else 4)
    raise ValueError("unknown congestion control %r" % (name,))


def for_tcb(tcp, tcb):
    """The controller of a connection: its socket's (or, not yet accepted, its listener's)
    TCP_CONGESTION choice, else the board's TCP_CC."""
    s = tcb.sock
    if s is None:
        s = tcb.listener
    name = s.cc_name if s is not None else None
    return make(name or tcp.cc_name, tcb.mss, tcp.stats, tcp.stack.config)


def of(tcp, tcb):
    """tcb's controller, made when the connection first has data or a FIN to send (output.py):
    an idle connection holds none (issue 13). If our SYN or SYN-ACK went more than once
    (tcb.rexmits: nothing else is resent before the first data), the initial window is one
    segment (RFC 5681 3.1, RFC 6928 2). None when the heap cannot hold it (no_memory)."""
    c = tcb.cc
    if c is None:
        try:
            c = fresh(tcp, tcb)
        except MemoryError:
            tcp.stats.no_memory += 1
            return None
        tcb.cc = c
    return c


def fresh(tcp, tcb):
    """The controller of() would make for tcb now, not attached (ss shows it)."""
    c = for_tcb(tcp, tcb)
    if tcb.rexmits:
        c.syn_lost()
    return c


def switch(tcp, tcb, name):
    """setsockopt(TCP_CONGESTION) on a connection that has a controller: the new one takes
    over cwnd and ssthresh (Linux's tcp_reinit_congestion_control keeps them too)."""
    old = tcb.cc
    new = make(name, tcb.mss, tcp.stats, tcp.stack.config)
    if old is not None:
        new.cwnd = old.cwnd
        new.ssthresh = old.ssthresh
    tcb.cc = new
    tcp.stats.cc_switched += 1
