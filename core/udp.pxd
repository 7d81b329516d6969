import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.stack cimport Stack
from ustack.core.net.ip cimport Meta, addr_eq
from ustack.core cimport socket as so
from ustack.core.checksum cimport csum

# Types for udp.py under Cython (the .py stays MicroPython's): a datagram socket's queue state
# and the UDP object are C structs, and the per-datagram input (checks, demultiplexing) and
# output (header) run in C integers over the bytearray with the buffer and metadata typed
# (issue 13: a UDP echo's datagram went through both untyped). The UDP object keeps an
# instance __dict__ for anything not declared here.

cdef class UdpSocket(so.Socket):
    cdef public object qhead, qtail
    cdef public Py_ssize_t qlen, qmax, qbufs
    cdef public bint connected, shut_wr

cdef class UDP:
    cdef dict __dict__
    cdef public Stack stack
    cdef public object stats, sockets, eph

    @cython.locals(b=bytearray, o=Py_ssize_t, n=Py_ssize_t, bcast=cython.bint,
                   ulen=Py_ssize_t, dport=cython.long, sport=cython.long, score=cython.int,
                   matched=cython.int, sc=cython.int, alen=Py_ssize_t, d=Py_ssize_t,
                   off=Py_ssize_t, q=cython.int)
    cpdef input(self, PacketBuffer pb, Meta m)

    @cython.locals(pb=PacketBuffer, b=bytearray, o=Py_ssize_t, ul=Py_ssize_t)
    cpdef output(self, src, long sport, dst, long dport, data, Py_ssize_t n, long long ttl=*,
                 long long tos=*, iface=*, df=*)
