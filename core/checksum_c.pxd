from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from ustack.core.checksum cimport csum as csum_view

# checksum.py's csum for the compiled core, which cimports it from here under the name it
# imports csum by: a packet buffer (a bytearray) or a bytes object is summed straight from
# its storage, with no typed memoryview made and released per call (issue 13: a ping made
# two, a 64-byte TCP echo four or five, each a buffer request, a format check and an object
# of about 0.2 us). The arithmetic is checksum.py's: 16-bit big-endian words added to acc,
# an odd byte padded with zero (RFC 1071 4.1), folded to 16 bits, 8 bytes a turn. Any other
# buffer, or a range outside the object, takes checksum.py's compiled csum (its memoryview).
# No module of its own: only these inline functions.

cdef inline unsigned int csum_ptr(const unsigned char *p, Py_ssize_t n,
                                  unsigned long long s) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t e8 = n & ~7
    cdef Py_ssize_t end = n & ~1
    while i < e8:
        s += ((<unsigned long long>p[i] << 8) | p[i + 1]) + ((<unsigned long long>p[i + 2] << 8) | p[i + 3]) + \
            ((<unsigned long long>p[i + 4] << 8) | p[i + 5]) + ((<unsigned long long>p[i + 6] << 8) | p[i + 7])
        i += 8
    while i < end:
        s += (<unsigned long long>p[i] << 8) | p[i + 1]
        i += 2
    if n & 1:
        s += <unsigned long long>p[end] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return <unsigned int>s


cdef inline unsigned int csum(object buf, Py_ssize_t off, Py_ssize_t n,
                              unsigned long long acc) except? 0xFFFFFFFF:
    if off >= 0 and n >= 0:
        if type(buf) is bytearray:
            if off + n <= PyByteArray_GET_SIZE(buf):
                return csum_ptr(<const unsigned char *>PyByteArray_AS_STRING(buf) + off, n, acc)
        elif type(buf) is bytes:
            if off + n <= PyBytes_GET_SIZE(buf):
                return csum_ptr(<const unsigned char *>PyBytes_AS_STRING(buf) + off, n, acc)
    return csum_view(buf, off, n, acc)
