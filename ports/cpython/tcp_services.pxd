import cython
from ustack.core.tcp.socket cimport StreamSocket
from ustack.ports.cpython.services cimport UdpEcho

# Types for tcp_services.py under Cython (CPython only; the .py stays the pure fallback): the
# event-driven echo/discard/chargen hook, run after every poll, keeps its per-poll state (the
# sockets with news, the connections' state, its buffer) in C fields and its loops compiled
# (issue 13: the services' per-request hooks ran as bytecode).

cdef class EventService:
    cdef dict __dict__
    cdef public object kind, ls, init, news, mv, lines
    cdef public bint nodelay, accepting
    cdef public dict conns
    cdef public list ready
    cdef public set queued
    cdef public long long count
    cdef public bytearray buf

    cpdef _news(self, s)
    # the connections as C structs: their accept, readiness, reads, writes and on_event
    # hook are C calls and stores, not Python method calls (issue 13's connection rate)
    @cython.locals(c=StreamSocket)
    cpdef _accept(self, StreamSocket ls)
    @cython.locals(n=Py_ssize_t, k=Py_ssize_t, want=Py_ssize_t)
    cpdef _serve(self, StreamSocket c, e)


# the runner's one hook for its services: each service's readiness read from its C fields
# (UdpEcho's socket queue length, EventService's accepting flag and news list), the Python
# call made only for a service with something to do
cdef class ServiceHooks:
    cdef public list udp, tcp

    @cython.locals(u=UdpEcho, t=EventService)
    cpdef run(self)
