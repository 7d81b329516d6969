"""Bad API use looks like Python's socket module (issue 8, hole 12).

One table of misuses, each run against the REAL CPython socket (AF_INET on 127.0.0.1, the
Linux kernel behind it) and against a ustack socket (two stacks on the in-memory wire): the
same exception type, the same errno where there is one, the same message where CPython's is
part of the contract (ValueError/TypeError/OverflowError), or the same result when the call
succeeds. The CPython run is the oracle, so the table cannot drift from what Python does."""
import socket as pysock

import pytest

from ustack.core import socket as so
from tests.twostack import Bench, IP_A, IP_B


class Real:
    """Sockets of the machine's kernel, on loopback."""
    name = "cpython"

    def __init__(self):
        self.opened = []
        self.here = "127.0.0.1"
        self.peer_udp = self.keep(pysock.socket(pysock.AF_INET, pysock.SOCK_DGRAM))
        self.peer_udp.bind(("127.0.0.1", 0))
        self.there = self.peer_udp.getsockname()

    def keep(self, s):
        self.opened.append(s)
        return s

    def udp(self):
        s = self.keep(pysock.socket(pysock.AF_INET, pysock.SOCK_DGRAM))
        s.setblocking(False)
        return s

    def tcp(self):
        s = self.keep(pysock.socket(pysock.AF_INET, pysock.SOCK_STREAM))
        s.setblocking(False)
        return s

    def tcp_pair(self):
        lst = self.keep(pysock.socket(pysock.AF_INET, pysock.SOCK_STREAM))
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        c = self.keep(pysock.socket(pysock.AF_INET, pysock.SOCK_STREAM))
        c.connect(lst.getsockname())
        s, _ = lst.accept()
        self.keep(s)
        c.settimeout(5)
        return c, s

    def settle(self):
        pass

    def close(self):
        for s in self.opened:
            s.close()


class Ustack:
    """ustack sockets: stack A is 'here', stack B the peer; blocking calls drive the wire."""
    name = "ustack"

    def __init__(self):
        self.b = Bench()
        self.here = IP_A
        self.peer_udp = self.b.b.socket(so.AF_INET, so.SOCK_DGRAM)
        self.peer_udp.bind(("", 9))
        self.there = (IP_B, 9)
        self.b.a.ping(IP_B)

    def udp(self):
        s = self.b.a.socket(so.AF_INET, so.SOCK_DGRAM)
        s.setblocking(False)
        return s

    def tcp(self):
        s = self.b.a.socket(so.AF_INET, so.SOCK_STREAM)
        s.setblocking(False)
        return s

    def tcp_pair(self):
        lst = self.b.b.socket(so.AF_INET, so.SOCK_STREAM)
        lst.bind(("", 7))
        lst.listen(1)
        c = self.b.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.connect((IP_B, 7))
        s, _ = lst.accept()
        lst.close()
        c.settimeout(5)
        return c, s

    def settle(self):
        self.b.pump()

    def close(self):
        for s in list(self.b.a.sockets) + list(self.b.b.sockets):
            s.close()
        self.b.pump()
        assert self.b.pools_full()


def bound_udp(env):
    s = env.udp()
    s.bind((env.here, 0))
    return s


def connected_udp(env):
    s = env.udp()
    s.connect(env.there)
    return s


def closed(make):
    def f(env):
        s = make(env)
        s.close()
        return s
    return f


def with_data(env):
    c, s = env.tcp_pair()
    s.send(b"hi")
    env.settle()
    return c


