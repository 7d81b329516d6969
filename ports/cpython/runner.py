"""The CPython runner: one thread drives the stack (poll + timers), other threads use sockets.

Threading rule: every call into the core holds `runner.lock`. The driving thread takes it for
each poll; socket calls from other threads go through `Locked` proxies that take it around each
method. A blocking socket call waits on its own condition (releasing the lock), registered with
the predicate it waits for; after every poll and every socket call the holder of the lock asks
each registered predicate and signals only the threads whose predicate came true (issue 13:
targeted wake-ups, no thundering herd of every blocked thread on every poll). The predicates
are asked under the lock, where every state change happens, so no wake-up is lost.
"""
import os
import threading
import time

from ustack.core import socket as so
from ustack.hal import tapio

FAIL_BACKOFF_S = 0.05  # after poll() raised: not a hot loop if it keeps raising
WAIT_CAP_S = 10.0  # a blocked thread rechecks its predicate at least this often (a safety net:
# every poll, at least every max_wait, asks the predicates for it)
_DONTWAIT = 0x40  # MSG_DONTWAIT (Linux)

# fork() copies the stacks but not the threads that drive them, and may copy a runner's lock
# held by a thread the child does not have: in a child every call through a runner fails at
# once instead of waiting on it for ever (socketmod says the same for ustack.socket)
_forked = [False]
FORKED = "ustack: a forked child cannot use the parent's stack (its thread and lock stay there)"


def _after_fork_in_child():
    _forked[0] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_forked():
    if _forked[0]:
        import errno
        raise OSError(errno.EBADF, FORKED)


def _now_ms():
    return tapio.monotonic_ms()  # compiled: clock_gettime, no Python call (issue 13)


