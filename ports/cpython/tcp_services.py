"""TCP services for `ustack up --serve`: echo (RFC 862), discard (RFC 863), chargen (RFC 864)
and a small HTTP/1.1 server (keep-alive; a directory, and /bytes/N: N deterministic bytes,
byte i = i mod 251). One thread per client, as the seed's threaded server does, each using
blocking sockets through the runner."""
import os
import threading
from urllib.parse import unquote

from ustack.core import socket as so
from ustack.ports.cpython.services import bound

PATTERN = bytes(range(251))
BLOCK = PATTERN * 261  # 65511 bytes, a multiple of 251: every chunk starts at pattern offset 0


class EventService:
    """echo/discard/chargen without threads: a hook the driver thread runs after every poll,
    on non-blocking sockets (no thread hand-off, so a request is answered within the poll
    that received it). Only connections whose readiness changed are visited (each socket's
    on_event hook queues it): ten thousand idle connections cost a poll nothing."""

    def __init__(self, stack, kind, port, family=so.AF_INET):
        self.kind = kind
        # echo answers as it reads: the poll answers its first request before it reads on,
        # the rest of a burst at its end, and with Nagle (RFC 896) that second answer would
        # wait for the ACK of the first (issue 13). Discard sends nothing; chargen fills its
        # window (Nagle holds none of its full segments)
        self.nodelay = kind == "echo"
        ls = listener(stack.socket(family, so.SOCK_STREAM), family, port,
                      stack.config["TCP_BACKLOG"])
        ls.setblocking(False)
        if self.nodelay:  # set once: accepted connections inherit it, as on Linux
            ls.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
        self.ls = ls
        # the listener's on_event: a connection waits in its accept queue (or an error); the
        # hook looks at the listener only then (issue 13: not a readable() call per poll)
        self.accepting = False
        ls.on_event = self._listener_news
        # socket -> its state when not the initial one: echo's unsent bytes, chargen's offset
        # in its lines. An idle connection has no entry (issue 13: 36 bytes each at 100 000);
        # a socket is ours while its on_event is self.news, and the stack's socket list
        # keeps it alive
        self.conns = {}
        self.init = 0 if kind == "chargen" else b""
        self.count = 0      # connections open
        self.ready = []     # sockets with news since the last visit (no duplicates)
        self.queued = set()
        self.news = self._news  # one bound method for every connection (64 bytes each)
        self.buf = bytearray(65536)
        self.mv = memoryview(self.buf)
        if kind == "chargen":
            chars = bytes(range(32, 127)) * 2
            self.lines = b"".join(chars[i:i + 72] + b"\r\n" for i in range(95)) * 16

    def _listener_news(self, s):
        self.accepting = True

    def _news(self, s):
        """A socket's on_event: readiness changed (data, FIN, space, error)."""
        if s not in self.queued:
            self.queued.add(s)
            self.ready.append(s)

    def __call__(self):
        # readiness first: nothing here raises EAGAIN (an exception object per listener and
        # connection on every poll, issue 13); errors still arrive as OSError
        ls = self.ls
        if self.accepting:
            self.accepting = False
            self._accept(ls)
        if not self.ready:
            return
        ready, self.ready = self.ready, []
        self.queued.clear()
        conns, init, news = self.conns, self.init, self.news
        for c in ready:
            if c.on_event is not news:
                continue    # closed here already
            try:
                e = self._serve(c, conns.get(c, init))
                if e is not None:
                    if e == init:
                        conns.pop(c, None)
                    else:
                        conns[c] = e
                    continue
            except OSError:
                pass
            c.on_event = None
            conns.pop(c, None)
            self.count -= 1
            try:
                c.close()
            except OSError:
                pass

    def _accept(self, ls):
        """Take every connection the listener ls holds; its on_event comes again for the
        next (a failed accept leaves the rest for the next poll)."""
        while ls.readable():
            try:
                c = ls.accept_conn()  # no peer address formatted (issue 13)
            except OSError:
                self.accepting = True
                break
            c.setblocking(False)   # TCP_NODELAY comes from the listener (set once)
            c.on_event = self.news
            self.count += 1
            self._news(c)   # what arrived with the handshake, chargen's first lines

    def _serve(self, c, e):
        """Move what can move now on c, whose state is e; its new state, None when the
        connection is finished."""
        if self.kind == "chargen":
            lines = self.lines
            while c.writable():
                want = len(lines) - e
                n = c.send(memoryview(lines)[e:])
                e = (e + n) % len(lines)
                if n < want:
                    break  # the send buffer is full
            if not c.readable() or c.recv_into(self.buf) != 0:
                return e
            return None
        while True:
            if e:
                if not c.writable():
                    return e
                n = c.send(e)
                e = e[n:]
                if e:
                    return e
            if not c.readable():
                return e
            n = c.recv_into(self.buf)
            if n == 0:
                return None
            if self.kind == "echo":
                k = c.send(self.mv[:n]) if c.writable() else 0
                if k < n:
                    e = bytes(self.buf[k:n])


