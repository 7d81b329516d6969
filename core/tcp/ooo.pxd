import cython
from ustack.core.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_sub

# Types for ooo.py under Cython (the .py stays MicroPython's): a range set is a C struct with
# its count and slots as C ints and its methods C calls on C-integer sequence values (relative,
# below 2**32: 64-bit C integers hold them, seq.py's helpers as C calls); the slots stay two
# lists of Python ints. The SACK scoreboard asks it on every ACK that moves SND.UNA (issue
# 13: each of those calls was a generic method call with boxed arguments).

cdef class RangeSet:
    cdef public list start, end
    cdef public int slots, n, latest
    cpdef clear(self)
    @cython.locals(st=list, en=list, n=cython.int, i=cython.int, j=cython.int, k=cython.int,
                   gone=cython.int)
    cpdef bint add(self, long long s, long long e)
    @cython.locals(st=list, en=list, n=cython.int, j=cython.int)
    cpdef _drop_first(self, int k)
    @cython.locals(k=cython.int)
    cpdef long long advance(self, long long nxt)
    @cython.locals(k=cython.int)
    cpdef cut(self, long long lo)
    cpdef long long highest(self, long long nxt)
    @cython.locals(t=cython.longlong, i=cython.int)
    cpdef long long total(self)
    @cython.locals(t=cython.longlong, i=cython.int, st=list, en=list, s=cython.longlong,
                   e=cython.longlong)
    cpdef long long covered(self, long long a, long long b)
    @cython.locals(st=list, en=list, i=cython.int)
    cpdef int overlap(self, long long a, long long b)
    @cython.locals(st=list, en=list, i=cython.int)
    cpdef long long top_uncovered(self, long long a, long long b)
