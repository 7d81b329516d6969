"""The typed lower layers (issue 13): the interface, IPv4, the IP layer's metadata and
output, a connection's route cache and the ARP cache are cdef classes in the compiled core
(their .pxd beside the .py), their per-frame calls C functions; USTACK_PURE=1 still runs the
pure modules. A .pxd that stops matching its .py, or a build without them, fails here."""
from tests.ports.test_typed_core import _run   # the check runs in a child interpreter


COMPILED = r"""
import ustack
assert ustack.compiled, "the core is not compiled"
from ustack.core.iface import Interface
from ustack.core.ipv4 import IPv4
from ustack.core.net.ip import Meta, IP
from ustack.core.route import RouteCache
from ustack.core.arp import ArpCache
from ustack.core.stack import Stack
for cls in (Interface, IPv4, Meta, IP, RouteCache):
    assert cls.__dictoffset__ == 0, cls    # C slots, no instance dict
for cls in (Interface, IPv4, IP, ArpCache):
    assert "__pyx_vtable__" in cls.__dict__, cls   # C methods (cpdef): called as C functions
import ustack.core.ipv4 as v4, ustack.core.wire.ipv4 as w4, ustack.core.net.ip as nip
for mod, names in ((v4, ("_pseudo_sum",)), (w4, ("write_header",)),
                   (nip, ("fill_csum", "partial_csum"))):
    for name in names:
        assert name in mod.__pyx_capi__, (mod, name)   # cimported by the layers above
class Null:
    mac = b"\x02\x00\x00\x00\x00\x02"; mtu = 1500; caps = 0
    def send(self, buf, n): return True
    def recv_into(self, buf): return 0
st = Stack()
i = st.add_interface("eth0", Null(), ip="192.0.2.2", prefix=24)
assert type(i) is Interface and type(st.ipv4) is IPv4 and type(st.ip.meta) is Meta
for obj, field, bad in ((i, "mtu", "1500"), (i, "mac", bytearray(6)), (st.ipv4, "ttl", None),
                        (st.ip.meta, "l4", "0"), (RouteCache(), "gen", "1")):
    try:
        setattr(obj, field, bad)
        raise SystemExit("%s.%s took %r: not a typed field" % (type(obj).__name__, field, bad))
    except TypeError:
        pass
try:
    i.not_a_field = 1
    raise SystemExit("Interface took an undeclared attribute")
except AttributeError:
    pass
# the ARP cache keeps a dict: tools and tests may still wrap its lookups
i.arp.find = i.arp.find
print("typed")
"""

PURE = r"""
import ustack
assert not ustack.compiled
from ustack.core import iface, ipv4, arp, route
from ustack.core.net import ip
from ustack.core.wire import ipv4 as w
for m in (iface, ipv4, arp, route, ip, w):
    assert m.__file__.endswith(".py"), m.__file__
assert type(ipv4._pseudo_sum).__name__ == "function"
print("pure")
"""


def test_the_lower_layers_are_cdef_classes_with_c_methods_in_the_compiled_core():
    r = _run(COMPILED, pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "typed", r.stdout + r.stderr


def test_ustack_pure_runs_the_lower_layers_as_python():
    r = _run(PURE, pure=True)
    assert r.returncode == 0 and r.stdout.strip() == "pure", r.stdout + r.stderr
