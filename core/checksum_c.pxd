from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcpy
from libc.stdint cimport uint16_t, uint32_t, uint64_t
cimport ustack.core.checksum as _checksum

# checksum.py's csum for the compiled core: the modules that sum packets (ipv4, net/ip, icmp,
# offload, tcp/proto, udp) cimport this file under the name they import checksum by, `CS`.
# The buffer's own bytes are summed - a bytearray's or bytes' storage read directly, any other
# buffer through the buffer protocol - with no typed memoryview made per call (issue 13: a
# received segment's IPv4 header and TCP message, each ACK, a ping twice, an echo four or five
# times, each a memoryview object and a format check of about 0.15-0.2 us). 32-bit native
# words (RFC 1071 2(B): the sum does not depend on byte order; swapped once at the end on a
# little-endian host). Same result as csum; a range outside the buffer takes checksum.csum
# itself (its IndexError). No module of its own: only these inline functions.

cdef inline unsigned int csum_ptr(const unsigned char *p, Py_ssize_t n,
                                  unsigned long long acc) noexcept nogil:
    cdef uint64_t s = 0
    cdef uint32_t x
    cdef uint16_t h
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t k = n & ~3
    cdef uint16_t one = 1
    while i < k:
        memcpy(&x, p + i, 4)   # a load whatever the alignment
        s += x
        i += 4
    if n & 2:
        memcpy(&h, p + i, 2)
        s += h
        i += 2
    if n & 1:
        # the last byte is the high one of its (zero-padded) word: at its own address
        h = 0
        (<unsigned char *>&h)[0] = p[i]
        s += h
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    if (<unsigned char *>&one)[0]:
        s = ((s & 0xFF) << 8) | (s >> 8)   # little-endian words: back to network order
    s += acc
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <unsigned int>s


cdef inline unsigned int csum(object buf, Py_ssize_t off, Py_ssize_t n,
                              unsigned long long acc) except? 0xFFFFFFFF:
    cdef Py_buffer v
    cdef unsigned int r
    if off >= 0 and n > 0:
        if type(buf) is bytearray:
            if off + n <= PyByteArray_GET_SIZE(buf):
                return csum_ptr(<const unsigned char *>PyByteArray_AS_STRING(buf) + off, n, acc)
        elif type(buf) is bytes:
            if off + n <= PyBytes_GET_SIZE(buf):
                return csum_ptr(<const unsigned char *>PyBytes_AS_STRING(buf) + off, n, acc)
        else:
            PyObject_GetBuffer(buf, &v, PyBUF_SIMPLE)
            if off + n <= v.len:
                r = csum_ptr(<const unsigned char *>v.buf + off, n, acc)
                PyBuffer_Release(&v)
                return r
            PyBuffer_Release(&v)
    return _checksum.csum(buf, off, n, acc)
