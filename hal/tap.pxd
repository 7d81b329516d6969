import cython
from ustack.hal cimport tapio

# Types for tap.py under Cython (CPython only; the .py stays the pure fallback): the TAP is a
# C struct whose per-frame state (the queue being read, the round's counts, the flags the core
# sets) are C fields, its reader's loops run on C integers, and the system calls are
# hal/tapio.pyx's C functions (issue 13: every frame crossed this module as bytecode). The
# rest (the name, the poller, what tests hang on it) stays in the instance's __dict__.

cdef class Tap:
    cdef dict __dict__
    cdef public list fds, others, budget, plan, have, qreads, ready
    cdef public tapio.Waiter poller
    cdef public dict qfd
    cdef public object steer, _spill_src, _tail, mac
    cdef public bytearray _rxhdr, _txhdr
    cdef public bytes _plainhdr
    cdef public int fd, span, rr, run, busy, idle_q, moves, mtu, caps, tun_offload
    cdef public int got, seeded, seed_q, nplan, pi, left, again_q, gen_shift
    cdef public long long rx_offload, rx_errors, tx_errors, rx_truncated
    cdef public bint stateless, rx_syn_again, vnet, _split, cut

    cpdef Py_ssize_t recv_split(self, buf, spill, Py_ssize_t at) except? -1
    @cython.locals(others=list, k=Py_ssize_t, i=Py_ssize_t, q=Py_ssize_t, n=Py_ssize_t)
    cpdef Py_ssize_t recv_into(self, buf) except? -1
    @cython.locals(plan=list, have=list, ready=list, i=Py_ssize_t, k=Py_ssize_t,
                   q=Py_ssize_t, n=Py_ssize_t, polled=bint, dry=bint, one=Py_ssize_t,
                   now=cython.longlong)
    cpdef Py_ssize_t _recv_steered(self, buf) except? -1
    cpdef poll_ready(self, fd)
    @cython.locals(n=Py_ssize_t, room=Py_ssize_t)
    cpdef Py_ssize_t _read(self, int fd, buf) except? -1
    @cython.locals(fd=int, r=Py_ssize_t)
    cpdef bint send(self, buf, Py_ssize_t n) except -1
    cpdef bint send_offload(self, buf, Py_ssize_t n, offload) except -1

@cython.locals(o=Py_ssize_t)
cpdef bint _is_rst(b, Py_ssize_t n) except -1
