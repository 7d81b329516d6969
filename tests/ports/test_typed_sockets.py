"""The typed socket layer (issue 13, the 64-byte echo's path through the core): a request's
calls - StreamSocket's readable/recv_into/writable/send and what they call, the ring pool,
TCP input's wake-up of the reader, the UDP echo's queue calls - are C methods and C
functions in the compiled core, the TCB's socket and TCP's ring pool C-typed fields. A .pxd
that stops matching its .py, or a build without them, fails here; USTACK_PURE=1 keeps the
pure modules."""
from tests.ports.test_typed_core import _run   # the check runs in a child interpreter


COMPILED = r"""
import ustack
assert ustack.compiled, "the core is not compiled"
from ustack.core.tcp.socket import StreamSocket, TcpSocket
from ustack.core.tcp.ring import RingPool, Ring
from ustack.core.tcp.tcb import TCB
from ustack.core.socket import Socket
from ustack.core.udp import UdpSocket
import ustack.core.socket as so, ustack.core.tcp.socket as ts, ustack.core.udp as udp
for cls in (StreamSocket, RingPool, Socket, UdpSocket):
    assert "__pyx_vtable__" in cls.__dict__, cls   # C methods (cpdef): called as C functions
for mod, names in ((so, ("check_nbytes", "check_data", "check_bufsize")),
                   (ts, ("_trim_rcv",)), (udp, ("admit", "link", "unlink"))):
    for name in names:
        assert name in mod.__pyx_capi__, (mod.__name__, name)   # cimported, C calls
t = TCB()
for field, bad in (("sock", object()), ("snd", bytearray(4))):
    try:
        setattr(t, field, bad)
        raise SystemExit("TCB.%s took %r: not a typed field" % (field, bad))
    except TypeError:
        pass
from ustack.core.stack import Stack
st = Stack()
assert type(st.tcp.rings) is RingPool
try:
    st.tcp.rings = object()
    raise SystemExit("TCP.rings took an object: not a typed field")
except TypeError:
    pass
s = st.socket(so.AF_INET, so.SOCK_STREAM)
assert type(s) is TcpSocket
t.sock = s          # the socket a TCB's input wakes
t.sock = None
print("typed")
"""

PURE = r"""
import ustack
assert not ustack.compiled
from ustack.core import socket, udp
from ustack.core.tcp import socket as ts, ring
for m in (socket, udp, ts, ring):
    assert m.__file__.endswith(".py"), m.__file__
assert type(ring.RingPool.shed).__name__ == "function"
print("pure")
"""


def test_the_socket_layer_is_c_methods_and_typed_fields_in_the_compiled_core():
    r = _run(COMPILED, pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "typed", r.stdout + r.stderr


def test_ustack_pure_runs_the_socket_layer_as_python():
    r = _run(PURE, pure=True)
    assert r.returncode == 0 and r.stdout.strip() == "pure", r.stdout + r.stderr
