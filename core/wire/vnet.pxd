import cython

# Types for vnet.py under Cython (the .py stays MicroPython-clean; only the CPython TAP driver
# calls it): the flow hash hal/tap.py computes before every frame it writes on a steered TAP,
# and the received header's offload bits after every read, index their bytearrays as C bytes
# with C integers (issue 13: untyped, each index was a Python object; 1-2 us a frame).

@cython.locals(o=cython.longlong)
cpdef long long rx_offload(bytearray h) except? -1

@cython.locals(t=cython.int, p=cython.int, h=cython.uint, o=Py_ssize_t, i=Py_ssize_t)
cpdef long flow_bucket(bytearray b, Py_ssize_t n) except? -2
