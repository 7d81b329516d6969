import cython
cimport ustack.core.wire.tcp_const as w

# Types for options.py under Cython (the .py stays MicroPython's): offsets, kinds and
# lengths as C integers, the TCP option constants (w.) as C constants; b is any buffer.
# SEEN_* stay Python constants (other modules import them).

@cython.locals(seen=cython.longlong, end=cython.Py_ssize_t, k=cython.longlong,
               ln=cython.Py_ssize_t, bit=cython.longlong)
cpdef bint parse(t, b, Py_ssize_t o, Py_ssize_t n)

@cython.locals(lo=cython.longlong, hi=cython.longlong)
cpdef int write_ts(b, Py_ssize_t o, long long tsval, long long vhi, long long vlo,
                   long long tsecr, long long ehi, long long elo)

# a SYN's and SYN-ACK's options (issue 13: once a connection, untyped until)
@cython.locals(p=cython.Py_ssize_t)
cpdef int write_syn(b, Py_ssize_t o, long mss, long ws, bint sack, bint ts)
