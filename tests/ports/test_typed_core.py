"""The typed core (issue 13): the augmenting .pxd files beside core/ make the compiled hot
path C structs and C calls. These checks keep that from vanishing silently (a .pxd that no
longer matches its .py, a build that compiled without them) and keep USTACK_PURE=1 on the
pure modules."""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMPILED = r"""
import ustack
assert ustack.compiled, "the core is not compiled"
from ustack.core.tcp.tcb import TCB
from ustack.core.tcp.ring import Ring
from ustack.core.buf import Pool, PacketBuffer
from ustack.core.net.ip import Meta
from ustack.core.tcp import seq, input as inp, output as out
from ustack.core.tcp.cc_newreno import NewReno
for cls in (TCB, Ring, Pool, PacketBuffer, NewReno):
    # a cdef class: an extension type with C slots, no per-instance dict
    assert cls.__dictoffset__ == 0, cls
    assert not cls.__module__.endswith("_pure"), cls
from ustack.core.socket import Socket
# the common socket state: an extension type (C fields, no dict of its own)
assert not (Socket.__flags__ & (1 << 9)), "Socket is not a cdef class"
t = TCB()
try:
    t.not_a_field = 1
    raise SystemExit("TCB took an undeclared attribute: not a cdef class")
except AttributeError:
    pass
try:
    t.snd_una = "1"
    raise SystemExit("TCB.snd_una took a str: not a C integer")
except TypeError:
    pass
t.snd_una = 0xFFFFFFFF  # relative sequence numbers reach 2**32 - 1 exactly
assert t.snd_una == 0xFFFFFFFF
p = Pool(2, 64)
b = p.alloc()
assert type(b) is PacketBuffer and b.off == 128
try:
    p.free(None)  # a None where a typed object is expected raises as in the pure core
    raise SystemExit("Pool.free(None) was accepted")
except AttributeError:
    pass
p.free(b)
assert p.full()
# the Stack, TCP, UDP and ICMP objects (stack.pxd, tcp/proto.pxd, udp.pxd, icmp.pxd):
# extension types whose per-request fields are C struct members, keeping an instance __dict__
# for the rest (ports and tests hang attributes of their own on them); a UDP socket's queue
# state is C fields
from ustack.core.stack import Stack
from ustack.core.tcp.proto import TCP
from ustack.core.udp import UDP, UdpSocket
st = Stack()
for o in (st, st.tcp, st.udp, st.icmp):
    assert type(o).__flags__ & (1 << 9) == 0, type(o)   # not a heap type: a cdef class
    o.a_port_hook = 1    # the __dict__ takes what the .pxd does not declare
    assert o.a_port_hook == 1 and "a_port_hook" in o.__dict__
assert "pool" not in st.__dict__ and "seg_seq" not in st.tcp.__dict__   # C fields
# what a connection's setup and teardown touch on TCP (issue 13's connection rate): C fields
for k in ("embryonic", "ntimed", "timed", "conns", "last_lip", "orphans", "max_conns",
          "syncookies", "rto_init", "keep_idle", "wscale", "bursting"):
    assert k not in st.tcp.__dict__, k
try:
    st.tcp.embryonic = "1"
    raise SystemExit("TCP.embryonic took a str: not a C integer")
except TypeError:
    pass
try:
    st.tcp.seg_seq = "1"
    raise SystemExit("TCP.seg_seq took a str: not a C integer")
except TypeError:
    pass
u = st.socket(2, 2)
assert type(u) is UdpSocket and not (UdpSocket.__flags__ & (1 << 9))
try:
    u.qlen = "1"
    raise SystemExit("UdpSocket.qlen took a str: not a C integer")
except TypeError:
    pass
u.close()
s = st.socket(2, 1)   # a stream socket's connection is a typed TCB field (socket.pxd)
try:
    s.tcb = object()
    raise SystemExit("StreamSocket.tcb took an object that is no TCB")
except TypeError:
    pass
s.close()
for f in (Stack.poll, TCP.input, TCP.lookup, UDP.input, UDP.output):
    assert type(f).__name__ == "cython_function_or_method", f
for f in (seq.seq_add, seq.seq_lt, inp.segment, out.output, out.send_segment):
    assert type(f).__name__ == "cython_function_or_method", f
# the C arithmetic keeps the .py's modulo-2**32 results
assert seq.seq_add(0xFFFFFFFF, 1) == 0 and seq.seq_sub(0, 1) == 0xFFFFFFFF
assert seq.seq_diff(0, 0xFFFFFFFF) == 1 and seq.seq_lt(0xFFFFFFF0, 5)
assert seq.MASK == 0xFFFFFFFF
print("typed")
"""

PURE = r"""
import ustack
assert not ustack.compiled
from ustack.core.tcp import tcb, seq, ring
from ustack.core import buf
for m in (tcb, seq, ring, buf):
    assert m.__file__.endswith(".py"), m.__file__
assert buf.PacketBuffer(8, 0).__dict__ is not None
assert type(seq.seq_add).__name__ == "function"
print("pure")
"""


def _run(code, pure, **extra):
    """code in a fresh interpreter, the compiled build or (pure) USTACK_PURE=1, with `extra`
    in its environment."""
    env = dict(os.environ)
    env.pop("USTACK_PURE", None)
    if pure:
        env["USTACK_PURE"] = "1"
    env.update(extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env, cwd=ROOT)


def test_the_compiled_core_has_cdef_classes_and_c_functions():
    r = _run(COMPILED, pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "typed", r.stdout + r.stderr


def test_ustack_pure_still_runs_the_pure_modules():
    r = _run(PURE, pure=True)
    assert r.returncode == 0 and r.stdout.strip() == "pure", r.stdout + r.stderr


def test_every_c_constant_matches_its_module():
    """core/**/X_const.pxd declares X.py's integer constants as C enums (for the modules that
    cimport it under X's import name): every value must be the .py's."""
    import importlib
    files = sorted(glob.glob(os.path.join(ROOT, "core", "**", "*_const.pxd"), recursive=True))
    assert len(files) >= 5, files
    for f in files:
        rel = os.path.relpath(f, ROOT)[:-len("_const.pxd")]
        mod = importlib.import_module("ustack." + rel.replace(os.sep, "."))
        seen = 0
        for line in open(f):
            m = re.match(r"^\s+([A-Z][A-Z0-9_]*) = (0x[0-9A-Fa-f]+|\d+)\s*$", line)
            if m:
                name, v = m.group(1), int(m.group(2), 0)
                assert getattr(mod, name) == v, (f, name, v, getattr(mod, name, None))
                seen += 1
        assert seen, f
