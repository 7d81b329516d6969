"""The runner's wait (issue 13): the driving thread sleeps in one epoll_wait on every queue of
its links and its wake-up pipe, registered once (a poll() walked all nine descriptors of a
TAP's eight queues at every wait and every wake-up), and wakes for a frame on any queue; the
epoll descriptor goes when the runner stops."""
import errno
import os
import socket
import threading
import time

from ustack.core.stack import Stack
from ustack.hal import Driver
from ustack.ports.cpython.runner import Runner
from tests import frames as F


class Queues(Driver):
    """A link of several queues (datagram socket pairs), as a multi-queue TAP: frames are
    written to the far ends, read from whichever near end holds one."""
    mac = F.STACK_MAC
    mtu = 1500

    def __init__(self, n):
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(n)]
        for near, _ in self.pairs:
            near.setblocking(False)
        self.sent = []
        self.got = threading.Event()

    def poll_obj(self):
        return self.pairs[0][0].fileno()

    def poll_objs(self):
        return [near.fileno() for near, _ in self.pairs]

    def recv_into(self, buf):
        for near, _ in self.pairs:
            try:
                return near.recv_into(buf)
            except BlockingIOError:
                pass
        return 0

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))
        self.got.set()
        return True

    def close(self):
        for a, b in self.pairs:
            a.close()
            b.close()


def links():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass   # listdir's own descriptor, gone already
    return out


def fds_open():
    return len(links())


def test_a_frame_on_any_queue_wakes_the_runner_and_its_wait_leaves_no_descriptor():
    before = fds_open()
    drv = Queues(8)
    st = Stack({"PBUF_COUNT": 32})
    st.add_interface("eth0", drv, ip="192.0.2.2/24").arp.add_static(F.HOST_IP, F.HOST_MAC)
    r = Runner(st, max_wait=30.0)  # a wake-up only for a frame: no deadline would do it
    r.start()
    try:
        for q in (5, 0, 7):
            drv.got.clear()
            drv.sent.clear()
            drv.pairs[q][1].send(F.echo_request_frame(seq=q))
            assert drv.got.wait(10), "a frame on queue %d did not wake the runner" % q
            assert len(drv.sent) == 1 and drv.sent[0][34] == 0  # its echo reply
        assert any("eventpoll" in w for w in links())   # the wait is an epoll
    finally:
        r.stop()
        st.close()
        drv.close()
    assert fds_open() == before


def test_a_stopped_runner_leaves_no_descriptor_and_a_late_wake_writes_nowhere():
    # a program that makes and stops stacks in one process (tests, ustack.socket users) must
    # not leak the wake-up pipe; a socket call after stop() may still wake() it
    before = fds_open()
    for _ in range(20):
        st = Stack({"PBUF_COUNT": 8})
        r = Runner(st).start()
        r.stop()
        st.close()
        r.wake()
    assert fds_open() == before
    r, w = os.pipe()   # takes the numbers the last runner's pipe had
    try:
        st = Stack({"PBUF_COUNT": 8})
        old = Runner(st).start()
        old.stop()
        r2, w2 = os.pipe()
        old.wake()     # must not write into a descriptor that now is someone else's
        os.set_blocking(r2, False)
        try:
            assert os.read(r2, 16) == b""
        except BlockingIOError:
            pass
        os.close(r2)
        os.close(w2)
        st.close()
    finally:
        os.close(r)
        os.close(w)


def test_a_connect_before_the_first_poll_sends_one_syn():
    # the runner's clock holds from the moment it is installed: a TCB made before the driving
    # thread's first poll (a connect right after start) is stamped with it, not with time 0,
    # whose SYN timer that first poll would find overdue by the machine's uptime (a second
    # SYN at once: Linux answered both with port unreachables)
    from ustack.core import socket as so
    drv = Queues(1)
    st = Stack({"PBUF_COUNT": 32})
    st.add_interface("eth0", drv, ip="192.0.2.2/24").arp.add_static(F.HOST_IP, F.HOST_MAC)
    r = Runner(st)
    try:
        with r.lock:
            s = st.socket(so.AF_INET, so.SOCK_STREAM)
            s.setblocking(False)
            assert s.connect_ex(("192.0.2.1", 4444)) in (0, errno.EINPROGRESS)
        r.start()
        time.sleep(0.3)
        with r.lock:
            syns = [f for f in drv.sent if len(f) > 47 and f[23] == 6 and f[47] & 0x02]
        assert len(syns) == 1, len(syns)
    finally:
        r.stop()
        st.close()
        drv.close()
