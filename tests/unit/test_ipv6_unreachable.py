"""Address Unreachable (RFC 4861 7.2.2, 7.3.3): when nobody answers the solicitations for a
next hop, the waiting packet is dropped and its socket hears EHOSTUNREACH - a TCP connect()
fails after the three solicitations (about 3 s, like Linux), not after the SYN retries; a
connected UDP socket gets it as its pending error. Counted per interface (nd.host_unreach)."""
from ustack.core import socket as so
from tests.unit.test_ipv6_two_stacks import Bench6

EINPROGRESS = 115
EHOSTUNREACH = 113
SILENT = "2001:db8::99"   # on-link (2001:db8::/64), nobody holds it


def test_tcp6_connect_to_a_silent_neighbour_fails_fast_with_ehostunreach():
    bench = Bench6()
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.setblocking(False)
    t0 = bench.t
    assert c.connect_ex((SILENT, 80)) == EINPROGRESS
    errs = []
    assert bench.until(lambda: errs.append(c.getsockopt(so.SOL_SOCKET, so.SO_ERROR)) or
                       errs[-1] != 0, 10000)
    assert errs[-1] == EHOSTUNREACH
    # three solicitations RetransTimer (1 s) apart, then the verdict: no SYN retry budget
    assert 3000 <= bench.t - t0 <= 3100
    c2 = bench.a.counters()
    assert c2["a0.nd.host_unreach"] == 1
    assert c2["ip6.nd_unreachable"] == 1
    assert c2["a0.nd.solicits_mcast"] == 3


def test_blocking_connect_to_a_silent_neighbour_raises_ehostunreach():
    bench = Bench6()
    bench.a.waiter = None
    bench.a.idle = bench.advance
    c = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    c.settimeout(20)
    try:
        c.connect((SILENT, 80))
    except OSError as e:
        assert e.args[0] == EHOSTUNREACH
    else:
        assert False, "connect() to a silent neighbour succeeded"


def test_connected_udp6_socket_gets_ehostunreach():
    bench = Bench6()
    u = bench.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    u.setblocking(False)
    u.connect((SILENT, 9))
    u.send(b"anyone?")
    bench.run(3100)
    assert bench.a.counters()["a0.nd.host_unreach"] == 1
    assert u.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == EHOSTUNREACH
