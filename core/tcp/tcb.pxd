from ustack.core.tcp.ring cimport Ring
from ustack.core.socket cimport Socket

# Types for tcb.py under Cython (the .py stays MicroPython's): the TCB is a C struct. Its
# times and timers (absolute ms) and the retransmission count are 64-bit C integers; its
# sequence numbers, ACK numbers and the peer's TSval are unsigned 32-bit ones (relative,
# 0 .. 2**32 - 1: every value assigned comes from seq.py's modulo-2**32 helpers or a wire
# value read relative to its base, and no code does raw arithmetic on them); fields bounded
# well below 2**31 (state, flags, ports, 16-bit halves, windows, MSS, RTT estimators, buffer
# sizes, counts, the keepalive times: TCP_KEEP*_MS at most a day, the socket options
# Linux's 32767 s) are 32-bit ones. An idle TCB is 416 bytes, a pymalloc class of its own
# (issue 13; 480 with 64-bit sequence numbers). A Python int past a field's type raises
# OverflowError when assigned (never a silent wrap); typed C code assigns only values the
# field's range holds (windows below 2**30, 16-bit halves, ms and byte counts, sequence
# numbers modulo 2**32). The rings are typed; other objects (addresses, controller, socket)
# stay objects. Objects first, then 64-bit, then 32-bit fields: no padding between them.

cdef class TCB:
    cdef public Socket sock         # its socket: input wakes it with a C call (_event)
    cdef public object listener, hnext
    cdef public object local_ip, remote_ip
    cdef public Ring snd, rcv       # from the RingPool (None until data can flow)
    cdef public object ooo, sb, cc
    cdef public object rc           # route.RouteCache
    cdef public long long ts_recent_age, ts_start, rtt_start, rexmits
    cdef public long long t_rexmt, t_persist, t_delack, t_keep, t_conn, t_tlp
    cdef public long long last_rx, chal_start
    cdef public unsigned int snd_una, snd_nxt, snd_max, snd_wl1, snd_wl2
    cdef public unsigned int rcv_nxt, rcv_adv, ooo_fin, last_ack_sent, dsack_s, dsack_e
    cdef public unsigned int ts_recent, rtt_seq, ecn_point
    cdef public int state, flags
    cdef public int local_port, remote_port, iface_mtu
    cdef public int iss_hi, iss_lo, snd_wnd, max_sndwnd, snd_wscale, mss, peer_mss
    cdef public int irs_hi, irs_lo, rcv_wscale, rcv_cap, rcv_unacked
    cdef public int ts_hi, ts_lo, tsr_hi, tsr_lo
    cdef public int srtt8, rttvar4, rto, backoff, retries, keep_probes
    cdef public int keep_idle, keep_intvl, keep_cnt
    cdef public int error, ttl, tos, snd_cap, chal_count