class Runner:
    def __init__(self, stack, max_wait=0.5):
        self.stack = stack
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.max_wait = max_wait
        self.hooks = []          # called under the lock after every poll
        self.running = False
        self.thread = None
        self.rfd = self.wfd = -1
        self._open_pipe()
        self.polls = 0
        self._fd_socks = {}      # core socket -> (rsock, wsock, signalled)
        self._waiters = []       # [ready, condition, signalled] per blocked thread
        self._conds = threading.local()  # each thread's condition (on self.lock), made once
        self.wakeups = 0         # blocked threads signalled because their predicate came true
        self.spurious = 0        # threads signalled whose predicate was false when they ran
        stack.clock = _now_ms
        # its time from now on: a socket call before the driving thread's first poll (a
        # connect right after start) stamps its TCB with it, not with 0 - whose SYN timer
        # that first poll would find overdue by the machine's uptime (a second SYN at once)
        stack.now = _now_ms()
        stack.waiter = self._wait
        # no per-event hook: the driver thread signals the waiters after every poll, and a
        # socket call after itself (a Python call per readiness change saved, issue 13)
        stack.notifier = None
        stack.fileno_hook = self._fileno
        stack.owner_check = self.lock._is_owned  # the threading rule, checked on every poll
        # the hooks run inside each step's poll, once its burst is read and before that
        # burst's ACKs go: a service's answer carries them (issue 13: one segment an echo);
        # and once its first frame is handled, before the next read (a lone request's
        # answer goes first)
        stack.burst_hook = self._burst
        self._stepping = False   # a step's poll is under way
        self._hooked = False     # ... and has run the hooks
        self._hooking = False    # the hooks run now (one that blocks drives polls in place)

    # ---- driving --------------------------------------------------------------------------
    def start(self):
        if self.wfd < 0:  # started again after stop(): a new pipe
            self._open_pipe()
        self.running = True
        self.thread = threading.Thread(target=self.loop, name="ustack", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        self.wake()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(5)
            if not self.thread.is_alive():
                self._close_pipe()

    def _open_pipe(self):
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self._pipe_full = False  # a wake byte is in the pipe: wake() writes no more

    def _close_pipe(self):
        """The wake-up pipe goes with the driving thread. A wake() after this (a socket call
        on a stopped stack) finds the pipe 'full' and writes nothing: never into a
        descriptor number the process has since given to something else."""
        with self.lock:
            self._pipe_full = True
            rfd, wfd = self.rfd, self.wfd
            self.rfd = self.wfd = -1
        if wfd >= 0:
            os.close(rfd)
            os.close(wfd)

    def wake(self):
        """Make the driving thread poll now. One byte in the pipe is enough: while one is
        unread, a wake costs no system call (and no exception from a full pipe)."""
        if self._pipe_full:
            return
        self._pipe_full = True
        wfd = self.wfd
        if wfd < 0:
            return
        try:
            os.write(wfd, b"x")
        except OSError:
            pass

    def step(self):
        """One poll under the lock; returns seconds until the next deadline."""
        st = self.stack
        with self.lock:
            now = _now_ms()
            self._stepping = True
            self._hooked = False
            try:
                nd = st.poll(now)
            finally:
                self._stepping = False
            if not self._hooked or st.timers_ran:
                # the poll ran no hooks, or ran timers after them (a connection that timed
                # out, TIME-WAIT's end): the hooks see it now
                for h in self.hooks:
                    h()
            if self._fd_socks:
                self._update_fds()
            st.kicked = False
            nd = st.next_timer
            self.polls += 1
            if self._waiters:
                self._signal_ready()
        if nd:
            w = (nd - _now_ms()) / 1000.0
            if w < 0:
                w = 0
            return w if w < self.max_wait else self.max_wait
        return self.max_wait

    def _burst(self):
        """Stack.poll's burst_hook: the hooks, within a step's poll (not when a hook that
        blocks drives the stack in place through run_until: they do not run inside
        themselves)."""
        if self._stepping and not self._hooking:
            self._hooked = True
            self._hooking = True
            try:
                for h in self.hooks:
                    h()
            finally:
                self._hooking = False

    def loop(self):
        fds = [self.rfd]
        told = {}   # fd -> its driver's poll_ready: what our poll() found, the driver need not
        for iface in self.stack.ifaces:
            objs = getattr(iface.driver, "poll_objs", None)  # a multi-queue TAP: every queue
            pr = getattr(iface.driver, "poll_ready", None)
            for o in (objs() if objs is not None else [iface.driver.poll_obj()]):
                if o is not None:
                    fds.append(o)
                    if pr is not None:
                        told[o] = pr
        # epoll: the descriptors registered once, and a wait that does not walk them all
        # (a TAP's eight queues and the pipe: poll() set up and took down nine waits per
        # wait, issue 13); poll() where there is no epoll. hal/tapio.py's Waiter: compiled,
        # epoll_wait itself, the ready descriptors written into `ready`, nothing allocated
        poller = tapio.Waiter(fds)
        try:
            self._drive(poller, told)
        finally:
            poller.close()

    def _drive(self, poller, told):
        busy = [f.driver for f in self.stack.ifaces if f.driver.poll_obj() is None]
        ready = [0] * poller.nfds   # the wait's answer: the readable descriptors
        junk = bytearray(512)
        while self.running:
            try:
                w = self.step()
            except Exception as e:
                w = self.failed(e)
            if busy:  # drivers with nothing to wait on (SPI, USB): poll often
                w = min(w, 0.001)
            n = poller.wait(w, ready)
            i = 0
            while i < n:
                fd = ready[i]
                i += 1
                if fd == self.rfd:
                    # read, then clear the flag: a wake() in between wrote nothing, and
                    # needs nothing, since the next step polls right after this
                    tapio.read(fd, junk)  # readable, so no EAGAIN; what is left: next poll
                    self._pipe_full = False
                else:
                    pr = told.get(fd)
                    if pr is not None:
                        pr(fd)

    def failed(self, e):
        """poll() itself raised (a driver, a hook): the driving thread must not die with it.
        Counted as stack.exceptions, logged as one line and the buffers of the frame under way
        reclaimed, like a handler's exception caught inside poll; waiting threads are woken;
        the loop backs off a little before the next poll so a failure that repeats cannot
        spin. Returns the wait in seconds."""
        with self.lock:
            self.stack.poll_failed(e)
            self._signal_all()
        return FAIL_BACKOFF_S

    # ---- hooks for the core ---------------------------------------------------------------
    def _wait(self, ready, timeout):
        """Called by a socket with the lock held: wait for ready() without driving."""
        end = None if timeout is None else time.monotonic() + timeout
        if self.thread is threading.current_thread():
            return self.stack.run_until(ready, timeout)  # a hook blocking: drive in place
        if ready():
            return True
        cond = getattr(self._conds, "c", None)
        if cond is None:
            cond = self._conds.c = threading.Condition(self.lock)
        w = [ready, cond, False]
        self._waiters.append(w)
        try:
            while True:
                if self.stack.kicked:
                    self.wake()
                if end is None:
                    cond.wait(WAIT_CAP_S)
                else:
                    rest = end - time.monotonic()
                    if rest <= 0:
                        return ready()
                    cond.wait(rest if rest < WAIT_CAP_S else WAIT_CAP_S)
                if ready():
                    return True
                if w[2]:
                    self.spurious += 1
                    w[2] = False
        finally:
            self._waiters.remove(w)

    def _signal_ready(self):
        """Under the lock: signal each blocked thread whose predicate is now true, once."""
        for w in self._waiters:
            if not w[2]:
                try:
                    r = w[0]()
                except Exception:
                    r = True  # let the thread itself meet the error
                if r:
                    w[2] = True
                    w[1].notify()
                    self.wakeups += 1

    def _signal_all(self):
        for w in self._waiters:
            w[2] = True
            w[1].notify()

    def _fileno(self, s):
        """A descriptor select/poll/epoll can trust: readable exactly while the socket is,
        writable exactly while it is.

        One AF_UNIX socketpair per socket: a byte sent to our end marks it readable; filling
        our end's send buffer (its bytes sit unread in the other end) makes it not writable.
        The state is set after every poll and, synchronously, after every call on the socket
        (Locked), so no caller ever sees a stale answer."""
        e = self._fd_socks.get(s)
        if e is None:
            import socket as _pysock
            r, w = _pysock.socketpair(_pysock.AF_UNIX, _pysock.SOCK_STREAM)
            # the application may clear O_NONBLOCK on our end (setblocking(True) mirrors it, as
            # the stdlib does): every call here passes MSG_DONTWAIT instead of trusting it
            r.setblocking(False)
            w.setblocking(False)
            r.setsockopt(_pysock.SOL_SOCKET, _pysock.SO_SNDBUF, 1)  # the kernel's minimum
            e = [r, w, False, True]  # our end, the other end, readable, writable
            self._fd_socks[s] = e
            self._sync(s)
        return e[0].fileno()

    def _local(self):
        """After a call (lock held): what it sent to this stack itself over "lo" arrives
        before the call returns, with every descriptor's readiness, as on Linux."""
        if self.stack.deliver_local():
            if self._fd_socks:
                self._update_fds()
        if self._waiters:
            self._signal_ready()  # threads blocked on what this call changed (lo's receivers)

    def _update_fds(self):
        for s in list(self._fd_socks):
            self._sync(s)

    def _sync(self, s):
        """Set s's descriptor to s's readiness now (under the lock)."""
        e = self._fd_socks.get(s)
        if e is None:
            return
        if s.closed:
            del self._fd_socks[s]
            e[0].close()
            e[1].close()
            return
        try:
            self._set(e, s.readable(), s.writable())
        except OSError:
            # the application closed our descriptor behind our back (os.close(fileno())):
            # forget its number, which may already be someone else's; fileno() makes a new one
            del self._fd_socks[s]
            e[0].detach()
            e[1].close()

    @staticmethod
    def _set(e, readable, writable):
        if readable != e[2]:
            if readable:
                e[1].send(b"r", _DONTWAIT)
            else:
                try:
                    e[0].recv(16, _DONTWAIT)  # the one byte sent above: no EAGAIN to raise
                except BlockingIOError:
                    pass
            e[2] = readable
        if writable != e[3]:
            if writable:
                try:
                    while e[1].recv(65536, _DONTWAIT):
                        pass
                except BlockingIOError:
                    pass
            else:
                fill = bytes(4096)
                try:
                    while True:
                        e[0].send(fill, _DONTWAIT)
                except BlockingIOError:
                    pass
            e[3] = writable

    # ---- sockets for other threads --------------------------------------------------------
    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM, proto=0):
        _check_forked()
        with self.lock:
            return Locked(self, self.stack.socket(family, type, proto))

    def call(self, fn, *args):
        _check_forked()
        with self.lock:
            try:
                r = fn(*args)
            finally:
                self._local()
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

        sock = self._sock

        def call(*args, **kw):
            _check_forked()
            with runner.lock:
                try:
                    r = attr(*args, **kw)
                finally:
                    runner._local()
                    if runner._fd_socks:
                        runner._sync(sock)
            if runner.stack.kicked:
                runner.wake()
            return r
        self.__dict__[name] = call  # made once per method: the next call skips __getattr__
        return call

    def accept(self):
        _check_forked()
        runner = self._runner
        with runner.lock:
            try:
                s, addr = self._sock.accept()
            finally:
                runner._local()
                if runner._fd_socks:
                    runner._sync(self._sock)
        if runner.stack.kicked:
            runner.wake()
        return Locked(runner, s), addr

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __repr__(self):
        s = self._sock
        return "<ustack socket type=%d %s>" % (s.type, s.getsockname() if not s.closed else "closed")
