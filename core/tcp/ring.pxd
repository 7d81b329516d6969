import cython
cimport ustack.core.wire.memcopy_c as F

# Types for ring.py under Cython (the .py stays MicroPython's): head, count and capacity
# are C ints (a ring is at most 2**30 bytes: TCP_SND_BUF/TCP_RCV_BUF's bound), the ring's
# own calls are C calls. Only a bytearray for an object field: Cython then makes the class
# one the garbage collector does not track (no cycle can pass through it), 40 bytes an idle
# connection's ring (issue 13).

cdef class RingPool

cdef class Ring:
    cdef public int cap, head, count
    cdef public bytearray buf
    cpdef reset(self)
    @cython.locals(b=bytearray)
    cpdef Py_ssize_t held(self)
    @cython.locals(cap=Py_ssize_t, size=Py_ssize_t, new=Py_ssize_t, step=Py_ssize_t,
                   old=bytearray)
    cpdef bint ensure(self, RingPool pool, Py_ssize_t want=*)
    cpdef trim(self, RingPool pool)
    cpdef Py_ssize_t space(self)
    @cython.locals(b=bytearray, free=Py_ssize_t)
    cpdef Py_ssize_t write(self, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef write_at(self, Py_ssize_t off, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef peek_into(self, dst, Py_ssize_t do, Py_ssize_t off, Py_ssize_t n)
    cpdef Py_ssize_t read_into(self, dst, Py_ssize_t do, Py_ssize_t n)
    @cython.locals(h=Py_ssize_t, cap=Py_ssize_t)
    cpdef Py_ssize_t discard(self, Py_ssize_t n)

# The pool every connection's rings and their storage come from and go back to: a 64-byte
# echo takes and gives back a ring and a buffer each way per request (share/own/reserve/
# shed), C calls on a C struct here (issue 13: they were Python calls on a dict instance).
# The instance __dict__ stays, empty: tests stand in for a method on one pool (a heap that
# is out) and the C calls honour that (cpdef).
cdef class RingPool:
    cdef dict __dict__
    cdef public dict empty
    cdef public list idle, spare
    cdef public Py_ssize_t keep, out, held, first, budget, big
    @cython.locals(empty=dict, e=Ring)
    cpdef Ring share(self, Py_ssize_t size)
    @cython.locals(empty=dict)
    cpdef Ring own(self, Ring r)
    @cython.locals(o=Ring)
    cpdef Ring reserve(self, Ring r, Py_ssize_t want=*)
    @cython.locals(empty=dict, e=Ring)
    cpdef Ring shed(self, Ring r)
    @cython.locals(idle=list, i=Py_ssize_t, r=Ring)
    cpdef Ring get(self, Py_ssize_t size)
    @cython.locals(empty=dict)
    cpdef put(self, Ring r)
    @cython.locals(size=Py_ssize_t, new=Py_ssize_t)
    cpdef Py_ssize_t limit(self, Ring r)
    cpdef bint _fits(self, Py_ssize_t size)
    cpdef bytearray take(self, Py_ssize_t size)
    @cython.locals(spare=list, i=Py_ssize_t)
    cpdef bytearray _take(self, Py_ssize_t size)
    cpdef give(self, bytearray b)
