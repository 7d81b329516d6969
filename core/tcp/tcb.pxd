from ustack.core.tcp.ring cimport Ring

# Types for tcb.py under Cython (the .py stays MicroPython's): the TCB is a C struct, its
# counters, sequence numbers (relative, below 2**32: seq.py), timers (absolute ms) and flags
# are 64-bit C integers - exact for every value they can hold, an OverflowError (never a
# silent wrap) past that. The rings are typed; other objects (addresses, controller, socket)
# stay objects.

cdef class TCB:
    cdef public long long state, flags
    cdef public object sock, listener, hnext
    cdef public long long key
    cdef public object local_ip, remote_ip
    cdef public long long local_port, remote_port, iface_mtu
    cdef public long long iss_hi, iss_lo, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2
    cdef public long long max_sndwnd, snd_wscale, mss, peer_mss
    cdef public long long irs_hi, irs_lo, rcv_nxt, rcv_adv, rcv_wscale, rcv_cap, rcv_unacked
    cdef public long long ooo_fin, last_ack_sent, dsack_s, dsack_e
    cdef public long long ts_recent, ts_recent_age, ts_hi, ts_lo, ts_start, tsr_hi, tsr_lo
    cdef public long long srtt8, rttvar4, rto, backoff, rtt_seq, rtt_start, retries, rexmits
    cdef public long long t_rexmt, t_persist, t_delack, t_keep, t_conn, t_tlp
    cdef public long long keep_idle, keep_intvl, keep_cnt, keep_probes, last_rx
    cdef public Ring snd, rcv       # from the RingPool (None until data can flow)
    cdef public object ooo, sb, cc
    cdef public long long error, ttl, tos, snd_cap
    cdef public long long chal_start, chal_count, ecn_point
    cdef public object rc           # route.RouteCache
