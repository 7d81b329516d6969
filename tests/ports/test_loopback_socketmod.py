"""ustack.socket over the loopback interface: one process, one stack, its server and client in
two threads talking through 127.0.0.1 or the stack's own address, as on any OS."""
import selectors
import threading

import pytest

from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.cpython.host import Host

A_IP = "192.0.2.10"


@pytest.fixture
def one():
    """One stack with a link (nobody else on its wire); ustack.socket opens on it."""
    import ustack.socket as us
    w = Wire()
    st = Stack()
    st.add_interface("a0", w.port(b"\x02\0\0\0\0\x0a"), ip=A_IP + "/24")
    h = Host(st)
    us.use(h)
    yield us, h
    us.unpatch()
    h.close()
    assert st.pool.full(), "packet buffers leaked"


def wire_frames(h):
    with h.lock:
        return h.stack.counters().get("a0.tx_packets", 0)


@pytest.mark.parametrize("addr", ["127.0.0.1", A_IP])
def test_server_and_client_threads_echo_through_the_stack_itself(one, addr):
    us, h = one
    before = wire_frames(h)
    ls = us.create_server((addr, 0))
    port = ls.getsockname()[1]
    data = bytes(range(256)) * 1000  # 256 KB, many windows

    def serve():
        c, _ = ls.accept()
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
    errors = []

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # a thread's failure fails the test
                errors.append(e)
                raise
        return run
    t = threading.Thread(target=guarded(serve), daemon=True)
    t.start()
    got = []

    def client():
        with us.create_connection((addr, port), timeout=10) as s:
            assert s.getpeername() == (addr, port)
            for i in range(0, len(data), 8192):  # each chunk echoed before the next
                chunk = data[i:i + 8192]
                s.sendall(chunk)
                n = 0
                while n < len(chunk):
                    d = s.recv(65536)
                    assert d
                    got.append(d)
                    n += len(d)
            s.shutdown(us.SHUT_WR)
            assert s.recv(100) == b""
    ct = threading.Thread(target=guarded(client), daemon=True)
    ct.start()
    ct.join(30)
    t.join(10)
    ls.close()
    assert not errors and not ct.is_alive() and not t.is_alive()
    assert b"".join(got) == data
    assert wire_frames(h) == before, "loopback traffic went out on the wire"
    with h.lock:
        assert h.stack.counters()["lo.rx_packets"] > 100


def test_data_sent_over_lo_is_readable_at_the_peer_when_send_returns(one):
    # Linux delivers loopback traffic before send() returns: a select() right after it sees
    # the peer readable (CPython's test_selectors test_select_read_write relies on it)
    us, h = one
    ls = us.create_server(("127.0.0.1", 0))
    a = us.create_connection(ls.getsockname())
    b, _ = ls.accept()
    ls.close()
    a.setsockopt(us.IPPROTO_TCP, us.TCP_NODELAY, 1)  # no Nagle wait for the previous ACK
    with a, b:
        for k in range(20):
            a.send(b"x")
            sel = selectors.DefaultSelector()
            sel.register(b, selectors.EVENT_READ)
            ready = sel.select(0)
            sel.close()
            assert ready, "round %d: not readable right after send()" % k
            assert b.recv(10) == b"x"


def test_udp_between_threads_over_lo(one):
    us, h = one
    r = us.socket(us.AF_INET, us.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    r.settimeout(5)
    s = us.socket(us.AF_INET, us.SOCK_DGRAM)
    t = threading.Thread(target=lambda: [s.sendto(b"d%d" % i, r.getsockname()) for i in range(5)])
    t.start()
    t.join()
    got = [r.recvfrom(100) for _ in range(5)]
    assert [g[0] for g in got] == [b"d%d" % i for i in range(5)]
    assert got[0][1] == s.getsockname() or got[0][1][1] == s.getsockname()[1]
    r.close()
    s.close()
