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
