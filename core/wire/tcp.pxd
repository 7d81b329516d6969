import cython

# Types for tcp.py under Cython (the .py stays MicroPython's): the header writers with C
# integer offsets, ports, sequence values and halves (one call per segment); b is any
# buffer. The module's constants stay Python (tcp_const.pxd declares them for cimporters).

cpdef write_fixed(b, Py_ssize_t o, long long sport, long long dport, long long hlen,
                  long long flags, long long win)

@cython.locals(lo=cython.longlong, hi=cython.longlong)
cpdef write_header_rel(b, Py_ssize_t o, long long sport, long long dport, long long seq,
                       long long shi, long long slo, long long ack, long long ahi,
                       long long alo, long long hlen, long long flags, long long win)
