import cython

# Types for seq.py under Cython (the .py stays MicroPython's): sequence arithmetic in 64-bit
# C integers. Every operand is a relative value or a 32-bit wire value (0 .. 2**32-1), so
# a - b and a + n never overflow 64 bits and the masks keep results exactly the .py's
# (modulo 2**32); an int that does not fit raises OverflowError instead of wrapping.

cdef long long M32, HALF, SMALL

@cython.locals(r=cython.longlong)
cpdef long long seq_add(long long a, long long n)
@cython.locals(d=cython.longlong)
cpdef long long seq_sub(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef long long seq_diff(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_lt(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_le(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_gt(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_ge(long long a, long long b)
cpdef long long seq_max(long long a, long long b)
cpdef long long seq_min(long long a, long long b)
@cython.locals(d=cython.longlong, n=cython.longlong)
cpdef bint seq_between(long long lo, long long x, long long hi)
@cython.locals(d=cython.longlong)
cpdef bint seq_in(long long x, long long lo, long long n)
@cython.locals(lo=cython.longlong, hi=cython.longlong)
cpdef long long rel_at(b, Py_ssize_t o, long long bhi, long long blo)
@cython.locals(hi=cython.longlong)
cpdef long long hi_minus_1(b, Py_ssize_t o)
cpdef long long lo_minus_1(b, Py_ssize_t o)
@cython.locals(lo=cython.longlong, hi=cython.longlong)
cpdef put_rel(b, Py_ssize_t o, long long rel, long long bhi, long long blo)
