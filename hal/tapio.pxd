# hal/tapio.pyx's calls as C functions: hal/tap.pxd cimports them, so the compiled TAP driver
# calls read(2)/readv(2)/write(2)/writev(2) without a Python call in between
cpdef Py_ssize_t read(int fd, buf) except? -1000000
cpdef Py_ssize_t readv(int fd, hdr, buf, tail) except? -1000000
cpdef Py_ssize_t write(int fd, buf, Py_ssize_t n) except? -1000000
cpdef Py_ssize_t writev(int fd, hdr, buf, Py_ssize_t n) except? -1000000
cpdef long long monotonic_ns() except? -1
cpdef long long monotonic_ms() except? -1
cpdef bint poll_in(int fd) except -1

cdef class Waiter:
    cdef int ep
    cdef void *pfds
    cdef void *events
    cdef public int nfds
    cpdef bint is_epoll(self)
    cpdef int wait(self, double timeout_s, list out) except -1
    cpdef close(self)
