# Types for cc_newreno.py under Cython (the .py stays MicroPython's): the controller's state is
# a C struct (issue 13: one per connection, idle ones too) - no per-field pointer, no boxed int
# for cwnd, ssthresh or the MSS. Windows, the MSS, counts within one window and the counts of
# reductions and recoveries are 32-bit (every window stays below 2**30: cc.CWND_MAX);
# sequence numbers (relative, below 2**32), TSvals and tcb.rexmits 64-bit; the four flags one
# byte each (read back as 0/1): 128 bytes, a smaller pymalloc class than 144. CUBIC and the
# fixed window subclass it in Python (their own __slots__). A value past its type raises
# OverflowError, never wraps.

cdef class NewReno:
    cdef public long long recover, ep_ts, ep_lo, ep_hi, ep_rx, lt_hi
    cdef public int mss, cwnd, ssthresh, dupacks, acked_ca, u_cwnd, u_ssthresh
    cdef public int recovered, events, ep_ev, ep_kind, ep_dsack, ep_pipe
    cdef public unsigned char in_recovery, recover_valid, ep_eifel, ss_rto
