import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.arp cimport ArpCache
from ustack.core.stats cimport Counters
cimport ustack.core.wire.ethernet_const as eth

# Types for iface.py under Cython (the .py stays MicroPython's): the interface is a C struct
# (issue 13: every frame in and out reads its MAC, MTU, link header length, VLAN and offload
# capabilities), its own per-frame calls are C calls with C-integer offsets and lengths, the
# frame is indexed as a bytearray, and the Ethernet constants (eth.) are C constants.
# Addresses are bytes (ip4.aton, prefix_mask and set_address make nothing else).

cdef class Interface:
    cdef public object stack, name, driver, rx_large, gateway
    cdef public Counters stats
    cdef public ArpCache arp
    cdef public object loop, nd, mld, slaac
    cdef public bytes mac, ip, mask, net, bcast
    cdef public int l2, hlen, mtu, mtu6, caps, vlan, prefix
    cdef public bint up

    @cython.locals(b=bytearray, m=bytes, et=cython.int, off=Py_ssize_t, v=cython.int, st=Counters)
    cpdef input(self, PacketBuffer pb, Py_ssize_t n)
    @cython.locals(off=Py_ssize_t, b=bytearray, i=Py_ssize_t, n0=cython.int)
    cpdef output(self, PacketBuffer pb, nexthop, rc=*)
    @cython.locals(c=bytes)
    cpdef bint _is_bcast(self, a)
    @cython.locals(n=Py_ssize_t, b=bytearray, i=Py_ssize_t, ofl=cython.longlong, ok=cython.bint,
                   st=Counters)
    cpdef transmit(self, PacketBuffer pb)
    @cython.locals(a=bytes)
    cpdef bint is_local(self, b, Py_ssize_t o)
    @cython.locals(m=bytes, nt=bytes)
    cpdef bint on_link(self, b, Py_ssize_t o)
    @cython.locals(c=bytes)
    cpdef bint _is_bcast_at(self, b, Py_ssize_t o)
