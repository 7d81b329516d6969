"""Congestion control interface. A controller is one small object per connection:

    on_ack(acked, ack, flight) -> bool   new data acknowledged (bytes); True asks the
                                         caller to retransmit the first unacked segment
                                         now (a NewReno partial ACK, RFC 6582 3.2 step 3)
    on_dup_ack(ack, flight, snd_max) -> bool  a duplicate ACK; True = fast retransmit now
    on_loss(flight, snd_max) -> ssthresh SACK loss recovery (scoreboard.py) detected a loss:
                                         reduce, in recovery until snd_max is
                                         acknowledged (on_ack's full ACK ends it)
    on_rto(flight, snd_max)              the retransmission timer expired
    window() -> int                      the congestion window in bytes
    set_mss(mss)                         the send MSS became known (after the handshake)

`make(name, mss)` returns the controller the config's TCP_CC names."""


def initial_window(mss):
    """RFC 6928: min(10*MSS, max(2*MSS, 14600))."""
    w = 2 * mss
    if w < 14600:
        w = 14600
    if w > 10 * mss:
        w = 10 * mss
    return w


def make(name, mss):
    if name == "newreno":
        from ustack.core.tcp.cc_newreno import NewReno
        return NewReno(mss)
    raise ValueError("unknown congestion control %r" % (name,))
