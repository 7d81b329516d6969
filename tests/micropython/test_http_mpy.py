"""The app's HTTP/1.1 service (ports/micropython/httpserv.py HttpService) under the MicroPython
unix port, with CPython running the same app as the oracle: a CPython ustack on the other
end of the app's StreamLink is the client (no root needed).

GET/HEAD, keep-alive (and Connection: close / HTTP/1.0 closing), the built-in page, /bytes/N
(byte i = i mod 251), files from HTTP_ROOT (read in chunks), 400/403/404/405, a request
body skipped on a kept-alive connection, a head over 1 KB, several connections at once, and
/bytes streamed with micropython.heap_lock() held (no allocation per chunk)."""
import hashlib
import json
import os

import pytest

from tests.micropython.mpyhelp import MPY, MpApp

RUNTIMES = ["micropython", "cpython"]
STACK = ("192.0.2.2", 80)


def pattern(n):
    p = bytes(range(251)) * (n // 251 + 1)
    return p[:n]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    if request.param == "micropython" and MPY is None:
        pytest.skip("no micropython unix port")
    return request.param


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "www"
    (d / "sub").mkdir(parents=True)
    (d / "empty").mkdir()
    (d / "index.html").write_bytes(b"<h1>from the root</h1>\n")
    (d / "sub" / "data.bin").write_bytes(bytes((i * 7 + 3) & 0xFF for i in range(100003)))
    (d / "sub" / "page.htm").write_bytes(b"<p>htm</p>")
    (d / "zero.bin").write_bytes(b"")
    (d / "my file+%.txt").write_bytes(b"spaces and escapes\n")
    return str(d)


class Client:
    """One HTTP connection from the peer stack (its blocking calls drive it)."""

    def __init__(self, peer):
        from ustack.core import socket as so
        self.s = peer.socket(so.AF_INET, so.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(STACK)
        self.pending = b""

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.pending += d

    def response(self, head_only=False):
        """(status, headers, body) of the next response."""
        while b"\r\n\r\n" not in self.pending:
            self._more()
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for h in lines[1:]:
            k, v = h.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = 0 if head_only else int(headers["content-length"])
        while len(self.pending) < n:
            self._more()
        body, self.pending = self.pending[:n], self.pending[n:]
        return status, headers, body

    def get(self, path, method="GET", extra="", version="HTTP/1.1"):
        self.s.sendall(("%s %s %s\r\nHost: x\r\n%s\r\n" % (method, path, version, extra)).encode())
        return self.response(head_only=method == "HEAD")

    def closed_by_server(self):
        try:
            return self.s.recv(10) == b""
        except OSError:
            return True

    def close(self):
        self.s.close()


def _app(workdir, runtime, root=None, control=0):
    extra = {"HTTP_ROOT": root} if root else {}
    return MpApp(workdir, serve="http", control=control, runtime=runtime, extra=extra)


def test_builtin_page_keep_alive_head_and_errors(workdir, runtime):
    app = _app(workdir, runtime)
    try:
        assert "tcp/http" in app.up
        peer = app.peer_stack()
        c = Client(peer)
        st, h, body = c.get("/")
        assert st == 200 and b"ustack" in body and h["connection"] == "keep-alive"
        assert h["content-type"] == "text/html" and int(h["content-length"]) == len(body)
        st, h, body = c.get("/index.html")                 # the same connection
        assert st == 200 and b"ustack" in body
        st, h, body = c.get("/bytes/1000", method="HEAD")
        assert st == 200 and h["content-length"] == "1000" and body == b""
        st, h, body = c.get("/bytes/5000")
        assert st == 200 and body == pattern(5000)
        st, h, body = c.get("/bytes/0")
        assert st == 200 and body == b""
        assert c.get("/nowhere")[0] == 404
        assert c.get("/bytes/x")[0] == 400
        assert c.get("/bytes/-3")[0] == 400
        assert c.get("/", method="DELETE")[0] == 405
        # a request with a body: the body is skipped, the next request is answered
        st, h, body = c.get("/", method="POST", extra="Content-Length: 11\r\n")
        assert st == 405
        c.s.sendall(b"hello world")
        assert c.get("/bytes/10")[1:] == ({"server": "ustack", "content-type":
                                           "application/octet-stream", "content-length": "10",
                                           "connection": "keep-alive"}, pattern(10))
        # pipelined: two requests in one segment
        c.s.sendall(b"GET /bytes/3 HTTP/1.1\r\n\r\nGET /bytes/4 HTTP/1.1\r\n\r\n")
        assert c.response()[2] == pattern(3) and c.response()[2] == pattern(4)
        st, h, body = c.get("/", extra="Connection: close\r\n")
        assert st == 200 and h["connection"] == "close"
        assert c.closed_by_server()
        c.close()
        c = Client(peer)                                   # HTTP/1.0 closes by default
        st, h, body = c.get("/bytes/7", version="HTTP/1.0")
        assert st == 200 and body == pattern(7) and h["connection"] == "close"
        assert c.closed_by_server()
        c.close()
        c = Client(peer)
        c.s.sendall(b"garbage\r\n\r\n")
        assert c.response()[0] == 400
        c.close()
        c = Client(peer)                                   # a head over 1 KB
        c.s.sendall(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 1100 + b"\r\n\r\n")
        st, h, body = c.response()
        assert st == 400 and h["connection"] == "close"
        assert c.closed_by_server()
        c.close()
        counters, out, err = app.stop()
        assert counters["svc.tcp80.requests"] >= 16, counters
        assert counters["pbuf.free"] == counters["pbuf.count"]
    finally:
        app.close()


def test_files_from_the_root(workdir, runtime, root):
    app = _app(workdir, runtime, root=root)
    try:
        peer = app.peer_stack()
        c = Client(peer)
        st, h, body = c.get("/")
        assert st == 200 and body == b"<h1>from the root</h1>\n"
        assert h["content-type"] == "text/html"
        st, h, body = c.get("/sub/data.bin")
        with open(os.path.join(root, "sub", "data.bin"), "rb") as f:
            want = f.read()
        assert st == 200 and h["content-type"] == "application/octet-stream"
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(want).hexdigest()
        st, h, body = c.get("/sub/data.bin", method="HEAD")
        assert st == 200 and h["content-length"] == str(len(want)) and body == b""
        assert c.get("/sub/page.htm")[1]["content-type"] == "text/html"
        assert c.get("/zero.bin")[1:] == ({"server": "ustack", "content-type":
                                          "application/octet-stream", "content-length": "0",
                                          "connection": "keep-alive"}, b"")
        assert c.get("/sub/../index.html")[0] == 403
        assert c.get("/my%20file%2B%25.txt")[2] == b"spaces and escapes\n"  # RFC 3986 2.1
        assert c.get("/sub/%2e%2e/index.html")[0] == 403   # decoded before the '..' check
        assert c.get("/%zz")[0] == 400 and c.get("/a%00b")[0] == 400
        assert c.get("/missing.txt")[0] == 404
        assert c.get("/empty/")[0] == 404                  # a directory without index.html
        assert c.get("/bytes/251")[2] == pattern(251)       # /bytes/N with a root too
        c.close()
    finally:
        app.close()


def test_several_connections_at_once(workdir, runtime):
    """Four clients, each with a request in flight before any reply is read."""
    app = _app(workdir, runtime)
    try:
        peer = app.peer_stack()
        cs = [Client(peer) for _ in range(4)]
        sizes = [100000, 70001, 30011, 1]
        for c, n in zip(cs, sizes):
            c.s.sendall(("GET /bytes/%d HTTP/1.1\r\n\r\n" % n).encode())
        for c, n in zip(reversed(cs), reversed(sizes)):
            st, h, body = c.response()
            assert st == 200 and body == pattern(n)
        for c in cs:
            c.close()
        counters, out, err = app.stop()
        assert counters["svc.tcp80.accepted"] == 4
    finally:
        app.close()


def test_bytes_streams_with_the_heap_locked(workdir):
    """/bytes/N comes from the pattern buffer at offset pos % 251 straight into the send
    ring: once the request is parsed, streaming allocates nothing."""
    if MPY is None:
        pytest.skip("no micropython unix port")
    app = _app(workdir, "micropython", control=4242)
    try:
        peer = app.peer_stack()
        c = Client(peer)
        n = 3 << 20
        c.s.sendall(("GET /bytes/%d HTTP/1.1\r\n\r\n" % n).encode())
        while b"\r\n\r\n" not in c.pending:
            c._more()
        head, body = c.pending.split(b"\r\n\r\n", 1)
        assert b"Content-Length: %d" % n in head
        h = hashlib.sha256(body)
        got = len(body)
        while got < 128 << 10:                             # the stream is going
            d = c.s.recv(65536)
            h.update(d)
            got += len(d)
        assert app.control("lock") == "locked"
        while got < n - (256 << 10):
            d = c.s.recv(65536)
            assert d
            h.update(d)
            got += len(d)
        rep = json.loads(app.control("unlock"))
        while got < n:
            d = c.s.recv(65536)
            assert d
            h.update(d)
            got += len(d)
        assert got == n and h.hexdigest() == hashlib.sha256(pattern(n)).hexdigest()
        print("heap locked through %d KB of /bytes: %s" % (n >> 10, rep))
        assert rep["failures"] == 0, rep
        assert rep["locked_polls"] > 100
        c.close()
    finally:
        app.close()
