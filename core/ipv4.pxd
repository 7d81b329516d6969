import cython

# Types for ipv4.py under Cython (the .py stays MicroPython's): the Identification hash of
# every datagram sent (RFC 7739 5.3) in C integers, not Python ints (issue 13: 1.4 us a
# datagram before, compiled).

@cython.locals(i=cython.int, x=cython.long)
cpdef long ident_hash(long f, long g, src, dst, long proto)
