# cython: language_level=3
"""hal/tapio.py's four calls, compiled: the system call on the buffers themselves (the buffer
protocol: no list of buffers, no iovec array from the heap, no exception object for EAGAIN;
issue 13). The same results as the .py: bytes moved, 0 when nothing waits, -errno.
The descriptors are non-blocking: nothing here waits, so the GIL is kept."""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.errno cimport errno, EAGAIN, EINTR
from posix.uio cimport iovec
from libc.stdlib cimport malloc, free
from cpython.list cimport PyList_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    int CLOCK_MONOTONIC

cdef extern from "Python.h":
    int PyObject_AsFileDescriptor(object o) except -1

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int c_poll "poll"(pollfd *fds, unsigned long nfds, int timeout)
    short POLLIN

cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data_t "epoll_data":
        void *ptr
        int fd
        unsigned int u32
        unsigned long long u64
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLL_CTL_ADD
    int EPOLL_CLOEXEC
    unsigned int EPOLLIN

cdef extern from "<unistd.h>" nogil:
    int c_close "close"(int fd)
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


cdef int _get_two(a, Py_buffer *x, b, Py_buffer *y, int flags) except -1:
    """a's buffer into x and b's into y; neither held when it raises."""
    PyObject_GetBuffer(a, x, flags)
    try:
        PyObject_GetBuffer(b, y, flags)
    except BaseException:
        PyBuffer_Release(x)
        raise
    return 0


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
    _get_two(hdr, &h, buf, &b, PyBUF_WRITABLE)
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
    _get_two(hdr, &h, buf, &b, PyBUF_SIMPLE)
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


cpdef bint poll_in(int fd) except -1:
    """True when fd is readable now (poll() with no wait; no poll object, no list)."""
    cdef pollfd p
    p.fd = fd
    p.events = POLLIN
    p.revents = 0
    return c_poll(&p, 1, 0) > 0 and (p.revents & POLLIN) != 0


cdef class Waiter:
    """hal/tapio.py's Waiter in C: epoll_wait (poll() where epoll refuses a descriptor) into
    an array of its own, the GIL released while it sleeps, the readable descriptors written
    into the caller's list - no list of tuples made per wake-up."""

    def __cinit__(self):
        self.ep = -1
        self.pfds = NULL
        self.events = NULL
        self.nfds = 0

    def __init__(self, fds):
        cdef epoll_event ev
        cdef pollfd *p
        cdef int i, fd
        seen = []
        for o in fds:
            fd = PyObject_AsFileDescriptor(o)   # a number, or an object's fileno(), as select
            if fd not in seen:
                seen.append(fd)
        self.nfds = len(seen)
        self.events = malloc(sizeof(epoll_event) * (self.nfds if self.nfds else 1))
        if self.events == NULL:
            raise MemoryError()
        self.ep = epoll_create1(EPOLL_CLOEXEC)
        if self.ep >= 0:
            for fd in seen:
                ev.events = EPOLLIN
                ev.data.u64 = 0
                ev.data.fd = fd
                if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                    c_close(self.ep)
                    self.ep = -1
                    break
        if self.ep < 0:
            p = <pollfd *>malloc(sizeof(pollfd) * (self.nfds if self.nfds else 1))
            if p == NULL:
                raise MemoryError()
            for i in range(self.nfds):
                p[i].fd = seen[i]
                p[i].events = POLLIN
                p[i].revents = 0
            self.pfds = p

    cpdef bint is_epoll(self):
        return self.ep >= 0

    cpdef int wait(self, double timeout_s, list out) except -1:
        cdef int ms, n, i, k, e
        cdef epoll_event *ev = <epoll_event *>self.events
        cdef pollfd *p = <pollfd *>self.pfds
        if PyList_GET_SIZE(out) < self.nfds:
            raise ValueError("Waiter.wait: out holds %d, %d descriptors" % (len(out), self.nfds))
        # whole milliseconds, rounded up as select.epoll does (a wait never ends early)
        ms = -1 if timeout_s < 0 else <int>(timeout_s * 1000.0)
        if ms >= 0 and ms < timeout_s * 1000.0:
            ms += 1
        if self.ep >= 0:
            with nogil:
                n = epoll_wait(self.ep, ev, self.nfds, ms)
                e = errno
            if n <= 0:
                if n < 0 and e == EINTR:
                    PyErr_CheckSignals()  # a handler's exception, as select's wait raises it
                return 0
            for i in range(n):
                out[i] = ev[i].data.fd
            return n
        if p == NULL:
            raise ValueError("Waiter.wait: closed")
        with nogil:
            n = c_poll(p, self.nfds, ms)
            e = errno
        if n <= 0:
            if n < 0 and e == EINTR:
                PyErr_CheckSignals()
            return 0
        k = 0
        for i in range(self.nfds):
            if p[i].revents:
                out[k] = p[i].fd
                k += 1
        return k

    cpdef close(self):
        if self.ep >= 0:
            c_close(self.ep)
            self.ep = -1

    def __dealloc__(self):
        if self.ep >= 0:
            c_close(self.ep)
        free(self.events)
        free(self.pfds)
