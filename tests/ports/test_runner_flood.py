"""The CPython runner under a receive flood: the driving thread never runs out of frames, yet
threads blocked in socket calls get the stack's lock promptly (the runner hands it over
between polls instead of taking it straight back), and their timers still fire."""
import threading
import time

from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.ports.cpython.runner import Runner
from tests import frames as F
from tests.unit.test_flood_limits import Flood


def flooded_runner():
    st = Stack()
    drv = Flood([F.udp_frame(9, b"x")])  # to a closed UDP port: read, counted, dropped
    st.add_interface("eth0", drv, ip="192.0.2.2/24")
    return st, drv, Runner(st).start()


def test_socket_calls_from_other_threads_get_the_lock_promptly_under_a_flood():
    st, drv, r = flooded_runner()
    try:
        s = r.socket(so.AF_INET, so.SOCK_DGRAM)
        s.bind(("", 5000))
        time.sleep(0.1)
        waits = []
        for _ in range(50):
            t0 = time.monotonic()
            s.getsockname()
            waits.append(time.monotonic() - t0)
        s.close()
        waits.sort()
        assert drv.read > 1000, "the flood did not run"
        assert waits[-1] < 0.1, "a socket call waited %.3f s for the stack's lock" % waits[-1]
    finally:
        r.stop()


def test_a_blocking_recv_times_out_on_time_under_a_flood():
    st, drv, r = flooded_runner()
    try:
        s = r.socket(so.AF_INET, so.SOCK_DGRAM)
        s.bind(("", 5001))
        s.settimeout(0.2)
        t0 = time.monotonic()
        try:
            s.recv(100)
        except OSError:
            pass
        took = time.monotonic() - t0
        s.close()
        assert 0.19 <= took < 0.5, took
    finally:
        r.stop()


def test_many_threads_each_get_their_turn_under_a_flood():
    st, drv, r = flooded_runner()
    try:
        done = []

        def one(k):
            s = r.socket(so.AF_INET, so.SOCK_DGRAM)
            s.bind(("", 6000 + k))
            for _ in range(20):
                s.getsockname()
            s.close()
            done.append(k)
        ts = [threading.Thread(target=one, args=(k,)) for k in range(8)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        assert sorted(done) == list(range(8)) and time.monotonic() - t0 < 2.0
    finally:
        r.stop()
