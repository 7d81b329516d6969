import cython

# Types for ring.py under Cython (the .py stays MicroPython's): head, count and capacity
# are C integers, the ring's own calls are C calls.

cdef class Ring:
    cdef public Py_ssize_t cap, head, count
    cdef public object pool
    cdef public object buf
    cpdef reset(self)
    cpdef bint ensure(self)
    cpdef trim(self)
    cpdef Py_ssize_t space(self)
    cpdef Py_ssize_t write(self, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef write_at(self, Py_ssize_t off, src, Py_ssize_t so, Py_ssize_t n)
    @cython.locals(cap=Py_ssize_t, p=Py_ssize_t, first=Py_ssize_t)
    cpdef peek_into(self, dst, Py_ssize_t do, Py_ssize_t off, Py_ssize_t n)
    cpdef Py_ssize_t read_into(self, dst, Py_ssize_t do, Py_ssize_t n)
    @cython.locals(h=Py_ssize_t)
    cpdef Py_ssize_t discard(self, Py_ssize_t n)
