"""The stacks the benchmark measures, each brought up as a peer of one Linux client namespace.

Every peer but Linux sits on a TAP named ustk0 inside a throwaway namespace whose kernel is the
client (192.0.2.1 on the TAP's Linux side, the peer at 192.0.2.2): the same client and the same
TAP path for ustack, lwIP and PyTCP. Linux itself is measured over a veth pair between two
namespaces (the kernel on both ends: the limit). Each peer serves UDP echo (7), TCP echo (7),
discard (9), chargen (19) and HTTP (80) and gives the PIDs whose CPU time is its cost.

Nothing here is shared with the tests' fixtures except tests/netns.py (namespaces, `ustack up`);
the lwIP glue is compiled and the PyTCP venv built on first use, cached under build/.
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.netns import Netns, StackProc, ProgramRun, HOST_IP, STACK_IP  # noqa: E402

BUILD = os.path.join(ROOT, "build")
LWIP_SRC = os.path.join(ROOT, "benchmarks", "lwip", "lwip_tap.c")
LWIP_BIN = os.path.join(BUILD, "lwip_tap")
PYTCP_VERSION = "2.7.6"          # 2.7.x runs on Python 3.11; PyTCP 3.x needs 3.14
PYTCP_VENV = os.path.join(BUILD, "pytcp-venv")
SERVICES = "echo,discard,chargen,http"


def build_lwip(out=LWIP_BIN):
    """Compile benchmarks/lwip/lwip_tap.c against Debian's liblwip-dev (pkg-config lwip) into
    `out` (build/lwip_tap), again whenever the source is newer. Raises with the compiler's
    words."""
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(LWIP_SRC):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "lwip"], capture_output=True,
                        text=True)
    if pc.returncode != 0:
        raise RuntimeError("pkg-config lwip: %s (apt-get install liblwip-dev pkg-config: "
                           ".ci/setup does)" % pc.stderr.strip())
    flags = pc.stdout.split()
    r = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out + ".tmp",
                        LWIP_SRC] + flags, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cc lwip_tap.c failed:\n" + r.stderr)
    os.replace(out + ".tmp", out)
    return out


def build_pytcp():
    """A venv in build/pytcp-venv with PyTCP==PYTCP_VERSION from PyPI (its own: PyTCP is a
    separate GPL program, never imported by ustack or the harness)."""
    py = os.path.join(PYTCP_VENV, "bin", "python")
    probe = [py, "-c", "import importlib.metadata as m; print(m.version('pytcp'))"]
    if os.path.exists(py):
        r = subprocess.run(probe, capture_output=True, text=True)
        if r.stdout.strip() == PYTCP_VERSION:
            return py
    subprocess.run([sys.executable, "-m", "venv", "--clear", PYTCP_VENV], check=True)
    r = subprocess.run([py, "-m", "pip", "install", "-q", "pytcp==%s" % PYTCP_VERSION],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("pip install pytcp==%s: %s" % (PYTCP_VERSION, r.stderr[-2000:]))
    return py


def ustack_has_offload():
    """Whether this ustack's `up` takes --offload (it lists it in its --help)."""
    r = subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--help"],
                       capture_output=True, text=True, cwd=ROOT)
    return "--offload" in r.stdout


def tree_pids(pid):
    """pid and all its descendants (the micropython runtime runs a child process)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def process_cpu_ns(pid):
    """CPU time of a whole process (all its threads) in nanoseconds, at the scheduler's
    precision: Linux's CPU-time clock of another process (clock_getcpuclockid(3): clock id
    (~pid << 3) | CPUCLOCK_SCHED). /proc's utime/stime count 10 ms ticks: a 10 ms transfer
    measured with them read 0 s. None when the process is gone."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2)
    except OSError:
        return None


