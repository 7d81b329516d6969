"""An asyncio facade over the non-blocking core: one task drives the stack, socket methods
are coroutines. Runs on MicroPython's asyncio (uasyncio) and on CPython's asyncio alike.

    import asyncio
    from ustack.ports.micropython.aio import AioStack

    async def main(stack):
        net = AioStack(stack)
        asyncio.create_task(net.run())
        s = net.socket(AF_INET, SOCK_STREAM)
        await s.connect(("192.0.2.1", 7))
        await s.sendall(b"hello")
        print(await s.recv(100))

The driving task polls the stack, then sleeps until the next timer or `idle_ms` (a board's
SPI/USB link has nothing to wait on, so it is polled; on the unix port a few ms is plenty),
and after every poll wakes the tasks waiting in socket calls; they re-check their
condition. Socket calls raise OSError like the blocking API (ETIMEDOUT when a timeout given
to the call runs out). This facade is for applications: its waits raise and catch EAGAIN,
which allocates; the allocation-free paths are the services in app.py / tcpserv.py.
"""
try:
    import asyncio
except ImportError:  # pragma: no cover - older MicroPython
    import uasyncio as asyncio

from ustack.core import clock
from ustack.core.compat import EAGAIN, EINPROGRESS, EALREADY, EISCONN, ETIMEDOUT, oserror
from ustack.core import socket as so


async def _sleep_ms(ms):
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000.0)


class AioStack:
    def __init__(self, stack, idle_ms=2, max_wait_ms=20):
        self.stack = stack
        self.idle_ms = idle_ms
        self.max_wait_ms = max_wait_ms
        self.event = asyncio.Event()
        self.running = False
        self.hooks = []       # called after every poll (e.g. app.UdpService.step)
        self.polls = 0
        busy = False
        for iface in stack.ifaces:
            if iface.driver.poll_obj() is None:
                busy = True
        self.busy = busy

    async def run(self):
        """The driving task: poll, run hooks, wake waiters, sleep."""
        st = self.stack
        self.running = True
        while self.running:
            now = clock.now_ms()
            try:
                st.poll(now)
                for h in self.hooks:
                    h()
            except Exception as e:  # a driver's or a hook's bug must not end the task
                st.poll_failed(e)
            self.polls += 1
            self.event.set()
            self.event.clear()
            w = self.idle_ms if self.busy else self.max_wait_ms
            nd = st.next_timer
            if nd:
                d = nd - clock.now_ms()
                if d < w:
                    w = d if d > 0 else 0
            await _sleep_ms(w)

    def stop(self):
        self.running = False

    async def tick(self):
        """Wait for the next poll."""
        await self.event.wait()

    async def until(self, cond, timeout_ms=None):
        """Wait until cond() (checked after each poll); False on timeout."""
        start = clock.now_ms()
        while not cond():
            if timeout_ms is not None and clock.now_ms() - start >= timeout_ms:
                return False
            await self.event.wait()
        return True

    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM, proto=0):
        s = self.stack.socket(family, type, proto)
        s.setblocking(False)
        return AioSocket(self, s)


def _again(e):
    return e.args and e.args[0] == EAGAIN


class AioSocket:
    def __init__(self, aio, sock):
        self.aio = aio
        self.sock = sock

    # ---- setup ------------------------------------------------------------------------
    def bind(self, addr):
        self.sock.bind(addr)

    def listen(self, backlog=None):
        if backlog is None:
            self.sock.listen()
        else:
            self.sock.listen(backlog)

    def setsockopt(self, level, opt, value):
        self.sock.setsockopt(level, opt, value)

    def getsockname(self):
        return self.sock.getsockname()

    def getpeername(self):
        return self.sock.getpeername()

    async def connect(self, addr, timeout_ms=None):
        s = self.sock
        if s.type != so.SOCK_STREAM:
            s.connect(addr)
            return
        start = clock.now_ms()
        while True:
            e = s.connect_ex(addr)
            if e == 0 or e == EISCONN:
                return
            if e != EINPROGRESS and e != EALREADY:
                raise oserror(e)
            if timeout_ms is not None and clock.now_ms() - start >= timeout_ms:
                raise oserror(ETIMEDOUT)
            await self.aio.tick()

    async def accept(self, timeout_ms=None):
        start = clock.now_ms()
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError as e:
                if not _again(e):
                    raise
            else:
                c.setblocking(False)
                return AioSocket(self.aio, c), addr
            await self._wait(start, timeout_ms)

    # ---- data -------------------------------------------------------------------------
    async def send(self, data, timeout_ms=None):
        start = clock.now_ms()
        while True:
            try:
                return self.sock.send(data)
            except OSError as e:
                if not _again(e):
                    raise
            await self._wait(start, timeout_ms)

    async def sendall(self, data, timeout_ms=None):
        mv = memoryview(data)
        i = 0
        n = len(mv)
        while i < n:
            i += await self.send(mv[i:] if i else mv, timeout_ms)

    async def sendto(self, data, addr):
        return self.sock.sendto(data, addr)

    async def recv(self, n, timeout_ms=None):
        start = clock.now_ms()
        while True:
            try:
                return self.sock.recv(n)
            except OSError as e:
                if not _again(e):
                    raise
            await self._wait(start, timeout_ms)

    async def recv_into(self, buf, nbytes=0, timeout_ms=None):
        start = clock.now_ms()
        while True:
            try:
                return self.sock.recv_into(buf, nbytes)
            except OSError as e:
                if not _again(e):
                    raise
            await self._wait(start, timeout_ms)

    async def recvfrom(self, n, timeout_ms=None):
        start = clock.now_ms()
        while True:
            try:
                return self.sock.recvfrom(n)
            except OSError as e:
                if not _again(e):
                    raise
            await self._wait(start, timeout_ms)

    async def _wait(self, start, timeout_ms):
        if timeout_ms is not None and clock.now_ms() - start >= timeout_ms:
            raise oserror(ETIMEDOUT)
        await self.aio.tick()

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()