class ServiceHooks:
    """The built-in event-driven services of a runner as one of its hooks: each service is
    called only when it has something to do - a UDP one (services.UdpEcho) while its socket
    holds datagrams, a TCP one (EventService) while a connection waits to be accepted or a
    socket has news (issue 13: `--serve echo,discard,chargen` with IPv6 made ten Python calls
    after every poll, one per service and family, the idle ones included; now one call, and
    the idle services cost a look at their C fields)."""

    def __init__(self):
        self.udp = []   # services.UdpEcho
        self.tcp = []   # EventService

    def __call__(self):
        self.run()

    def run(self):
        for u in self.udp:
            if u.sock.qlen:
                u()
        for t in self.tcp:
            if t.accepting or t.ready:
                t()


def hooks_of(runner):
    """The runner's ServiceHooks (added to its hooks the first time; under its lock)."""
    for h in runner.hooks:
        if isinstance(h, ServiceHooks):
            return h
    h = ServiceHooks()
    runner.hooks.append(h)
    return h


def start(runner, name, port, http_root=None):
    if name in ("echo", "discard", "chargen"):
        with runner.lock:
            hooks = hooks_of(runner)
            hooks.tcp.append(EventService(runner.stack, name, port))
            if runner.stack.ipv6 is not None:   # the same service on IPv6
                hooks.tcp.append(EventService(runner.stack, name, port, so.AF_INET6))
        return ["tcp/" + name]
    handler = HANDLERS.get(name)
    if handler is None:
        return []
    fams = [so.AF_INET]
    if runner.stack.ipv6 is not None:
        fams.append(so.AF_INET6)   # the same service on IPv6 (issue 9), as the event services
    for fam in fams:
        ls = listener(runner.socket(fam, so.SOCK_STREAM), fam, port,
                      runner.stack.config["TCP_BACKLOG"])
        threading.Thread(target=_accept_loop, args=(runner, ls, name, handler, http_root),
                         daemon=True, name="accept-%s-%d" % (name, fam)).start()
    return ["tcp/" + name]


def listener(ls, family, port, backlog):
    """ls listening on every address of its family at port (services.bound)."""
    bound(ls, family, port)
    ls.listen(backlog)
    return ls


def _accept_loop(runner, ls, name, handler, http_root):
    while runner.running or runner.thread is None:
        try:
            c, addr = ls.accept()
        except OSError:
            if ls.closed:
                return
            continue
        t = threading.Thread(target=_serve, args=(handler, c, http_root), daemon=True,
                             name="%s-%s:%d" % (name, addr[0], addr[1]))
        t.start()


def _serve(handler, c, root):
    try:
        handler(c, root)
    except OSError as e:
        if os.environ.get("USTACK_DEBUG"):
            print("service %s: %r" % (handler.__name__, e), flush=True)
    finally:
        try:
            c.close()
        except OSError:
            pass


def echo(c, root):
    buf = bytearray(65536)
    mv = memoryview(buf)
    while True:
        n = c.recv_into(buf)
        if not n:
            return
        c.sendall(mv[:n])


def discard(c, root):
    buf = bytearray(65536)
    while c.recv_into(buf):
        pass


def chargen(c, root):
    # RFC 864: lines of 72 printable characters, each starting one later in the 95-char set
    chars = bytes(range(32, 127))
    ring = chars + chars
    lines = b"".join(ring[i:i + 72] + b"\r\n" for i in range(95))
    while True:
        c.sendall(lines)


