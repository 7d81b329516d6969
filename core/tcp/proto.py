"""TCP protocol object: segment integrity checks and demultiplexing by 4-tuple, listeners
with bounded SYN and accept queues, RST for segments nobody wants (RFC 9293 3.10.7.1),
RFC 5961 challenge ACKs (rate-limited per connection and by a randomised global budget,
section 7), RFC 6528 initial sequence numbers, connection table and timers. The state
machine proper lives in input.py, segment building in output.py, SYN cookies in cookie.py,
timers in timers.py, the socket API in socket.py.

Bounds (issue 8), each with its counter:
    connection table  TCP_MAX_CONNS; a full table recycles the oldest TIME-WAIT, then
                      forgets the oldest half-open passive connection (syn_evicted);
                      otherwise SYNs get cookies / syn_no_tcb, connect() ENOBUFS
                      (conn_no_tcb)
    SYN queue         TCP_SYN_QUEUE (< TCP_MAX_CONNS) for all listeners, 2*backlog+1 per
                      listener (syn_queue_full); with cookies, half-open ones that ended
                      unfinished count for SYN_HOLD_MS (syn_queue_churn): beyond, SYN
                      cookies (syncookies_*), or without them the oldest half-open one goes
                      (syn_evicted); SYN-ACKs are retried TCP_SYNACK_RETRIES times
    accept queue      the listener's backlog (accept_queue_full: SYN dropped, or the
                      completing ACK ignored so the SYN-ACK is retried)
    orphans           TCP_MAX_ORPHANS (oldest reset, orphans_evicted), TCP_ORPHAN_RETRIES
                      (orphan_retries_exceeded), TCP_FIN_TIMEOUT_MS (fin_wait2_timeouts)
    out-of-order      TCP_OOO_SEGMENTS ranges per connection (rx_ooo_full); the table
                      is held only while data waits beyond a hole (ooo_get/ooo_put), its
                      spares kept in OOO_KEEP slots (no_memory when none can be made)
    SACK scoreboard   TCP_SACK_SLOTS ranges per connection (rx_sack_no_slot)

ECN (RFC 3168), TCP_ECN as Linux's tcp_ecn: 0 off, 1 ask in our SYNs and accept, 2 accept
only. A SYN-cookie connection does without (its SYN-ACK carries no ECE: the cookie keeps no
room for it), and so does one whose SYN had to be resent (6.1.1.1, Linux's ecn_fallback)."""
from ustack.core.compat import EADDRINUSE, EADDRNOTAVAIL, ETIMEDOUT, oserror, const
from ustack.core.compat import ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, urandom
from ustack.core import checksum as ck  # ck.csum: compiled, checksum_c.pxd's inline sum
from ustack.core.stats import Counters
from ustack.core.wire import tcp as w
from ustack.core.net.errors import (
    ERR_NET_UNREACH, ERR_PKT_TOO_BIG, ERR_TIME_EXCEEDED, ERR_REASS_TIMEOUT, is_unreachable,
    is_hard)
from ustack.core.net.ip import addr_eq, addr_hash, is_any, hdr_len
from ustack.core import socket as so
from ustack.core.ipv4 import L2_RESERVE
from ustack.core.iface import CAP_CSUM_TX, CAP_TSO4, CAP_TSO6, CAP_GSO_SOFT
from ustack.core.tcp import tcb as T
from ustack.core.tcp import options
from ustack.core.tcp import output as out
from ustack.core.tcp import input as inp
from ustack.core.tcp import timers
from ustack.core.tcp import cookie
from ustack.core.tcp.ring import RingPool
from ustack.core.tcp.ooo import Ooo
try:
    from ustack.core.tcp.scoreboard import Scoreboard
except ImportError:  # a board built without "sack": SACK blocks are sent, not acted on
    Scoreboard = None
from ustack.core.tcp.seq import MASK, seq_add, seq_gt, seq_lt, rel_at
from ustack.core.tcp import cc as ccmod
from ustack.core.portalloc import Ephemeral
from ustack.core.route import RouteCache

TCP_COUNTERS = (
    # integrity / demux
    "rx_segments", "rx_too_short", "rx_bad_off", "rx_bad_csum", "rx_bcast", "rx_bad_opts",
    "rx_dup_opts", "rx_listen_segments", "rx_conn_segments",
    "rx_no_conn", "rx_listen_rst", "rx_listen_ack", "rx_listen_no_syn",
    "syn_queue_full", "accept_queue_full", "syn_no_tcb", "time_wait_reuse", "rx_syn_fin",
    "syn_evicted", "syncookies_sent", "syncookies_ok", "syncookies_bad", "syncookies_no_tcb",
    "syncookies_unproven", "syncookies_over_budget", "syncookies_no_route", "syncookies_again",
    "syn_queue_churn",
    # synchronized states
    "rx_paws", "rx_out_of_window", "rx_rst", "rx_rst_out_of_window", "rx_rst_time_wait",
    "rx_rst_bad_ack", "rx_syn_in_window", "rx_no_ack", "rx_ack_unsent", "rx_ack_too_old",
    "rx_bad_synack", "rx_dup_acks", "rx_sack_blocks", "rx_data_bytes", "rx_dup_data",
    "rx_ooo", "rx_ooo_full", "rx_after_close", "rx_window_probes",
    # in-order data segments header prediction took (input.py _predicted)
    "rx_predicted",
    # duplicates we reported in a D-SACK block (RFC 2883)
    "dsack_sent",
    # received SACK blocks (RFC 2018, RFC 2883) and SACK-based loss recovery (RFC 6675)
    "rx_sack_bad", "rx_dsack", "rx_sack_no_slot", "sack_recoveries", "rescue_rexmits",
    "lost_rexmits", "tlp_probes", "tlp_recoveries",
    # RACK (RFC 8985 6): reordering seen, reordering-timer expiries, D-SACK rounds that grew
    # the reordering window
    "rack_reordering", "rack_reo_timeouts", "rack_reo_wnd_grown",
    # ECN (RFC 3168): agreed in the handshake, CE marks received, ECN-Echo ACKs received and
    # the window reductions they caused, CWRs both ways, SYNs resent without ECN (6.1.1.1)
    "ecn_negotiated", "rx_ce", "rx_ece", "ecn_reductions", "tx_cwr", "rx_cwr",
    "ecn_syn_fallback",
    # output
    "tx_segments", "tx_data_bytes", "tx_retransmits", "tx_rst", "tx_no_buffer",
    "tx_rst_rate_limited",
    "tx_tso_segments",  # segments of many MSS handed to a TSO driver (issue 13)
    "challenge_acks", "challenge_acks_limited", "challenge_acks_global_limited",
    "delayed_acks", "burst_acks",
    # events
    "rto_expired", "fast_retransmits", "partial_acks", "persist_probes", "keepalive_probes",
    "conn_active", "conn_passive", "conn_established", "conn_reset", "conn_refused",
    "conn_timeout", "conn_closed", "conn_aborted", "conn_no_tcb", "icmp_errors", "no_memory",
    "icmp_out_of_window", "icmp_embryonic_dropped", "pmtu_mss_lowered", "mem_limited",
    # orphans (closed by the application, still closing)
    "orphans_evicted", "orphan_retries_exceeded", "fin_wait2_timeouts",
) + ccmod.CC_COUNTERS


