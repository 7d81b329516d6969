import cython

# Types for ipv4.py under Cython (the .py stays MicroPython's): the header writer of every
# IPv4 datagram sent, its arithmetic and checksum in C integers (issue 13: 1.85 us a datagram
# before, compiled, 0.87 after; its pseudo-header sum comes back with it); b is a bytearray
# (a packet buffer), src and dst any 4-byte buffers.

@cython.locals(a=cython.long, c=cython.long, s=cython.long, p=cython.long)
cpdef long write_header(bytearray b, Py_ssize_t o, long total_len, long ident, long frag, long ttl,
                   long proto, src, dst)
