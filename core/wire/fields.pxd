import cython

# Types for fields.py under Cython (the .py stays MicroPython's): offsets and values are C
# integers; b is any buffer (bytearray, bytes, memoryview), indexed through its sequence slot.
# Values to store are 64-bit so the .py's masking of wider or negative ints is kept. copy is
# not declared: the module picks its implementation at import time.

cpdef unsigned int get16(b, Py_ssize_t o)
cpdef put16(b, Py_ssize_t o, long long v)
cpdef unsigned long long get32(b, Py_ssize_t o)
cpdef put32(b, Py_ssize_t o, long long v)
@cython.locals(i=Py_ssize_t)
cpdef bint eq(b, Py_ssize_t o, a, Py_ssize_t n)
