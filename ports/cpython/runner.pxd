import cython
from ustack.core.stack cimport Stack
from ustack.hal cimport tapio

# Types for runner.py under Cython (CPython only; the .py stays the pure fallback): the
# runner is a C struct whose step reads the stack's poll, timers and flags as C calls and C
# fields (core/stack.pxd), and its clock is a C call (hal/tapio.pyx); the driving loop's
# wait and dispatch run compiled (issue 13: the runner's wait and step ran as bytecode on
# every request). What ports and tests hang on a runner stays in its __dict__.

cdef class Runner:
    cdef dict __dict__
    cdef public Stack stack
    cdef public object lock, cond, thread, _conds
    cdef public list hooks, _waiters
    cdef public dict _fd_socks
    cdef public double max_wait
    cdef public bint running, _pipe_full, _stepping, _hooked, _hooking
    cdef public int rfd, wfd
    cdef public long long polls, wakeups, spurious

    @cython.locals(st=Stack, w=double, h=object)
    cpdef double step(self) except? -1.0
    @cython.locals(h=object)
    cpdef _burst(self)
    @cython.locals(busy=list, w=double, ready=list, junk=bytearray, n=int, i=int, fd=int)
    cpdef _drive(self, tapio.Waiter poller, dict told)
    @cython.locals(w=list, r=bint)
    cpdef _signal_ready(self)

cpdef long long _now_ms() except? -1
