"""TCP services for the MicroPython app: echo (RFC 862), discard (RFC 863), chargen (RFC 864),
driven from the poll loop (no threads, no blocking, no exceptions on the data path).

Steady state allocates nothing: every connection moves data through one preallocated
buffer per service; readiness is checked before each call (readable(), the ring counts),
so no call raises EAGAIN (an OSError would allocate). Sending a prefix of the buffer goes
through `_send_n` (TcpSocket.send takes the whole object: a slice would allocate).
Accepting a connection allocates its socket object; that is connection setup, not the data
path. Connections beyond `max_conns` wait in the listen queue.

HttpService (HTTP/1.1) is in httpserv.py, imported only by a board that serves "http".
"""
from ustack.core import socket as so
from ustack.core.tcp import tcb as T
from ustack.core.tcp import output as tcpout

CHARGEN_LINE = 72          # RFC 864: 72 printable characters a line, then CRLF; line k
CHARGEN_CYCLE = 95 * 74    # starts k places further in the 95-character set


def _send_n(sock, buf, n):
    """Queue buf[0:n] on sock's send ring (as much as fits) and run output; the count
    queued. Only for an established connection (callers check)."""
    return _send_at(sock, buf, 0, n)


def _send_at(sock, buf, off, n):
    """Queue buf[off:off + n] on sock's send ring (as much as fits, no slice) and run
    output; the count queued. Only for an established connection (callers check)."""
    tcb = sock.tcb
    snd = tcb.snd
    if snd.buf is None:
        snd = sock.tcp.rings.reserve(snd)  # its own ring, with storage (ring.py)
        tcb.snd = snd
        if snd.buf is None:
            return 0  # no storage for the ring now (the pool's, when it has data)
    k = snd.write(buf, off, n)
    if k:
        tcpout.output(sock.tcp, tcb)
    return k


def _listen(stack, port, backlog, family=so.AF_INET):
    s = stack.socket(family, so.SOCK_STREAM)
    s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
    if family == so.AF_INET6:  # beside the IPv4 one on the same port (as on Linux)
        s.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
    s.bind(("", port))
    s.listen(backlog)
    s.setblocking(False)
    return s


def _listen6(stack, port, backlog):
    """The service's IPv6 listener when the stack has IPv6 (config IPV6), else None."""
    if stack.ipv6 is None:
        return None
    return _listen(stack, port, backlog, so.AF_INET6)


def _waiting(svc):
    """The listening socket (IPv4's, then IPv6's) with a connection to accept, or None."""
    ls = svc.lsock
    if ls.acc_q:
        return ls
    ls = svc.lsock6
    if ls is not None and ls.acc_q:
        return ls
    return None


def _open_for_data(tcb):
    st = tcb.state
    return (st == T.ESTABLISHED or st == T.CLOSE_WAIT) and tcb.snd is not None and \
        not (tcb.flags & T.F_FIN_QUEUED)


