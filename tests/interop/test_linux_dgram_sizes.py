"""Datagram size errors against the kernel (issue 9): tests/unit/test_dgram_size_errors.py's
table of sendto calls - UDP and raw, both families, IP_MTU_DISCOVER = IP_PMTUDISC_DO,
IPV6_MTU_DISCOVER, IPV6_DONTFRAG, sizes at the path MTU and at each family's largest
payload - made with CPython's socket module on Linux through a 1400-byte veth in a
throwaway namespace, and with ustack's drop-in socket module (ustack.socket) over a stack
whose link has the same MTU: the same answer, call by call, and each is the table's."""
import json
import sys

from tests.conftest import needs_netns
from tests.netns import Netns, ROOT
from tests.unit.test_dgram_size_errors import CASES, MTU, run_case

pytestmark = [needs_netns]

KERNEL = r"""
import json, socket, sys
sys.path.insert(0, %(root)r)
from tests.unit.test_dgram_size_errors import CASES, run_case
out = {}
for name, family, typ, proto, size, opts, _ in CASES:
    s = socket.socket(family, typ, proto)
    out[name] = run_case(s, family, size, opts)
    s.close()
print(json.dumps(out))
"""


def kernel_answers():
    ns = Netns("dgsz")
    try:
        for cmd in (["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                    ["ip", "link", "set", "v0", "mtu", str(MTU), "up"],
                    ["ip", "link", "set", "v1", "up"],
                    ["ip", "addr", "add", "192.0.2.10/24", "dev", "v0"],
                    ["ip", "-6", "addr", "add", "2001:db8::a/64", "dev", "v0", "nodad"],
                    # the destinations resolved, so every datagram leaves at once
                    ["ip", "neigh", "add", "192.0.2.5", "lladdr", "02:00:00:00:00:05",
                     "dev", "v0"],
                    ["ip", "-6", "neigh", "add", "2001:db8::5", "lladdr",
                     "02:00:00:00:00:05", "dev", "v0"]):
            ns.run(cmd, check=True)
        r = ns.python(KERNEL % {"root": ROOT})
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    finally:
        ns.close()


def facade_answers():
    import ustack.socket as us
    from ustack.core.stack import Stack
    from ustack.hal.loopback import Wire
    from ustack.ports.cpython.host import Host
    from tests.twostack import MAC_A
    st = Stack({"IPV6": True, "ND_DAD_TRANSMITS": 0, "REASS_SIZE": 65515})
    iface = st.add_interface("a0", Wire().port(MAC_A), ip="192.0.2.10/24", mtu=MTU)
    st.add_address6(iface, "2001:db8::a/64")
    host = Host(st)
    us.use(host)
    try:
        out = {}
        for name, family, typ, proto, size, opts, _ in CASES:
            s = us.socket(family, typ, proto)
            out[name] = run_case(s, family, size, opts)
            s.close()
        return out
    finally:
        us.unpatch()
        host.close()


def test_the_drop_in_socket_module_answers_every_call_as_the_kernel():
    kernel = kernel_answers()
    facade = facade_answers()
    table = dict((c[0], c[-1]) for c in CASES)
    assert kernel == table, "the kernel disagrees with the table"
    assert facade == kernel
