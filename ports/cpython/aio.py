"""asyncio over ustack, two ways.

`ustack.asyncio.open_connection` / `start_server` (importable as `ustack.asyncio`): asyncio's
own streams on the standard event loop, over ustack.socket sockets of a running stack (a
Host from open_stack, a runner thread drives it); no patching needed:

    net = open_stack(tap="ustack0", ip="192.0.2.2/24")
    reader, writer = await ustack.asyncio.open_connection("192.0.2.1", 80, stack=net)
    server = await ustack.asyncio.start_server(handle, "", 7, stack=net)

AsyncStack: the asyncio event loop itself drives the stack (no threads) and offers streams
in the shape of asyncio's own:

    net = AsyncStack(stack)              # readers on the drivers' fds, timers via call_at
    reader, writer = await net.open_connection("192.0.2.1", 80)
    server = await net.start_server(handle, "", 7)

Sockets are the core's non-blocking ones; a coroutine that would block parks on a future that
the loop resolves after the next poll in which anything happened.
"""
import asyncio
import errno
import time

from ustack.core import socket as so


def _usock(stack):
    from ustack.ports.cpython import socketmod
    prev = socketmod._state["host"]
    socketmod.use(stack or socketmod.default_host())
    try:
        return socketmod.socket(socketmod.AF_INET, socketmod.SOCK_STREAM)
    finally:
        socketmod._state["host"] = prev


async def open_connection(host, port, *, stack=None, **kw):
    """asyncio.open_connection through `stack` (a Host; default: the one ustack.patch or
    ustack.socket.use chose). Returns asyncio's own (StreamReader, StreamWriter)."""
    sock = _usock(stack)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, **kw)


async def start_server(client_connected_cb, host="", port=0, *, stack=None, backlog=100, **kw):
    """asyncio.start_server listening on `stack`; returns asyncio's own Server."""
    from ustack.ports.cpython import socketmod
    sock = _usock(stack)
    try:
        sock.setsockopt(socketmod.SOL_SOCKET, socketmod.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return await asyncio.start_server(client_connected_cb, sock=sock, **kw)
def _fds(drv):
    """What to wait on for a driver's frames: every queue of a multi-queue TAP."""
    objs = getattr(drv, "poll_objs", None)
    fds = objs() if objs is not None else [drv.poll_obj()]
    return [fd for fd in fds if fd is not None]


class AsyncStack:
    def __init__(self, stack, loop=None):
        self.stack = stack
        self.loop = loop or asyncio.get_event_loop()
        self.waiters = []
        self._timer = None
        self._closed = False
        stack.clock = lambda: int(time.monotonic() * 1000)
        stack.notifier = None
        for iface in stack.ifaces:
            for fd in _fds(iface.driver):
                self.loop.add_reader(fd, self._poll)
        self._busy = [i for i in stack.ifaces if i.driver.poll_obj() is None]
        self._poll()

    def _poll(self):
        if self._closed:
            return
        st = self.stack
        now = st.clock()
        try:
            nd = st.poll(now)
        except Exception as e:  # a driver's bug: counted and logged; poll again soon
            st.poll_failed(e)
            nd = now + 50
        st.kicked = False
        w = self.waiters
        if w:
            self.waiters = []
            for f in w:
                if not f.done():
                    f.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
        delay = None
        if nd:
            delay = max(0.0, (nd - st.clock()) / 1000.0)
        if self._busy:
            delay = 0.001 if delay is None else min(delay, 0.001)
        if delay is not None:
            self._timer = self.loop.call_later(min(delay, 0.5), self._poll)
        else:
            self._timer = self.loop.call_later(0.5, self._poll)

    async def _wait(self):
        """Until the next poll (frames arrived or timers ran)."""
        f = self.loop.create_future()
        self.waiters.append(f)
        if self.stack.kicked:
            self.loop.call_soon(self._poll)
        await f

    async def _io(self, fn, *args, ready=None):
        """Retry a non-blocking core call until it stops raising EAGAIN. With ready (the
        socket's readiness), wait while it is False instead: no EAGAIN built per retry."""
        while True:
            if ready is not None and not ready():
                await self._wait()
                continue
            try:
                r = fn(*args)
            except BlockingIOError:
                await self._wait()
                continue
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINPROGRESS, errno.EALREADY):
                    await self._wait()
                    continue
                raise
            if self.stack.kicked:
                self.loop.call_soon(self._poll)
            return r

    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM):
        s = self.stack.socket(family, type)
        s.setblocking(False)
        return s

    async def open_connection(self, host, port):
        s = self.socket()
        try:
            s.connect((host, port))
        except OSError as e:
            if e.errno not in (errno.EINPROGRESS, errno.EAGAIN):
                s.close()
                raise
        while True:
            err = s.getsockopt(so.SOL_SOCKET, so.SO_ERROR)
            if err:
                s.close()
                raise OSError(err, errno.errorcode.get(err, str(err)))
            try:
                s.getpeername()
                if s.writable():
                    break
            except OSError:
                pass
            await self._wait()
        return StreamReader(self, s), StreamWriter(self, s)

    async def start_server(self, client_connected_cb, host="", port=0, backlog=100):
        ls = self.socket()
        ls.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(backlog)
        srv = Server(self, ls, client_connected_cb)
        srv.task = self.loop.create_task(srv._accept_loop())
        return srv

    def close(self):
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for iface in self.stack.ifaces:
            for fd in _fds(iface.driver):
                self.loop.remove_reader(fd)


