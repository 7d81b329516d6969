import cython

# Types for ring.py under Cython (the .py stays MicroPython's): head, count, size and capacity
# are C ints (a ring is at most 2**30 bytes: TCP_SND_BUF/TCP_RCV_BUF's bound), the ring's
# own calls are C calls. Only a bytearray for an object field: Cython then makes the class
# one the garbage collector does not track (no cycle can pass through it), 40 bytes an idle
# connection's ring (issue 13).

cdef class Ring:
    cdef public int cap, size, head, count
    cdef public bytearray buf
    cpdef reset(self)
    @cython.locals(cap=Py_ssize_t, size=Py_ssize_t, new=Py_ssize_t, step=Py_ssize_t)
    cpdef bint ensure(self, pool, Py_ssize_t want=*)
    cpdef trim(self, pool)
    cpdef Py_ssize_t space(self)
    cpdef Py_ssize_t write(self, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef write_at(self, Py_ssize_t off, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef peek_into(self, dst, Py_ssize_t do, Py_ssize_t off, Py_ssize_t n)
    cpdef Py_ssize_t read_into(self, dst, Py_ssize_t do, Py_ssize_t n)
    @cython.locals(h=Py_ssize_t)
    cpdef Py_ssize_t discard(self, Py_ssize_t n)
