import cython

# Types for ipv4.py under Cython (the .py stays MicroPython's): the header writer (once per
# datagram sent) writes into a bytearray (a packet buffer) at C-integer offsets from C-integer
# fields, and sums the header from those fields. The module's constants stay Python
# (ipv4_const.pxd declares them for cimporters).

@cython.locals(i=cython.int, s=cython.longlong)
cpdef write_header(bytearray b, Py_ssize_t o, long long total_len, long long ident,
                   long long frag, long long ttl, long long proto, src, dst)
