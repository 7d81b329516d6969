from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.string cimport memmove

# wire/fields.py's copy() for the compiled rings, which cimport this file under the name they
# import fields by (`F`): F.copy is then one memmove between the two buffers, no Python call
# and no temporary slice (issue 13: every byte a connection sends or receives passes through
# two ring copies, 4 calls of 0.2-0.3 us a 64-byte echo). Within bounds only; anything else
# (a range past either end, a negative length) takes the .py's slice copy, whose semantics
# the rings never rely on. No module of its own: only this inline function.

cdef inline copy(dst, Py_ssize_t do, src, Py_ssize_t so, Py_ssize_t n):
    cdef Py_buffer d
    cdef Py_buffer s
    if n <= 0 or do < 0 or so < 0:
        dst[do:do + n] = src[so:so + n]
        return
    PyObject_GetBuffer(dst, &d, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(src, &s, PyBUF_SIMPLE)
    except BaseException:
        PyBuffer_Release(&d)
        raise
    if do + n <= d.len and so + n <= s.len:
        memmove(<char *>d.buf + do, <char *>s.buf + so, n)
        PyBuffer_Release(&s)
        PyBuffer_Release(&d)
        return
    PyBuffer_Release(&s)
    PyBuffer_Release(&d)
    dst[do:do + n] = src[so:so + n]
