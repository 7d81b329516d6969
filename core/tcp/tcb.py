"""The transmission control block: one connection's state (RFC 9293 3.3.1).

    CLOSED LISTEN SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT
    CLOSING LAST_ACK TIME_WAIT

A listening socket is LISTEN without a TCB (proto.py keeps listeners by port). A TCB holds
no buffers until data can flow: rings come from the RingPool at connect() or when a passive
connection reaches ESTABLISHED, and go back when it closes. __slots__ keeps an idle TCB
small on CPython (MicroPython ignores it). Timers are absolute deadlines in ms, 0 = off.

Sequence space (seq.py): every sequence number, ACK number and timestamp in a TCB is
RELATIVE to a per-connection base, so it is a small int on a 32-bit MCU for the first 1 GiB
each way (correct, but heap-allocated, beyond). Bases are kept as 16-bit halves:
    our sequence space (snd_*, rtt_seq, cc.recover): relative to our ISS (iss_hi:iss_lo),
        so the ISS itself is 0 and our SYN occupies 0;
    the peer's (rcv_nxt, rcv_adv, snd_wl1, ooo_fin, the ooo ranges): relative to its IRS
        (irs_hi:irs_lo), the sequence number of its SYN;
    our TSval: now - ts_start, sent as ts_hi:ts_lo + that;
    the peer's TSval (ts_recent): relative to its first TSval (tsr_hi:tsr_lo).
snd_wl2 is an ACK number, so it lives in our space. seq.wire_value converts back (tests)."""
from ustack.core.compat import const

CLOSED = const(0)
LISTEN = const(1)
SYN_SENT = const(2)
SYN_RECEIVED = const(3)
ESTABLISHED = const(4)
FIN_WAIT_1 = const(5)
FIN_WAIT_2 = const(6)
CLOSE_WAIT = const(7)
CLOSING = const(8)
LAST_ACK = const(9)
TIME_WAIT = const(10)

STATE_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
               "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")

# flags
F_ACKNOW = const(0x0001)      # send an ACK at the next output
F_FIN_QUEUED = const(0x0002)  # the application shut down writing: FIN follows the data
F_FIN_SENT = const(0x0004)    # our FIN has a sequence number (snd_max covers it)
F_FIN_ACKED = const(0x0008)
F_RCVD_FIN = const(0x0010)    # peer's FIN processed: no more data will come
F_NODELAY = const(0x0020)     # TCP_NODELAY: Nagle off
F_TS = const(0x0040)          # timestamps negotiated (RFC 7323)
F_WS = const(0x0080)          # window scaling negotiated
F_SACK = const(0x0100)        # SACK permitted by both sides
F_KEEPALIVE = const(0x0200)
F_PASSIVE = const(0x0400)     # opened from a listener
F_SHUT_RD = const(0x0800)
F_OOO_FIN = const(0x1000)     # a FIN arrived beyond a hole: ooo_fin is its sequence number
F_PENDING = const(0x2000)     # output stalled on an empty buffer pool: retry from tick
F_TIMING = const(0x4000)      # rtt_seq is being timed (Karn: cleared on retransmit)
F_DUPACK_OK = const(0x8000)   # data in flight when the last dup ACK arrived
# TCP_ECN values (Linux's tcp_ecn): off, ask in our SYNs and accept, accept only
ECN_OFF = const(0)
ECN_ON = const(1)
ECN_PASSIVE = const(2)
# ECN (RFC 3168): TCP_ECN asked for it and (once established) both ends agreed
F_ECN = const(0x10000)        # ECN-capable connection (6.1.1 negotiation)
F_ECN_ECHO = const(0x20000)   # a CE mark arrived: ECE on every ACK until a CWR (6.1.3)
F_ECN_CWR = const(0x40000)    # our window was reduced: CWR on the next new data (6.1.2)
F_ECN_POINT = const(0x80000)  # ecn_point is valid: ECE up to it is the same congestion
F_TSO = const(0x100000)       # the route's driver cuts segments of many MSS (CAP_TSO4/6)
F_ACK_BURST = const(0x200000)  # in TCP.ack_q: ACK at the end of this poll's burst
F_DSACK = const(0x400000)     # a duplicate arrived: the next ACK's first SACK block is
                              # dsack_s..dsack_e (RFC 2883 4)
F_ORPHAN = const(0x800000)    # counted in TCP.orphans (closed by the app, still closing)
F_TIMED = const(0x1000000)    # in TCP.timed: tick visits it until no timer is armed

TCP_STATE_OPEN = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK)


