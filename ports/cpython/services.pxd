from ustack.core.udp cimport UdpSocket

# Types for services.py under Cython (CPython only; the .py stays the pure fallback): the UDP
# echo/discard hook, run after every poll, reads its socket's queue length as a C field
# (core/udp.pxd) and counts in C (issue 13: the services' per-request hooks ran as bytecode).

cdef class UdpEcho:
    cdef dict __dict__
    cdef public UdpSocket sock
    cdef public bint reply
    cdef public long long count
