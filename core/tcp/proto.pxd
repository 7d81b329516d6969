import cython
from ustack.core.buf cimport PacketBuffer
from ustack.core.stack cimport Stack
from ustack.core.net.ip cimport Meta, addr_eq
from ustack.core.tcp.tcb cimport TCB
from ustack.core.tcp.ring cimport RingPool
from ustack.core.tcp.socket cimport StreamSocket
cimport ustack.core.checksum_c as ck
from ustack.core.stats cimport Counters
cimport ustack.core.tcp.tcb_const as T
cimport ustack.core.wire.tcp_const as w
cimport ustack.core.tcp.options as options
cimport ustack.core.tcp.input as inp

# Types for proto.py under Cython (the .py stays MicroPython's): the TCP object is a C struct
# for what every segment writes and reads - the scratch fields of the segment being processed
# (seg_*, opt_*: C integers, relative sequence values below 2**32) and the connection table's
# mask - and its demultiplexing (input, lookup) runs in C integers with the packet buffer,
# metadata and TCB as C structs (issue 13: a 64-byte echo's segment spent 1.9 us in untyped
# input(), ten generic attribute stores to a 100-entry instance dict among them). Every
# other attribute stays a plain Python one in the instance's __dict__, as before.

# RFC 6528's F (the ISS, our TSval offset, RFC 6056 port choice): the murmur3 mix in 64-bit C
# integers on 32-bit values (issue 13: 1.9 us of a SYN's cost as generic Python ints)
cpdef unsigned long long _fmix(unsigned long long h)

@cython.locals(v=cython.ulonglong, x=cython.ulonglong, i=Py_ssize_t)
cpdef unsigned long long _word(const unsigned char[:] a)

cdef class TCP:
    cdef dict __dict__
    cdef public Stack stack
    cdef public Counters stats
    cdef public object table
    cdef public RingPool rings      # the rings' pool: C calls from input and the sockets
    cdef public long long tmask
    cdef public int seg_src, seg_dst, seg_alen, seg_ecn, seg_hdr, seg_flags, seg_wnd
    cdef public Py_ssize_t seg_doff, seg_len
    cdef public long long seg_seq, seg_ack, opt_tsval, opt_tsecr
    cdef public int opt_seen, opt_mss, opt_ws, opt_ts_off, opt_sack_blocks, opt_sack_off

    @cython.locals(b=bytearray, o=Py_ssize_t, n=Py_ssize_t, hl=Py_ssize_t, sport=cython.long,
                   dport=cython.long, fl=cython.int, tcb=TCB, lo=cython.longlong,
                   hi=cython.longlong, to=Py_ssize_t, st=Counters)
    cpdef input(self, PacketBuffer pb, Meta m)

    @cython.locals(k=tuple, h=cython.ulonglong, k0=cython.ulonglong, k1=cython.ulonglong,
                   k2=cython.ulonglong, k3=cython.ulonglong)
    cpdef unsigned long long _hash(self, lip, unsigned long long lport, rip,
                                   unsigned long long rport)

    @cython.locals(t=TCB, k=cython.long, ra=bytes, la=bytes, i=Py_ssize_t)
    cpdef lookup(self, bytearray b, Py_ssize_t rip, Py_ssize_t lip, Py_ssize_t alen,
                 long rport, long lport)

    # A connection's setup and teardown (issue 13: untyped, a connection's life spent a
    # third of its server time in generic attribute lookups on the TCB and this object):
    # the TCB a C struct, the table's key in C integers
    @cython.locals(t=TCB, old=TCB, f=cython.longlong)
    cpdef new_tcb(self, lip, long lport, rip, long rport)

    cpdef set_iss(self, TCB tcb, long long f=*)

    @cython.locals(a=bytes, k=cython.longlong)
    cpdef long long _bucket(self, TCB tcb)

    @cython.locals(k=cython.longlong)
    cpdef _insert(self, TCB tcb)

    @cython.locals(k=cython.longlong, t=TCB, prev=TCB)
    cpdef _unlink(self, TCB tcb)

    cpdef drop(self, TCB tcb, err)

    cpdef release_buffers(self, TCB tcb, rcv_too)

    cpdef release_rcv(self, TCB tcb)

    cpdef bint open_buffers(self, TCB tcb)

    @cython.locals(m=cython.long, alen=Py_ssize_t, iph=cython.long, lim=cython.long,
                   opts=cython.long)
    cpdef set_mss(self, TCB tcb)

    @cython.locals(n=Py_ssize_t)
    cpdef watch(self, TCB tcb)

    cpdef orphaned(self, TCB tcb)

    cpdef not_orphan(self, TCB tcb)

    # a SYN's: its listener, the SYN queue's length, the SYN-ACK's options
    @cython.locals(best=StreamSocket, s=StreamSocket, alen=cython.int, d=Py_ssize_t)
    cpdef find_listener(self, b, long dport)

    cpdef long long syn_held(self)

    cpdef long adv_mss(self, TCB tcb)

    @cython.locals(iph=cython.long, m=cython.long, lim=cython.long)
    cpdef long adv_mss_for(self, long mtu, long alen)

    @cython.locals(s=cython.int)
    cpdef int wscale_for(self, long long size)
