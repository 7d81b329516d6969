import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.stack cimport Stack
from ustack.core.net.ip cimport Meta, addr_eq
from ustack.core cimport socket as so
cimport ustack.core.checksum_c as ck
from ustack.core.buf cimport Pool
cimport ustack.core.wire.memcopy_c as fields

# Types for udp.py under Cython (the .py stays MicroPython's): a datagram socket's queue state
# and the UDP object are C structs, and the per-datagram input (checks, demultiplexing) and
# output (header) run in C integers over the bytearray with the buffer and metadata typed
# (issue 13: a UDP echo's datagram went through both untyped). The UDP object keeps an
# instance __dict__ for anything not declared here.

cdef class UDP

cdef class UdpSocket(so.Socket):
    cdef public object qhead, qtail
    cdef public Py_ssize_t qlen, qmax, qbufs
    cdef public bint connected, shut_wr

    # RFC 862's answer (the UDP echo service's per-request call): typed, its queue and
    # output calls C calls, the payload copied once, straight into the reply (issue 13)
    @cython.locals(pb=PacketBuffer, b=bytearray, t=Py_ssize_t, u=Py_ssize_t,
                   port=cython.long, d=cython.int, n=Py_ssize_t, udp=UDP)
    cpdef echo(self, reply=*)

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
                 long long tos=*, iface=*, df=*, Py_ssize_t doff=*)

# a datagram's way into and out of a socket queue (UDP's and raw's sockets): C calls with the
# buffers, the stack and the pool as C structs (the echo: link on input, unlink once answered)
@cython.locals(pool=Pool)
cpdef int admit(s, Py_ssize_t k, copy) except -1
cpdef link(s, PacketBuffer pb)
@cython.locals(stack=Stack, pb=PacketBuffer, nxt=PacketBuffer, k=Py_ssize_t, i=Py_ssize_t)
cpdef unlink(s)
