import cython

# Types for vnet.py under Cython (the .py stays MicroPython-clean; only the CPython TAP driver
# calls it): the flow hash hal/tap.py computes before every frame it writes on a steered TAP,
# and the received header's offload bits after every read, compute on C integers (issue 13:
# untyped, every shift and xor made a Python int; 1-2 us a frame).

@cython.locals(o=cython.longlong)
cpdef long long rx_offload(bytearray h) except? -1

# flow_bucket takes any buffer (the MicroPython bridge sends bytes through the TAP) and hands
# _flow_hash a bytearray (the core's own buffers as they are): C bytes, C integers
cpdef long flow_bucket(b, Py_ssize_t n) except? -2
@cython.locals(t=cython.int, p=cython.int, h=cython.uint, o=Py_ssize_t, i=Py_ssize_t)
cpdef long _flow_hash(bytearray b, Py_ssize_t n) except? -2
