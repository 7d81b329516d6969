"""The MicroPython app's HTTP service (SERVE "http"; tcpserv.make imports it only then, so a
board serving echo carries none of this code).

HttpService: HTTP/1.1 GET/HEAD with keep-alive (`Connection: close` and HTTP/1.0 honoured),
`/` (a built-in page, or index.html under the root), `/bytes/N` (N bytes, byte i = i mod 251,
streamed from a preallocated pattern buffer at offset pos % 251: no allocation per chunk),
files under `root` (read in chunks straight into the send ring's free space), 400/403/404/405.
A request head is read in place from the receive ring (peeked into a 1 KB buffer per slot;
a longer head is a 400). Parsing a head and formatting the reply's head allocate (per
request, not per byte).
"""
import sys

from ustack.core.tcp import tcb as T
from ustack.core.tcp import output as tcpout
from ustack.ports.micropython.tcpserv import _listen, _listen6, _waiting, _open_for_data


def _unquote(p):
    """RFC 3986 2.1: %XX escapes decoded (once per request, so it may allocate); a malformed
    escape is a ValueError. The '..' check runs on the result."""
    if b"%" not in p:
        return p
    out = bytearray()
    i = 0
    n = len(p)
    while i < n:
        c = p[i]
        if c == 0x25:
            if i + 2 >= n:
                raise ValueError("bad escape")
            out.append(int(p[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


HEAD_MAX = 1024             # a request head (request line + headers) longer than this: 400
_PAT_REPS = 33              # the /bytes pattern buffer: 33 x 251 bytes
_CHUNK = 251 * (_PAT_REPS - 1)  # contiguous pattern bytes available from any offset < 251
_READ = 0                   # waiting for (the rest of) a request head
_SEND = 1                   # queueing a reply: its head, then its body
_BODY_NONE = 0
_BODY_PATTERN = 1
_BODY_FILE = 2
PAGE = b"<html><body><h1>ustack</h1><p>a TCP/IP stack in Python</p></body></html>\n"
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed"}
_CRLF2 = b"\r\n\r\n"


class _HttpConn:
    """One connection slot's state (allocated once per slot, reused)."""

    def __init__(self):
        self.hbuf = bytearray(HEAD_MAX)
        self.reset()

    def reset(self):
        self.skip = 0           # request body bytes still to discard
        self.next()

    def next(self):
        """Ready for the next request on this connection (a body to skip stays)."""
        self.state = _READ
        self.hn = 0             # head bytes peeked into hbuf so far
        self.out = None         # the reply's head (bytes), queued from ooff
        self.ooff = 0
        self.body = _BODY_NONE
        self.left = 0           # body bytes still to queue
        self.pos = 0            # pattern offset (mod 251)
        self.f = None           # file being sent
        self.close = False      # close once the reply is queued

    def drop_file(self):
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
            self.f = None


class HttpService:
    """HTTP/1.1 (GET/HEAD, keep-alive) from the poll loop, `max_conns` connections at once.
    The reply's body goes straight into the connection's send ring: /bytes/N from the
    pattern buffer, a file by readinto into a shared chunk buffer (the chunk is queued at
    once: it is never bigger than the ring's free space)."""

    def __init__(self, stack, port=80, root=None, max_conns=4, backlog=None, chunk=2048):
        self.stack = stack
        self.port = port
        self.kind = "http"
        self.root = root.rstrip("/") if root else None
        if root is not None and not self.root:
            self.root = "/"
        self.max_conns = max_conns
        self.lsock = _listen(stack, port, backlog or max_conns)
        self.lsock6 = _listen6(stack, port, backlog or max_conns)
        self.conns = [None] * max_conns
        self.slots = [_HttpConn() for _ in range(max_conns)]
        self.nconns = 0
        pat = bytearray(251 * _PAT_REPS)
        i = 0
        while i < len(pat):
            pat[i] = i % 251
            i += 1
        self.pat = pat
        self.fbuf = bytearray(chunk)
        self._mpy = sys.implementation.name == "micropython"  # file.readinto(buf, n)
        self.accepted = 0
        self.closed = 0
        self.requests = 0
        self.tx_bytes = 0

    # ---- the loop -------------------------------------------------------------------------
    def step(self):
        while self.nconns < self.max_conns:
            ls = _waiting(self)
            if ls is None:
                break
            c, _ = ls.accept()
            c.setblocking(False)
            i = 0
            while self.conns[i] is not None:
                i += 1
            self.conns[i] = c
            self.slots[i].reset()
            self.nconns += 1
            self.accepted += 1
        if not self.nconns:
            return
        i = 0
        while i < self.max_conns:
            c = self.conns[i]
            if c is not None:
                self._serve(i, c, self.slots[i])
            i += 1

    def _serve(self, i, c, k):
        tcb = c.tcb
        if tcb is None or tcb.state == T.CLOSED or c.so_error:
            self._close(i, c, k)
            return
        while True:
            r = tcb.rcv   # each time: read empty, it is the shared empty ring (ring.py)
            if k.skip and r is not None and r.count:
                n = r.discard(k.skip if k.skip < r.count else r.count)
                k.skip -= n
                c._consumed()
            if k.state == _READ:
                if k.skip or not self._read_head(c, tcb, k):
                    break
            if k.state == _SEND:
                if not _open_for_data(tcb):
                    self._close(i, c, k)
                    return
                if not self._queue(c, tcb, k):
                    return              # the send ring is full: the rest waits for ACKs
                if k.close:
                    self._close(i, c, k)
                    return
                k.next()                # keep-alive: the next request (maybe queued already)
        r = tcb.rcv
        if tcb.flags & T.F_RCVD_FIN and (r is None or r.count == 0):
            self._close(i, c, k)        # the peer is done and no request is pending

    def _read_head(self, c, tcb, k):
        """Peek the receive ring for a complete head; parse it. True when a reply is set up."""
        r = tcb.rcv
        if r is None:
            return False
        avail = r.count
        if avail > HEAD_MAX:
            avail = HEAD_MAX
        hn = k.hn
        if avail <= hn:
            return False
        r.peek_into(k.hbuf, hn, hn, avail - hn)
        k.hn = avail
        e = k.hbuf.find(_CRLF2, hn - 3 if hn > 3 else 0, avail)
        if e < 0:
            if avail >= HEAD_MAX:
                r.discard(r.count)
                c._consumed()
                self._reply(k, 400, b"request head too long\n", True)
                return True
            return False
        r.discard(e + 4)
        c._consumed()
        k.hn = 0
        self.requests += 1
        self._request(k, bytes(k.hbuf[0:e]))
        return True

    def _request(self, k, head):
        lines = head.split(b"\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            self._reply(k, 400, b"bad request\n", True)
            return
        method, path, version = parts
        conn = b""
        length = 0
        j = 1
        while j < len(lines):
            h = lines[j]
            j += 1
            p = h.find(b":")
            if p <= 0:
                continue
            name = h[0:p].strip().lower()
            if name == b"connection":
                conn = h[p + 1:].strip().lower()
            elif name == b"content-length":
                try:
                    length = int(h[p + 1:].strip())
                except ValueError:
                    self._reply(k, 400, b"bad content-length\n", True)
                    return
        close = conn == b"close" or (version == b"HTTP/1.0" and conn != b"keep-alive")
        k.skip = length if length > 0 else 0
        if method != b"GET" and method != b"HEAD":
            self._reply(k, 405, b"method not allowed\n", close)
            return
        head_only = method == b"HEAD"
        if path.startswith(b"/bytes/"):
            try:
                n = int(path[7:])
            except ValueError:
                n = -1
            if n < 0:
                self._reply(k, 400, b"bad length\n", close)
                return
            self._head(k, 200, n, "application/octet-stream", close)
            if not head_only:
                k.body = _BODY_PATTERN
                k.left = n
                k.pos = 0
            return
        if self.root is None:
            if path != b"/" and path != b"/index.html":
                self._reply(k, 404, b"not found\n", close)
                return
            self._head(k, 200, len(PAGE), "text/html", close, None if head_only else PAGE)
            return
        self._file(k, path, head_only, close)

    def _file(self, k, path, head_only, close):
        try:
            rel = _unquote(path.split(b"?", 1)[0]).decode()
        except (ValueError, UnicodeError):
            self._reply(k, 400, b"bad path\n", close)
            return
        if "\0" in rel:
            self._reply(k, 400, b"bad path\n", close)
            return
        segs = []
        for s in rel.split("/"):
            if s == "..":
                self._reply(k, 403, b"forbidden\n", close)
                return
            if s and s != ".":
                segs.append(s)
        full = self.root + ("/" + "/".join(segs) if segs else "")
        st = _stat(full)
        if st is not None and st[0] & 0x4000:          # a directory: its index.html
            full = full + "/index.html"
            st = _stat(full)
        if st is None or not st[0] & 0x8000:           # not a regular file
            self._reply(k, 404, b"not found\n", close)
            return
        size = st[6]
        f = None
        if not head_only and size:
            try:
                f = open(full, "rb")
            except OSError:
                self._reply(k, 404, b"not found\n", close)
                return
        ctype = "text/html" if full.endswith(".html") or full.endswith(".htm") else \
            "application/octet-stream"
        self._head(k, 200, size, ctype, close)
        if f is not None:
            k.f = f
            k.body = _BODY_FILE
            k.left = size

    def _head(self, k, code, length, ctype, close, body=None):
        h = ("HTTP/1.1 %d %s\r\nServer: ustack\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
             "Connection: %s\r\n\r\n" % (code, REASONS[code], ctype, length,
                                         "close" if close else "keep-alive")).encode()
        k.out = h + body if body else h
        k.ooff = 0
        k.close = close
        k.state = _SEND

    def _reply(self, k, code, body, close):
        self._head(k, code, len(body), "text/plain", close, body)

    def _queue(self, c, tcb, k):
        """Queue as much of the reply as the send ring takes; True when all of it is."""
        snd = tcb.snd
        if snd.buf is None:
            snd = c.tcp.rings.reserve(snd)  # its own ring, with storage (ring.py)
            tcb.snd = snd
            if snd.buf is None:
                return False  # no storage for the ring now: the next step tries again
        free = snd.cap - snd.count
        queued = 0
        out = k.out
        if out is not None:
            n = len(out) - k.ooff
            if n > free:
                n = free
            snd.write(out, k.ooff, n)
            k.ooff += n
            free -= n
            queued += n
            if k.ooff < len(out):
                free = 0
            else:
                k.out = None
        if k.body == _BODY_PATTERN:
            pat = self.pat
            left = k.left
            pos = k.pos
            while left and free:
                n = left
                if n > free:
                    n = free
                if n > _CHUNK:
                    n = _CHUNK
                snd.write(pat, pos, n)
                pos = (pos + n) % 251
                left -= n
                free -= n
                queued += n
            k.left = left
            k.pos = pos
        elif k.body == _BODY_FILE:
            buf = self.fbuf
            left = k.left
            while left and free:
                n = len(buf)
                if n > free:
                    n = free
                if n > left:
                    n = left
                if self._mpy:
                    got = k.f.readinto(buf, n)
                else:
                    got = k.f.readinto(memoryview(buf)[0:n])
                if not got:             # the file shrank under us: cut the connection
                    k.close = True
                    k.left = left = 0
                    break
                snd.write(buf, 0, got)
                left -= got
                free -= got
                queued += got
            k.left = left
            if not left:
                k.drop_file()
        if queued:
            self.tx_bytes += queued
            tcpout.output(c.tcp, tcb)
        return k.out is None and k.left == 0

    def _close(self, i, c, k):
        k.drop_file()
        c.close()
        self.conns[i] = None
        self.nconns -= 1
        self.closed += 1

    def report(self, counters):
        pre = "svc.tcp%d." % self.port
        for name in ("accepted", "closed", "requests", "tx_bytes"):
            v = getattr(self, name)
            if v:
                counters[pre + name] = v

    def close(self):
        i = 0
        while i < self.max_conns:
            c = self.conns[i]
            if c is not None:
                self._close(i, c, self.slots[i])
            i += 1
        self.lsock.close()
        if self.lsock6 is not None:
            self.lsock6.close()


def _stat(path):
    try:
        import os
        return os.stat(path)
    except (OSError, ImportError):
        return None
