import cython
from ustack.core.buf cimport Pool, PacketBuffer
from ustack.core.iface cimport Interface

# Types for stack.py under Cython (the .py stays MicroPython's): what every poll reads - the
# pool, the links, the loopback interface and the hooks - are C struct fields, and poll()'s
# receive loop runs with the pool, interface and buffer as C structs and its counts as C
# integers (issue 13: a request's poll spent about a microsecond in generic attribute lookups
# on the untyped Stack). now and next_timer stay objects (tests drive a clock of their own
# numbers); every other attribute stays a plain Python one in the instance's __dict__.

cdef class Stack:
    cdef dict __dict__
    cdef public Pool pool
    cdef public list ifaces
    cdef public object config, tcp, loop, capture, burst_hook, owner_check, offload
    cdef public object now, next_timer
    cdef public bint kicked, timers_ran

    @cython.locals(batch=Py_ssize_t, pool=Pool, iface=Interface, lo=Interface, k=Py_ssize_t,
                   n=Py_ssize_t, pb=PacketBuffer, ep=cython.longlong,
                   fresh=Py_ssize_t, ran=bint)
    cpdef poll(self, now)

    cpdef free(self, PacketBuffer pb)

    # the earliest deadline (TCP.arm: every timer a connection arms)
    cpdef timer_at(self, t)

    # a socket's wake-up (Socket._event, every segment that brings data or frees space)
    cpdef notify(self)