class TCB:
    __slots__ = (
        "state", "flags", "sock", "listener", "hnext",
        "local_ip", "local_port", "remote_ip", "remote_port", "iface_mtu",
        "iss_hi", "iss_lo", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1",
        "snd_wl2",
        "max_sndwnd", "snd_wscale", "mss", "peer_mss",
        "irs_hi", "irs_lo", "rcv_nxt", "rcv_adv", "rcv_wscale", "rcv_cap", "rcv_unacked",
        "ooo_fin", "last_ack_sent", "dsack_s", "dsack_e",
        "ts_recent", "ts_recent_age", "ts_hi", "ts_lo", "ts_start", "tsr_hi", "tsr_lo",
        "srtt8", "rttvar4", "rto", "backoff", "rtt_seq", "rtt_start", "retries", "rexmits",
        "t_rexmt", "t_persist", "t_delack", "t_keep", "t_conn", "t_tlp",
        "keep_idle", "keep_intvl", "keep_cnt", "keep_probes", "last_rx",
        "snd", "rcv", "ooo", "sb", "cc", "error", "ttl", "tos", "snd_cap",
        "chal_start", "chal_count", "ecn_point", "rc",
    )

    def __init__(self):
        self.state = CLOSED
        self.flags = 0
        self.rc = None           # route.RouteCache: route, next hop, neighbour (proto.new_tcb)
        self.sock = None
        self.listener = None
        self.hnext = None
        self.local_ip = None
        self.local_port = 0
        self.remote_ip = None
        self.remote_port = 0
        self.iface_mtu = 1500
        self.iss_hi = 0          # our ISS, 16-bit halves (the base of snd_*)
        self.iss_lo = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_sndwnd = 0
        self.snd_wscale = 0
        self.mss = 536           # send MSS (RFC 9293 3.7.1 default; options lower it by 12 for TS)
        self.peer_mss = 536
        self.irs_hi = 0          # the peer's ISN, 16-bit halves (the base of rcv_*)
        self.irs_lo = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0         # right edge of the window we last advertised
        self.rcv_wscale = 0
        self.rcv_cap = 0         # receive buffer size (ring size once allocated)
        self.rcv_unacked = 0     # bytes received since we last sent an ACK
        self.ooo_fin = 0
        self.last_ack_sent = 0   # RCV.NXT in the last ACK we sent (RFC 7323 4.3 Last.ACK.sent)
        self.dsack_s = 0         # the duplicate the next ACK reports (F_DSACK), like rcv_nxt
        self.dsack_e = 0
        self.ts_recent = 0
        self.ts_recent_age = 0
        self.ts_hi = 0           # our TSval at ts_start (16-bit halves)
        self.ts_lo = 0
        self.ts_start = 0        # stack.now when the TCB was made: our TSval = now - ts_start
        self.tsr_hi = 0          # the peer's first TSval (16-bit halves): base of ts_recent
        self.tsr_lo = 0
        self.srtt8 = 0
        self.rttvar4 = 0
        self.rto = 1000
        self.backoff = 0
        self.rtt_seq = 0
        self.rtt_start = 0
        self.retries = 0
        self.rexmits = 0         # segments retransmitted over the connection's life (ss)
        self.t_rexmt = 0
        self.t_persist = 0
        self.t_delack = 0
        self.t_keep = 0
        self.t_tlp = 0           # RFC 8985 7.2 tail loss probe timeout
        self.t_conn = 0          # connect timeout, FIN_WAIT_2 orphan timeout, TIME_WAIT 2*MSL
        self.keep_idle = 0
        self.keep_intvl = 0
        self.keep_cnt = 0
        self.keep_probes = 0
        self.last_rx = 0
        self.snd = None
        self.rcv = None
        self.ooo = None
        self.sb = None           # SACK scoreboard and loss recovery (scoreboard.py)
        self.cc = None
        self.error = 0
        self.ttl = 0
        self.tos = 0
        self.snd_cap = 0
        self.chal_start = -1000000  # RFC 5961 section 7: this connection's challenge ACKs
        self.chal_count = 0         # in the second from chal_start
        self.ecn_point = 0       # SND.MAX at our last ECN-Echo response (F_ECN_POINT)

    def state_name(self):
        return STATE_NAMES[self.state]

    def synchronized(self):
        return self.state >= ESTABLISHED

    def next_deadline(self):
        d = 0
        for t in (self.t_rexmt, self.t_persist, self.t_delack, self.t_keep, self.t_conn,
                  self.t_tlp):
            if t and (d == 0 or t < d):
                d = t
        return d