class Server:
    def __init__(self, net, ls, cb):
        self.net = net
        self.sock = ls
        self.cb = cb
        self.task = None
        self.clients = set()

    async def _accept_loop(self):
        while True:
            c, addr = await self.net._io(self.sock.accept, ready=self.sock.readable)
            c.setblocking(False)
            t = self.net.loop.create_task(self._run(c))
            self.clients.add(t)
            t.add_done_callback(self.clients.discard)

    async def _run(self, c):
        r, w = StreamReader(self.net, c), StreamWriter(self.net, c)
        try:
            await self.cb(r, w)
        finally:
            w.close()  # flushes what the handler left buffered, as asyncio does

    def sockets(self):
        return [self.sock]

    def close(self):
        if self.task is not None:
            self.task.cancel()
        self.sock.close()

    async def wait_closed(self):
        if self.task is not None:
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *a):
        self.close()
        await self.wait_closed()


class StreamReader:
    def __init__(self, net, sock):
        self.net = net
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    async def _fill(self, n=65536):
        if self.eof:
            return 0
        d = await self.net._io(self.sock.recv, n, ready=self.sock.readable)
        if not d:
            self.eof = True
            return 0
        self.buf += d
        return len(d)

    async def read(self, n=-1):
        if n < 0:
            while await self._fill():
                pass
            d = bytes(self.buf)
            self.buf.clear()
            return d
        if not self.buf:
            await self._fill(max(n, 1))
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    async def readexactly(self, n):
        while len(self.buf) < n:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self.buf), n)
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    async def readuntil(self, sep=b"\n"):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                d = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return d
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self.buf), None)

    async def readline(self):
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial

    def at_eof(self):
        return self.eof and not self.buf


class StreamWriter:
    def __init__(self, net, sock):
        self.net = net
        self.sock = sock
        self.pending = bytearray()
        self._closing = False
        self._closer = None  # the task flushing what close() found buffered

    def write(self, data):
        self.pending += data
        self._flush()

    def writelines(self, lines):
        for d in lines:
            self.write(d)

    def _flush(self):
        while self.pending:
            if not self.sock.writable():
                return  # drain() waits for the next poll: no EAGAIN raised and caught
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    return
                raise
            if not n:
                return
            del self.pending[:n]
        if self.net.stack.kicked:
            self.net.loop.call_soon(self.net._poll)

    async def drain(self):
        while self.pending:
            self._flush()
            if self.pending:
                await self.net._wait()

    def can_write_eof(self):
        return True

    def write_eof(self):
        self.sock.shutdown(so.SHUT_WR)

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self.sock.getpeername()
        if name == "sockname":
            return self.sock.getsockname()
        if name == "socket":
            return self.sock
        return default

    def close(self):
        """As asyncio's transports: buffered data is still sent, then the socket closes."""
        if self._closing:
            return
        self._closing = True
        if self.pending and not self.sock.closed:
            self._closer = self.net.loop.create_task(self._flush_then_close())
        else:
            self._close_now()

    async def _flush_then_close(self):
        try:
            await self.drain()
        except OSError:
            pass  # the peer went away: nothing left to deliver
        finally:
            self._close_now()

    def _close_now(self):
        if not self.sock.closed:
            self.sock.close()
        if self.net.stack.kicked:
            self.net.loop.call_soon(self.net._poll)

    def is_closing(self):
        return self._closing or self.sock.closed

    async def wait_closed(self):
        if self._closer is not None:
            await asyncio.shield(self._closer)
