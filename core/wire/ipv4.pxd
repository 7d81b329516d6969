import cython
from ustack.core.checksum cimport csum

# Types for ipv4.py under Cython (the .py stays MicroPython's): the header writer (once per
# datagram sent) takes C-integer offsets and fields and sums the header with a C call. The
# module's constants stay Python (ipv4_const.pxd declares them for cimporters).

@cython.locals(i=cython.int, s=cython.uint)
cpdef write_header(b, Py_ssize_t o, long long total_len, long long ident, long long frag,
                   long long ttl, long long proto, src, dst)
