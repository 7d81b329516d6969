"""Targeted wake-ups (issue 13): a thread blocked on a socket is woken when that socket becomes
ready, not after every poll; no wake-up is lost when calls, closes and timeouts race."""
import threading
import time

import pytest

from ustack.core import socket as so
from tests.ports.test_runner import two_stacks_with_runners

N_QUIET = 5  # threads blocked on sockets that receive nothing


@pytest.fixture
def runners():
    a, b, ra, rb = two_stacks_with_runners()
    yield a, b, ra, rb
    ra.stop()
    rb.stop()


def connected_pairs(ra, rb, n, port=7):
    """n TCP connections a -> b: [(client on a, server socket on b)], blocking (5 s)."""
    ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", port))
    ls.listen(n)
    pairs = []
    for _ in range(n):
        c = ra.socket(so.AF_INET, so.SOCK_STREAM)
        c.settimeout(5)
        c.connect(("192.0.2.11", port))
        s, _ = ls.accept()
        s.settimeout(5)
        pairs.append((c, s))
    ls.close()
    return pairs


def count_checks_by(threads, sock, counts, i):
    """Count the calls of sock's readiness check made by threads[i], the one blocked on it:
    what it runs each time it is woken."""
    core = sock._sock
    real = core.readable

    def readable():
        if threading.current_thread() is threads[i]:
            counts[i] += 1
        return real()
    core.readable = readable


def test_data_for_one_socket_wakes_only_the_thread_blocked_on_it(runners):
    a, b, ra, rb = runners
    pairs = connected_pairs(ra, rb, N_QUIET + 1)
    counts = [0] * len(pairs)
    got = [[] for _ in pairs]

    def reader(i):
        s = pairs[i][1]
        while True:
            d = s.recv(100)
            got[i].append(d)
            if not d or d.endswith(b"end"):
                return
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(pairs))]
    for i, (c, s) in enumerate(pairs):
        count_checks_by(threads, s, counts, i)
    for t in threads:
        t.start()
    time.sleep(0.2)  # every reader blocked in recv
    before = list(counts)
    busy = pairs[0][0]
    for k in range(30):  # 30 segments, 30 ACKs: many polls on b
        busy.send(b"m%d;" % k)
        time.sleep(0.005)
    busy.send(b"end")
    threads[0].join(5)
    assert b"".join(got[0]).endswith(b"end")
    assert [counts[i] - before[i] for i in range(1, len(pairs))] == [0] * N_QUIET, \
        "threads blocked on quiet sockets were woken"
    assert rb.spurious == 0
    for c, s in pairs[1:]:
        c.send(b"end")
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    for c, s in pairs:
        c.close()
        s.close()


def test_blocked_recv_returns_when_the_peer_closes(runners):
    a, b, ra, rb = runners
    (c, s), = connected_pairs(ra, rb, 1)
    out = []
    t = threading.Thread(target=lambda: out.append(s.recv(10)))
    t.start()
    time.sleep(0.05)
    c.close()
    t.join(5)
    assert out == [b""]
    s.close()


def test_a_call_from_another_thread_wakes_a_blocked_thread_at_once(runners):
    """shutdown(SHUT_RD) by one thread ends another's recv without waiting for a poll."""
    a, b, ra, rb = runners
    (c, s), = connected_pairs(ra, rb, 1)
    out = []
    t = threading.Thread(target=lambda: out.append(s.recv(10)))
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    s.shutdown(so.SHUT_RD)
    t.join(5)
    assert out == [b""]
    assert time.monotonic() - t0 < rb.max_wait  # not left for the runner's idle poll
    c.close()
    s.close()


def test_echo_threads_racing_closes_and_short_timeouts_never_hang(runners):
    a, b, ra, rb = runners
    pairs = connected_pairs(ra, rb, 4)
    errors = []
    echoed = [0] * len(pairs)

    def echo(s):
        try:
            while True:
                d = s.recv(512)
                if not d:
                    break
                s.sendall(d)
        except OSError as e:
            errors.append(e)
        finally:
            s.close()

    def client(i, c):
        try:
            for k in range(40):
                msg = b"%d:%d." % (i, k)
                c.sendall(msg)
                want = len(msg)
                while want:
                    want -= len(c.recv(want))
                echoed[i] += 1
            c.close()
        except OSError as e:
            errors.append(e)

    def impatient(c):
        # timeouts expiring while data races in: the waiter must leave no trace behind
        c.settimeout(0.001)
        for _ in range(50):
            try:
                c.recv(1, so.MSG_PEEK)
            except OSError:
                pass
    threads = [threading.Thread(target=echo, args=(s,)) for _, s in pairs]
    threads += [threading.Thread(target=client, args=(i, c)) for i, (c, _) in enumerate(pairs[:3])]
    last = pairs[3][0]
    threads.append(threading.Thread(target=impatient, args=(last,)))
    for t in threads:
        t.start()
    for t in threads[len(pairs):]:
        t.join(20)
    last.close()
    for t in threads:
        t.join(20)
        assert not t.is_alive(), "a thread hung"
    assert errors == []
    assert echoed[:3] == [40, 40, 40]
    assert ra._waiters == [] and rb._waiters == []


# ---- no exception objects on the poll path ---------------------------------------------------
def count_exceptions(fn):
    """Run fn() and count the exceptions raised inside it (caught ones too): CPython's
    tracer reports each as an 'exception' event in the frame it passes through first."""
    import sys
    seen = [0]

    def tracer(frame, event, arg):
        if event == "exception":
            seen[0] += 1
        return tracer
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return seen[0]


