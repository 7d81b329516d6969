"""Two (or more) stacks on the in-memory wire with a virtual clock: a test bench for protocols."""
from ustack.core import socket as so
from ustack.core.stack import Stack
from ustack.hal.loopback import Wire

MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"
IP_A = "192.0.2.10"
IP_B = "192.0.2.11"


def two_stacks(ip_a=IP_A, ip_b=IP_B, wrap_b=None):
    """Two stacks on one in-memory wire, on their own clocks (for runners and threads; Bench
    is the same pair on a virtual clock). wrap_b(port), if given, is b's driver
    (b.ifaces[0].driver)."""
    w = Wire()
    a, b = Stack(), Stack()
    a.add_interface("a0", w.port(MAC_A), ip=ip_a + "/24")
    pb = w.port(MAC_B)
    b.add_interface("b0", pb if wrap_b is None else wrap_b(pb), ip=ip_b + "/24")
    return a, b


class Bench:
    def __init__(self, config=None, config_b=None, wrap=None):
        self.t = 1000
        self.wire = Wire()
        self.pa = self.wire.port(MAC_A)
        self.pb = self.wire.port(MAC_B)
        da, db = self.pa, self.pb
        if wrap is not None:
            da, db = wrap(da, self), wrap(db, self)
        self.a = Stack(config)
        self.b = Stack(config_b if config_b is not None else config)
        for s in (self.a, self.b):
            s.clock = self.clock
            s.idle = self.advance
        self.ia = self.a.add_interface("a0", da, ip=IP_A, prefix=24)
        self.ib = self.b.add_interface("b0", db, ip=IP_B, prefix=24)
        self.pump()

    def clock(self):
        return self.t

    def advance(self, ms=1):
        self.t += ms
        self.a.poll(self.t)
        self.b.poll(self.t)

    def pump(self, rounds=20, step=1):
        """Let frames settle: poll both stacks, advancing virtual time by step ms."""
        for _ in range(rounds):
            self.advance(step)

    def run(self, ms, step=1):
        end = self.t + ms
        while self.t < end:
            self.advance(step)

    def until(self, cond, limit_ms=60000, step=1):
        end = self.t + limit_ms
        while not cond():
            if self.t >= end:
                return False
            self.advance(step)
        return True

    def pools_full(self):
        return self.a.pool.full() and self.b.pool.full()

    def close_all(self):
        """After a test: every socket on both stacks closed, the closes run, and every packet
        buffer back in its pool."""
        for s in list(self.a.sockets) + list(self.b.sockets):
            s.close()
        self.pump()
        assert self.pools_full(), "packet buffers leaked"


def pair(bench, port=8080, opts=()):
    """A connection from A to a listener on B's port: (A's socket, B's accepted one, the
    listener), all non-blocking; opts: (level, name, value) set on the listener first."""
    ls = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    for o in opts:
        ls.setsockopt(o[0], o[1], o[2])
    ls.bind(("", port))
    ls.listen(4)
    ls.setblocking(False)
    s = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((IP_B, port))
    bench.pump(40)
    conn, _ = ls.accept()
    conn.setblocking(False)
    return s, conn, ls


def udp(stack, port=None):
    """A non-blocking UDP socket on stack, bound to port if given."""
    s = stack.socket(so.AF_INET, so.SOCK_DGRAM)
    if port is not None:
        s.bind(("", port))
    s.setblocking(False)
    return s
