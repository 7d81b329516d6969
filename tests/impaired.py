"""An impaired path between two network namespaces, the same for ustack and for Linux.

This kernel has no netem, so the impairment is vde2's, in user space:

    ns "a": br0 (Linux A, 192.0.2.1) + ustk0 (ustack, 192.0.2.2) + tapv
                                                                   |
                                    vde_switch a -- wirefilter -- vde_switch b
                                                                   |
    ns "b": tapb (Linux B, 192.0.2.3)

Both of ns a's ends (Linux A's br0 and ustack's TAP) are bridged onto the one TAP that
vde_switch a owns, so ustack<->B and A<->B cross the same wirefilter: same loss, delay and
reordering, both directions. The frames lost on the path are counted from the two TAPs at
the filter's ends (queued into the filter minus came out of it): the impairment's drops, plus
any overflow of the TAP's queue or wirefilter's channel buffer when a sender outruns the
user-space filter (the loss-free Linux->Linux run shows it). IPv6 is off on them so nothing
else crosses."""
import os
import subprocess
import sys
import time

from tests.netns import Netns, StackProc

A_IP = "192.0.2.1"       # Linux A, bridged beside ustack in ns a
STACK_IP = "192.0.2.2"   # ustack, in ns a
B_IP = "192.0.2.3"       # Linux B, the far side of the filter
# Linux's name for each of ustack's congestion controls
LINUX_CC = {"newreno": "reno", "cubic": "cubic"}


