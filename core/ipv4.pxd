import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.stats cimport Counters
from ustack.core.iface cimport Interface
from ustack.core.net.ip cimport Meta, fill_csum, partial_csum, addr_eq
from ustack.core.route cimport RouteCache
from ustack.core.checksum cimport update16
cimport ustack.core.checksum_c as ck
from ustack.core.wire.ipv4 cimport write_header as write_ip_header
cimport ustack.core.wire.ipv4_const as w

# Types for ipv4.py under Cython (the .py stays MicroPython's): the IPv4 layer is a C struct
# and its per-datagram calls (input, output, the Identification hash, the broadcast and
# source checks) C calls (issue 13: every segment each way passes here); offsets, lengths,
# header fields and the hash's state are C integers, the packet is indexed as a bytearray,
# the interface, metadata and route cache are C structs, the header constants (w.) C
# constants (wire/ipv4_const.pxd), the header writer and checksum helpers C calls.

cdef class IPv4:
    cdef public object stack, reass, big, forward, forward_bcast
    cdef public Counters stats
    cdef public Meta meta
    cdef public bytearray fwd_nh
    cdef public list id_count
    cdef public long long ttl, id_key1, id_key2

    @cython.locals(b=bytearray, ofl=cython.longlong, vi=cython.int, ihl=Py_ssize_t,
                   tot=Py_ssize_t, s0=cython.int, d0=cython.int, lo=cython.bint,
                   local=cython.bint, bcast=cython.bint, frag=cython.int, proto=cython.int,
                   m=Meta, r=PacketBuffer, took=cython.bint, st=Counters)
    cpdef input(self, Interface iface, PacketBuffer pb, Py_ssize_t off, Py_ssize_t n)

    @cython.locals(iface=Interface)
    cpdef bint _ours(self, b, Py_ssize_t o)

    @cython.locals(iface=Interface)
    cpdef bint is_broadcast(self, b, Py_ssize_t o)

    @cython.locals(b=bytearray, l4=Py_ssize_t, off=Py_ssize_t, tot=Py_ssize_t,
                   gso=cython.longlong, lo=Py_ssize_t, c=cython.uint, ps=cython.long,
                   st=Counters)
    cpdef output(self, PacketBuffer pb, long long proto, src, dst, Py_ssize_t csum_off=*,
                 long long ttl=*, long long tos=*, df=*, Interface iface=*, RouteCache rc=*)

    @cython.locals(h=cython.long, k=cython.int, c=cython.long)
    cpdef long long next_ident(self, src, dst, long long proto)

@cython.locals(s=cython.longlong)
cpdef long long _pseudo_sum(bytearray b, Py_ssize_t o, long long proto)

@cython.locals(i=cython.int, x=cython.long)
cpdef long ident_hash(long f, long g, src, dst, long proto)
