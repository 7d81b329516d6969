# cython: language_level=3
"""hal/tapio.py's four calls, compiled: the system call on the buffers themselves (the buffer
protocol: no list of buffers, no iovec array from the heap, no exception object for EAGAIN;
issue 13). The same results as the .py: bytes moved, 0 when nothing waits, -errno.
The descriptors are non-blocking: nothing here waits, so the GIL is kept."""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.errno cimport errno, EAGAIN, EINTR
from posix.uio cimport iovec

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    int CLOCK_MONOTONIC

cdef extern from "<unistd.h>" nogil:
    ssize_t c_read "read"(int fd, void *buf, size_t count)
    ssize_t c_write "write"(int fd, const void *buf, size_t count)

cdef extern from "<sys/uio.h>" nogil:
    ssize_t c_readv "readv"(int fd, const iovec *iov, int iovcnt)
    ssize_t c_writev "writev"(int fd, const iovec *iov, int iovcnt)


cdef inline Py_ssize_t _rx_result(ssize_t r, int e):
    if r >= 0:
        return r
    if e == EAGAIN or e == EINTR:
        return 0
    return -e


cpdef Py_ssize_t read(int fd, buf) except? -1000000:
    """One frame into buf (a TAP without the virtio-net header)."""
    cdef Py_buffer b
    cdef ssize_t r
    cdef int e
    PyObject_GetBuffer(buf, &b, PyBUF_WRITABLE)
    r = c_read(fd, b.buf, <size_t>b.len)
    e = errno
    PyBuffer_Release(&b)
    return _rx_result(r, e)


cpdef Py_ssize_t readv(int fd, hdr, buf, tail) except? -1000000:
    """The virtio-net header into hdr, the frame into buf, its overflow into tail (or None)."""
    cdef Py_buffer h, b, t
    cdef iovec v[3]
    cdef int k = 2
    cdef ssize_t r
    cdef int e
    PyObject_GetBuffer(hdr, &h, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(buf, &b, PyBUF_WRITABLE)
    except BaseException:
        PyBuffer_Release(&h)
        raise
    if tail is not None:
        try:
            PyObject_GetBuffer(tail, &t, PyBUF_WRITABLE)
        except BaseException:
            PyBuffer_Release(&b)
            PyBuffer_Release(&h)
            raise
        v[2].iov_base = t.buf
        v[2].iov_len = <size_t>t.len
        k = 3
    v[0].iov_base = h.buf
    v[0].iov_len = <size_t>h.len
    v[1].iov_base = b.buf
    v[1].iov_len = <size_t>b.len
    r = c_readv(fd, v, k)
    e = errno
    if k == 3:
        PyBuffer_Release(&t)
    PyBuffer_Release(&b)
    PyBuffer_Release(&h)
    return _rx_result(r, e)


cpdef Py_ssize_t write(int fd, buf, Py_ssize_t n) except? -1000000:
    """buf[:n], one frame."""
    cdef Py_buffer b
    cdef ssize_t r
    cdef int e
    PyObject_GetBuffer(buf, &b, PyBUF_SIMPLE)
    if n < 0 or n > b.len:
        PyBuffer_Release(&b)
        raise ValueError("write: %d bytes of a buffer of %d" % (n, b.len))
    r = c_write(fd, b.buf, <size_t>n)
    e = errno
    PyBuffer_Release(&b)
    return r if r >= 0 else -e


cpdef Py_ssize_t writev(int fd, hdr, buf, Py_ssize_t n) except? -1000000:
    """The header hdr, then buf[:n]: one frame."""
    cdef Py_buffer h, b
    cdef iovec v[2]
    cdef ssize_t r
    cdef int e
    PyObject_GetBuffer(hdr, &h, PyBUF_SIMPLE)
    try:
        PyObject_GetBuffer(buf, &b, PyBUF_SIMPLE)
    except BaseException:
        PyBuffer_Release(&h)
        raise
    if n < 0 or n > b.len:
        PyBuffer_Release(&b)
        PyBuffer_Release(&h)
        raise ValueError("writev: %d bytes of a buffer of %d" % (n, b.len))
    v[0].iov_base = h.buf
    v[0].iov_len = <size_t>h.len
    v[1].iov_base = b.buf
    v[1].iov_len = <size_t>n
    r = c_writev(fd, v, 2)
    e = errno
    PyBuffer_Release(&b)
    PyBuffer_Release(&h)
    return r if r >= 0 else -e


cpdef long long monotonic_ns() except? -1:
    """time.monotonic_ns(): CLOCK_MONOTONIC, without a Python call."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cpdef long long monotonic_ms() except? -1:
    """The runner's clock, whole milliseconds of the same clock (time.monotonic() * 1000)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000 + ts.tv_nsec // 1000000
