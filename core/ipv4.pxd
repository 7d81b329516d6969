import cython
cimport ustack.core.wire.ipv4_const as w

# Types for ipv4.py under Cython (the .py stays MicroPython's): the header constants it reads
# as w.X (HDR_LEN, PROTO_*, FLAG_*) as C constants, not a module attribute lookup each
# (wire/ipv4_const.pxd; w.write_header stays the module's); the Identification hash of every
# datagram sent (RFC 7739 5.3) in C integers (issue 13: 1.4 us a datagram before, compiled).

@cython.locals(i=cython.int, x=cython.long)
cpdef long ident_hash(long f, long g, src, dst, long proto)
