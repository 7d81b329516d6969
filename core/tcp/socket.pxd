from ustack.core cimport socket as so

# Types for socket.py under Cython (the .py stays MicroPython's): a stream socket's own state
# is a C struct on the common one (core/socket.pxd) - counts, flags, the linger time and the
# last soft error and the keepalive times (a socket option's seconds * 1000, at most
# MAX_KEEP_S s) as C ints - instead of 15 slot pointers (issue 13: one per connection, idle
# ones too). TcpSocket, its Python subclass, adds only a lazily made __dict__.

cdef class StreamSocket(so.Socket):
    cdef public object tcb, acc_q, cc_name
    cdef public int keep_idle, keep_intvl, keep_cnt
    cdef public int backlog, syn_count, tflags, linger, soft_error
    cdef public unsigned char listening, connecting