CASES = [
    # (name, make the socket, the call)
    ("udp listen", lambda e: e.udp(), lambda s, e: s.listen(1)),
    ("udp accept", bound_udp, lambda s, e: s.accept()),
    ("udp shutdown unconnected", lambda e: e.udp(), lambda s, e: s.shutdown(so.SHUT_RDWR)),
    ("udp shutdown bound, unconnected", bound_udp, lambda s, e: s.shutdown(so.SHUT_RD)),
    ("udp shutdown bad how", lambda e: e.udp(), lambda s, e: s.shutdown(7)),
    ("udp shutdown connected", connected_udp, lambda s, e: s.shutdown(so.SHUT_RD)),
    ("udp send after SHUT_WR", connected_udp,
     lambda s, e: (s.shutdown(so.SHUT_WR), s.send(b"x"))),
    ("udp sendto after SHUT_WR", connected_udp,
     lambda s, e: (s.shutdown(so.SHUT_WR), s.sendto(b"x", e.there))),
    ("udp recv_into nbytes > len", bound_udp, lambda s, e: s.recv_into(bytearray(4), 10)),
    ("udp recv_into negative", bound_udp, lambda s, e: s.recv_into(bytearray(4), -1)),
    ("udp recvfrom_into nbytes > len", bound_udp,
     lambda s, e: s.recvfrom_into(bytearray(4), 10)),
    ("udp recvfrom_into negative", bound_udp, lambda s, e: s.recvfrom_into(bytearray(4), -1)),
    ("udp recv negative", bound_udp, lambda s, e: s.recv(-1)),
    ("udp recvfrom negative", bound_udp, lambda s, e: s.recvfrom(-1)),
    ("udp recv str size", bound_udp, lambda s, e: s.recv("10")),
    ("udp recv nothing queued", bound_udp, lambda s, e: s.recv(10)),
    ("udp sendto str port", lambda e: e.udp(), lambda s, e: s.sendto(b"x", (e.there[0], "9"))),
    ("udp sendto port 70000", lambda e: e.udp(), lambda s, e: s.sendto(b"x", (e.there[0], 70000))),
    ("udp sendto port -1", lambda e: e.udp(), lambda s, e: s.sendto(b"x", (e.there[0], -1))),
    ("udp sendto str data", lambda e: e.udp(), lambda s, e: s.sendto("x", e.there)),
    ("udp sendto with flags", lambda e: e.udp(), lambda s, e: s.sendto(b"xy", 0, e.there)),
    ("udp sendto on a connected socket", connected_udp, lambda s, e: s.sendto(b"x", e.there)),
    ("udp send unconnected", lambda e: e.udp(), lambda s, e: s.send(b"x")),
    ("udp bind str port", lambda e: e.udp(), lambda s, e: s.bind((e.here, "7"))),
    ("udp bind port 70000", lambda e: e.udp(), lambda s, e: s.bind((e.here, 70000))),
    ("udp bind 1-tuple", lambda e: e.udp(), lambda s, e: s.bind((e.here,))),
    ("udp bind 3-tuple", lambda e: e.udp(), lambda s, e: s.bind((e.here, 1, 2))),
    ("udp bind a string", lambda e: e.udp(), lambda s, e: s.bind(e.here)),
    ("udp bind a list", lambda e: e.udp(), lambda s, e: s.bind([e.here, 0])),
    ("udp bind None", lambda e: e.udp(), lambda s, e: s.bind(None)),
    ("udp bind int host", lambda e: e.udp(), lambda s, e: s.bind((5, 0))),
    ("udp connect float port", lambda e: e.udp(), lambda s, e: s.connect((e.there[0], 9.0))),
    ("tcp connect str port", lambda e: e.tcp(), lambda s, e: s.connect((e.there[0], "7"))),
    ("tcp connect port 70000", lambda e: e.tcp(), lambda s, e: s.connect((e.there[0], 70000))),
    ("tcp bind 1-tuple", lambda e: e.tcp(), lambda s, e: s.bind((e.here,))),
    ("tcp sendto connected", lambda e: e.tcp_pair()[0], lambda s, e: s.sendto(b"xyz", e.there)),
    ("tcp sendto unconnected", lambda e: e.tcp(), lambda s, e: s.sendto(b"x", e.there)),
    ("tcp sendto port 70000", lambda e: e.tcp(), lambda s, e: s.sendto(b"x", (e.there[0], 70000))),
    ("tcp recvfrom connected", with_data, lambda s, e: s.recvfrom(10)),
    ("tcp recvfrom_into connected", with_data, lambda s, e: s.recvfrom_into(bytearray(10))),
    ("tcp recvfrom unconnected", lambda e: e.tcp(), lambda s, e: s.recvfrom(10)),
    ("tcp recvfrom_into unconnected", lambda e: e.tcp(),
     lambda s, e: s.recvfrom_into(bytearray(10))),
    ("tcp recv_into nbytes > len", with_data, lambda s, e: s.recv_into(bytearray(4), 10)),
    ("tcp recv_into negative", with_data, lambda s, e: s.recv_into(bytearray(4), -1)),
    ("tcp recvfrom_into nbytes > len", with_data,
     lambda s, e: s.recvfrom_into(bytearray(4), 10)),
    ("tcp recv negative", with_data, lambda s, e: s.recv(-1)),
    ("tcp recv_into exact", with_data, lambda s, e: s.recv_into(bytearray(4), 4)),
    ("tcp send str", lambda e: e.tcp_pair()[0], lambda s, e: s.send("x")),
    ("tcp shutdown bad how", lambda e: e.tcp_pair()[0], lambda s, e: s.shutdown(7)),
    ("tcp shutdown unconnected", lambda e: e.tcp(), lambda s, e: s.shutdown(so.SHUT_RDWR)),
    ("tcp accept, not listening", lambda e: e.tcp(), lambda s, e: s.accept()),
    ("udp recv_into str nbytes", bound_udp, lambda s, e: s.recv_into(bytearray(4), "3")),
    ("udp sendto a string address", lambda e: e.udp(), lambda s, e: s.sendto(b"x", "addr")),
    ("udp sendto without address", lambda e: e.udp(), lambda s, e: s.sendto(b"x")),
    ("udp shutdown str how", connected_udp, lambda s, e: s.shutdown("1")),
    ("tcp recv_into str nbytes", with_data, lambda s, e: s.recv_into(bytearray(4), "3")),
    ("tcp recvfrom negative", with_data, lambda s, e: s.recvfrom(-1)),
    ("tcp recvfrom_into negative", with_data, lambda s, e: s.recvfrom_into(bytearray(4), -1)),
    ("tcp listen on a connected socket", lambda e: e.tcp_pair()[0], lambda s, e: s.listen(1)),
    ("settimeout negative", lambda e: e.tcp(), lambda s, e: s.settimeout(-1)),
    ("settimeout str", lambda e: e.tcp(), lambda s, e: s.settimeout("1")),
]
CLOSED_CALLS = [
    ("send", lambda s, e: s.send(b"x")),
    ("sendto", lambda s, e: s.sendto(b"x", e.there)),
    ("recv", lambda s, e: s.recv(1)),
    ("recvfrom", lambda s, e: s.recvfrom(1)),
    ("recv_into", lambda s, e: s.recv_into(bytearray(1))),
    ("recvfrom_into", lambda s, e: s.recvfrom_into(bytearray(1))),
    ("bind", lambda s, e: s.bind(("", 0))),
    ("connect", lambda s, e: s.connect(e.there)),
    ("getsockname", lambda s, e: s.getsockname()),
    ("getpeername", lambda s, e: s.getpeername()),
    ("shutdown", lambda s, e: s.shutdown(so.SHUT_RDWR)),
    ("listen", lambda s, e: s.listen(1)),
    ("accept", lambda s, e: s.accept()),
    ("setsockopt", lambda s, e: s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)),
    ("getsockopt", lambda s, e: s.getsockopt(so.SOL_SOCKET, so.SO_REUSEADDR)),
    ("settimeout", lambda s, e: s.settimeout(1)),
    ("setblocking", lambda s, e: s.setblocking(False)),
    ("close again", lambda s, e: s.close()),
]
for kind in ("udp", "tcp"):
    for n, call in CLOSED_CALLS:
        CASES.append(("closed %s %s" % (kind, n), closed(lambda e, k=kind: getattr(e, k)()), call))


