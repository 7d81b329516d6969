from ustack.core.wire cimport vnet

# Types for tapsteer.py under Cython (CPython only; the .py stays the pure fallback): the
# steering's mark, run before every frame a steered TAP sends, is a C method calling the
# core's flow hash as a C function (issue 13); the rest stays Python.

cdef class Steering:
    cdef dict __dict__
    cdef public object mm, seen, stamps, _zero
    cdef public long long gen
    cdef public int queues, map_fd, prog_fd, seen_fd

    cpdef mark(self, b, Py_ssize_t n, long long now_ns)