def test_tcp_services_raise_no_exception_per_poll():
    """`ustack up --serve`'s echo/discard/chargen run after every poll: with nothing to do,
    and while moving data, they test readiness instead of raising EAGAIN."""
    from ustack.ports.cpython.tcp_services import EventService
    from tests.twostack import Bench
    bench = Bench()
    svcs = [EventService(bench.b, k, p) for k, p in (("echo", 7), ("discard", 9),
                                                       ("chargen", 19))]
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex(("192.0.2.11", 7))
    got = []

    def polls(n):
        for _ in range(n):
            bench.advance(1)
            for s in svcs:
                s()
            try:
                got.append(c.recv(100))
            except OSError:
                pass
    polls(20)  # connected and accepted
    assert count_exceptions(lambda: [s() for s in svcs for _ in range(50)]) == 0  # idle
    c.send(b"ping")

    def echo_round():
        for _ in range(20):
            bench.advance(1)
            for s in svcs:
                s()
    assert count_exceptions(echo_round) == 0  # an echo, through the services' polls
    polls(5)
    assert b"".join(got) == b"ping"
    c.close()
    bench.pump()


def test_tcp_services_visit_only_connections_with_news():
    """Idle connections cost a service's poll nothing: only a connection whose readiness
    changed (data, FIN, space) is visited. Visiting every connection after every poll made
    10 000 idle connections slow every other one down (issue 13's idle-connections row)."""
    from ustack.ports.cpython.tcp_services import EventService
    from tests.twostack import Bench
    bench = Bench({"TCP_MAX_CONNS": 64, "SOCKETS": 80, "TCP_BACKLOG": 32})
    svc = EventService(bench.b, "echo", 7)
    visits = []
    serve = svc._serve
    svc._serve = lambda c, e: visits.append(c) or serve(c, e)
    cs = []
    for _ in range(30):
        c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex(("192.0.2.11", 7))
        cs.append(c)
    for _ in range(3000):   # SYNs waiting for ARP are retransmitted after the first RTO
        bench.advance(1)
        svc()
        if svc.count == 30:
            break
    assert svc.count == 30
    del visits[:]
    for _ in range(50):   # quiet: nobody has news
        bench.advance(1)
        svc()
    assert visits == []
    cs[7].send(b"ping")
    for _ in range(10):
        bench.advance(1)
        svc()
    assert len(set(visits)) == 1 and cs[7].recv(100) == b"ping"
    del visits[:]
    cs[3].close()   # a FIN: visited, closed, forgotten
    for _ in range(10):
        bench.advance(1)
        svc()
    assert len(set(visits)) == 1 and svc.count == 29
    for c in cs:
        c.close()
    bench.pump()


def test_echo_service_answers_each_request_without_waiting_for_an_ack():
    """The echo service's connections have TCP_NODELAY (as lwIP's glue and HTTP servers do):
    the poll answers its first request before it reads on (issue 13), and a second request
    of the same burst is answered at its end - with Nagle (RFC 896) that answer would wait
    for the ACK of the first, a round trip or the peer's delayed ACK. Discard sends nothing
    and chargen fills its window: they keep Nagle."""
    from ustack.ports.cpython.tcp_services import EventService
    from tests.twostack import Bench
    bench = Bench()
    svcs = {k: EventService(bench.b, k, p) for k, p in (("echo", 7), ("discard", 9))}
    cs = {}
    for k, port in (("echo", 7), ("discard", 9)):
        c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex(("192.0.2.11", port))
        cs[k] = c
    for _ in range(50):
        bench.advance(1)
        for s in svcs.values():
            s()
        if all(s.count == 1 for s in svcs.values()):
            break
    conns = {k: [s for s in bench.b.sockets if s.on_event is svc.news] for k, svc in svcs.items()}
    assert [len(v) for v in conns.values()] == [1, 1]
    assert conns["echo"][0].getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY) == 1
    assert conns["discard"][0].getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY) == 0
    for c in cs.values():
        c.close()
    bench.pump()


def test_services_are_one_hook_that_calls_a_service_with_work():
    """`ustack up --serve`'s services are one runner hook (tcp_services.ServiceHooks: one
    Python call after a poll, not one per service and family, issue 13), which still answers
    UDP and TCP echo and leaves discard's datagrams unanswered."""
    from ustack.ports.cpython import services
    from ustack.ports.cpython.tcp_services import ServiceHooks
    from tests.twostack import Bench, IP_B, udp

    class Host:   # what services.start uses of a runner
        pass
    bench = Bench()
    r = Host()
    r.stack, r.lock, r.hooks = bench.b, threading.RLock(), []
    assert services.start(r, ["echo", "discard"]) == ["udp/echo", "tcp/echo", "udp/discard",
                                                       "tcp/discard"]
    assert len(r.hooks) == 1 and isinstance(r.hooks[0], ServiceHooks)
    h = r.hooks[0]
    fams = 1 if bench.b.ipv6 is None else 2
    assert len(h.udp) == 2 * fams and len(h.tcp) == 2 * fams

    def polls(n):
        for _ in range(n):
            bench.advance(1)
            h()
    cl = udp(bench.a, 40001)
    cl.sendto(b"hi", (IP_B, 7))
    cl.sendto(b"gone", (IP_B, 9))
    polls(5)
    assert cl.recvfrom(100) == (b"hi", (IP_B, 7))
    assert cl.qlen == 0 and [u.count for u in h.udp[:2]] == [1, 1]
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 7))
    polls(10)
    c.send(b"ping")
    polls(10)
    assert c.recv(100) == b"ping"
    c.close()
    polls(10)
    bench.close_all()
