from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.string cimport memcpy
from libc.stdint cimport uint16_t, uint32_t, uint64_t
cimport ustack.core.checksum as _checksum

# checksum.py's csum for the compiled receive path (ipv4, net/ip, tcp/proto, udp cimport this
# file under the name they import checksum by, `CS`): the one's complement sum of the buffer
# itself through the buffer protocol - no typed memoryview made per call (issue 13: without
# offloads a received segment's IPv4 header and TCP message, and each ACK's, were summed
# through one each, Cython's memoryview object and format check about 0.15 us a call) - in
# 32-bit native words (RFC 1071 2(B): the sum does not depend on byte order; swapped once at
# the end on a little-endian host). Same result as csum; anything out of the buffer's
# bounds takes checksum.csum itself (its IndexError). No module of its own: only this inline
# function.

cdef inline unsigned int csum(buf, Py_ssize_t off, Py_ssize_t n,
                              unsigned long long acc) except? 0xFFFFFFFF:
    cdef Py_buffer v
    cdef const unsigned char *p
    cdef uint64_t s = 0
    cdef uint32_t x
    cdef uint16_t h
    cdef Py_ssize_t i, k
    cdef uint16_t one = 1
    if n <= 0 or off < 0:
        return _checksum.csum(buf, off, n, acc)
    PyObject_GetBuffer(buf, &v, PyBUF_SIMPLE)
    if off + n > v.len:
        PyBuffer_Release(&v)
        return _checksum.csum(buf, off, n, acc)
    p = <const unsigned char *>v.buf + off
    k = n & ~3
    i = 0
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
    PyBuffer_Release(&v)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    if (<unsigned char *>&one)[0]:
        s = ((s & 0xFF) << 8) | (s >> 8)   # little-endian words: back to network order
    s += acc
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <unsigned int>s
