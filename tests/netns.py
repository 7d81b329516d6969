"""Throwaway network namespaces with the stack on a TAP inside: the Linux kernel is the peer.

Names carry a per-test unique suffix; everything is deleted in teardown, and only processes
started here are ended (by PID)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

HOST_IP = "192.0.2.1"
STACK_IP = "192.0.2.2"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sigint_caught():
    """Children get SIGINT at its default even where this process was started with it ignored
    (a background job of a non-interactive shell is): a program ended with SIGINT (`ustack
    run`, ProgramRun.interrupt) would otherwise inherit the ignoring and never end. A signal
    this process catches is reset to its default by exec, so catch it here (Python's own
    handler: Ctrl-C raises KeyboardInterrupt as usual); no preexec_fn, which is not safe
    beside threads."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:
            pass   # not the main thread: only the main thread may set handlers


_sigint_caught()   # at import too: in the main thread, before any popen from another one


class Netns:
    def __init__(self, tag="t"):
        # USTACK_NS_TAG (e.g. a helper's room on a shared machine) goes into every name too
        tag += os.environ.get("USTACK_NS_TAG", "")
        self.name = "ustk-%s-%d-%06x" % (tag, os.getpid(), random.getrandbits(24))
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"])
        self.procs = []

    def cmd(self, argv):
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv, timeout=60, check=False, input=None):
        return subprocess.run(self.cmd(argv), capture_output=True, text=True, timeout=timeout,
                              check=check, input=input)

    def python(self, code, timeout=60):
        """Run Python code with the kernel as our peer inside the namespace."""
        return self.run([sys.executable, "-c", code], timeout=timeout)

    def popen(self, argv, **kw):
        _sigint_caught()
        p = subprocess.Popen(self.cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def _same_core(ready, env):
    """A stack started by the suite runs the core the suite runs (compiled or pure), unless
    the test asked for another through its environment."""
    import ustack
    if "runtime=cpython" in ready and "USTACK_PURE" not in env:
        want = "compiled=%s" % ustack.compiled
        assert want in ready, "%s expected: %s" % (want, ready)


class StackProc:
    """`ustack up` inside a namespace; waits for its `ready` line."""

    def __init__(self, ns, *flags, tap="ustk0", ip=STACK_IP + "/24", host_ip=HOST_IP + "/24",
                 runtime=None, timeout=30, env=None):
        # USTACK_RUNTIME=micropython points every interop test at the MicroPython stack
        runtime = runtime or os.environ.get("USTACK_RUNTIME", "cpython")
        self.ns = ns
        argv = [sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--tap", tap,
                "--runtime", runtime, "--json"]
        if ip:  # None: no --ip (the address comes from --dhcp)
            argv += ["--ip", ip]
        if host_ip:
            argv += ["--host-ip", host_ip]
        argv += list(flags)
        e = dict(os.environ)
        e.update(env or {})
        self.p = ns.popen(argv, env=e)
        self.lines = []
        end = time.monotonic() + timeout
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("ustack up exited before ready:\n" + "".join(self.lines))
            self.lines.append(line)
            if line.startswith("ready "):
                self.ready = line
                _same_core(line, e)
                break
            if time.monotonic() > end:
                raise RuntimeError("ustack up not ready in %ds" % timeout)

    def live_counters(self):
        """The running stack's counters and pool gauges, asked over its control channel
        (`ustack stats --json`); {} when it does not answer."""
        r = self.ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "stats", "--json"])
        return json.loads(r.stdout)["counters"] if r.returncode == 0 else {}

    def wait_counters(self, pred, timeout):
        """The live counters once pred(counters) holds, or as they are after `timeout` s:
        waiting for the event itself rather than sleeping for a guess of how long it takes."""
        end = time.monotonic() + timeout
        while True:
            c = self.live_counters()
            if (c and pred(c)) or time.monotonic() > end:
                return c
            time.sleep(0.2)

    def stop(self):
        """SIGINT, then the exit counters as a dict."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=20)
        self.lines.append(out)
        self.returncode = self.p.returncode
        for line in out.splitlines():
            if line.startswith("counters "):
                return json.loads(line[len("counters "):])
        raise AssertionError("no counters line in output:\n" + out)


class ProgramRun:
    """`ustack run [flags] -- python <argv>` inside a namespace; waits for a line containing
    `wait_for` in the program's output."""

    def __init__(self, ns, argv, wait_for, flags=(), timeout=30):
        self.p = ns.popen([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap",
                           "ustk0", "--ip", STACK_IP + "/24", "--host-ip", HOST_IP + "/24",
                           "--json"] + list(flags) + ["--", "python"] + list(argv),
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines = []
        end = time.monotonic() + timeout
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("program exited before %r:\n%s"
                                   % (wait_for, "".join(self.lines)))
            self.lines.append(line)
            if wait_for in line:
                return
            if time.monotonic() > end:
                raise RuntimeError("no %r in %ds:\n%s" % (wait_for, timeout, "".join(self.lines)))

    def wait_for(self, word, timeout=30):
        """Read the program's output until a line containing `word` (e.g. a server saying it
        listens again) - rather than sleeping and hoping it has. (A reader thread: select()
        on the pipe cannot see lines already in the text buffer.)"""
        import threading
        found = []

        def read():
            while True:
                line = self.p.stdout.readline()
                if not line:
                    return
                self.lines.append(line)
                if word in line:
                    found.append(line)
                    return
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if not found:
            raise RuntimeError("no %r in %ds:\n%s" % (word, timeout, "".join(self.lines)))

    def output(self, timeout=60):
        """The whole output once the program has exited."""
        out, _ = self.p.communicate(timeout=timeout)
        return "".join(self.lines) + out

    def interrupt(self, timeout=60):
        """SIGINT (if still running), then the whole output."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        return self.output(timeout)


def sha256_sink(ns, port):
    """A Linux TCP server in the namespace that reads one connection to its end and prints
    `bytes sha256`; returned once it listens (its stdout gives the line at communicate())."""
    sink = ns.popen([sys.executable, "-c",
                     "import socket, hashlib\nl = socket.socket(); "
                     "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                     "l.bind(('', %d)); l.listen(1); print('listening', flush=True)\n"
                     "c, a = l.accept(); h = hashlib.sha256(); t = 0\n"
                     "while True:\n    d = c.recv(1 << 20)\n    if not d: break\n"
                     "    h.update(d); t += len(d)\n"
                     "c.close(); print(t, h.hexdigest(), flush=True)\n" % port])
    assert "listening" in sink.stdout.readline()
    return sink


def one_line_error(r, *words):
    """A finished command refused in exactly one line (naming `words`), with no traceback."""
    assert r.returncode not in (0, None), r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]
