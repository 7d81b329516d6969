"""The CPython runner: one thread drives each stack; other threads block in socket calls
(the seed's one-thread-per-client style) and are woken by the driving thread."""
import select
import threading
import time

import pytest

from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.hal.loopback import Wire
from tests.twostack import two_stacks
from ustack.ports.cpython.runner import Runner
from tests.forkwait import child_report


def two_stacks_with_runners():
    """Two stacks on an in-memory wire, each driven by its own runner thread."""
    a, b = two_stacks()
    return a, b, Runner(a).start(), Runner(b).start()


@pytest.fixture
def runners():
    """two_stacks_with_runners(), both runners stopped after the test."""
    a, b, ra, rb = two_stacks_with_runners()
    yield a, b, ra, rb
    ra.stop()
    rb.stop()


def listen_and_connect(ra, rb, port=7):
    """A listening TCP socket on b and a blocking (3 s) socket on a connected to it."""
    ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", port))
    ls.listen(2)
    c = ra.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(3)
    c.connect(("192.0.2.11", port))
    return ls, c


def test_blocking_sockets_from_other_threads(runners):
    a, b, ra, rb = runners
    srv = rb.socket(so.AF_INET, so.SOCK_DGRAM)
    srv.bind(("", 7))
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                d, addr = srv.recvfrom(2048)
            except OSError:
                continue
            srv.sendto(d.upper(), addr)
    srv.settimeout(0.2)
    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    results = []
    # resolve ARP first: an unresolved neighbour holds one packet, and UDP does not retry
    with ra.lock:
        assert a.ping("192.0.2.11").received == 1

    def client(k):
        c = ra.socket(so.AF_INET, so.SOCK_DGRAM)
        c.settimeout(3)
        for i in range(20):
            c.sendto(b"c%d-%d" % (k, i), ("192.0.2.11", 7))
            results.append(c.recvfrom(100)[0] == (b"C%d-%d" % (k, i)))
        c.close()
    cs = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in cs:
        t.start()
    for t in cs:
        t.join(20)
    done.set()
    for t in threads:
        t.join(5)
    assert len(results) == 80 and all(results)
    srv.close()
    assert a.pool.full() and b.pool.full()


def test_fileno_is_readable_when_data_waits(runners):
    a, b, ra, rb = runners
    s = rb.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 9))
    fd = s.fileno()
    assert select.select([fd], [], [], 0.05)[0] == []
    c = ra.socket(so.AF_INET, so.SOCK_DGRAM)
    c.sendto(b"ready?", ("192.0.2.11", 9))
    assert select.select([fd], [], [], 3)[0] == [fd]
    assert s.recv(10) == b"ready?"
    s.close()
    c.close()


def test_driving_the_stack_without_the_runner_lock_is_refused():
    st = Stack()
    w = Wire()
    st.add_interface("a0", w.port(b"\x02\0\0\0\0\x0a"), ip="192.0.2.10/24")
    r = Runner(st)
    with pytest.raises(RuntimeError, match="one thread drives the stack"):
        st.poll(0)
    with r.lock:
        st.poll(0)


def test_runner_fileno_readable_for_pending_accept_and_stream_data(runners):
    a, b, ra, rb = runners
    ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7))
    ls.listen(2)
    lfd = ls.fileno()
    assert select.select([lfd], [], [], 0.05)[0] == []
    c = ra.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(3)
    c.connect(("192.0.2.11", 7))
    assert select.select([lfd], [], [], 3)[0] == [lfd]  # a connection to accept
    s, _ = ls.accept()
    fd = s.fileno()
    assert select.select([fd], [], [], 0.05)[0] == []
    c.send(b"stream")
    assert select.select([fd], [], [], 3)[0] == [fd]  # stream data waits
    assert s.recv(10) == b"stream"
    for x in (c, s, ls):
        x.close()


def _readable_now(fd):
    return select.select([fd], [], [], 0)[0] == [fd]


def _writable_now(fd):
    return select.select([], [fd], [], 0)[1] == [fd]


def test_fileno_not_readable_once_accept_empties_the_queue(runners):
    a, b, ra, rb = runners
    ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7))
    ls.listen(2)
    lfd = ls.fileno()
    c = ra.socket(so.AF_INET, so.SOCK_STREAM)
    c.settimeout(3)
    c.connect(("192.0.2.11", 7))
    assert select.select([lfd], [], [], 3)[0] == [lfd]
    s, _ = ls.accept()
    # exact right after the call, not after the runner's next poll: an accept() that
    # select() calls ready must not block
    assert not _readable_now(lfd)
    for x in (c, s, ls):
        x.close()


def test_fileno_not_readable_once_recv_empties_the_buffer(runners):
    a, b, ra, rb = runners
    ls, c = listen_and_connect(ra, rb)
    s, _ = ls.accept()
    fd = s.fileno()
    c.send(b"stream")
    assert select.select([fd], [], [], 3)[0] == [fd]
    assert s.recv(10) == b"stream"
    assert not _readable_now(fd)
    for x in (c, s, ls):
        x.close()


