import cython
from ustack.core.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_sub, seq_add
from ustack.core.tcp.ooo cimport RangeSet
from ustack.core.tcp.rack cimport Rack

# Types for scoreboard.py under Cython (the .py stays MicroPython's): the scoreboard is a C
# struct - sequence values (relative, below 2**32), byte counts and times (ms) as 64-bit C
# integers, flags as C booleans (read back as True/False), its range set and RACK typed -
# and its methods C calls on C integers (issue 13: every ACK that moves SND.UNA on a SACK
# connection cuts it, and input/output read its fields, through generic attribute lookups
# before). A value past its type raises OverflowError, never wraps.

@cython.locals(lim=cython.longlong)
cpdef long long mul_div_ceil(long long a, long long b, long long c)

cdef class Scoreboard:
    cdef public RangeSet rs
    cdef public Rack rack
    cdef public long long freed
    cdef public long long sacked, point, high_rxt, rescue, ssthresh, recover_fs
    cdef public long long prr_delivered, prr_out, budget, seg, seg_len, tlp_high, tlp_lo
    cdef public long long lost_to, una_rxt_at, una_rxt_hi, una_rxt_end
    cdef public int dupacks
    cdef public bint in_recovery, point_valid, rescue_valid, first, tlp_out, tlp_rxt
    cdef public bint una_rxt_est
    cpdef fresh(self)
    cpdef reset(self)
    @cython.locals(rs=RangeSet)
    cpdef cut(self, long long una)
    @cython.locals(ok=cython.bint)
    cpdef bint add(self, long long s, long long e)
    @cython.locals(rs=RangeSet, st=list, en=list, i=cython.int, acc=cython.longlong,
                   cnt=cython.int, lim=cython.longlong, e=cython.longlong)
    cpdef long long lost_end(self, long long una, long long mss)
    cpdef bint is_lost(self, long long seq, long long una, long long mss)
    @cython.locals(rs=RangeSet, p=cython.longlong, le=cython.longlong, h=cython.longlong)
    cpdef long long pipe(self, long long una, long long hi, long long mss)
    @cython.locals(rs=RangeSet, n=cython.int, st=list, en=list, s=cython.longlong,
                   i=cython.int, ln=cython.longlong, top=cython.longlong,
                   below=cython.longlong, lo=cython.longlong)
    cpdef int next_seg(self, long long una, long long hi, long long mss, bint new_ok)
    cpdef bint may_enter(self, long long ack)
    cpdef enter(self, long long una, long long hi, long long ssthresh)
    @cython.locals(e=cython.longlong)
    cpdef una_moved(self, long long una, long long hi, long long now, long long mss)
    @cython.locals(rs=RangeSet, age=cython.longlong)
    cpdef bint una_rxt_lost(self, long long una, long long now, long long srtt,
                            long long reo_wnd, long long delivered)
    @cython.locals(rs=RangeSet)
    cpdef bint tlp_answered(self, long long ack, bint dsack)
    cpdef leave(self)
    @cython.locals(ss=cython.longlong, snd=cython.longlong, lim=cython.longlong)
    cpdef long long prr(self, long long delivered, long long pipe, long long mss)
    @cython.locals(b=cython.longlong)
    cpdef sent(self, long long n)
