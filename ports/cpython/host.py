"""One call to get a running stack on a TAP for CPython programs:

    from ustack.ports.cpython.host import open_stack
    net = open_stack(tap="ustack0", ip="192.0.2.2/24", host_ip="192.0.2.1/24")
    s = net.socket(AF_INET, SOCK_DGRAM)      # thread-safe, blocking by default
    ...
    net.close()
"""
import errno

from ustack.ports.cpython import cli
from ustack.ports.cpython import hostlink
from ustack.ports.cpython.runner import Runner


class _Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def open_stack(tap="ustack0", ip="192.0.2.2/24", host_ip=None, gateway=None,
               mac="02:00:00:00:00:02", board="pc_tap", driver=None, pcap=None, config=None, mtu=None,
               offload=None):
    """Check every argument as `ustack up` checks its flags (cli.resolve, cli.check_link),
    before anything is made: a bad value raises ValueError naming the argument, missing
    privileges PermissionError, a link the system refuses OSError (as the stdlib would).
    offload: "auto" (None: the board's, auto), "on" or "off", as `ustack up --offload`."""
    if driver is not None and driver not in cli.DRIVERS:
        raise ValueError("open_stack(driver=%r): not a driver (known: %s)"
                         % (driver, ", ".join(cli.DRIVERS)))
    args = _Args(board=board, driver=driver, tap=tap, ip=ip, gateway=gateway, mac=mac,
                 host_ip=host_ip, mtu=mtu, pcap=pcap, offload=offload,
                 config=["%s=%s" % kv for kv in (config or {}).items()])
    try:
        r = cli.resolve(args)
        cli.check_link(r)
    except cli.BadValue as e:
        if e.flag and e.flag.startswith("--"):
            raise ValueError("open_stack(%s=%r): %s"
                             % (e.flag[2:].replace("-", "_"), e.value, e.problem)) from None
        raise ValueError(_api_words(e)) from None
    except cli.NoPrivilege as e:
        raise PermissionError(errno.EPERM, _api_words(e)) from None
    except SystemExit as e:
        raise ValueError(_api_words(e)) from None
    try:
        drv = cli.make_driver(r, pcap)
    except SystemExit as e:  # the kernel refused the link (cli's one line)
        raise OSError(_api_words(e)) from None
    except hostlink.HostError as e:
        raise OSError("open_stack: %s" % (e,)) from None
    st = cli.make_stack(r, drv)
    return Host(st)


def _api_words(e):
    """cli's one line 'ustack: --flag VALUE: problem' as 'open_stack: flag VALUE: problem'."""
    m = str(e.code)
    m = m[8:] if m.startswith("ustack: ") else m
    if m.startswith("--"):
        word, sep, rest = m[2:].partition(" ")
        m = word.replace("-", "_") + sep + rest
    return "open_stack: " + m


# after the program: how long connections still closing are carried on (finish_closing)
LINGER_S = 10


class Host:
    def __init__(self, stack):
        self.stack = stack
        self.runner = Runner(stack).start()
        self.lock = self.runner.lock
        self.closed = False

    def socket(self, family=2, type=1, proto=0):
        return self.runner.socket(family, type, proto)

    def ping(self, dst, count=1, size=56, interval_ms=200, timeout_ms=1000):
        with self.lock:
            return self.stack.ping(dst, count, size, interval_ms, timeout_ms)

    def counters(self):
        with self.lock:
            return self.stack.counters()

    def finish_closing(self, timeout=LINGER_S):
        """Close every socket, as a process's exit closes its own, and keep the stack running
        until each connection's FIN - and the data queued before it - is acknowledged. The
        stack lives in this process: without this, a FIN (or data) lost on the way after the
        program ended was never resent and the peer waited for the end of the stream for
        ever (issue 12: a kernel carries closed sockets on after their process exits). At
        most `timeout` s, or until a signal interrupts the wait; the connections still
        closing then are reset (RFC 9293 3.10.5 ABORT) so their peers do not wait either."""
        st = self.stack
        tcp = st.tcp
        with self.lock:
            for s in list(st.sockets):
                s.close()
            if tcp is None or not self.runner.running:
                return
            try:
                st.wait(lambda: tcp.closing() == 0, timeout)
            finally:
                tcp.abort_closing()

    def close(self, linger=0):
        """The stack stops. With linger (seconds), finish_closing first: what a process's
        exit does (`ustack run`, ustack.patch's atexit); without, at once, as a link that
        goes away (connections still closing are left as they are)."""
        if self.closed:
            return  # ustack.patch's atexit after the program's own close
        if linger:
            self.finish_closing(linger)
        self.closed = True
        self.runner.stop()
        with self.lock:
            self.stack.close()
            self.runner._update_fds()  # the closed sockets' readiness descriptors too

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
