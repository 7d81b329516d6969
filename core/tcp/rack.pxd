import cython
from ustack.core.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_sub
from ustack.core.tcp.ooo cimport RangeSet

# Types for rack.py under Cython (the .py stays MicroPython's): RACK's state is a C struct -
# sequence values (relative, below 2**32) and times (ms) as 64-bit C integers, counts as C
# ints, flags as C booleans (read back as True/False) - and its methods are C calls on C
# integers (issue 13: every ACK that moves SND.UNA on a SACK connection goes through
# ts_at, delivered, update, sample and cut: generic method calls with boxed arguments and
# attribute lookups by name before). The run log stays two lists of Python ints.

cdef class Rack:
    cdef public list seq, ts
    cdef public int n, slots
    cdef public bint valid, reo_seen, dsack_valid, cand_valid
    cdef public long long xmit_ts, end_seq, rtt, min_rtt, fack, fack_next, rxt_hi
    cdef public long long rxt_lo2, rxt_hi2, dsack_round, t_reo, cand, reo_wnd, acked_ts
    cdef public int reo_mult, reo_persist, reordering, reord_seen
    cpdef fresh(self)
    @cython.locals(n=cython.int)
    cpdef sent(self, long long seq, long long now)
    @cython.locals(sq=list, ts=list, n=cython.int, k=cython.int, i=cython.int,
                   best=cython.longlong, d=cython.longlong)
    cpdef int _merge(self)
    @cython.locals(sq=list, ts=list, n=cython.int, k=cython.int, i=cython.int)
    cpdef cut(self, long long una, long long hi)
    @cython.locals(sq=list, i=cython.int)
    cpdef long long ts_at(self, long long s)
    cpdef rxt(self, long long e)
    cpdef rxt_range(self, long long s, long long e)
    cpdef reset(self)
    @cython.locals(f=cython.longlong, d=cython.longlong)
    cpdef delivered(self, long long s, long long e, long long mss)
    @cython.locals(e=cython.longlong, t=cython.longlong)
    cpdef update(self, long long now)
    @cython.locals(r=cython.longlong)
    cpdef sample(self, long long t, long long e, long long now)
    cpdef dsack(self, long long una, long long nxt)
    cpdef recovered(self)
    @cython.locals(m=cython.longlong, w=cython.longlong, f=cython.longlong, c=cython.longlong)
    cpdef long long window(self, bint recovering, long long sacked, long long mss,
                           long long srtt)
    @cython.locals(x=cython.longlong, top=cython.longlong, b=cython.longlong, sq=list,
                   ts=list, n=cython.int, wait=cython.longlong, lost=cython.bint,
                   i=cython.int, t=cython.longlong, e=cython.longlong, s=cython.longlong,
                   rem=cython.longlong)
    cpdef long long detect(self, RangeSet rs, long long una, long long hi, long long lost_to,
                           long long now, long long reo_wnd)
