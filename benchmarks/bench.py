"""ustack benchmarks against the Linux kernel over the same TAP path.

Each row measures ustack (the stack on a TAP, in its own namespace) and, in the same run,
the baseline: the Linux kernel of a second namespace reached through a TAP relay (see
relay.py). Results go to a markdown file (default benchmarks/results.md); with --readme, README.md
shows them too (a user's checkout is not rewritten unless asked).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP  # noqa: E402

PY = sys.executable


class Baseline:
    """Linux as the peer: ns (client side) --TAP-- relay --TAP-- ns2 (Linux 'server')."""

    def __init__(self):
        self.ns = Netns("bl")
        self.ns2 = Netns("bl2")
        self.relay = self.ns.popen([PY, "-m", "benchmarks.relay", "ustk0", "ustkb"],
                                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        line = self.relay.stdout.readline()
        assert "relay ready" in line, line
        self.ns.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
        self.ns.run(["ip", "link", "set", "ustk0", "up"], check=True)
        subprocess.run(["ip", "-n", self.ns.name, "link", "set", "ustkb", "netns", self.ns2.name], check=True)
        self.ns2.run(["ip", "link", "set", "ustkb", "address", "02:00:00:00:00:02"], check=True)
        self.ns2.run(["ip", "addr", "add", STACK_IP + "/24", "dev", "ustkb"], check=True)
        self.ns2.run(["ip", "link", "set", "ustkb", "up"], check=True)
        self.echo = self.ns2.popen([PY, "-c",
                                    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                    "s.bind(('',7))\nprint('up',flush=True)\n"
                                    "while True:\n d,a=s.recvfrom(65536); s.sendto(d,a)\n"])
        self.echo.stdout.readline()
        self.tcp = self.ns2.popen([PY, "-m", "benchmarks.peer_servers"],
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.tcp.stdout.readline()
        time.sleep(0.3)

    def close(self):
        self.ns2.close()
        self.ns.close()


class Ours:
    def __init__(self, runtime="cpython"):
        self.ns = Netns("bu")
        self.sp = StackProc(self.ns, "--serve", "echo,discard,chargen,http", runtime=runtime)

    def close(self):
        if self.sp.p.poll() is None:
            self.sp.stop()
        self.ns.close()


def ping_median(ns, count):
    r = ns.run(["ping", "-n", "-c", str(count), "-i", "0.002", "-W", "1", STACK_IP], timeout=600)
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", r.stdout)]
    got = len(rtts)
    return (statistics.median(rtts) * 1000 if rtts else float("nan")), got


UDP_CLIENT = r"""
import socket, time, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.connect(("%s", 7))
m = b"x" * %d
n = 0; lost = 0
end = time.perf_counter() + %f
while time.perf_counter() < end:
    s.send(m)
    try:
        s.recv(65536); n += 1
    except socket.timeout:
        lost += 1
print(n, lost)
"""


def udp_rate(ns, size, seconds):
    r = ns.python(UDP_CLIENT % (STACK_IP, size, seconds), timeout=seconds + 30)
    n, lost = (int(x) for x in r.stdout.split())
    return n / seconds, lost


def measure(ns, quick, count, secs):
    """Every row for one peer: {name: value}."""
    v = {}
    v["ping"], v["ping_got"] = ping_median(ns, count)
    v["udp64"], _ = udp_rate(ns, 64, secs)
    v["udp1k"], _ = udp_rate(ns, 1024, secs)
    for name, val in tcp_rows(ns, quick):
        v[name] = val
    return v


def run(quick, out, runtime, readme=False, rounds=3):
    """Both peers up at once; rounds alternate ustack and Linux and each row reports the
    median of the rounds, so machine noise (frequency, scheduling) hits both alike."""
    count = 200 if quick else 1000
    secs = 1.0 if quick else 2.0
    rounds = 1 if quick else rounds
    import ustack
    ours = Ours(runtime)
    bl = None
    try:
        bl = Baseline()
        for n in (ours.ns, bl.ns):
            n.run(["ping", "-c", "3", "-i", "0.05", STACK_IP])
        os_, ls_ = [], []
        for _ in range(rounds):
            os_.append(measure(ours.ns, quick, count, secs))
            ls_.append(measure(bl.ns, quick, count, secs))
    finally:
        ours.close()
        if bl is not None:
            bl.close()

    def med(runs, k):
        return statistics.median(r[k] for r in runs)
    rows = []
    o_ping, l_ping = med(os_, "ping"), med(ls_, "ping")
    rows.append(("ping RTT, Linux -> peer, median of %d (us)" % count,
                 "%.0f (%d/%d)" % (o_ping, min(r["ping_got"] for r in os_), count),
                 "%.0f (%d/%d)" % (l_ping, min(r["ping_got"] for r in ls_), count),
                 o_ping / l_ping if l_ping else 0))
    for k, name in (("udp64", "UDP echo 64 B, request/response per s"),
                    ("udp1k", "UDP echo 1 KiB, request/response per s")):
        o, l = med(os_, k), med(ls_, k)
        rows.append((name, "%.0f" % o, "%.0f" % l, o / l if l else 0))
    for name in [k for k in os_[0] if k not in ("ping", "ping_got", "udp64", "udp1k")]:
        o, l = med(os_, name), med(ls_, name)
        rows.append((name, "%.1f" % o, "%.1f" % l, o / l if l else 0))
    lines = [
        "# ustack benchmarks",
        "",
        "Measured %s on %s, %d cores; ustack runtime %s, core %s. Baseline: the Linux kernel of a"
        " second namespace reached over the same TAP path through a minimal Python relay"
        " (benchmarks/relay.py). Each value is the median of %d alternating rounds. %s" % (
            time.strftime("%Y-%m-%d"), os.uname().machine, os.cpu_count(), runtime,
            "Cython-compiled" if ustack.compiled else "pure Python", rounds,
            "Quick run." if quick else ""),
        "",
        "| measurement | ustack | Linux | ratio |",
        "|---|---|---|---|",
    ]
    for name, o, l, ratio in rows:
        lines.append("| %s | %s | %s | %.2f |" % (name, o, l, ratio))
    publish("\n".join(lines) + "\n", out, "bench" if readme else None)


def publish(text, out, marker=None):
    """Write a results file, show it in README between its markers (marker None: not), print."""
    with open(out, "w") as f:
        f.write(text)
    if marker:
        update_readme(text, marker)
    sys.stdout.write(text)


def update_readme(text, marker="bench"):
    """Show the latest results in README between the <!-- marker:start/end --> lines."""
    p = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    s = open(p).read()
    a, b = "<!-- %s:start -->\n" % marker, "<!-- %s:end -->" % marker
    if a in s and b in s:
        body = text.split("\n", 2)[2]  # drop the title
        s = s[:s.index(a) + len(a)] + body + s[s.index(b):]
        open(p, "w").write(s)


def tcp_rows(ns, quick):
    """TCP rows once the stack has TCP (see bench_tcp.py); empty otherwise."""
    try:
        from benchmarks import bench_tcp
    except ImportError:
        return []
    return bench_tcp.rows(ns, quick)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks/results.md")
    ap.add_argument("--runtime", default="cpython", help="cpython or micropython")
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    a = ap.parse_args()
    run(a.quick, a.out, a.runtime, a.readme)


if __name__ == "__main__":
    main()
