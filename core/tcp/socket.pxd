import cython
from ustack.core cimport socket as so
from ustack.core.tcp.tcb cimport TCB
from ustack.core.tcp.ring cimport Ring, RingPool
from ustack.core.tcp.proto cimport TCP
cimport ustack.core.tcp.tcb_const as T
cimport ustack.core.tcp.output as out
from ustack.core.tcp.seq cimport seq_diff

# Types for socket.py under Cython (the .py stays MicroPython's): a stream socket's own state
# is a C struct on the common one (core/socket.pxd) - counts, flags and the last soft error
# as C ints - instead of slot pointers (issue 13: one per connection, idle ones too).
# TcpSocket, its Python subclass, adds only a lazily made __dict__, where the options few
# sockets set (keepalive times, linger, TCP_CONGESTION) go once set: class defaults until.
# A request's calls (readable, recv_into, writable, send and what they call: the ring pool,
# the window update, output) are C calls with the TCB, its rings and the TCP object as C
# structs and the tcb constants (T.) C constants (issue 13: the echo's socket calls were
# untyped Python, generic attribute lookups and boxed ints throughout).

@cython.locals(ooo=object)
cpdef _trim_rcv(TCP tcp, TCB tcb)

cdef class StreamSocket(so.Socket):
    cdef public TCB tcb             # None, or its connection (C field reads, issue 13)
    cdef public object acc_q
    cdef public int backlog, syn_count, tflags, soft_error
    cdef public unsigned char listening, connecting

    # a service's accept (issue 13: the new socket's twenty fields were generic stores)
    @cython.locals(tcb=TCB, s=StreamSocket)
    cpdef accept_conn(self)
    @cython.locals(tcb=TCB)
    cpdef readable(self)
    cpdef writable(self)
    @cython.locals(tcb=TCB, st=cython.int, snd=Ring, free=Py_ssize_t, tcp=TCP)
    cpdef bint _writable_now(self)
    @cython.locals(tcb=TCB, r=Ring, st=cython.int)
    cpdef bint _wait_data(self, flags)
    @cython.locals(tcb=TCB, r=Ring, n=Py_ssize_t)
    cpdef recv_into(self, buf, nbytes=*, flags=*)
    @cython.locals(tcb=TCB, n=Py_ssize_t, k=Py_ssize_t, st=cython.int, snd=Ring, tcp=TCP)
    cpdef send(self, data, flags=*)
    @cython.locals(tcb=TCB, r=Ring, st=cython.int, free=cython.longlong, cur=cython.longlong,
                   step=cython.longlong, was=cython.longlong, tcp=TCP)
    cpdef _consumed(self, Py_ssize_t n=*)