def outcome(env_cls, make, call):
    env = env_cls()
    try:
        s = make(env)
        try:
            r = call(s, env)
        except Exception as e:
            return ("raises", type(e).__name__, getattr(e, "errno", None) if isinstance(
                e, OSError) else str(e))
        if isinstance(r, tuple) and len(r) == 2 and r[1] is None:
            return ("returns", r)
        if isinstance(r, tuple):
            r = r[-1]
        return ("returns", r if not hasattr(r, "fileno") else "socket")
    finally:
        env.close()


# a wrong call signature: the same TypeError, but Python words it after the function's shape
TYPE_ONLY = ("udp sendto without address",)


@pytest.mark.parametrize("name,make,call", CASES, ids=[c[0] for c in CASES])
def test_misuse_matches_cpython(name, make, call):
    want = outcome(Real, make, call)
    got = outcome(Ustack, make, call)
    if name in TYPE_ONLY:
        want, got = want[:2], got[:2]
    assert got == want, "%s: CPython %r, ustack %r" % (name, want, got)


def test_the_table_covers_every_hole_12_misuse():
    names = [c[0] for c in CASES]
    for must in ("udp listen", "udp accept", "udp shutdown unconnected",
                 "tcp sendto connected", "tcp recvfrom connected",
                 "udp recv_into nbytes > len", "udp recv_into negative", "udp sendto str port",
                 "udp sendto port 70000", "udp bind 1-tuple", "closed udp send"):
        assert must in names