# How long a half-open connection that ended unfinished still counts in the SYN queue
# (syn_held): RFC 6298 2.1's initial RTO, the least a forged SYN's slot is held before its
# SYN-ACK is resent (the first of TCP_SYNACK_RETRIES)
SYN_HOLD_MS = const(1000)

# Empty out-of-order tables kept for reuse (ooo_put), OOO_PREALLOC of them made at start: a
# connection takes one only while data waits beyond a hole, so the steady state of a lossy
# path (a heap-locked MCU) reuses them instead of allocating, and an idle connection holds none
OOO_KEEP = const(8)
OOO_PREALLOC = const(2)

# Idle connections point at one shared empty ring per size (ring.py RingPool.share: 96 bytes
# a connection at 100 000) when the stack may hold at least this many; below, the shared
# rings and their table cost a board more than they save
RING_SHARE_CONNS = const(64)

# A table full of TIME-WAIT connections (a server that closes first: HTTP/1.0, ab or wrk
# without keep-alive) recycles the oldest one for every new connection: in a table of at least
# this many they are queued in the order they entered TIME-WAIT (TimeWaitQueue), so the
# oldest is found at once, not by a walk over the table (issue 13: walking 512 TCBs cost
# 35 us a connection); below, the walk is short and the queue would cost a board memory
TW_QUEUE_CONNS = const(64)

# Where the table is large (RING_SHARE_CONNS), what short connections take and give back is
# kept for the next ones, up to this many of each: SACK scoreboards (made with the first data
# to send: seven objects, 2.2 us on CPython) and ring storage (a 64 KB bytearray, 3 us and
# brk/munmap churn when 16 connections at once outnumber 4 spares) - issue 13's connection
# rate. Boards keep 4 rings and make each connection its own scoreboard, as before
KEEP_MANY = const(32)

# What a full segment's frame holds besides the IP and TCP headers and the MSS: Ethernet 14,
# an 802.1Q tag 4, 4 to spare (our advertised MSS keeps it fitting one packet buffer)
MSS_FRAME_EXTRA = 22


def _fmix(h):
    # murmur3 finalizer: full avalanche over 32 bits (literal masks: C arithmetic under
    # Cython, proto.pxd)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def _word(a):
    """An address (4 or 16 bytes) as one 32-bit word: IPv4's as it is, IPv6's four words
    mixed in turn (connection setup only: may allocate). Each word is built from 16-bit
    halves into x (64-bit under Cython: a byte shifted by 24 as a C int would overflow)."""
    v = 0
    i = 0
    while i < len(a):
        x = (a[i] << 8) | a[i + 1]
        x = (x << 16) | (a[i + 2] << 8) | a[i + 3]
        v = x if i == 0 else _fmix(v ^ x)
        i += 4
    return v


def _fin_unacked(t):
    """t's FIN is queued or sent and not yet acknowledged (TCP.closing)."""
    return (t.flags & (T.F_FIN_QUEUED | T.F_FIN_ACKED)) == T.F_FIN_QUEUED and \
        t.state != T.CLOSED


class TimeWaitQueue:
    """The TCBs that entered TIME-WAIT, oldest first (RFC 9293 3.10.7.4: each waits 2*MSL
    from then, so the first in is the first due): push as one enters (input._time_wait), pop
    the oldest still there when the table is full (TCP.new_tcb). Those that left meanwhile
    (expired, a new SYN reused the 4-tuple) stay until popped or squeezed out: fixed slots,
    made once, a quarter more than the table holds, so a full ring squeezed frees at least
    that quarter and a push costs O(1) amortized."""

    def __init__(self, conns):
        self.q = [None] * (conns + (conns >> 2) + 1)
        self.head = 0
        self.n = 0

    def push(self, tcb):
        q = self.q
        size = len(q)
        if self.n == size:
            self._squeeze()
        i = self.head + self.n
        if i >= size:
            i -= size
        q[i] = tcb
        self.n += 1

    def pop(self):
        """The connection longest in TIME-WAIT, taken out of the queue; None if none is."""
        q = self.q
        size = len(q)
        while self.n:
            t = q[self.head]
            q[self.head] = None
            self.head += 1
            if self.head == size:
                self.head = 0
            self.n -= 1
            if t.state == T.TIME_WAIT:
                return t
        return None

    def _squeeze(self):
        """Keep only those still in TIME-WAIT, in order, from the head on (every live one
        fits: TIME-WAIT connections are in the table, at most TCP_MAX_CONNS). The write
        slot trails the read one, so nothing is overwritten before it is read."""
        q = self.q
        size = len(q)
        i = self.head
        j = i
        k = self.n
        n = 0
        while k:
            t = q[i]
            q[i] = None
            if t.state == T.TIME_WAIT:
                q[j] = t
                j += 1
                if j == size:
                    j = 0
                n += 1
            i += 1
            if i == size:
                i = 0
            k -= 1
        self.n = n