class TcpService:
    def __init__(self, stack, port, kind, max_conns=4, bufsize=2048, backlog=None):
        self.stack = stack
        self.kind = kind
        self.port = port
        self.max_conns = max_conns
        self.lsock = _listen(stack, port, backlog or max_conns)
        self.lsock6 = _listen6(stack, port, backlog or max_conns)
        self.conns = [None] * max_conns
        self.nconns = 0
        self.buf = bytearray(bufsize)
        self.accepted = 0
        self.closed = 0
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.chargen_pos = [0] * max_conns
        if kind == "chargen":
            # one cycle of lines plus bufsize more: a chunk from any offset is contiguous
            self.lines = b = bytearray(CHARGEN_CYCLE + bufsize)
            i = 0
            while i < len(b):
                k = i % CHARGEN_CYCLE
                line, col = k // 74, k % 74
                if col < CHARGEN_LINE:
                    b[i] = 32 + (line + col) % 95
                else:
                    b[i] = 13 if col == CHARGEN_LINE else 10
                i += 1

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
            self.chargen_pos[i] = 0
            self.nconns += 1
            self.accepted += 1
        if not self.nconns:
            return
        i = 0
        while i < self.max_conns:
            c = self.conns[i]
            if c is not None:
                self._serve(i, c)
            i += 1

    def _serve(self, i, c):
        tcb = c.tcb
        if tcb is None or tcb.state == T.CLOSED or c.so_error:
            self._close(i, c)
            return
        kind = self.kind
        r = tcb.rcv
        if kind == "chargen":
            if r is not None and r.count:
                r.discard(r.count)  # RFC 864: input is ignored
                c._consumed()
            if _open_for_data(tcb):
                self._chargen(i, c, tcb)
        elif kind == "discard":
            if r is not None and r.count:
                # RFC 863: thrown away at once, not read out a buffer at a time (one window
                # update check for all of it)
                n = r.count
                r.discard(n)
                c._consumed(n)
                self.rx_bytes += n
        else:
            while r is not None and r.count:
                n = r.count
                if n > len(self.buf):
                    n = len(self.buf)
                if not _open_for_data(tcb):
                    n = 0
                else:
                    free = tcb.snd.cap - tcb.snd.count
                    if n > free:
                        n = free
                if n == 0:
                    break  # the send ring is full: the rest waits (the window closes)
                n = c.recv_into(self.buf, n)
                self.rx_bytes += n
                self.tx_bytes += _send_n(c, self.buf, n)
                r = tcb.rcv   # read empty: the shared empty ring now (ring.py)
        r = tcb.rcv
        if tcb.flags & T.F_RCVD_FIN and (r is None or r.count == 0):
            # the peer finished sending and we consumed everything: close (our FIN follows
            # whatever echoed data is still queued; the stack finishes it as an orphan)
            self._close(i, c)

    def _chargen(self, i, c, tcb):
        """Fill the send ring with lines (buffer-sized writes from the cycle, no slice), then
        run output once. The whole free space, not one buffer a turn: the loop sleeps until a
        frame comes, so one buffer per turn was clocked by the peer's ACKs (issue 13: at most
        three segments in flight, a third of them Nagle-released tails, and a stall of the
        peer's delayed ACK whenever one segment was left)."""
        snd = tcb.snd
        if snd.count >= snd.cap:
            return
        if snd.buf is None or len(snd.buf) < snd.cap:
            snd = c.tcp.rings.reserve(snd)  # its own ring, its storage grown (ring.py)
            tcb.snd = snd
            if snd.buf is None:
                return  # no storage for the ring now (the pool's, when it has data)
        pos = self.chargen_pos[i]
        chunk = len(self.buf)
        lines = self.lines
        queued = 0
        while True:
            n = snd.write(lines, pos, chunk)  # as much as the storage held takes
            if n <= 0:
                break
            pos += n
            if pos >= CHARGEN_CYCLE:
                pos -= CHARGEN_CYCLE
            queued += n
        if queued:
            self.chargen_pos[i] = pos
            self.tx_bytes += queued
            tcpout.output(c.tcp, tcb)

    def _close(self, i, c):
        c.close()
        self.conns[i] = None
        self.nconns -= 1
        self.closed += 1

    def report(self, counters):
        pre = "svc.tcp%d." % self.port
        for k in ("accepted", "closed", "rx_bytes", "tx_bytes"):
            v = getattr(self, k)
            if v:
                counters[pre + k] = v

    def close(self):
        i = 0
        while i < self.max_conns:
            c = self.conns[i]
            if c is not None:
                self._close(i, c)
            i += 1
        self.lsock.close()
        if self.lsock6 is not None:
            self.lsock6.close()


# ---- HTTP/1.1 -----------------------------------------------------------------------------
def make(stack, name, port, root=None, max_conns=4, backlog=None):
    if name in ("echo", "discard", "chargen"):
        return TcpService(stack, port, name, max_conns=max_conns, backlog=backlog)
    if name == "http":
        from ustack.ports.micropython.httpserv import HttpService   # only a board serving it
        return HttpService(stack, port, root, max_conns=max_conns, backlog=backlog)
    return None
