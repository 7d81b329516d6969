"""ustack.socket, the drop-in for the stdlib `socket` module: the stdlib's interface and
errors, descriptors that select/selectors/asyncio trust, and unmodified stdlib servers and
clients over two stacks joined by an in-memory wire."""
import asyncio
import errno
import os
import selectors
import socket as stdsocket
import threading

import pytest

from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.cpython.host import Host
from tests.twostack import two_stacks
from tests.forkwait import child_report

A_IP, B_IP = "192.0.2.10", "192.0.2.11"


@pytest.fixture
def net():
    """Two stacks (A, B) on one wire, each with a runner thread; ustack.socket opens on A."""
    import ustack.socket as us
    a, b = two_stacks(A_IP, B_IP)
    ha, hb = Host(a), Host(b)
    us.use(ha)
    yield us, ha, hb
    us.unpatch()
    ha.close()
    hb.close()


def on(us, host, fn, *args, **kw):
    """fn(*args) with new sockets opened on host (servers live on B)."""
    prev = us.default_host()
    us.use(host)
    try:
        return fn(*args, **kw)
    finally:
        us.use(prev)


def echo_server(us, hb, n=1):
    ls = on(us, hb, us.create_server, ("", 7))

    def serve():
        for _ in range(n):
            c, _ = ls.accept()
            with c:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
        ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_import_ustack_socket_reexports_the_stdlib_names(net):
    us, _, _ = net
    assert us.timeout is stdsocket.timeout and us.error is OSError
    assert us.gaierror is stdsocket.gaierror and us.AF_INET is stdsocket.AF_INET
    assert us.SOL_SOCKET == stdsocket.SOL_SOCKET and us.has_ipv6 is False
    s = us.socket()
    assert isinstance(s, us.socket)
    assert s.family is stdsocket.AddressFamily.AF_INET and s.type is stdsocket.SocketKind.SOCK_STREAM
    assert s.gettimeout() is None and s.timeout is None
    s.close()
    assert s.fileno() == -1
    with pytest.raises(OSError) as e:
        s.getsockname()
    assert e.value.errno == errno.EBADF


def test_af_unix_and_socketpair_stay_with_the_host_kernel(net):
    us, _, _ = net
    a, b = us.socketpair()
    assert isinstance(a, stdsocket.socket)
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    u = us.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    assert isinstance(u, stdsocket.socket)
    for x in (a, b, u):
        x.close()


def test_timeouts_are_the_stdlibs(net):
    us, ha, hb = net
    u = us.socket(us.AF_INET, us.SOCK_DGRAM)
    u.bind(("", 0))
    u.settimeout(0.2)
    with pytest.raises(us.timeout) as e:
        u.recv(10)
    assert e.value.args == ("timed out",) and e.value.errno is None
    u.settimeout(0)
    assert u.getblocking() is False
    with pytest.raises(BlockingIOError):
        u.recv(10)
    with pytest.raises(ValueError, match="Timeout value out of range"):
        u.settimeout(-1)
    with pytest.raises(TypeError):
        u.settimeout("1")
    u.close()


def test_getaddrinfo_and_gethostbyname_are_numeric(net):
    us, _, _ = net
    assert us.getaddrinfo("192.0.2.11", 80, type=us.SOCK_STREAM) == [
        (stdsocket.AF_INET, stdsocket.SOCK_STREAM, 6, "", ("192.0.2.11", 80))]
    assert [k for _, k, _, _, _ in us.getaddrinfo("192.0.2.11", "http")] == [
        stdsocket.SOCK_STREAM, stdsocket.SOCK_DGRAM, stdsocket.SOCK_RAW]
    assert us.gethostbyname("localhost") == "127.0.0.1"
    assert us.getaddrinfo(None, 0, flags=us.AI_PASSIVE)[0][4] == ("0.0.0.0", 0)
    with pytest.raises(us.gaierror) as e:
        us.gethostbyname("www.example.org")  # no name server configured (stack.dns)
    assert e.value.errno == stdsocket.EAI_FAIL


def test_makefile_readline_and_write(net):
    us, ha, hb = net
    t = echo_server(us, hb)
    c = us.create_connection((B_IP, 7), timeout=5)
    f = c.makefile("rwb")
    f.write(b"one\ntwo\n")
    f.flush()
    assert f.readline() == b"one\n" and f.readline() == b"two\n"
    f.close()
    c.shutdown(us.SHUT_WR)
    assert c.recv(10) == b""
    c.close()
    t.join(5)


