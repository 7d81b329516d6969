import cython

cdef int ROUNDS

# Types for cookie.py under Cython (the .py stays MicroPython's): the MAC's lanes and round
# keys are C ints, the segment is read through a typed view - no Python-object arithmetic
# and nothing allocated per cookie.

cdef class Mac:
    cdef public unsigned int x
    cdef public unsigned int y
    cdef public unsigned int rk[22]
    cpdef reset(self)
    @cython.locals(x=cython.uint, y=cython.uint, k=cython.uint)
    cpdef block(self, unsigned int hi, unsigned int lo)

@cython.locals(i=cython.int)
cpdef int mss_index(int mss)

@cython.locals(i=cython.Py_ssize_t)
cpdef compute(Mac m, const unsigned char[:] b, Py_ssize_t src, Py_ssize_t dst, Py_ssize_t alen,
              Py_ssize_t o, unsigned int ihi, unsigned int ilo, long t)

@cython.locals(ihi=cython.uint, ilo=cython.uint, ahi=cython.uint, alo=cython.uint, t=cython.long,
               d=cython.int)
cpdef int check(Mac m, const unsigned char[:] b, Py_ssize_t src, Py_ssize_t dst, Py_ssize_t alen,
                Py_ssize_t o, long now)
