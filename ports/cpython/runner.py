"""The CPython runner: one thread drives the stack (poll + timers), other threads use sockets.

Threading rule: every call into the core holds `runner.lock`. The driving thread takes it for
each poll; socket calls from other threads go through `Locked` proxies that take it around each
method. A blocking socket call waits on a condition (releasing the lock) that the driver thread
signals after every poll, so a waiting thread never stalls the stack.
"""
import os
import select
import threading
import time

from ustack.core import socket as so


def _now_ms():
    return int(time.monotonic() * 1000)


class Runner:
    def __init__(self, stack, max_wait=0.5):
        self.stack = stack
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.max_wait = max_wait
        self.hooks = []          # called under the lock after every poll
        self.running = False
        self.thread = None
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.polls = 0
        self._fd_socks = {}      # core socket -> (rsock, wsock, signalled)
        stack.clock = _now_ms
        stack.waiter = self._wait
        stack.notifier = self._notify
        stack.fileno_hook = self._fileno
        stack.owner_check = self.lock._is_owned  # the threading rule, checked on every poll

    # ---- driving --------------------------------------------------------------------------
    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self.loop, name="ustack", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        self.wake()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(5)

    def wake(self):
        try:
            os.write(self.wfd, b"x")
        except (BlockingIOError, OSError):
            pass

    def step(self):
        """One poll under the lock; returns seconds until the next deadline."""
        st = self.stack
        with self.lock:
            now = _now_ms()
            nd = st.poll(now)
            for h in self.hooks:
                h()
            if self._fd_socks:
                self._update_fds()
            st.kicked = False
            nd = st.next_timer
            self.polls += 1
            self.cond.notify_all()
        if nd:
            w = (nd - _now_ms()) / 1000.0
            if w < 0:
                w = 0
            return w if w < self.max_wait else self.max_wait
        return self.max_wait

    def loop(self):
        fds = [self.rfd]
        for iface in self.stack.ifaces:
            objs = getattr(iface.driver, "poll_objs", None)  # a multi-queue TAP: every queue
            for o in (objs() if objs is not None else [iface.driver.poll_obj()]):
                if o is not None:
                    fds.append(o)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        busy = [i.driver for i in self.stack.ifaces if i.driver.poll_obj() is None]
        while self.running:
            w = self.step()
            if busy:  # drivers with nothing to wait on (SPI, USB): poll often
                w = min(w, 0.001)
            ev = poller.poll(w * 1000.0)
            for fd, _ in ev:
                if fd == self.rfd:
                    try:
                        while os.read(self.rfd, 512):
                            pass
                    except BlockingIOError:
                        pass

    # ---- hooks for the core ---------------------------------------------------------------
    def _wait(self, ready, timeout):
        """Called by a socket with the lock held: wait for ready() without driving."""
        end = None if timeout is None else time.monotonic() + timeout
        if self.thread is threading.current_thread():
            return self.stack.run_until(ready, timeout)  # a hook blocking: drive in place
        while not ready():
            if self.stack.kicked:
                self.wake()
            if end is None:
                self.cond.wait(1.0)
            else:
                rest = end - time.monotonic()
                if rest <= 0:
                    return ready()
                self.cond.wait(rest)
        return True

    def _notify(self):
        pass  # the driver thread notifies after every poll

    def _fileno(self, s):
        """A descriptor select() can wait on: readable while the socket is."""
        import socket as _pysock
        e = self._fd_socks.get(s)
        if e is None:
            r, w = _pysock.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            e = [r, w, False]
            self._fd_socks[s] = e
            self._update_fds()
        return e[0].fileno()

    def _update_fds(self):
        gone = []
        for s, e in self._fd_socks.items():
            if s.closed:
                gone.append(s)
                continue
            want = s.readable()
            if want and not e[2]:
                try:
                    e[1].send(b"r")
                except OSError:
                    pass
                e[2] = True
            elif not want and e[2]:
                try:
                    while e[0].recv(64):
                        pass
                except OSError:
                    pass
                e[2] = False
        for s in gone:
            e = self._fd_socks.pop(s)
            e[0].close()
            e[1].close()

    # ---- sockets for other threads --------------------------------------------------------
    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM, proto=0):
        with self.lock:
            return Locked(self, self.stack.socket(family, type, proto))

    def call(self, fn, *args):
        with self.lock:
            r = fn(*args)
        if self.stack.kicked:
            self.wake()
        return r


class Locked:
    """A core socket whose every method runs under the runner's lock."""

    def __init__(self, runner, sock):
        self._runner = runner
        self._sock = sock

    def __getattr__(self, name):
        attr = getattr(self._sock, name)
        if not callable(attr):
            return attr
        runner = self._runner

        def call(*args, **kw):
            with runner.lock:
                r = attr(*args, **kw)
            if runner.stack.kicked:
                runner.wake()
            return r
        return call

    def accept(self):
        with self._runner.lock:
            s, addr = self._sock.accept()
        return Locked(self._runner, s), addr

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __repr__(self):
        s = self._sock
        return "<ustack socket type=%d %s>" % (s.type, s.getsockname() if not s.closed else "closed")
