from ustack.core cimport socket as so

# Types for socket.py under Cython (the .py stays MicroPython's): a stream socket's own state
# is a C struct on the common one (core/socket.pxd) - counts, flags and the last soft error
# as C ints - instead of slot pointers (issue 13: one per connection, idle ones too).
# TcpSocket, its Python subclass, adds only a lazily made __dict__, where the options few
# sockets set (keepalive times, linger, TCP_CONGESTION) go once set: class defaults until.

cdef class StreamSocket(so.Socket):
    cdef public object tcb, acc_q
    cdef public int backlog, syn_count, tflags, soft_error
    cdef public unsigned char listening, connecting
