"""CUBIC's fixed point never leaves MicroPython's small ints (CPython only: an int subclass
watches every operation).

On a 32-bit board a small int is below 2**30; beyond, MicroPython allocates a big int on the
heap (correct, but an allocation per ACK, and impossible with the heap locked). Here every
value the controller keeps is a Watched int whose every +, -, *, //, %, <<, >> and & result
is checked to stay within [-2**30, 2**30), so an intermediate product that would overflow
fails the test at the operation, whatever the comments in cc_cubic.py claim. Scenarios:
MSS 536..9000, slow start with HyStart++ into CSS and out, losses, RTOs, congestion
avoidance with cwnd up to CWND_MAX and elapsed times up to an hour."""
import pytest

from ustack.core.stats import Counters
from ustack.core.tcp import cc
from ustack.core.tcp import cc_cubic as K

LIMIT = 1 << 30


def _check(v, op):
    if not -LIMIT <= v < LIMIT:
        raise AssertionError("%s gives %d, beyond a 32-bit small int" % (op, v))
    return Watched(v)


class Watched(int):
    def __add__(self, o):
        return _check(int(self) + int(o), "+")

    def __radd__(self, o):
        return _check(int(o) + int(self), "+")

    def __sub__(self, o):
        return _check(int(self) - int(o), "-")

    def __rsub__(self, o):
        return _check(int(o) - int(self), "-")

    def __mul__(self, o):
        return _check(int(self) * int(o), "*")

    def __rmul__(self, o):
        return _check(int(o) * int(self), "*")

    def __floordiv__(self, o):
        return _check(int(self) // int(o), "//")

    def __rfloordiv__(self, o):
        return _check(int(o) // int(self), "//")

    def __mod__(self, o):
        return _check(int(self) % int(o), "%")

    def __rmod__(self, o):
        return _check(int(o) % int(self), "%")

    def __lshift__(self, o):
        return _check(int(self) << int(o), "<<")

    def __rlshift__(self, o):
        return _check(int(o) << int(self), "<<")

    def __rshift__(self, o):
        return _check(int(self) >> int(o), ">>")

    def __rrshift__(self, o):
        return _check(int(o) >> int(self), ">>")

    def __and__(self, o):
        return _check(int(self) & int(o), "&")

    def __rand__(self, o):
        return _check(int(o) & int(self), "&")

    def __neg__(self):
        return _check(-int(self), "neg")


def watch(c):
    """Every int the controller holds becomes Watched (constants it copied included)."""
    for k in K.Cubic.__slots__ + ("mss", "cwnd", "ssthresh", "dupacks", "recover", "acked_ca",
                                  "recovered"):
        v = getattr(c, k)
        if isinstance(v, int) and not isinstance(v, bool):
            setattr(c, k, Watched(v))


class Sender:
    def __init__(self, mss, rtt):
        self.c = cc.make("cubic", Watched(mss), Counters(cc.CC_COUNTERS))
        self.mss = Watched(mss)
        self.una = Watched(0)
        self.now = Watched(1000)
        self.rtt = rtt
        watch(self.c)

    def ack(self, acked, rtt=None):
        c = self.c
        flight = Watched(c.window())
        self.una = Watched((int(self.una) + int(acked)) & 0x3FFFFFF)  # stay in small seqs
        c.on_ack(Watched(acked), self.una, flight, self.now,
                 Watched(self.rtt if rtt is None else rtt))
        watch(c)

    def round(self, rtt=None, per_ack=None):
        c = self.c
        a = per_ack or int(self.mss)
        n = c.window() // a
        for _ in range(min(max(int(n), 1), 64)):  # a window's worth, at most 64 ACKs
            self.ack(max(a, c.window() // 64) if per_ack is None else a, rtt)
        self.now = Watched(int(self.now) + self.rtt)


@pytest.mark.parametrize("mss", [536, 1024, 1448, 4096, 9000])
def test_every_operation_stays_a_small_int(mss):
    s = Sender(mss, 40)
    c = s.c
    for r in (40, 40, 60, 60, 41, 41, 70, 70, 70, 70, 70, 70, 70, 70):  # HyStart++ paths
        s.round(rtt=r)
    c.on_dup_ack(s.una, Watched(c.window()), Watched(int(s.una) + c.window()), s.now)
    watch(c)
    for _ in range(3):
        c.on_dup_ack(s.una, Watched(c.window()), Watched(int(s.una) + c.window()), s.now)
        watch(c)
    s.ack(c.window())  # a full ACK ends recovery
    for _ in range(200):  # congestion avoidance: concave, plateau, convex
        s.round(rtt=40)
    c.on_rto(Watched(c.window()), Watched(int(s.una) + c.window()), s.now)
    watch(c)
    for _ in range(40):
        s.round(rtt=40)
    c.undo()
    watch(c)
    # the largest window, a stretch ACK of all of it, elapsed times up to an hour
    c.cwnd = Watched(K.CWND_MAX)
    c.on_congestion(cc.CE_LOSS, Watched(K.CWND_MAX), s.una, s.now)
    watch(c)
    c.on_congestion(cc.CE_ECN, Watched(K.CWND_MAX), s.una, s.now)
    watch(c)
    start = int(s.now)
    for t in (0, 1, 999, 60000, 600000, 1800000, 3600000):
        s.now = Watched(start + t)
        s.ack(K.CWND_MAX, rtt=600000)
        c.w_cubic(Watched(t))
        c.w_cubic(Watched(t + 3600000))
    assert c.window() <= K.CWND_MAX
    c.set_mss(Watched(mss))
    watch(c)
