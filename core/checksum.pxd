import cython

@cython.locals(s=cython.ulonglong, i=cython.Py_ssize_t, end=cython.Py_ssize_t,
               e8=cython.Py_ssize_t, lim=cython.Py_ssize_t)
cpdef unsigned int csum(const unsigned char[:] buf, Py_ssize_t off, Py_ssize_t n, unsigned long long acc)

cpdef unsigned int add16(unsigned int a, unsigned int b)

@cython.locals(s=cython.uint)
cpdef unsigned int update16(unsigned int old_csum, unsigned int old_word, unsigned int new_word)
