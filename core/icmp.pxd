import cython
from ustack.core.checksum cimport update16
cimport ustack.core.checksum_c as CS
from ustack.core.buf cimport PacketBuffer
from ustack.core.stack cimport Stack
from ustack.core.net.ip cimport Meta
from ustack.core.iface cimport Interface
from ustack.core.ipv4 cimport IPv4
from ustack.core.stats cimport Counters
cimport ustack.core.wire.icmp4_const as w
cimport ustack.core.wire.ipv4_const as ip4

# Types for icmp.py under Cython (the .py stays MicroPython's): the in-place rewrite of an
# echo request into its reply in C integers over the bytearray (issue 13: a ping's byte work
# was generic Python operations, as slow compiled as interpreted). b is a packet buffer. The
# ICMP and IPv4 constants it reads as w.X and ip4.X are C constants (wire/*_const.pxd; names
# not there, ip4.aton, stay the modules').

@cython.locals(o=Py_ssize_t, a=Py_ssize_t, c=cython.uint, t=cython.int, s=cython.long)
cpdef Py_ssize_t echo_rewrite(bytearray b, Py_ssize_t off, Py_ssize_t ihl, Py_ssize_t tot,
                              bint bcast, ip, long ttl)

cpdef mac_back(bytearray b, bytes mac)


# The ICMP object a C struct for what an echo request reads, its input and the echo reply in
# C integers with the buffer, metadata and interface typed (issue 13: a ping went through
# both untyped); an instance __dict__ keeps every other attribute as before.
cdef class ICMP:
    cdef dict __dict__
    cdef public Stack stack
    cdef public Counters stats
    cdef public bint echo_broadcast, echo_enabled

    @cython.locals(b=bytearray, bcast=cython.bint, off=Py_ssize_t, o=Py_ssize_t, n=Py_ssize_t,
                   ihl=Py_ssize_t, tot=Py_ssize_t, t=cython.int, iface=Interface, st=Counters)
    cpdef input(self, PacketBuffer pb, Meta m)

    @cython.locals(b=bytearray, v4=IPv4)
    cpdef _echo_reply(self, Interface iface, PacketBuffer pb, Py_ssize_t off, Py_ssize_t ihl,
                      Py_ssize_t tot, bint bcast)