def test_sendfile_and_recv_into(net, tmp_path):
    us, ha, hb = net
    t = echo_server(us, hb)
    p = tmp_path / "f"
    data = os.urandom(300000)
    p.write_bytes(data)
    c = us.create_connection((B_IP, 7), timeout=5)
    got = bytearray()

    def reader():
        buf = bytearray(8192)
        while True:
            n = c.recv_into(buf)
            if not n:
                break
            got.extend(buf[:n])
    r = threading.Thread(target=reader)
    r.start()
    with open(p, "rb") as f:
        assert c.sendfile(f) == len(data)
    c.shutdown(us.SHUT_WR)
    r.join(10)
    assert bytes(got) == data
    c.close()
    t.join(5)


def test_udp_recvfrom_into_and_sendto(net):
    us, ha, hb = net
    s = on(us, hb, us.socket, us.AF_INET, us.SOCK_DGRAM)
    s.bind(("", 9))
    s.settimeout(3)
    c = us.socket(us.AF_INET, us.SOCK_DGRAM)
    c.settimeout(3)
    ha.ping(B_IP)  # ARP first: an unresolved neighbour holds one packet
    c.sendto(b"datagram", (B_IP, 9))
    buf = bytearray(100)
    n, addr = s.recvfrom_into(buf)
    assert buf[:n] == b"datagram" and addr[0] == A_IP
    s.close()
    c.close()


def test_dup_detach_and_fromfd_share_one_connection(net):
    us, ha, hb = net
    t = echo_server(us, hb)
    c = us.create_connection((B_IP, 7), timeout=5)
    d = c.dup()
    assert d.fileno() != c.fileno() and d.getpeername() == (B_IP, 7)
    c.close()  # the connection stays open while d refers to it
    d.sendall(b"dup")
    assert d.recv(10) == b"dup"
    fd = d.detach()
    assert d.fileno() == -1
    e = us.socket(fileno=fd)
    e.sendall(b"again")
    assert e.recv(10) == b"again"
    f = us.fromfd(e.fileno(), us.AF_INET, us.SOCK_STREAM)
    e.close()
    f.sendall(b"fromfd")
    assert f.recv(10) == b"fromfd"
    f.close()
    t.join(5)


def test_selectors_see_exact_readiness(net):
    us, ha, hb = net
    ls = on(us, hb, us.create_server, ("", 7))
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    clients = [us.create_connection((B_IP, 7), timeout=5) for _ in range(3)]
    accepted = []
    while len(accepted) < 3:
        for key, _ in sel.select(3):
            # every select() answer must hold: accept never blocks nor fails here
            accepted.append(ls.accept()[0])
    assert sel.select(0) == []
    sel.close()
    for x in clients + accepted + [ls]:
        x.close()


def test_patch_runs_unmodified_socketserver_and_http_client(net):
    """socketserver + http.server on B, http.client on A: stdlib code, no changes."""
    import http.client
    import http.server
    import socketserver
    us, ha, hb = net
    us.patch(hb)
    try:
        assert stdsocket.socket is us.socket

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"hello over ustack " * 1000
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("", 8080), Handler)
        th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        th.start()
        us.use(ha)
        for _ in range(5):
            conn = http.client.HTTPConnection(B_IP, 8080, timeout=5)
            conn.request("GET", "/")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"hello over ustack " * 1000
            conn.close()
        srv.shutdown()
        srv.server_close()
        assert isinstance(srv, socketserver.TCPServer)
    finally:
        us.unpatch()


def test_patch_runs_asyncio_streams_on_the_stdlib_event_loop(net):
    us, ha, hb = net
    us.patch(hb)

    async def main():
        async def handle(r, w):
            while True:
                line = await r.readline()
                if not line:
                    break
                w.write(line.upper())
                await w.drain()
            w.close()
        server = await asyncio.start_server(handle, "", 7)
        us.use(ha)
        r, w = await asyncio.open_connection(B_IP, 7)
        payload = b"".join(b"line %d\n" % i for i in range(3000))
        w.write(payload)
        got = await r.readexactly(len(payload))
        assert got == payload.upper()
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        us.unpatch()


def test_ustack_asyncio_streams_over_named_stacks_without_patching(net):
    import ustack.asyncio as uaio
    us, ha, hb = net

    async def main():
        async def handle(r, w):
            w.write((await r.readline()).upper())
            await w.drain()
            w.close()
        server = await uaio.start_server(handle, "", 7, stack=hb)
        assert server.sockets[0].getsockname() == ("0.0.0.0", 7)
        r, w = await uaio.open_connection(B_IP, 7, stack=ha)
        w.write(b"named stacks\n")
        assert await r.readline() == b"NAMED STACKS\n"
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
    asyncio.run(asyncio.wait_for(main(), 30))
    assert stdsocket.socket is not us.socket  # nothing was patched


