import cython
from ustack.core.tcp.tcb cimport TCB
from ustack.core.tcp.ring cimport Ring
from ustack.core.tcp.proto cimport TCP
from ustack.core.stats cimport Counters
from ustack.core.tcp.scoreboard cimport Scoreboard
from ustack.core.tcp.rack cimport Rack
from ustack.core.tcp.cc_newreno cimport NewReno
from ustack.core.tcp.socket cimport StreamSocket
cimport ustack.core.tcp.tcb_const as T
cimport ustack.core.wire.tcp_const as w
cimport ustack.core.tcp.options_const as opt
cimport ustack.core.tcp.rto as rto
cimport ustack.core.tcp.output as out
from ustack.core.tcp.seq cimport (seq_add, seq_sub, seq_diff, seq_lt, seq_le, seq_gt, seq_ge,
                                  seq_in, rel_at, hi_minus_1, lo_minus_1)

# Types for input.py under Cython (the .py stays MicroPython's): the per-segment path with
# the TCB as a C struct, sequence numbers, lengths and flags as C integers, the tcb, TCP
# header and option constants (T., w., opt.) as C constants, the sequence helpers and the
# RTT estimator as C calls (cimported under the names the .py imports them by); the TCP
# object a C struct (proto.pxd: the segment's seg_*/opt_* fields read as C integers). Sequence
# values are relative (below 2**32, seq.py), so 64-bit locals hold them exactly.

@cython.locals(r=cython.longlong)
cpdef long long _rtt_from_ts(TCP tcp, TCB tcb)

@cython.locals(fl=cython.longlong, seq=cython.longlong, ack=cython.longlong,
               dlen=cython.longlong, doff=cython.Py_ssize_t, state=cython.longlong,
               rcv_wnd=cython.longlong, nxt=cython.longlong, seglen=cython.longlong,
               ok=cython.bint, cut=cython.longlong, room=cython.longlong, fs=cython.longlong,
               st=Counters)
cpdef segment(TCP tcp, TCB tcb, b)

# the scoreboard, its RACK and the controller (every one a NewReno: CUBIC and the fixed
# window subclass it) as C structs: what every ACK reads of them are C fields
@cython.locals(state=cython.longlong, una=cython.longlong, wnd=cython.longlong,
               acked=cython.longlong, flight=cython.longlong, data=cython.longlong,
               fin_acked=cython.bint, snd=Ring, st=Counters, sb=Scoreboard, cc=NewReno,
               sack=cython.bint, sacked0=cython.longlong, rtt=cython.longlong,
               undone=cython.bint)
cpdef bint _ack(TCP tcp, TCB tcb, b, long long fl, long long seq, long long ack, long long dlen)

@cython.locals(rcv=Ring, nxt=cython.longlong, room=cython.longlong, n2=cython.longlong,
               k=cython.longlong, off=cython.longlong, st=Counters)
cpdef _data(TCP tcp, TCB tcb, b, Py_ssize_t doff, long long seq, long long dlen)

@cython.locals(st=cython.longlong)
cpdef _fin(TCP tcp, TCB tcb)

@cython.locals(tf=cython.longlong, seq=cython.longlong, ack=cython.longlong,
               dlen=cython.longlong)
cpdef bint _predicted(TCP tcp, TCB tcb, b)

# every ACK that moves SND.UNA with RACK on (a SACK connection): a C call from _ack
@cython.locals(top=cython.longlong, n=cython.int, now=cython.longlong, t=cython.longlong,
               ok=cython.bint)
cpdef _rack_cum(TCP tcp, TCB tcb, Scoreboard sb, Rack rk, long long una, long long ack)

# A connection's handshake and end (issue 13: untyped, their TCB, listener and TCP object
# accesses were generic attribute lookups, a third of a connection's server time)
@cython.locals(o=Py_ssize_t, seen=cython.longlong, s=cython.longlong, to=Py_ssize_t)
cpdef _negotiate(TCP tcp, TCB tcb, bytearray b)

@cython.locals(st=Counters, fl=cython.longlong, tcb=TCB, a=Py_ssize_t, full=cython.bint)
cpdef listen(TCP tcp, StreamSocket lsock, iface, bytearray b, long sport, long dport)

cpdef _passive(TCP tcp, TCB tcb, StreamSocket lsock, iface)

@cython.locals(t=cython.longlong)
cpdef bint _established(TCP tcp, TCB tcb)

@cython.locals(t=cython.longlong)
cpdef _time_wait(TCP tcp, TCB tcb)

@cython.locals(st=Counters, fl=cython.longlong, ack=cython.longlong)
cpdef syn_sent(TCP tcp, TCB tcb, bytearray b)