class ImpairedPath:
    """loss in %, delay_ms one way (added to the RTT twice), reorder: with a 1 ms jitter and no
    FIFO, frames overtake each other (wirefilter -N)."""

    def __init__(self, loss=0.0, delay_ms=0, reorder=False, tag="imp"):
        self.a = Netns(tag + "a")
        self.b = Netns(tag + "b")
        self.dir = "/tmp/vde-%s" % self.a.name
        os.makedirs(self.dir, exist_ok=True)
        self.stack = None
        try:
            for ns, sw, tap in ((self.a, "a", "tapv"), (self.b, "b", "tapb")):
                self._run(ns.cmd(["vde_switch", "-s", self._p(sw), "-t", tap, "-d",
                                  "-p", self._p(sw + ".pid")]))
            delay = "%d" % delay_ms
            wf = ["wirefilter", "-v", "%s:%s" % (self._p("a"), self._p("b")),
                  "--daemon", "--pidfile", self._p("w.pid")]
            if loss:
                wf += ["-l", "%g" % loss]
            if reorder:
                wf += ["-N", "-d", "%d+1" % max(delay_ms, 1)]
            elif delay_ms:
                wf += ["-d", delay]
            self._run(wf)
            self._wait_for(self._p("w.pid"))
            a = self.a
            for argv in (["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                         ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
                         ["ip", "link", "add", "br0", "type", "bridge"],
                         ["ip", "link", "set", "tapv", "master", "br0"],
                         ["ip", "addr", "add", A_IP + "/24", "dev", "br0"],
                         ["ip", "link", "set", "tapv", "up"],
                         ["ip", "link", "set", "br0", "up"]):
                self._check(a.run(argv))
            for argv in (["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                         ["ip", "addr", "add", B_IP + "/24", "dev", "tapb"],
                         ["ip", "link", "set", "tapb", "up"]):
                self._check(self.b.run(argv))
        except BaseException:
            self.close()
            raise

    def _p(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def _check(r):
        assert r.returncode == 0, r.stdout + r.stderr

    @staticmethod
    def _run(argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (argv, r.stdout + r.stderr)

    @staticmethod
    def _wait_for(path):
        end = time.monotonic() + 10
        while not os.path.exists(path):
            assert time.monotonic() < end, "no " + path
            time.sleep(0.05)

    def start_stack(self, *flags, env=None):
        """`ustack up` on its own TAP in ns a, bridged onto the filter's TAP."""
        self.stack = StackProc(self.a, "--mac", "02:00:00:00:00:02", *flags, tap="ustk0",
                               ip=STACK_IP + "/24", host_ip=None, env=env)
        for argv in (["ip", "link", "set", "ustk0", "master", "br0"],
                     ["ip", "link", "set", "ustk0", "up"]):
            self._check(self.a.run(argv))
        return self.stack

    def run_program(self, code, args, wait_for, *flags):
        """`ustack run [flags] -- python -c code args` on the bridged TAP in ns a (the socket module
        is ustack's); returns the Popen once `wait_for` is in its output."""
        p = self.a.popen([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap",
                          "ustk0", "--ip", STACK_IP + "/24", "--mac", "02:00:00:00:00:02",
                          "--json"] + list(flags) + ["--", "python", "-c", code] + list(args),
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        lines = []
        end = time.monotonic() + 30
        while True:
            line = p.stdout.readline()
            assert line, "program exited before %r:\n%s" % (wait_for, "".join(lines))
            lines.append(line)
            if wait_for in line:
                break
            assert time.monotonic() < end, "no %r:\n%s" % (wait_for, "".join(lines))
        for argv in (["ip", "link", "set", "ustk0", "master", "br0"],
                     ["ip", "link", "set", "ustk0", "up"]):
            self._check(self.a.run(argv))
        return p

    def stop_stack(self):
        """The stack's exit counters."""
        c, self.stack = self.stack.stop(), None
        return c

    def frames(self):
        """(a_to_b_sent, a_to_b_arrived, b_to_a_sent, b_to_a_arrived) at the filter's ends.
        Sent counts what a kernel queued on its TAP, including what the TAP's queue dropped
        before the switch read it: a loss on the path too."""
        def counts(ns, dev):
            base = "/sys/class/net/%s/statistics/" % dev
            r = ns.run(["cat", base + "tx_packets", base + "tx_dropped", base + "rx_packets"])
            self._check(r)
            tx, txd, rx = r.stdout.split()
            return int(tx) + int(txd), int(rx)
        atx, arx = counts(self.a, "tapv")
        btx, brx = counts(self.b, "tapb")
        return atx, brx, btx, arx

    def dropped_since(self, before, settle=0.3):
        """Frames the impairment dropped in each direction since `before` (frames())."""
        time.sleep(settle)  # frames still in the filter's delay line
        now = self.frames()
        return ((now[0] - before[0]) - (now[1] - before[1]),
                (now[2] - before[2]) - (now[3] - before[3]))

    def close(self):
        if self.stack is not None:
            try:
                self.stack.stop()
            except Exception:
                pass
        for pid in ("w.pid", "a.pid", "b.pid"):
            try:
                with open(self._p(pid)) as f:
                    os.kill(int(f.read().split()[0]), 15)
            except (OSError, ValueError):
                pass
        self.a.close()
        self.b.close()
        subprocess.run(["rm", "-rf", self.dir])


# a Linux endpoint in a namespace: a sink that hashes what it receives, and a sender of the
# deterministic pattern (byte i = i mod 251, as ustack's http /bytes/N)
SINK = r"""
import hashlib, socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("", int(sys.argv[1]))); l.listen(1); print("listening", flush=True)
c, _ = l.accept(); h = hashlib.sha256(); n = 0; t0 = time.perf_counter()
buf = bytearray(1 << 20); mv = memoryview(buf)
while True:
    k = c.recv_into(buf)
    if not k: break
    h.update(mv[:k]); n += k
dt = time.perf_counter() - t0
c.close(); print("SINK", n, h.hexdigest(), "%.6f" % dt, flush=True)
"""

SENDER = r"""
import socket, sys, time
host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
blk = bytes(range(251)) * 4 * 261
s = socket.socket()
# the namespace may not change its default (only init_net may pick a restricted algorithm);
# the socket option may, with CAP_NET_ADMIN
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[5].encode())
s.settimeout(60); s.connect((host, port))
cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()
t0 = time.perf_counter(); sent = 0
while (n and sent < n) or (not n and time.perf_counter() - t0 < secs):
    k = len(blk) if not n else min(len(blk), n - sent)
    s.sendall(blk[:k] if k < len(blk) else blk); sent += k
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
dt = time.perf_counter() - t0
print("SENT", sent, "%.6f" % dt, cc, flush=True)
"""

FETCH = r"""
import hashlib, socket, sys, time
host, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, 80), timeout=60)
s.sendall(b"GET /bytes/%d HTTP/1.0\r\nHost: x\r\n\r\n" % n)
head = b""
while b"\r\n\r\n" not in head:
    d = s.recv(4096); assert d, head; head += d
head, rest = head.split(b"\r\n\r\n", 1)
t0 = time.perf_counter(); h = hashlib.sha256(); h.update(rest); got = len(rest)
buf = bytearray(1 << 20); mv = memoryview(buf)
while got < n and (not secs or time.perf_counter() - t0 < secs):
    k = s.recv_into(buf)
    if not k: break
    h.update(mv[:k]); got += k
dt = time.perf_counter() - t0
s.close(); print("FETCH", got, h.hexdigest(), "%.6f" % dt, flush=True)
"""


def pattern_sha(n):
    """SHA-256 of the first n bytes of the pattern (byte i = i mod 251)."""
    import hashlib
    h = hashlib.sha256()
    blk = bytes(range(251)) * 4 * 261
    left = n
    while left:
        k = min(left, len(blk))
        h.update(blk[:k] if k < len(blk) else blk)
        left -= k
    return h.hexdigest()


def py(ns, script, *args, timeout=300):
    """Run one of the scripts above in `ns`; its last line split into fields."""
    r = ns.run([sys.executable, "-c", script] + [str(a) for a in args], timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1].split()


def start_sink(ns, port):
    p = ns.popen([sys.executable, "-c", SINK, str(port)])
    assert "listening" in p.stdout.readline()
    return p


def sink_result(p, timeout=300):
    out, _ = p.communicate(timeout=timeout)
    f = [ln for ln in out.splitlines() if ln.startswith("SINK ")][-1].split()
    return int(f[1]), f[2], float(f[3])


def linux_retransmits(ns):
    """The namespace's TcpRetransSegs since its creation."""
    r = ns.run(["nstat", "-asz", "TcpRetransSegs"])
    for line in r.stdout.splitlines():
        if line.startswith("TcpRetransSegs"):
            return int(line.split()[1])
    return 0
