"""TCP_CONGESTION through ustack.socket (the stdlib's surface): the same calls, values and
errors as on Linux's kernel sockets, checked against a kernel socket in the same test."""
import errno
import socket as std

import pytest

from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.cpython.host import Host


@pytest.fixture
def us():
    import ustack.socket as us
    st = Stack()
    st.add_interface("a0", Wire().port(b"\x02\0\0\0\0\x0a"), ip="192.0.2.10/24")
    h = Host(st)
    us.use(h)
    yield us
    us.unpatch()
    h.close()


def test_tcp_congestion_behaves_as_on_a_kernel_socket(us):
    assert us.TCP_CONGESTION == std.TCP_CONGESTION == 13
    k = std.socket()
    u = us.socket(us.AF_INET, us.SOCK_STREAM)
    try:
        k.setsockopt(std.IPPROTO_TCP, std.TCP_CONGESTION, b"cubic")
        u.setsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION, b"cubic")
        assert u.getsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION, 16) == \
            k.getsockopt(std.IPPROTO_TCP, std.TCP_CONGESTION, 16) == b"cubic" + bytes(11)
        assert u.getsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION, 4) == b"cubi"
        assert u.getsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION) == \
            k.getsockopt(std.IPPROTO_TCP, std.TCP_CONGESTION)  # 4 bytes as an int
        for bad in (b"no-such-cc", 1):
            for s, mod in ((k, std), (u, us)):
                with pytest.raises(OSError) as e:
                    s.setsockopt(mod.IPPROTO_TCP, mod.TCP_CONGESTION, bad)
                assert e.value.errno == errno.ENOENT
        for s, mod in ((k, std), (u, us)):
            with pytest.raises(TypeError, match="bytes-like"):
                s.setsockopt(mod.IPPROTO_TCP, mod.TCP_CONGESTION, "cubic")
        u.setsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION, b"none")
        assert u.getsockopt(us.IPPROTO_TCP, us.TCP_CONGESTION, 16).rstrip(b"\0") == b"none"
    finally:
        k.close()
        u.close()


def test_a_build_without_cubic_refuses_it_clearly(monkeypatch):
    """A board's build leaves cc_cubic.py out unless its FEATURES name "cubic": then a
    TCP_CC of cubic is a clear error at start, TCP_CONGESTION b"cubic" is ENOENT (as Linux
    for a module it cannot load) and config.set refuses it; the others still work."""
    import sys
    import json
    from ustack.core import ctl
    from ustack.core import socket as so
    import ustack.core.tcp as tcp_pkg
    monkeypatch.setitem(sys.modules, "ustack.core.tcp.cc_cubic", None)  # import fails
    monkeypatch.delattr(tcp_pkg, "cc_cubic", raising=False)
    with pytest.raises(ValueError, match="FEATURES"):
        Stack({"TCP_CC": "cubic"})
    st = Stack({"TCP_CC": "none"})
    s = st.socket(so.AF_INET, so.SOCK_STREAM)
    with pytest.raises(OSError) as e:
        s.setsockopt(so.IPPROTO_TCP, so.TCP_CONGESTION, b"cubic")
    assert e.value.errno == errno.ENOENT
    s.setsockopt(so.IPPROTO_TCP, so.TCP_CONGESTION, b"newreno")
    r = json.loads(ctl.Server(st).handle_line(ctl.request("config.set", key="TCP_CC",
                                                          value="cubic")))
    assert not r["ok"] and "not in this build" in r["error"]
    s.close()
    st.close()
