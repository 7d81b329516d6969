import cython
from ustack.core.buf cimport PacketBuffer, Pool
cimport ustack.core.checksum_c as ck

# Types for net/ip.py under Cython (the .py stays MicroPython's): the per-packet metadata
# (issue 13: written for every datagram delivered, read by every transport) is a C struct
# with C-integer offsets, lengths and sums; the family-neutral output and buffer layout calls
# are C calls with C-integer arguments, and the transport checksum helpers take C integers.

cdef class Meta:
    cdef public object iface
    cdef public int family, hdr, src, dst, alen, l4, l4len, proto, ecn
    cdef public long long psum
    cdef public bint bcast, csum_ok, partial

cdef class IP:
    cdef public object stack, v4, v6, pmtu
    cdef public Pool pool
    cdef public Meta meta, quote
    cdef public Py_ssize_t l2_reserve
    cpdef output(self, PacketBuffer pb, long long proto, src, dst, Py_ssize_t csum_off=*,
                 long long ttl=*, long long tos=*, df=*, iface=*, rc=*)
    @cython.locals(pb=PacketBuffer)
    cpdef alloc_tx(self, dst)
    @cython.locals(pb=PacketBuffer)
    cpdef alloc_tx_large(self, dst)

@cython.locals(c=cython.uint)
cpdef fill_csum(b, Py_ssize_t lo, Py_ssize_t l4, Py_ssize_t co, unsigned long long psum,
                long long proto)

cpdef partial_csum(PacketBuffer pb, b, Py_ssize_t co, unsigned long long s)

# an address compare on every TCP segment's lookup and UDP datagram's demux: a C call over
# the two buffers' bytes (any buffer: bytes, bytearray, memoryview)
@cython.locals(i=Py_ssize_t)
cpdef bint addr_eq(const unsigned char[:] b, Py_ssize_t o, const unsigned char[:] a,
                   Py_ssize_t alen)
