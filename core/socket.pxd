import cython
# Types for socket.py under Cython (the .py stays MicroPython's): the common socket state is a
# C struct (issue 13: one per connection, idle ones too) - ports, errno, options and flags as
# C integers (no pointer and no boxed int each; a peer's port is past CPython's small ints):
# ports 16-bit (parse_addr refuses others first, as Python's socket), family, type and
# protocol (checked before Socket.__init__ stores them: AF_INET/AF_INET6, the three types,
# a protocol below 256), values setsockopt keeps within a byte (TTL, TOS, the PMTU modes,
# the reuse bits) and the flags (read back as 0/1) one byte each; the rest objects. No
# per-socket dict (Cython would make one with every socket): the subclasses' __slots__ name
# every attribute. Values past a C int raise OverflowError, as CPython's setsockopt does for
# them. TCP, UDP and raw sockets subclass it in Python.

cdef class Socket:
    cdef object __weakref__
    cdef public object stack, local_ip, remote_ip, timeout, on_event
    cdef public int so_error, rcvbuf, sndbuf
    cdef public unsigned short local_port, remote_port
    cdef public unsigned char family, type, proto
    cdef public unsigned char ttl, tos, pmtudisc, pmtudisc6, reuse_opts
    cdef public unsigned char closed, broadcast, v6only, dontfrag6

    # a stream's per-request calls (the echo's recv_into/send, input's wake-up of the
    # reader): C calls from the compiled socket layer and TCP input (issue 13)
    cpdef _block(self, ready, flags=*)
    cpdef _event(self)
    cpdef _check_open(self)
    cpdef _take_error(self)

cpdef Py_ssize_t check_nbytes(buf, nbytes, op) except -1
cpdef check_data(data)
cpdef check_bufsize(n, op)
# tables in creation order searched from both ends inwards, newest first (identity tests; any
# list, a subclass too)
@cython.locals(i=Py_ssize_t, j=Py_ssize_t)
cpdef bint remove_newest(lst, x)
