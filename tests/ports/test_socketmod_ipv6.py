"""ustack.socket over IPv6 between two stacks on an in-memory wire, each with a runner thread:
the drop-in module gives what CPython's socket gives on Linux - a dual-stack listener on ::
names IPv4 clients ::ffff:a.b.c.d, IPV6_V6ONLY reads 0 by default and refuses v4-mapped
peers with Linux's errnos, create_server makes V6ONLY listeners as the stdlib's does, and a
link-local address's %zone or scope_id reaches the core."""
import errno
import threading

import pytest

from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.cpython.host import Host
from tests.twostack import MAC_A, MAC_B

A_IP, B_IP = "192.0.2.10", "192.0.2.11"
A6, B6 = "2001:db8::a", "2001:db8::b"
LL_B = "fe80::ff:fe00:b"


@pytest.fixture
def net():
    import ustack.socket as us
    w = Wire()
    cfg = {"IPV6": True, "ND_DAD_TRANSMITS": 0}   # no DAD wait: nobody else is on the wire
    a, b = Stack(cfg), Stack(cfg)
    ia = a.add_interface("a0", w.port(MAC_A), ip=A_IP + "/24")
    ib = b.add_interface("b0", w.port(MAC_B), ip=B_IP + "/24")
    a.add_address6(ia, A6 + "/64")
    b.add_address6(ib, B6 + "/64")
    ha, hb = Host(a), Host(b)
    us.use(ha)
    yield us, ha, hb
    us.unpatch()
    ha.close()
    hb.close()


def on(us, host, fn, *args, **kw):
    prev = us.default_host()
    us.use(host)
    try:
        return fn(*args, **kw)
    finally:
        us.use(prev)


def accept_one(ls, out):
    def run():
        c, peer = ls.accept()
        out.append((peer, c.getsockname(), c.recv(100)))
        c.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_dual_stack_listener_names_an_ipv4_client_v4_mapped(net):
    us, ha, hb = net
    ls = on(us, hb, us.socket, us.AF_INET6, us.SOCK_STREAM)
    assert ls.getsockopt(us.IPPROTO_IPV6, us.IPV6_V6ONLY) == 0
    ls.bind(("", 8000))
    ls.listen()
    ls.settimeout(5)
    got = []
    t = accept_one(ls, got)
    c = us.create_connection((B_IP, 8000), timeout=5)
    c.sendall(b"over four")
    t.join(5)
    assert got and got[0][0][:1] == ("::ffff:" + A_IP,) and got[0][0][2:] == (0, 0)
    assert got[0][1] == ("::ffff:" + B_IP, 8000, 0, 0)
    assert got[0][2] == b"over four"
    c.close()
    ls.close()


def test_v6only_refuses_v4_mapped_peers_with_linux_errnos(net):
    us, ha, hb = net
    s = us.socket(us.AF_INET6, us.SOCK_STREAM)
    s.setsockopt(us.IPPROTO_IPV6, us.IPV6_V6ONLY, 1)
    with pytest.raises(OSError) as e:
        s.connect(("::ffff:" + B_IP, 8000))
    assert e.value.errno == errno.ENETUNREACH
    u = us.socket(us.AF_INET6, us.SOCK_DGRAM)
    u.setsockopt(us.IPPROTO_IPV6, us.IPV6_V6ONLY, 1)
    with pytest.raises(OSError) as e:
        u.bind(("::ffff:" + A_IP, 0))
    assert e.value.errno == errno.EINVAL
    s.close()
    u.close()


def test_create_server_on_ipv6_is_v6only_beside_an_ipv4_one(net):
    us, ha, hb = net
    s4 = on(us, hb, us.create_server, ("", 8001))
    s6 = on(us, hb, us.create_server, ("", 8001), family=us.AF_INET6)
    assert s6.getsockopt(us.IPPROTO_IPV6, us.IPV6_V6ONLY) == 1
    s6.settimeout(5)
    got = []
    t = accept_one(s6, got)
    c = us.create_connection((B6, 8001), timeout=5)
    c.sendall(b"over six")
    t.join(5)
    assert got and got[0][0][0] == A6 and got[0][2] == b"over six"
    for x in (c, s4, s6):
        x.close()


def test_link_local_scope_id_reaches_the_core(net):
    us, ha, hb = net
    ls = on(us, hb, us.create_server, ("", 8002), family=us.AF_INET6)
    ls.settimeout(5)
    got = []
    t = accept_one(ls, got)
    c = us.socket(us.AF_INET6, us.SOCK_STREAM)
    c.settimeout(5)
    c.connect((LL_B, 8002, 0, 1))
    assert c.getpeername() == (LL_B, 8002, 0, 1)
    c.sendall(b"by scope")
    t.join(5)
    assert got and got[0][2] == b"by scope"
    c.close()
    ls.close()
