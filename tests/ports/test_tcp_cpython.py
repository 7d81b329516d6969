"""What an idle TCP connection costs in CPython objects (MicroPython has no sys.getsizeof;
its memory is measured by tests/micropython/test_memory.py)."""
import gc
import sys

import ustack

from ustack.core.tcp import tcb as T
from tests.unit.test_tcp_states import connected
from tests.unit.test_tcp_states import net  # noqa: F401,F811 (fixture)


HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement at run time
SHARED = ("snd", "rcv", "sock", "listener", "hnext")  # rings (pooled), socket, other TCBs
SHARED_ANYWHERE = ("iface",)  # the interface its route cache (tcb.rc) names


def _fields(o):
    names = []
    for k in type(o).__mro__:
        names += list(getattr(k, "__slots__", ()))
    d = getattr(o, "__dict__", None)
    return [(n, getattr(o, n)) for n in names if hasattr(o, n)] + (list(d.items()) if d else [])


def owned_size(o, seen, skip=()):
    """sys.getsizeof of o and of every object reachable from its fields (each counted
    once, small cached ints included), except None/True/False and the fields in skip."""
    if o is None or o is True or o is False or id(o) in seen:
        return 0
    seen.add(id(o))
    n = sys.getsizeof(o)
    if isinstance(o, (list, tuple)):
        for v in o:
            n += owned_size(v, seen)
    elif not isinstance(o, (int, bytes, bytearray, str)):
        # a compiled cdef class (a static type, core/**/*.pxd) keeps its int fields as C
        # integers inside the object (in its getsizeof): reading one boxes a temporary int
        inline = not (type(o).__flags__ & HEAPTYPE)
        for k, v in _fields(o):
            if k not in skip and k not in SHARED_ANYWHERE and not (inline and type(v) is int):
                n += owned_size(v, seen)
    return n


def test_idle_connected_tcb_deep_size_stays_under_620_bytes(net):
    """An established, idle connection costs, besides its two pooled rings: the TCB and its
    field values; no congestion controller (made with the first send), no out-of-order
    table (taken only while data waits beyond a hole) and no SACK scoreboard (made when
    data is first sent). Compiled core, CPython 3.11: 1906 bytes before issue 13's cuts
    (32-bit TCB fields: 616 -> 488, the lazy out-of-order table: -312, NewReno a C struct:
    216 + two boxed ints -> 144), 862 after; 822 after session 9's (32-bit keepalive times:
    488 -> 472, NewReno 144 -> 120); 562 after session 10's (no controller until the first
    send: -120, unsigned 32-bit sequence numbers: TCB 472 -> 416); the bound leaves ~10%.
    The pure core keeps every field as a Python int (1594 bytes)."""
    c, s = connected(net)
    net.jump(1000)
    t = c.tcb
    assert t.state == T.ESTABLISHED and t.cc is None  # made with the first send (cc.of)
    assert t.ooo is None and t.sb is None
    size = owned_size(t, set(), SHARED)
    print("idle TCB, deep:", size)
    assert size < (620 if ustack.compiled else 1760), size


def test_an_idle_accepted_socket_stays_under_185_bytes(net):
    """An accepted socket beside its TCB, whose addresses it shares: 352 bytes, a boxed
    peer port and an empty accept-queue list of its own before issue 13. The compiled core's
    common socket state is a C struct now (core/socket.pxd: ports, flags, options as C
    integers; 280 bytes with the lazily made dict slot TCP keeps), and only a listener has
    a list. Session 9: TCP's own fields a C struct too (core/tcp/socket.pxd) and the
    byte-sized options and flags a byte each, the stack's TCP read through the stack: 208
    bytes. Session 10: the options few sockets set (keepalive times, linger, TCP_CONGESTION)
    class defaults until set, ports 16-bit, family, type and protocol a byte each: 168
    bytes (the pure core 296)."""
    c, s = connected(net)
    net.jump(1000)
    assert s.tcb.local_ip is s.local_ip and s.tcb.remote_ip is s.remote_ip
    assert not isinstance(s.acc_q, list)
    assert not [x for x in gc.get_referents(s) if type(x) is dict]  # no dict made for it
    size = sys.getsizeof(s)
    print("idle accepted socket:", size)
    assert not [x for x in gc.get_referents(s) if type(x) is dict]  # none made since
    assert size < (185 if ustack.compiled else 330), size
