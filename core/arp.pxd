import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.route cimport RouteCache

# Types for arp.py under Cython (the .py stays MicroPython's): the cache's per-frame call,
# resolve (issue 13: every IPv4 frame sent on Ethernet), is a C call with the connection's
# route cache as a C struct and its generation a C integer. The rest of
# the cache keeps an instance dict (tests and tools wrap its methods, e.g. find).

cdef class ArpCache:
    cdef dict __dict__
    cdef public object iface, stack   # the interface cimports this file: not typed here
    cdef public list ip, mac, state, expires, used
    cdef public long long gen

    @cython.locals(i=Py_ssize_t, s=cython.longlong, now=cython.longlong, b=bytearray,
                   o=Py_ssize_t, m=bytearray, src=bytes, k=cython.int)
    cpdef bint resolve(self, PacketBuffer pb, nexthop, RouteCache rc=*)
