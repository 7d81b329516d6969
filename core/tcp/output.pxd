import cython
from ustack.core.tcp.tcb cimport TCB
from ustack.core.tcp.proto cimport TCP
from ustack.core.tcp.ring cimport Ring
from ustack.core.tcp.scoreboard cimport Scoreboard
from ustack.core.tcp.cc_newreno cimport NewReno
from ustack.core.buf cimport PacketBuffer
from ustack.core.stack cimport Stack
from ustack.core.net.ip cimport IP
from ustack.core.wire.tcp cimport write_header_rel
from ustack.core.tcp.options cimport write_ts
cimport ustack.core.tcp.tcb_const as T
cimport ustack.core.wire.tcp_const as w
cimport ustack.core.tcp.options_const as options
from ustack.core.tcp.seq cimport seq_add, seq_sub, seq_gt, seq_lt, put_rel

# Types for output.py under Cython (the .py stays MicroPython's): segment building with
# the TCB, the rings and the packet buffer as C structs, offsets, lengths, windows and
# sequence numbers (relative, below 2**32) as C integers, the tcb, TCP header and option
# constants as C constants, the sequence helpers as C calls; the TCP object a C struct
# (proto.pxd: its stack, stats and segment fields read directly).

@cython.locals(r=Ring, free=cython.longlong, cap=cython.longlong, cur=cython.longlong,
               step=cython.longlong, sh=cython.longlong, win=cython.longlong,
               adv=cython.longlong)
cpdef long long rcv_window(TCP tcp, TCB tcb)

@cython.locals(pb=PacketBuffer, o=cython.Py_ssize_t, hl=cython.Py_ssize_t, tf=cython.longlong,
               tos=cython.longlong, win=cython.longlong, t=cython.Py_ssize_t,
               k=cython.longlong, r=cython.longlong, ipl=IP, stack=Stack)
cpdef bint send_segment(TCP tcp, TCB tcb, long long seq, long long flags, Py_ssize_t doff,
                        Py_ssize_t n)

@cython.locals(tf=cython.longlong, k=cython.longlong, m=cython.longlong)
cpdef long long sack_room(TCB tcb)

@cython.locals(t=cython.longlong)
cpdef arm_rexmt(TCP tcp, TCB tcb)

@cython.locals(pto=cython.longlong, t=cython.longlong, sb=Scoreboard)
cpdef arm_tlp(TCP tcp, TCB tcb)

@cython.locals(st=cython.longlong, fl=cython.longlong, snd=Ring, sent=cython.bint,
               mss=cython.longlong, count=cython.longlong, off=cython.longlong,
               avail=cython.longlong, usable=cython.longlong, cw=cython.longlong,
               n=cython.longlong, fin=cython.bint, seq=cython.longlong, rec=cython.bint,
               smss=cython.longlong, d=cython.longlong, sb=Scoreboard, cc=NewReno)
cpdef output(TCP tcp, TCB tcb, force=*)

@cython.locals(sb=Scoreboard)
cpdef long long _sent_new(TCP tcp, TCB tcb, long long seq, long long n, fin, now)

cpdef send_ack(TCP tcp, TCB tcb)