def _read_request(c, pending):
    """One request head (bytes up to CRLFCRLF) and what followed it."""
    while b"\r\n\r\n" not in pending:
        d = c.recv(8192)
        if not d:
            return None, b""
        pending += d
        if len(pending) > 65536:
            return None, b""
    head, rest = pending.split(b"\r\n\r\n", 1)
    return head, rest


def http(c, root):
    # A response goes out as it is written: no Nagle wait for the client's delayed ACK
    # between the head and the body's last segment (RFC 1122 4.2.3.4), as HTTP servers do
    c.setsockopt(so.IPPROTO_TCP, so.TCP_NODELAY, 1)
    pending = b""
    while True:
        head, pending = _read_request(c, pending)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            _respond(c, 400, b"bad request\n", close=True)
            return
        method, path, version = parts
        headers = {}
        for h in lines[1:]:
            if ":" in h:
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0" and \
            headers.get("connection", "").lower() != "keep-alive"
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if length < 0:  # a body we cannot skip: answer, then close
            _respond(c, 400, b"bad content-length\n", close=True)
            return
        while len(pending) < length:  # discard a request body
            d = c.recv(65536)
            if not d:
                return
            pending += d
        pending = pending[length:]
        if method not in ("GET", "HEAD"):
            _respond(c, 405, b"method not allowed\n", close=close)
        elif path.startswith("/bytes/"):
            try:
                n = int(path[7:])
                if n < 0:
                    raise ValueError
            except ValueError:
                _respond(c, 400, b"bad length\n", close=close)
            else:
                _send_head(c, 200, n, "application/octet-stream", close)
                if method == "GET":
                    left = n
                    while left:
                        k = left if left < len(BLOCK) else len(BLOCK)
                        c.sendall(BLOCK if k == len(BLOCK) else BLOCK[:k])
                        left -= k
        else:
            _file(c, root, path, method, close)
        if close:
            return


def _file(c, root, path, method, close):
    if root is None:
        body = b"<html><body><h1>ustack</h1><p>a TCP/IP stack in Python</p></body></html>\n"
        if path not in ("/", "/index.html"):
            _respond(c, 404, b"not found\n", close=close)
            return
        _send_head(c, 200, len(body), "text/html", close, body if method == "GET" else b"")
        return
    try:  # RFC 3986 2.1 percent-encoding; the root check below sees the decoded path
        rel = unquote(path.split("?", 1)[0], errors="strict").lstrip("/")
    except UnicodeDecodeError:
        rel = "\0"
    if "\0" in rel:
        _respond(c, 400, b"bad path\n", close=close)
        return
    full = os.path.realpath(os.path.join(root, rel))
    if os.path.isdir(full):
        # checked below like any path: a symlinked index.html must not lead out of the root
        full = os.path.realpath(os.path.join(full, "index.html"))
    base = os.path.realpath(root)
    if full != base and not full.startswith(base + os.sep):
        _respond(c, 403, b"forbidden\n", close=close)
        return
    if not os.path.isfile(full):
        _respond(c, 404, b"not found\n", close=close)
        return
    size = os.path.getsize(full)
    ctype = "text/html" if full.endswith((".html", ".htm")) else "application/octet-stream"
    with open(full, "rb") as f:
        # the head and the first block in one write: one segment for a small file
        d = f.read(65536) if method == "GET" else b""
        _send_head(c, 200, size, ctype, close, d)
        while d:
            d = f.read(65536)
            if d:
                c.sendall(d)


REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


def _send_head(c, code, length, ctype, close, body=b""):
    """The status line and headers, and the body's first bytes in the same write."""
    c.sendall(("HTTP/1.1 %d %s\r\nServer: ustack\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
               "Connection: %s\r\n\r\n" % (code, REASONS[code], ctype, length,
                                           "close" if close else "keep-alive")).encode() + body)


def _respond(c, code, body, close):
    _send_head(c, code, len(body), "text/plain", close, body)


HANDLERS = {"echo": echo, "discard": discard, "chargen": chargen, "http": http}