def cpu_seconds(pids):
    """CPU seconds of these processes and their descendants so far (user + system)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for root in pids:
        for p in tree_pids(root):
            ns = process_cpu_ns(p)
            if ns is not None:
                total += ns / 1e9
                continue
            try:
                with open("/proc/%d/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    return total


def interleaved(stacks, rows, budget, rounds, measure, log, tag):
    """Every row for every stack, `rounds` times, the stacks' order reversed every other row
    (a burst of load on this shared machine lands on all alike). measure(stack, row, budget)
    gives ({bench row: figure}, operations done); a row that fails is logged and left out
    of its round. Returns samples {label: [{row: figure} a round]} and cpu {label: {row: [the
    stack's CPU us per operation]}}. Each stack is started first and closed at the end (one
    whose start failed half-way too)."""
    samples = dict((s.label, []) for s in stacks)
    cpu = dict((s.label, {}) for s in stacks)
    started = []
    try:
        for s in stacks:
            log("%s: starting %s" % (tag, s.label))
            started.append(s)
            s.start()
        for i in range(rounds):
            got = dict((s.label, {}) for s in stacks)
            for ri, row in enumerate(rows):
                for s in (stacks if (i + ri) % 2 == 0 else stacks[::-1]):
                    log("%s: round %d/%d, %s, %s" % (tag, i + 1, rounds, row, s.label))
                    c0 = cpu_seconds(s.pids)
                    try:
                        v, ops = measure(s, row, budget)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        log("%s: %s, %s failed: %s" % (tag, row, s.label, str(e)[-2000:]))
                        continue
                    got[s.label].update(v)
                    if ops:
                        cpu[s.label].setdefault(row, []).append(
                            (cpu_seconds(s.pids) - c0) * 1e6 / ops)
            for s in stacks:
                samples[s.label].append(got[s.label])
            log("%s: round %d/%d: %s" % (tag, i + 1, rounds, json.dumps(got)))
    finally:
        for s in started:
            try:
                s.close()
            except Exception as e:
                log("%s: closing %s: %s" % (tag, s.label, e))
    return samples, cpu


def median(xs):
    """The median, None for no figures."""
    return statistics.median(xs) if xs else None


def wait_reachable(ns, timeout=20):
    """Ping the peer until it answers (ARP resolved, stack listening) or raise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = ns.run(["ping", "-n", "-c", "1", "-W", "1", STACK_IP])
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("peer %s did not answer ping in %d s" % (STACK_IP, timeout))


def link_host_side(ns):
    """The Linux side of a TAP the peer created: the client's address, up."""
    end = time.monotonic() + 10
    while ns.run(["ip", "link", "show", "ustk0"]).returncode != 0:
        if time.monotonic() > end:
            raise RuntimeError("no TAP ustk0 in %s" % ns.name)
        time.sleep(0.05)
    ns.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
    ns.run(["ip", "link", "set", "ustk0", "up"], check=True)


def read_ready(p, word, timeout=30):
    lines = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(word):
            return line.strip()
    raise RuntimeError("no %r line:\n%s" % (word, "".join(lines)))


class Peer:
    """A stack under test. `ns`: the client namespace; `pids`: whose CPU is the peer's cost;
    `info`: one line about how it runs (options, version)."""
    key = label = ""
    info = ""

    def start(self):
        raise NotImplementedError

    def close(self):
        self.ns.close()


class Ustack(Peer):
    def __init__(self, key, label, runtime="cpython", pure=False, offload=False):
        # offload: False (`up`'s default, auto: the TAP's offloads where the kernel has them),
        # True (--offload on) or "off" (--offload off: plain 1514-byte frames)
        self.key, self.label, self.runtime = key, label, runtime
        self.pure, self.offload = pure, offload
        self.env = {"USTACK_PURE": "1"} if pure else {}

    def start(self):
        self.ns = Netns("bn" + self.key[:4])
        flags = ["--serve", SERVICES] + self.offload_flags()
        self.sp = StackProc(self.ns, *flags, runtime=self.runtime, env=self.env, timeout=60)
        self.pids = [self.sp.p.pid]
        self.info = self.sp.ready.strip()
        wait_reachable(self.ns)

    def offload_flags(self):
        """`up`'s and `run`'s flags for this column's offloads (none: the default, auto)."""
        if not self.offload:
            return []
        return ["--offload", "off" if self.offload == "off" else "on"]

    def program(self, argv, wait_for):
        """An unmodified CPython program on this ustack's sockets (`ustack run`) in a fresh
        namespace of its own; None where the runtime cannot (MicroPython runs no CPython
        program)."""
        if self.runtime != "cpython":
            return None
        ns = Netns("bp" + self.key[:4])
        old = os.environ.get("USTACK_PURE")
        try:
            if self.pure:
                os.environ["USTACK_PURE"] = "1"
            run = ProgramRun(ns, argv, wait_for, flags=self.offload_flags(), timeout=60)
        except Exception:
            ns.close()
            raise
        finally:
            if old is None:
                os.environ.pop("USTACK_PURE", None)
            else:
                os.environ["USTACK_PURE"] = old
        return ns, run

    def close(self):
        try:
            if self.sp.p.poll() is None:
                self.sp.stop()
        finally:
            self.ns.close()


class Lwip(Peer):
    key, label = "lwip", "lwIP"

    def start(self):
        exe = build_lwip()
        self.ns = Netns("bnlwip")
        self.p = self.ns.popen([exe, "ustk0", STACK_IP, "24"])
        self.info = read_ready(self.p, "ready lwip")
        self.pids = [self.p.pid]
        link_host_side(self.ns)
        wait_reachable(self.ns)


class Pytcp(Peer):
    key, label = "pytcp", "PyTCP %s" % PYTCP_VERSION

    def start(self):
        py = build_pytcp()
        self.ns = Netns("bnpytcp")
        self.p = self.ns.popen([py, "-O", os.path.join(ROOT, "benchmarks", "pytcp_peer.py"),
                                "ustk0", STACK_IP + "/24"])
        self.info = read_ready(self.p, "ready pytcp")
        self.pids = [self.p.pid]
        link_host_side(self.ns)
        wait_reachable(self.ns, timeout=30)


class LinuxVeth(Peer):
    """The kernel on both ends: client namespace --veth-- server namespace."""
    key, label = "linux", "Linux (veth)"

    def start(self):
        self.ns = Netns("bnlxc")
        self.ns2 = Netns("bnlxs")
        subprocess.run(["ip", "-n", self.ns.name, "link", "add", "ustk0", "type", "veth",
                        "peer", "name", "ustk1", "netns", self.ns2.name], check=True)
        self.ns.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
        self.ns.run(["ip", "link", "set", "ustk0", "up"], check=True)
        self.ns2.run(["ip", "addr", "add", STACK_IP + "/24", "dev", "ustk1"], check=True)
        self.ns2.run(["ip", "link", "set", "ustk1", "up"], check=True)
        self.p = self.ns2.popen([sys.executable, "-m", "benchmarks.linux_peer"], cwd=ROOT)
        self.info = read_ready(self.p, "ready linux") + " " + os.uname().release
        self.pids = [self.p.pid]
        wait_reachable(self.ns)

    def program(self, argv, wait_for):
        """The same program on the kernel's sockets in the server namespace."""
        p = self.ns2.popen([sys.executable] + list(argv), cwd=ROOT,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
        read_until(p, wait_for)
        return None, _Proc(p)

    def close(self):
        try:
            self.ns2.close()
        finally:
            self.ns.close()


def read_until(p, word, timeout=30):
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        seen.append(line)
        if word in line:
            return
    raise RuntimeError("no %r:\n%s" % (word, "".join(seen)))


class _Proc:
    """A program started by LinuxVeth.program, ended like ProgramRun.interrupt."""

    def __init__(self, p):
        self.p = p

    def interrupt(self, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(2)
        try:
            out, _ = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, _ = self.p.communicate()
        return out or ""


class Floor(Peer):
    """Not a stack: benchmarks/floor_endpoint.py, the minimal Python TCP endpoint on a TAP
    (plain 1514-byte frames). Only its bulk rows are measured: issue 13's target for ustack
    without offloads is 60 % of them, in the same run."""
    key, label = "floor", "Python TAP endpoint (floor)"

    def start(self):
        self.ns = Netns("bnflr")
        self.p = self.ns.popen([sys.executable, os.path.join(ROOT, "benchmarks",
                                                             "floor_endpoint.py")])
        # it answers ARP and TCP only (no ping): ready once its TAP is up
        self.info = read_ready(self.p, "ready floor")
        self.pids = [self.p.pid]


def all_peers(offload=False):
    """The stacks of one run, in table order."""
    peers = [Ustack("compiled", "ustack compiled"),
             Ustack("nooffload", "ustack compiled, --offload off", offload="off"),
             Ustack("pure", "ustack pure (USTACK_PURE=1)", pure=True),
             Ustack("micropython", "ustack on MicroPython", runtime="micropython"),
             Lwip(), Pytcp(), LinuxVeth(), Floor()]
    if offload:
        peers.insert(1, Ustack("offload", "ustack compiled + offloads", offload=True))
    return peers
