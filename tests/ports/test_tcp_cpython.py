"""TCP on CPython only: the runner's fileno() readiness for select(), and what an idle
connection costs in CPython objects (MicroPython has no sys.getsizeof; its memory is
measured by tests/micropython/test_memory.py)."""
import select
import sys

from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from tests.unit.test_tcp_states import connected
from tests.unit.test_tcp_states import net  # noqa: F401,F811 (fixture)


def test_runner_fileno_readable_for_pending_accept_and_stream_data():
    from ustack.core.stack import Stack
    from ustack.hal.loopback import Wire
    from ustack.ports.cpython.runner import Runner
    w = Wire()
    a, b = Stack(), Stack()
    a.add_interface("a0", w.port(b"\x02\0\0\0\0\x0a"), ip="192.0.2.10/24")
    b.add_interface("b0", w.port(b"\x02\0\0\0\0\x0b"), ip="192.0.2.11/24")
    ra, rb = Runner(a).start(), Runner(b).start()
    try:
        ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
        ls.bind(("", 7))
        ls.listen(2)
        lfd = ls.fileno()
        assert select.select([lfd], [], [], 0.05)[0] == []
        c = ra.socket(so.AF_INET, so.SOCK_STREAM)
        c.settimeout(3)
        c.connect(("192.0.2.11", 7))
        assert select.select([lfd], [], [], 3)[0] == [lfd]  # a connection to accept
        s, _ = ls.accept()
        fd = s.fileno()
        assert select.select([fd], [], [], 0.05)[0] == []
        c.send(b"stream")
        assert select.select([fd], [], [], 3)[0] == [fd]  # stream data waits
        assert s.recv(10) == b"stream"
        for x in (c, s, ls):
            x.close()
    finally:
        ra.stop()
        rb.stop()


SHARED = ("snd", "rcv", "sock", "listener", "hnext")  # rings (pooled), socket, other TCBs


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
        for k, v in _fields(o):
            if k not in skip:
                n += owned_size(v, seen)
    return n


def test_idle_connected_tcb_deep_size_stays_under_2200_bytes(net):
    """An established, idle connection costs, besides its two pooled rings: the TCB, its
    field values, the congestion controller and the out-of-order table. Measured 1906 bytes
    on CPython 3.11 (compiled and pure); the bound leaves ~15%."""
    c, s = connected(net)
    net.jump(1000)
    t = c.tcb
    assert t.state == T.ESTABLISHED and t.cc is not None and t.ooo is not None
    size = owned_size(t, set(), SHARED)
    assert size < 2200, size