class TCP:
    def __init__(self, stack):
        self.stack = stack
        cfg = stack.config
        self.stats = Counters(TCP_COUNTERS)
        self.rto_init = cfg["TCP_RTO_INIT_MS"]
        self.rto_min = cfg["TCP_RTO_MIN_MS"]
        self.rto_max = cfg["TCP_RTO_MAX_MS"]
        self.msl = cfg["TCP_MSL_MS"]
        self.delack = cfg["TCP_DELACK_MS"]
        self.ack_burst = cfg["TCP_ACK_BURST"]
        # connections owed an ACK at the end of the poll's receive burst (input._data): each
        # at most once (F_ACK_BURST), so at most TCP_MAX_CONNS long; flush_acks empties it
        self.ack_q = []
        self.bursting = False    # inside Stack.poll, before flush_acks
        self.max_retries = cfg["TCP_MAX_RETRIES"]
        self.syn_retries = cfg["TCP_SYN_RETRIES"]
        self.synack_retries = cfg["TCP_SYNACK_RETRIES"]
        self.syncookies = bool(cfg["TCP_SYNCOOKIES"])
        self.embryonic = 0       # passive SYN-RECEIVED connections of all listeners
        self.syn_gone = 0        # ... and those that ended unfinished within SYN_HOLD_MS
        self.syn_gone_at = -SYN_HOLD_MS  # of this time (see syn_held)
        self.cookie_at = -1000000000  # stack.now when the last SYN cookie went out
        self.cookie_budget = cfg["TCP_SYNCOOKIE_BUDGET"]  # cookies per poll (0: no limit)
        self.cookies_left = self.cookie_budget  # this poll's; Stack.poll refills it
        self.max_orphans = cfg["TCP_MAX_ORPHANS"]
        self.orphans = 0         # TCBs flagged F_ORPHAN: kept as they come and go (not_orphan)
        self.orphan_retries = cfg["TCP_ORPHAN_RETRIES"]
        self.fin_timeout = cfg["TCP_FIN_TIMEOUT_MS"]
        self.ooo_slots = cfg["TCP_OOO_SEGMENTS"]
        self.ooo_spare = [None] * OOO_KEEP  # empty out-of-order tables (ooo_get/ooo_put)
        self.ooo_nspare = 0
        if self.ooo_slots:
            while self.ooo_nspare < OOO_PREALLOC:
                self.ooo_spare[self.ooo_nspare] = Ooo(self.ooo_slots)
                self.ooo_nspare += 1
        # RFC 2018 allows a sender to ignore SACK blocks: without scoreboard.py, NewReno
        self.sack_slots = cfg["TCP_SACK_SLOTS"] if Scoreboard is not None else 0
        self.tlp = bool(cfg["TCP_TLP"])
        self.rack_slots = cfg["TCP_RACK_SLOTS"] if cfg["TCP_RACK"] else 0
        self.wscale = bool(cfg["TCP_WSCALE"])
        self.timestamps = bool(cfg["TCP_TIMESTAMPS"])
        self.sack = bool(cfg["TCP_SACK"])
        self.ecn = cfg["TCP_ECN"]  # ECN_OFF, ECN_ON or ECN_PASSIVE (input.py)
        self.cc_name = cfg["TCP_CC"]
        ccmod.check(self.cc_name)
        self.max_conns = cfg["TCP_MAX_CONNS"]
        self.backlog = cfg["TCP_BACKLOG"]
        self.synq = cfg["TCP_SYN_QUEUE"]
        self.chal_limit = cfg["TCP_CHALLENGE_ACK_LIMIT"]
        self.snd_buf = cfg["TCP_SND_BUF"]
        self.rcv_buf = cfg["TCP_RCV_BUF"]
        self.keep_idle = cfg["TCP_KEEPIDLE_MS"]
        self.keep_intvl = cfg["TCP_KEEPINTVL_MS"]
        self.keep_cnt = cfg["TCP_KEEPCNT"]
        self.eph = Ephemeral(cfg["EPHEMERAL_LOW"], cfg["EPHEMERAL_HIGH"], stack.random16())
        self.conns = []          # every TCB (bounded by TCP_MAX_CONNS)
        # the TCBs that may have a timer armed (F_TIMED; watch): tick visits these, not every
        # connection - 100 000 idle ones cost a tick nothing (issue 13). Fixed slots, made
        # once (a heap-locked MCU appends nothing): ntimed in use, every live TCB fits
        self.timed = [None] * (self.max_conns + 1)
        self.ntimed = 0
        # TIME-WAIT connections in the order they entered it, where the table is large
        # (TW_QUEUE_CONNS); None: new_tcb walks the table for the oldest
        self.tw = TimeWaitQueue(self.max_conns) if self.max_conns >= TW_QUEUE_CONNS else None
        self.ticking = False
        self.overflow = False
        self.last_lip = None     # the addresses of the last new_tcb, shared with the next
        self.last_rip = None
        self.last_rc = None      # last_rip's route cache, shared the same way
        # the connection table: a fixed bucket list, made once (a power of two, at least
        # TCP_MAX_CONNS: chains stay short), _key(4-tuple) & tmask -> TCB chain (tcb.hnext). A dict
        # cost 84 bytes a connection at 100 000 (its entries and a boxed int key each: issue
        # 13); this costs 8-16 bytes a slot whether used or not, and inserting allocates
        # nothing (a heap-locked MCU)
        n = 4
        while n < self.max_conns:
            n <<= 1
        self.table = [None] * n
        self.tmask = n - 1
        self.listeners = []      # listening sockets
        self.bound = []          # sockets holding a local port
        # storage from the board's sizes up, growth from one budget (ring.py, TCP_MEM)
        # (idle connections share empty rings only where there can be many of them)
        many = self.max_conns >= RING_SHARE_CONNS
        self.rings = RingPool(KEEP_MANY if many else 4, max(self.snd_buf, self.rcv_buf),
                              cfg["TCP_MEM"], many)
        self.sb_spare = [] if many else None  # scoreboards for reuse (KEEP_MANY)
        self.isn_hook = None     # hook: isn_hook(local_ip, lport, remote_ip, rport) -> ISN
        self.ts_hook = None      # hook: ts_hook(local_ip, lport, remote_ip, rport) -> offset
        self.rst_src = bytearray(4)   # a stateless reply's addresses (output._reply_addrs)
        self.rst_dst = bytearray(4)
        self.rst_src6 = bytearray(16)
        self.rst_dst6 = bytearray(16)
        self.reply_src = self.rst_src  # the pair _reply_addrs filled last
        self.reply_dst = self.rst_dst
        self.chal_global = cfg["TCP_CHALLENGE_ACK_GLOBAL"]
        # all connections' challenge ACKs: [second's start, sent in it, its budget, draws]
        # (one attribute, not four: see tests/micropython/test_attr_tables.py)
        self.chal = [-1000000, 0, 0, 0]
        self.rst_rate = cfg["TCP_RST_RATE_MS"]
        self.rst_burst = cfg["TCP_RST_BURST"]
        self.rst_tokens = self.rst_burst
        self.rst_refill = 0
        self._secret(stack)
        k = self.key
        self.cookie_mac = cookie.Mac(cookie.schedule(k[2] >> 16, k[2] & 0xFFFF, k[3] >> 16,
                                                     k[3] & 0xFFFF))
        # the segment being processed (scratch: no objects per segment). seg_seq, seg_ack,
        # opt_tsval and opt_tsecr are relative to the connection's bases (tcb.py), set once
        # the segment's connection is known; 0 without one (b[seg_hdr + 4:] has the wire's).
        self.seg_src = 0    # where the segment's addresses are (network metadata) ...
        self.seg_dst = 0
        self.seg_alen = 4   # ... and how long they are
        self.seg_ecn = 0    # its IP header's ECN field (RFC 3168 5)
        self.seg_hdr = 0
        self.seg_seq = 0
        self.seg_ack = 0
        self.seg_flags = 0
        self.seg_wnd = 0
        self.seg_doff = 0
        self.seg_len = 0
        self.opt_seen = 0
        self.opt_mss = 0
        self.opt_ws = 0
        self.opt_ts_off = 0
        self.opt_tsval = 0
        self.opt_tsecr = 0
        self.opt_sack_blocks = 0
        self.opt_sack_off = 0

    # ---- RFC 6528 initial sequence numbers ---------------------------------------------------
    def _secret(self, stack):
        k = urandom(16)
        if k is None or len(k) < 16:
            k = bytearray(16)
            i = 0
            while i < 16:
                r = stack.random16() ^ (stack.clock() & 0xFFFF)
                k[i] = r & 0xFF
                k[i + 1] = r >> 8
                i += 2
        self.key = (_word(k[0:4]), _word(k[4:8]), _word(k[8:12]), _word(k[12:16]))

    def _hash(self, lip, lport, rip, rport):
        """F(localip, localport, remoteip, remoteport, secretkey) of RFC 6528 section 3."""
        k = self.key
        k0, k1, k2, k3 = k  # C integers compiled: no boxed XORs
        h = _fmix(k0 ^ _word(lip))
        h = _fmix(h ^ k1 ^ _word(rip))
        h = _fmix(h ^ k2 ^ ((lport << 16) | rport))
        return _fmix(h ^ k3)

    def isn(self, lip, lport, rip, rport, f=-1):
        """ISN = M + F(4-tuple, secret), M a 4-microsecond clock (RFC 6528 section 3).
        f: F when the caller has it (new_tcb), -1 to compute it."""
        if self.isn_hook is not None:
            return self.isn_hook(lip, lport, rip, rport) & MASK
        if f < 0:
            f = self._hash(lip, lport, rip, rport)
        return (self.stack.now * 250 + f) & MASK

    def set_iss(self, tcb, f=-1):
        """Pick the connection's ISS (connection setup: may allocate) and keep it as the
        16-bit halves every sequence number we send is relative to. f: as isn's."""
        v = self.isn(tcb.local_ip, tcb.local_port, tcb.remote_ip, tcb.remote_port, f)
        tcb.iss_hi = v >> 16
        tcb.iss_lo = v & 0xFFFF
        tcb.snd_una = tcb.snd_nxt = tcb.snd_max = tcb.snd_wl2 = 0

    # ---- connection table -------------------------------------------------------------------
    @staticmethod
    def _key(a, o, alen, rport, lport):
        """The connection table's key: the remote address at a[o] (alen bytes) and ports
        (IPv4's mix inlined: addr_hash(a, o, 4) without the call)."""
        if alen == 4:
            return ((rport * 31 + lport) ^ (a[o] << 22) ^ (a[o + 1] << 15) ^ (a[o + 2] << 8) ^
                    a[o + 3]) & 0x3FFFFFFF
        return ((rport * 31 + lport) ^ addr_hash(a, o, alen)) & 0x3FFFFFFF

    def lookup(self, b, rip, lip, alen, rport, lport):
        """The connection whose remote address is at b[rip] and local one at b[lip] (alen
        bytes each, as the network layer's metadata locates them), or None."""
        if alen == 4:   # _key's IPv4 mix inlined: every segment comes here
            k = ((rport * 31 + lport) ^ (b[rip] << 22) ^ (b[rip + 1] << 15) ^
                 (b[rip + 2] << 8) ^ b[rip + 3]) & 0x3FFFFFFF
        else:
            k = self._key(b, rip, alen, rport, lport)
        t = self.table[k & self.tmask]
        while t is not None:
            if t.remote_port == rport and t.local_port == lport:
                # the addresses compared byte by byte in place (compiled: C reads of the
                # buffer and the TCB's bytes; addr_eq's two buffer views cost 0.5 us a hit)
                ra = t.remote_ip
                la = t.local_ip
                if len(ra) == alen:
                    i = 0
                    while i < alen and ra[i] == b[rip + i] and la[i] == b[lip + i]:
                        i += 1
                    if i == alen:
                        return t
            t = t.hnext
        return None

    def find(self, lip, lport, rip, rport):
        t = self.table[self._key(rip, 0, len(rip), rport, lport) & self.tmask]
        while t is not None:
            if t.remote_port == rport and t.local_port == lport and t.remote_ip == rip and \
                    t.local_ip == lip:
                return t
            t = t.hnext
        return None

    def _bucket(self, tcb):
        """tcb's bucket: computed again, not kept in the TCB (an attribute more than 73 grows
        a MicroPython TCB's attribute table to 97 slots: 384 bytes a connection)."""
        a = tcb.remote_ip
        if len(a) == 4:  # _key's IPv4 mix inlined, as in lookup (a C expression compiled)
            k = ((tcb.remote_port * 31 + tcb.local_port) ^ (a[0] << 22) ^ (a[1] << 15) ^
                 (a[2] << 8) ^ a[3]) & 0x3FFFFFFF
        else:
            k = self._key(a, 0, len(a), tcb.remote_port, tcb.local_port)
        return k & self.tmask

    def _insert(self, tcb):
        k = self._bucket(tcb)
        tcb.hnext = self.table[k]
        self.table[k] = tcb

    def _unlink(self, tcb):
        k = self._bucket(tcb)
        t = self.table[k]
        prev = None
        while t is not None:
            if t is tcb:
                if prev is None:
                    self.table[k] = t.hnext
                else:
                    prev.hnext = t.hnext
                break
            prev = t
            t = t.hnext
        tcb.hnext = None

    def new_tcb(self, lip, lport, rip, rport):
        """A TCB in the table, its ISS picked (set_iss), or None when TCP_MAX_CONNS are in
        use by connections that are neither in TIME-WAIT nor half-open: the oldest TIME_WAIT
        connection is recycled first (as lwIP does), else the oldest half-open passive one
        (syn_evicted)."""
        if len(self.conns) >= self.max_conns:
            old = None
            if self.tw is not None:
                old = self.tw.pop()
            else:
                for t in self.conns:
                    if t.state == T.TIME_WAIT and (old is None or t.t_conn < old.t_conn):
                        old = t
            if old is not None:
                self.drop(old, 0)
            elif not self.evict_embryonic(None):
                return None
        t = T.TCB()
        # consecutive connections of one local (or remote) address share its bytes object:
        # a server's connections to its one address, a client's to one peer (issue 13)
        a = self.last_lip
        if a is None or a != lip:
            a = self.last_lip = bytes(lip)
        t.local_ip = a
        t.local_port = lport
        a = self.last_rip
        if a is None or a != rip:
            a = self.last_rip = bytes(rip)
            self.last_rc = RouteCache()  # filled by the first segment (issue 13)
        t.remote_ip = a
        t.remote_port = rport
        # ... and its route cache: what it holds (route, next hop, neighbour entry) follows
        # from the remote address alone (72 bytes a connection less, issue 13)
        t.rc = self.last_rc
        t.rto = self.rto_init
        t.keep_idle = self.keep_idle
        t.keep_intvl = self.keep_intvl
        t.keep_cnt = self.keep_cnt
        t.last_rx = self.stack.now
        # F(4-tuple, secret) once (issue 13: two of these were a tenth of a SYN's cost): the
        # ISS is the clock plus it (RFC 6528 3), our TSval offset a mix of it (RFC 7323 5.4)
        f = -1
        if self.ts_hook is None or self.isn_hook is None:
            f = self._hash(t.local_ip, lport, t.remote_ip, rport)
        if self.ts_hook is not None:
            v = self.ts_hook(t.local_ip, lport, t.remote_ip, rport)
        else:
            v = _fmix(f ^ self.key[1])
        v = (v + t.last_rx) & MASK  # our TSval: now + a per-connection offset (RFC 7323 5.4)
        t.ts_start = t.last_rx
        t.ts_hi = v >> 16
        t.ts_lo = v & 0xFFFF
        self.set_iss(t, f)
        self.conns.append(t)
        self._insert(t)
        self.watch(t)
        return t

    def syn_held(self):
        """The SYN queue's length: the half-open passive connections held, and those that
        ended unfinished (reset, an ICMP error, evicted) since syn_gone_at, within
        SYN_HOLD_MS. A half-open connection whose peer stays silent holds its slot at least
        until its SYN-ACK is resent; one a RST ends at once costs the same work, so a flood
        whose forged source answers our SYN-ACKs with RSTs (its own address: hping3's)
        fills the queue, and meets SYN cookies, as one whose source stays silent does."""
        if self.syn_gone and self.stack.now - self.syn_gone_at >= SYN_HOLD_MS:
            self.syn_gone = 0
        return self.embryonic + self.syn_gone

    def evict_embryonic(self, lsock):
        """Forget the oldest half-open passive connection (of lsock, or of any listener):
        a SYN queue never refuses a new SYN while it holds an old one. False if none."""
        for t in self.conns:  # creation order: the first found is the oldest
            if t.state == T.SYN_RECEIVED and t.listener is not None and \
                    (lsock is None or t.listener is lsock):
                self.stats.syn_evicted += 1
                self.drop(t, 0)
                return True
        return False

    def open_buffers(self, tcb):
        """Rings: when data can flow. False when the heap cannot hold them (a small MCU):
        the caller drops the connection. (The out-of-order table comes later, with the
        first segment beyond a hole: ooo_get; the congestion controller with the first
        data or FIN to send: cc.of.)"""
        try:
            if tcb.snd is None:
                tcb.snd = self.rings.share(tcb.snd_cap)
            if tcb.rcv is None:
                tcb.rcv = self.rings.share(tcb.rcv_cap)
        except MemoryError:
            self.stats.no_memory += 1
            self.release_buffers(tcb, True)
            return False
        return True

    def ooo_get(self, tcb):
        """tcb's out-of-order table, taken (a spare, else a new one) when the first segment
        beyond a hole arrives: idle and in-order connections hold none (issue 13). None when
        the heap cannot make one (no_memory): the segment is dropped, the peer resends it."""
        o = tcb.ooo
        if o is None:
            k = self.ooo_nspare
            if k:
                k -= 1
                o = self.ooo_spare[k]
                self.ooo_spare[k] = None
                self.ooo_nspare = k
            else:
                try:
                    o = Ooo(self.ooo_slots)
                except MemoryError:
                    self.stats.no_memory += 1
                    return None
            tcb.ooo = o
        return o

    def ooo_put(self, tcb):
        """tcb's out-of-order table back (emptied): kept as a spare while there is a slot."""
        o = tcb.ooo
        if o is not None:
            tcb.ooo = None
            k = self.ooo_nspare
            if k < OOO_KEEP:
                o.clear()
                self.ooo_spare[k] = o
                self.ooo_nspare = k + 1

    def scoreboard(self, tcb):
        """The SACK scoreboard (scoreboard.py), made when the connection first has data to
        send - an idle or receive-only connection never pays for one. None without SACK,
        with TCP_SACK_SLOTS 0, or when the heap is out (then NewReno recovers)."""
        if not (tcb.flags & T.F_SACK) or not self.sack_slots:
            return None
        sp = self.sb_spare
        # only one given back before this poll: code still running for the connection that
        # dropped it (an ACK's processing, whose socket event opened this connection and
        # sent) may hold it in a local and touch it again
        if sp and sp[0].freed != self.stack.now:
            sb = sp.pop(0)
            sb.fresh()
            tcb.sb = sb
            return sb
        try:
            tcb.sb = Scoreboard(self.sack_slots, self.rack_slots)
        except MemoryError:
            self.stats.no_memory += 1
        return tcb.sb

    def release_buffers(self, tcb, rcv_too):
        if tcb.snd is not None:
            self.rings.put(tcb.snd)
            tcb.snd = None
        sb = tcb.sb
        if sb is not None:
            tcb.sb = None
            sp = self.sb_spare
            if sp is not None and len(sp) < KEEP_MANY:
                sb.freed = self.stack.now
                sp.append(sb)
        if rcv_too:
            self.release_rcv(tcb)

    def release_rcv(self, tcb):
        """The receive ring and out-of-order table back (nothing more will be read)."""
        if tcb.rcv is not None:
            self.rings.put(tcb.rcv)
            tcb.rcv = None
            self.ooo_put(tcb)

    def drop(self, tcb, err):
        """The connection is gone (CLOSED): out of the table, timers off, buffers back. An
        attached socket keeps the TCB to read the error and any data already received."""
        if tcb.state == T.CLOSED and tcb not in self.conns:
            return
        if tcb.state == T.SYN_RECEIVED and tcb.listener is not None:
            tcb.listener.syn_count -= 1
            self.embryonic -= 1
            self.syn_held()  # forgets those gone SYN_HOLD_MS ago
            if not self.syn_gone:
                self.syn_gone_at = self.stack.now
            self.syn_gone += 1
        elif tcb.listener is not None and tcb in tcb.listener.acc_q:
            tcb.listener.acc_q.remove(tcb)
        tcb.listener = None
        tcb.state = T.CLOSED
        self.not_orphan(tcb)
        tcb.t_rexmt = tcb.t_persist = tcb.t_delack = tcb.t_keep = tcb.t_conn = tcb.t_tlp = 0
        tcb.error = err
        so.remove_newest(self.conns, tcb)  # from the newest: a short connection's few
        self._unlink(tcb)
        self.stats.conn_closed += 1
        s = tcb.sock
        self.release_buffers(tcb, s is None or err != 0)
        if s is not None:
            if err:
                s.so_error = err
            s._event()

    def set_mss(self, tcb):
        """Send MSS: the peer's MSS option, our MTU and packet buffers, less the timestamp
        option we put in every segment (RFC 9293 3.7.1, RFC 6691: the MTU less the fixed
        IP and TCP headers of the connection's family)."""
        m = tcb.peer_mss
        alen = len(tcb.remote_ip)
        iph = hdr_len(alen)
        # RFC 1191 / RFC 8201: the path MTU, when Path MTU Discovery learnt a smaller one
        lim = self.stack.ip.path_mtu(tcb.remote_ip, 0, alen, tcb.iface_mtu) - iph - w.HDR_LEN
        if m > lim:
            m = lim
        opts = 0
        if tcb.flags & T.F_TS:
            m -= 12
            opts = 12
        # a segment must fit one packet buffer behind the link and IP headers
        lim = self.stack.pool.size - L2_RESERVE - iph - w.HDR_LEN - opts
        if m > lim:
            m = lim
        if m < 64:
            m = 64
        tcb.mss = m
        # issue 13: a route whose driver segments and checksums for us (TSO) takes segments
        # of many MSS (output.py), built in the pool's large buffers
        tcb.flags &= ~T.F_TSO
        alen = len(tcb.remote_ip)
        iface = self.stack.ip.route_out(tcb.remote_ip, 0, alen) if self.stack.pool.large else None
        if iface is not None and (iface.caps & CAP_CSUM_TX and
                                  iface.caps & (CAP_TSO4 if alen == 4 else CAP_TSO6) or
                                  alen == 4 and iface.caps & CAP_GSO_SOFT):
            tcb.flags |= T.F_TSO  # (software GSO: IPv4 only, core/offload.py gso_send)

    def pmtu_lower(self, tcb):
        """The path MTU towards tcb's peer fell (RFC 1191 6.4, RFC 8201 5.4, RFC 9293
        3.7.3): a smaller MSS, and what is in flight goes again at once from SND.UNA at
        that size (the larger segments were dropped on the way) - no waiting for the RTO,
        and the congestion window stays (it is no sign of congestion)."""
        old = tcb.mss
        self.set_mss(tcb)
        if tcb.mss >= old:
            return
        self.stats.pmtu_mss_lowered += 1
        cc = tcb.cc
        if cc is not None:
            cw = cc.cwnd
            ss = cc.ssthresh
            cc.set_mss(tcb.mss)
            cc.cwnd = cw
            cc.ssthresh = ss
        if tcb.state >= T.ESTABLISHED and tcb.snd_nxt != tcb.snd_una:
            tcb.flags &= ~T.F_TIMING   # Karn: no RTT sample from a resent segment
            sb = tcb.sb
            if sb is not None and sb.rack is not None:
                sb.rack.rxt(tcb.snd_max)
            tcb.snd_nxt = tcb.snd_una
            out.output(self, tcb, True)

    def adv_mss(self, tcb):
        return self.adv_mss_for(tcb.iface_mtu, len(tcb.remote_ip))

    def adv_mss_for(self, mtu, alen):
        """Our MSS option: the interface MTU less the fixed IP and TCP headers of the family
        of addresses alen bytes long (RFC 9293 3.7.1, RFC 6691), clamped so a full segment
        (with timestamps, maybe a VLAN tag) fits one packet buffer."""
        iph = hdr_len(alen)
        m = mtu - iph - w.HDR_LEN
        lim = self.stack.pool.size - MSS_FRAME_EXTRA - iph - w.HDR_LEN
        return m if m < lim else lim

    def wscale_for(self, size):
        s = 0
        while (size >> s) > 0xFFFF and s < w.MAX_WSCALE:
            s += 1
        return s

    # ---- ports --------------------------------------------------------------------------------
    def port_in_use(self, port, ip, s):
        for o in self.bound:
            # IPv4 and IPv6 overlap only through a dual :: (core/socket.py binds_overlap)
            if o is not s and o.local_port == port and so.binds_overlap(o, s, ip):
                if not (s.reuse_opts and o.reuse_opts and not o.listening):
                    return True
        if not s.reuse_opts:
            for t in self.conns:
                if t.local_port == port and t.sock is None:
                    return True
        return False

    def bind(self, s, ip, port):
        stack = self.stack
        if not is_any(ip) and stack.ip.local_iface(ip, 0, len(ip)) is None:
            raise oserror(EADDRNOTAVAIL)
        if port == 0:
            port = self.ephemeral(None, None, 0)
        elif self.port_in_use(port, ip, s):
            raise oserror(EADDRINUSE)
        s.local_ip = ip
        s.local_port = port
        if s not in self.bound:
            self.bound.append(s)

    def ephemeral(self, lip, rip, rport):
        """A free local port: RFC 6056 algorithm 4 towards rip:rport (F and G keyed with
        the stack's secret), a random one for a plain bind."""
        if rip is None:
            return self.eph.pick(self._port_used)
        f = self._hash(lip, 0, rip, rport)
        return self.eph.pick(self._port_used, f, _fmix(f ^ self.key[0]))

    def _port_used(self, p):
        for o in self.bound:
            if o.local_port == p:
                return True
        for t in self.conns:
            if t.local_port == p:
                return True
        return False

    def unbind(self, s):
        so.remove_newest(self.bound, s)  # every connection's socket is there: newest first
        if s in self.listeners:
            self.listeners.remove(s)

    def socket(self, family, type, proto):
        from ustack.core.tcp.socket import TcpSocket
        return TcpSocket(self.stack, family, type, proto)

    # ---- input --------------------------------------------------------------------------------
    def input(self, pb, m):
        """A segment the network layer delivers: m is its metadata (core/net/ip.py Meta)."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        o = m.l4
        n = m.l4len
        st.rx_segments += 1
        if n < w.HDR_LEN:
            st.rx_too_short += 1
            stack.free(pb)
            return
        hl = (b[o + 12] >> 4) << 2
        if hl < w.HDR_LEN or hl > n:
            st.rx_bad_off += 1
            stack.free(pb)
            return
        if not m.csum_ok and ck.csum(b, o, n, m.psum + n) != 0xFFFF:
            # RFC 9293 3.1: over the pseudo-header too (unless the driver vouched for it)
            st.rx_bad_csum += 1
            stack.free(pb)
            return
        if m.bcast:
            st.rx_bcast += 1  # RFC 1122 4.2.3.10: not for broadcast/multicast addresses
            stack.free(pb)
            return
        sport = (b[o] << 8) | b[o + 1]
        dport = (b[o + 2] << 8) | b[o + 3]
        self.seg_src = m.src
        self.seg_dst = m.dst
        self.seg_alen = m.alen
        self.seg_ecn = m.ecn
        self.seg_hdr = o
        fl = b[o + 13]
        self.seg_flags = fl
        self.seg_wnd = (b[o + 14] << 8) | b[o + 15]
        self.seg_doff = o + hl
        self.seg_len = n - hl
        if hl > w.HDR_LEN:
            if not options.parse(self, b, o + w.HDR_LEN, hl - w.HDR_LEN):
                st.rx_bad_opts += 1
            if self.opt_sack_blocks:
                st.rx_sack_blocks += self.opt_sack_blocks
        else:
            self.opt_seen = 0
            self.opt_sack_blocks = 0
        tcb = self.lookup(b, m.src, m.dst, m.alen, sport, dport)
        if tcb is not None:
            # the wire boundary: seq, ack and timestamps relative to the connection's bases
            # (seq.rel_at inlined: 16-bit halves with borrow, no 32-bit value formed)
            if tcb.state != T.SYN_SENT:
                lo = ((b[o + 6] << 8) | b[o + 7]) - tcb.irs_lo
                hi = ((b[o + 4] << 8) | b[o + 5]) - tcb.irs_hi
                if lo < 0:
                    lo += 0x10000
                    hi -= 1
                self.seg_seq = ((hi & 0xFFFF) << 16) | lo
            else:
                self.seg_seq = 0  # no IRS yet: a SYN sets it
            lo = ((b[o + 10] << 8) | b[o + 11]) - tcb.iss_lo
            hi = ((b[o + 8] << 8) | b[o + 9]) - tcb.iss_hi
            if lo < 0:
                lo += 0x10000
                hi -= 1
            self.seg_ack = ((hi & 0xFFFF) << 16) | lo
            if self.opt_seen & options.SEEN_TS and tcb.flags & T.F_TS:
                to = self.opt_ts_off
                lo = ((b[to + 2] << 8) | b[to + 3]) - tcb.tsr_lo
                hi = ((b[to] << 8) | b[to + 1]) - tcb.tsr_hi
                if lo < 0:
                    lo += 0x10000
                    hi -= 1
                self.opt_tsval = ((hi & 0xFFFF) << 16) | lo
                lo = ((b[to + 6] << 8) | b[to + 7]) - tcb.ts_lo
                hi = ((b[to + 4] << 8) | b[to + 5]) - tcb.ts_hi
                if lo < 0:
                    lo += 0x10000
                    hi -= 1
                self.opt_tsecr = ((hi & 0xFFFF) << 16) | lo
        else:
            self.seg_seq = 0
            self.seg_ack = 0
        if tcb is not None and tcb.state == T.TIME_WAIT and \
                (fl & (w.SYN | w.ACK_F | w.RST)) == w.SYN and seq_gt(self.seg_seq, tcb.rcv_nxt):
            # RFC 9293 3.10.7.4 / RFC 6191: a new SYN above the old sequence space may end
            # TIME-WAIT early and start a new incarnation of the connection
            if self.find_listener(b, dport) is not None:
                st.time_wait_reuse += 1
                self.drop(tcb, 0)
                tcb = None
        if tcb is None:
            lsock = self.find_listener(b, dport)
            if lsock is not None:
                st.rx_listen_segments += 1
                inp.listen(self, lsock, m.iface, b, sport, dport)
            else:
                self._closed(b)
        elif tcb.state == T.SYN_SENT:
            st.rx_conn_segments += 1
            if not (tcb.flags & T.F_TIMED):
                self.watch(tcb)  # the segment may arm its timers
            inp.syn_sent(self, tcb, b)
        else:
            st.rx_conn_segments += 1
            if not (tcb.flags & T.F_TIMED):
                self.watch(tcb)
            inp.segment(self, tcb, b)
        stack.free(pb)

    def _closed(self, b):
        """RFC 9293 3.10.7.1: no connection. A RST is dropped; otherwise reply with a RST
        (seq = SEG.ACK if ACK, else seq 0 and ACK = SEG.SEQ + SEG.LEN)."""
        st = self.stats
        fl = self.seg_flags
        st.rx_no_conn += 1
        if fl & w.RST:
            return
        o = self.seg_hdr
        if fl & w.ACK_F:
            out.send_rst(self, b, rel_at(b, o + 8, 0, 0), 0, w.RST)
        else:
            ln = self.seg_len
            if fl & w.SYN:
                ln += 1
            if fl & w.FIN:
                ln += 1
            out.send_rst(self, b, 0, seq_add(rel_at(b, o + 4, 0, 0), ln), w.RST | w.ACK_F)

    def find_listener(self, b, dport):
        """The listener for the segment being processed (its destination at b[seg_dst]):
        one bound to that address, else one bound to the wildcard."""
        best = None
        alen = self.seg_alen
        d = self.seg_dst
        for s in self.listeners:
            if s.local_port == dport:
                li = s.local_ip
                if len(li) == alen:
                    if is_any(li):
                        if best is None or len(best.local_ip) != alen:
                            best = s
                    elif addr_eq(b, d, li, alen):
                        return s
                elif alen == 4 and best is None and s.dual():
                    best = s      # RFC 3493 3.7: IPv4 peers reach a dual IPv6 listener
        return best

    def challenge_ack(self, tcb):
        """RFC 5961 section 7 rate limit, without the CVE-2016-5696 side channel: at most
        TCP_CHALLENGE_ACK_LIMIT per second on each connection (so what one connection sees
        tells nothing about another), and for all connections together a budget drawn at
        random each second in [G/2, 3G/2), G = TCP_CHALLENGE_ACK_GLOBAL (as Linux does)."""
        now = self.stack.now
        st = self.stats
        if now - tcb.chal_start >= 1000:
            tcb.chal_start = now
            tcb.chal_count = 0
        if tcb.chal_count >= self.chal_limit:
            st.challenge_acks_limited += 1
            return
        c = self.chal
        if now - c[0] >= 1000:
            c[0] = now
            c[1] = 0
            g = self.chal_global
            c[3] += 1
            c[2] = (g >> 1) + self._hash(self.rst_src, now & 0xFFFF, self.rst_dst,
                                         c[3] & 0xFFFF) % g
        if c[1] >= c[2]:
            st.challenge_acks_global_limited += 1
            return
        tcb.chal_count += 1
        c[1] += 1
        st.challenge_acks += 1
        out.send_ack(self, tcb)

    def icmp_error(self, kind, arg, b, q):
        """ICMP error quoting one of our segments (RFC 1122 4.2.3.9, RFC 5927): its neutral
        kind (core/net/errors.py; arg the MTU of a packet too big), the quoted datagram
        located in b by q (core/net/ip.py Meta), whichever family carried it.

        The quoted sequence number must be one we sent and is not yet acknowledged, SND.UNA
        <= SEG.SEQ <= SND.MAX (RFC 5927 4.1; SND.MAX as Linux does: a pure ACK carries
        it), before ESTABLISHED exactly our ISS; else a blind attacker guessed the 4-tuple:
        dropped (icmp_out_of_window). Destination unreachable and time exceeded count;
        a packet too big teaches the path MTU (pmtu_lower), others are ignored.
        SYN-SENT: a hard error (protocol, port unreachable) refuses the connection
        (ECONNREFUSED), a soft one ends the attempt too, with EHOSTUNREACH (RFC 5461 4.1,
        as Linux does). A passive half-open connection (SYN-RECEIVED) is forgotten
        (icmp_embryonic_dropped): its SYN-ACK cannot arrive and the SYN queue slot is
        worth more; nobody accepted it, so nobody is told (Linux's tcp_req_err).
        Synchronized states: every error is soft (RFC 5927 5.2, against blind resets):
        the connection goes on, SO_ERROR reports it once, and a later timeout is
        reported as it (RFC 1122 4.2.3.9: "make the information available")."""
        st = self.stats
        st.icmp_errors += 1
        if not (is_unreachable(kind) or kind == ERR_TIME_EXCEEDED or
                kind == ERR_REASS_TIMEOUT):
            return
        p = q.l4
        sport = (b[p] << 8) | b[p + 1]
        dport = (b[p + 2] << 8) | b[p + 3]
        # the quote is our own segment: its source is our end (compared by index, no copies)
        tcb = self.lookup(b, q.dst, q.src, q.alen, dport, sport)
        if tcb is None:
            return
        seq = rel_at(b, p + 4, tcb.iss_hi, tcb.iss_lo)
        if seq_lt(seq, tcb.snd_una) or seq_gt(seq, tcb.snd_max) or \
                (seq == tcb.snd_max and tcb.state < T.ESTABLISHED):
            st.icmp_out_of_window += 1
            return
        if kind == ERR_PKT_TOO_BIG:
            # (another connection may have taught the cache already: this one follows too)
            self.stack.ip.learn_pmtu(b, q.dst, q.alen, arg)
            self.pmtu_lower(tcb)
            return
        err = EHOSTUNREACH
        if is_hard(kind):
            err = ECONNREFUSED
        elif kind == ERR_NET_UNREACH:
            err = ENETUNREACH  # as Linux's icmp_err_convert
        if tcb.state == T.SYN_SENT:
            self.drop(tcb, err)
        elif tcb.state == T.SYN_RECEIVED and tcb.flags & T.F_PASSIVE:
            st.icmp_embryonic_dropped += 1
            self.drop(tcb, 0)
        elif tcb.sock is not None:
            tcb.sock.soft_error = err

    # ---- timers -------------------------------------------------------------------------------
    def watch(self, tcb):
        """tcb may have a timer armed from now on (a segment for it, output, a socket call):
        tick visits it until it has none. Every place that can arm a timer passes here first:
        new_tcb, input, output.output, the socket's linger and keepalive, tick itself. The
        slots hold every live TCB; dropped ones leave at the next tick, or here when the
        slots are full (during a tick: then every live connection is watched again after
        it, overflow). No field on the TCB for it: on MicroPython a 74th attribute costs
        every TCB 384 bytes."""
        if tcb.flags & T.F_TIMED or tcb.state == T.CLOSED:
            return
        timed = self.timed
        n = self.ntimed
        if n == len(timed):
            if self.ticking:
                self.overflow = True
                return
            n = self._compact(0, 0, n)
        tcb.flags |= T.F_TIMED
        timed[n] = tcb
        self.ntimed = n + 1

    def _compact(self, i, j, n):
        """The live entries of timed[i:n] moved down to j on; the new count (ntimed)."""
        timed = self.timed
        while i < n:
            t = timed[i]
            i += 1
            if t.state != T.CLOSED:
                timed[j] = t
                j += 1
            else:
                t.flags &= ~T.F_TIMED
        k = j
        while k < n:
            timed[k] = None
            k += 1
        self.ntimed = j
        return j

    def tick(self, now):
        """The due timers of the watched connections (timed), which leave the list once they
        have none armed; those watched during the walk are visited too. The next deadline."""
        nxt = 0
        timed = self.timed
        i = 0
        j = 0
        cur = None
        self.ticking = True
        try:
            while i < self.ntimed:
                t = timed[i]
                i += 1
                cur = t
                if t.state == T.TIME_WAIT and t.t_conn > now:
                    d = t.t_conn  # the common waiting case, without a call per connection
                elif t.state == T.CLOSED:
                    d = 0         # dropped since it was watched
                else:
                    d = timers.run(self, t, now)
                cur = None
                if d and t.state != T.CLOSED:
                    timed[j] = t
                    j += 1
                    if nxt == 0 or d < nxt:
                        nxt = d
                else:
                    t.flags &= ~T.F_TIMED
        finally:
            # after an exception (Stack._tick) the one that raised and the rest stay watched
            if cur is not None:
                timed[j] = cur
                j += 1
            self._compact(i, j, self.ntimed)
            self.ticking = False
        if self.overflow:  # the slots were full during the walk: every live connection again
            self.overflow = False
            for t in self.conns:
                self.watch(t)
            nxt = self.stack.now + 1  # and a tick at once for them
        return nxt

    def linger_deadline(self, now):
        """2*MSL from now, rounded up to a 1024 ms boundary: TIME-WAIT (and orphan) expiries
        of many connections share a few ticks instead of one each."""
        return (now + 2 * self.msl + 1023) & ~1023

    def fin_deadline(self, now):
        """When an orphan in FIN-WAIT-2 gives up waiting for the peer's FIN: now plus
        TCP_FIN_TIMEOUT_MS (Linux's tcp_fin_timeout), rounded up like linger_deadline."""
        return (now + self.fin_timeout + 1023) & ~1023

    @staticmethod
    def is_orphan(tcb):
        """Closed by the application but still closing (TIME-WAIT aside: it holds nothing
        but the TCB and is recycled first when the table is full)."""
        st = tcb.state
        return tcb.sock is None and tcb.listener is None and st >= T.ESTABLISHED and \
            st != T.TIME_WAIT

    def orphaned(self, tcb):
        """close() handed tcb over to the stack. At most TCP_MAX_ORPHANS orphans: beyond,
        the oldest other orphan is reset (RFC 9293 3.10.5 ABORT), as Linux does with
        tcp_max_orphans, so peers that never let connections finish cannot pile them up.
        The count is kept, not recounted: a close walks the table only to evict."""
        if not self.is_orphan(tcb) or tcb.flags & T.F_ORPHAN:
            return
        tcb.flags |= T.F_ORPHAN
        self.orphans += 1
        if self.orphans > self.max_orphans:
            for t in self.conns:  # creation order: the first found is the oldest
                if t is not tcb and t.flags & T.F_ORPHAN:
                    self.stats.orphans_evicted += 1
                    self.abort(t)
                    break

    def closing(self):
        """Connections whose FIN the peer has not acknowledged yet (queued behind data, or
        sent): a host that stopped now would leave their peers waiting for the end of the
        stream (ports/cpython/host.py finish_closing)."""
        n = 0
        for t in self.conns:
            if _fin_unacked(t):
                n += 1
        return n

    def abort_closing(self):
        """Reset the connections closing() counts (RFC 9293 3.10.5 ABORT): a host giving up
        on them tells their peers so."""
        for t in list(self.conns):
            if _fin_unacked(t):
                self.abort(t)

    def not_orphan(self, tcb):
        """tcb stops being an orphan (CLOSED or TIME-WAIT)."""
        if tcb.flags & T.F_ORPHAN:
            tcb.flags &= ~T.F_ORPHAN
            self.orphans -= 1

    def arm(self, t):
        self.stack.timer_at(t)

    def flush_acks(self):
        """End of a receive burst (Stack.poll): one ACK for each connection that received
        two or more full-sized segments in it, or a FIN (input._fin), and has not ACKed them
        since (RFC 5681 4.2), or whose reads in it opened the window (socket._consumed)."""
        q = self.ack_q
        i = 0
        while i < len(q):
            tcb = q[i]
            i += 1
            if tcb.flags & T.F_ACK_BURST:
                tcb.flags &= ~T.F_ACK_BURST
                if tcb.state != T.CLOSED and (tcb.flags & T.F_ACKNOW or tcb.rcv_unacked or
                                              tcb.last_ack_sent != tcb.rcv_nxt):
                    tcb.flags |= T.F_ACKNOW
                    if tcb.rcv_unacked:
                        self.stats.burst_acks += 1
                    out.output(self, tcb)
        del q[:]

    def timed_out(self, tcb):
        """Retransmissions or keepalives unanswered: ETIMEDOUT, or the soft error an ICMP
        message gave meanwhile (RFC 1122 4.2.3.9), as Linux reports it."""
        self.stats.conn_timeout += 1
        s = tcb.sock
        err = ETIMEDOUT
        if s is not None and s.soft_error:
            err = s.soft_error
            s.soft_error = 0
        self.drop(tcb, err)

    def abort(self, tcb):
        """RFC 9293 3.10.5 ABORT: RST to the peer (in synchronized states), then gone."""
        if tcb.state >= T.SYN_RECEIVED and tcb.state != T.TIME_WAIT:
            out.send_rst_tcb(self, tcb)
        self.stats.conn_aborted += 1
        s = tcb.sock
        tcb.sock = None
        self.drop(tcb, 0)
        tcb.sock = s
