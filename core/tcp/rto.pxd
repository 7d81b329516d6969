import cython
from ustack.core.tcp.tcb cimport TCB

# Types for rto.py under Cython (the .py stays MicroPython's): the RFC 6298 estimator on
# the TCB's C-integer fields (one sample per ACK with timestamps). current() (every ACK
# that moves SND.UNA rearms the timer with it) caps a backoff past 16 before it shifts: the
# TCB's rto (below 2**31) shifted at most 16 stays within 64 bits (backoff follows
# TCP_MAX_RETRIES, up to 255).

cdef long long G

@cython.locals(delta=cython.longlong)
cpdef sample(TCB tcb, long long r, long long rto_min, long long rto_max)

@cython.locals(v=cython.longlong, rto=cython.longlong)
cpdef long long compute(TCB tcb, long long rto_min, long long rto_max)

@cython.locals(r=cython.longlong)
cpdef long long current(TCB tcb, long long rto_max)