def test_nonblocking_connect_to_a_silent_host_is_not_writable_and_has_no_peer(runners):
    import errno
    a, b, ra, rb = runners
    c = ra.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    assert c.connect_ex(("192.0.2.99", 7)) == errno.EINPROGRESS  # nobody answers ARP
    fd = c.fileno()
    assert select.select([fd], [fd], [], 0.3) == ([], [], [])
    assert c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    with pytest.raises(OSError) as e:
        c.getpeername()  # RFC 9293 SYN-SENT: not connected yet (Linux: ENOTCONN)
    assert e.value.errno == errno.ENOTCONN
    c.close()


def test_nonblocking_connect_becomes_writable_when_established(runners):
    a, b, ra, rb = runners
    ls = rb.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7))
    ls.listen(2)
    c = ra.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex(("192.0.2.11", 7))
    fd = c.fileno()
    assert select.select([], [fd], [], 3)[1] == [fd]
    assert c.getsockopt(so.SOL_SOCKET, so.SO_ERROR) == 0
    assert c.getpeername() == ("192.0.2.11", 7)
    for x in (c, ls):
        x.close()


def test_fileno_not_writable_while_the_send_buffer_is_full(runners):
    a, b, ra, rb = runners
    ls, c = listen_and_connect(ra, rb)
    s, _ = ls.accept()
    c.setblocking(False)
    fd = c.fileno()
    assert _writable_now(fd)
    chunk = b"x" * 65536
    for _ in range(3):  # the peer does not read: its window closes, then our buffer fills
        time.sleep(0.2)  # in-flight segments acknowledged: the next EAGAIN is for good
        try:
            while True:
                c.send(chunk)
        except BlockingIOError:
            pass
    assert not _writable_now(fd)
    s.settimeout(3)
    while not select.select([], [fd], [], 0.05)[1]:
        s.recv(65536)  # the reader frees the window, our buffer drains
    assert _writable_now(fd)
    for x in (c, s, ls):
        x.close()


class FlakyDriver:
    """Wraps a driver; its next recv_into raises once (a driver bug, or a device gone for a
    moment): the exception leaves Stack.poll itself, so only the runner can survive it."""

    def __init__(self, drv):
        self.drv = drv
        self.fail = 0

    def recv_into(self, buf):
        if self.fail:
            self.fail -= 1
            raise RuntimeError("device hiccup")
        return self.drv.recv_into(buf)

    def __getattr__(self, name):
        return getattr(self.drv, name)


def test_runner_thread_survives_exceptions_from_handlers_and_from_poll():
    a, b = two_stacks(wrap_b=FlakyDriver)
    flaky = b.ifaces[0].driver
    lines = []
    b.log = lines.append
    ra, rb = Runner(a).start(), Runner(b).start()
    try:
        with ra.lock:
            assert a.ping("192.0.2.11").received == 1
        # a protocol handler raises for one frame: caught inside poll
        real = b.icmp.input

        def boom(*args):
            b.icmp.input = real
            raise ValueError("handler bug")
        with rb.lock:
            b.icmp.input = boom
        with ra.lock:
            assert a.ping("192.0.2.11", timeout_ms=300).received == 0
            assert a.ping("192.0.2.11").received == 1
        # poll itself raises (the driver): the runner thread must live on
        with rb.lock:
            flaky.fail = 1
        with ra.lock:
            assert a.ping("192.0.2.11", count=3, interval_ms=50).received >= 2
        assert rb.thread.is_alive()
        with rb.lock:
            c = b.counters()
        assert c["stack.exceptions"] == 2
        assert len(lines) == 2
        assert "handler bug" in lines[0] and "device hiccup" in lines[1]
        # a UDP exchange through the runner still works
        srv = rb.socket(so.AF_INET, so.SOCK_DGRAM)
        srv.bind(("", 7))
        srv.settimeout(3)
        cli = ra.socket(so.AF_INET, so.SOCK_DGRAM)
        cli.sendto(b"alive", ("192.0.2.11", 7))
        assert srv.recvfrom(100)[0] == b"alive"
        srv.close()
        cli.close()
    finally:
        ra.stop()
        rb.stop()
    assert a.pool.full() and b.pool.full()


def test_a_forked_child_gets_a_clear_error_from_the_runners_sockets_instead_of_hanging(runners):
    # the stack's Locked sockets (Host.socket, the asyncio facade) as ustack.socket's: the
    # runner and its lock stay in the parent, so in a child every call fails at once
    import errno
    import os
    import signal
    a, b, ra, rb = runners
    ls, c = listen_and_connect(ra, rb)
    held, go = threading.Event(), threading.Event()

    def hold():  # the lock held at fork time, as the runner holds it during each poll
        with ra.lock:
            held.set()
            go.wait(5)
    h = threading.Thread(target=hold)
    h.start()
    assert held.wait(5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(r)
            out = []
            for use in (lambda: c.send(b"child"), lambda: ra.socket(so.AF_INET, so.SOCK_DGRAM),
                        lambda: ra.call(len, "x")):
                try:
                    use()
                    out.append("worked")
                except OSError as e:
                    out.append("%s %s" % (e.errno, e.strerror))
            os.write(w, "\n".join(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    go.set()
    h.join()
    done, status, got = child_report(pid, r)
    assert done and got is not None, "the forked child hung on the runner's lock"
    assert os.waitstatus_to_exitcode(status) == 0, got
    lines = got.splitlines()
    assert len(lines) == 3, got
    for line in lines:
        assert line.startswith("%d " % errno.EBADF) and "fork" in line, got
    c.send(b"parent")  # the parent's socket still works
    c.close()
    ls.close()
