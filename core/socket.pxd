# Types for socket.py under Cython (the .py stays MicroPython's): the common socket state is a
# C struct (issue 13: one per connection, idle ones too) - ports, errno, options and flags as
# C integers (no pointer and no boxed int each; a peer's port is past CPython's small ints),
# the rest objects. No per-socket dict (Cython would make one with every socket): the
# subclasses' __slots__ name every attribute. Values past a C int raise OverflowError, as
# CPython's setsockopt does for them. TCP, UDP and raw sockets subclass it in Python.

cdef class Socket:
    cdef object __weakref__
    cdef public object stack, local_ip, remote_ip, timeout, on_event
    cdef public int family, type, proto, local_port, remote_port, so_error, reuse_opts
    cdef public int ttl, tos, rcvbuf, sndbuf, pmtudisc, pmtudisc6
    cdef public bint closed, reuseaddr, broadcast, v6only, dontfrag6