def test_closing_the_stack_closes_every_readiness_descriptor():
    import ustack.socket as us
    w = Wire()
    a = Stack()
    a.add_interface("a0", w.port(b"\x02\0\0\0\0\x0a"), ip=A_IP + "/24")
    ha = Host(a)
    us.use(ha)
    socks = [us.socket(us.AF_INET, us.SOCK_DGRAM) for _ in range(5)]
    fds = [s.fileno() for s in socks]
    for fd in fds:
        os.fstat(fd)
    ha.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_refused_connect_is_writable_with_so_error_and_asyncio_raises_it(net):
    import ustack.asyncio as uaio
    us, ha, hb = net
    c = us.socket()
    c.setblocking(False)
    assert c.connect_ex((B_IP, 9)) == errno.EINPROGRESS  # nobody listens: B answers RST
    _, w, _ = __import__("select").select([], [c], [], 3)
    assert w == [c]
    assert c.getsockopt(us.SOL_SOCKET, us.SO_ERROR) == errno.ECONNREFUSED
    c.close()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await uaio.open_connection(B_IP, 9, stack=ha)
    asyncio.run(asyncio.wait_for(main(), 10))


def test_blocking_stream_send_queues_all_of_it_as_linux_does(net):
    # Linux: send() on a blocking TCP socket returns once all of it is queued; programs rely
    # on it (uiperf3's server writes iperf3's 128 KB blocks with send() and ignores the
    # count: a partial block leaves `iperf3 -c -R` waiting for the rest of it forever)
    us, ha, hb = net
    srv = echo_server(us, hb)
    s = us.create_connection((B_IP, 7))
    got = bytearray()

    def drain():
        while True:
            d = s.recv(65536)
            if not d:
                break
            got.extend(d)
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    m = os.urandom(1 << 20)
    assert s.send(m) == len(m)
    s.shutdown(us.SHUT_WR)
    t.join(30)
    s.close()
    srv.join(5)
    assert bytes(got) == m


def test_a_forked_child_gets_a_clear_error_from_ustack_sockets_instead_of_hanging(net):
    # the stack and the thread that drives it stay in the parent: in a child, a ustack
    # socket fails at once with an error that says so, and closing the child's copy leaves
    # the parent's connection alone
    import select
    import signal
    import time
    us, ha, hb = net
    echo_server(us, hb)
    c = us.create_connection((B_IP, 7), timeout=5)
    c.sendall(b"before")
    assert c.recv(10) == b"before"
    # another thread holds the stack's lock when we fork, as the runner does during each
    # poll: the child inherits the lock held by a thread that does not exist there
    held, go = threading.Event(), threading.Event()

    def hold():
        with ha.lock:
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
            for use in (lambda: c.sendall(b"child"), lambda: c.recv(10), us.socket):
                try:
                    use()
                    out.append("worked")
                except OSError as e:
                    out.append("%s %s" % (e.errno, e.strerror))
            c.close()
            os.write(w, "\n".join(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    go.set()
    h.join()
    done, status, got = child_report(pid, r)
    assert done and got is not None, "the forked child hung on its ustack socket"
    assert os.waitstatus_to_exitcode(status) == 0, got
    lines = got.splitlines()
    assert len(lines) == 3, got
    for line in lines:
        assert line.startswith("%d " % errno.EBADF) and "fork" in line, got
    # the parent's connection is untouched by the child's close
    c.sendall(b"after")
    assert c.recv(10) == b"after"
    c.close()


def test_names_in_the_hosts_file_resolve_before_dns_as_with_glibc(net, tmp_path, monkeypatch):
    # nsswitch's "hosts: files dns": gethostbyname(gethostname()) and the names a program's
    # /etc/hosts gives work without a DNS server; connect() and bind() take names too, as
    # CPython's do (the first IPv4 address getaddrinfo gives)
    us, _, hb = net
    hosts = tmp_path / "hosts"
    hosts.write_text("# a comment\n127.0.0.1 localhost\n%s server.test srv  # B\n"
                     "::1 ip6-localhost server.test\n" % B_IP)
    monkeypatch.setattr(us, "HOSTS", str(hosts))
    assert us.gethostbyname("server.test") == B_IP
    assert us.gethostbyname("SRV") == B_IP
    assert [ai[4] for ai in us.getaddrinfo("srv", 7, type=us.SOCK_STREAM)] == [(B_IP, 7)]
    echo_server(us, hb)
    c = us.socket()
    c.settimeout(5)
    c.connect(("server.test", 7))
    c.sendall(b"by name")
    assert c.recv(10) == b"by name"
    c.close()
    with pytest.raises(stdsocket.gaierror):
        us.gethostbyname("nowhere.test")  # not in the file, and no DNS server is configured
