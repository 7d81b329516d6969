"""Many idle TCP connections held by one stack (issue 13: the seed's "100k connections in under
100 MB"), written to benchmarks/idle.md.

`ustack up --serve discard` (compiled core, CPython runtime) with its connection table sized for
N; Linux clients in the namespace open N connections to the discard port and keep them open
(several client processes: a process here may hold 20 000 descriptors at most). Measured: the
stack's RSS before and after (bytes per idle connection), how fast the connections opened, the
stack's CPU while they sit idle, and the RSS 100 000 connections would take at that cost.

    python -m benchmarks.idle_conns [--quick] [--conns N] [--out FILE] [--readme]
"""
import argparse
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.netns import Netns, StackProc, STACK_IP  # noqa: E402
from benchmarks.peers import cpu_seconds  # noqa: E402

PER_CLIENT = 15000     # descriptors per client process (the machine allows 20 000)
IDLE_S = 5             # how long the stack's idle CPU is watched
TARGET = 100000        # the seed's figure

CLIENT = """
import socket, sys, time
n = int(sys.argv[1]); ss = []
t0 = time.monotonic()
for i in range(n):
    s = socket.socket(); s.settimeout(30); s.connect(('%s', 9))
    ss.append(s)
print('open', n, time.monotonic() - t0, flush=True)
sys.stdin.read()   # hold them until told
""" % STACK_IP


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def measure(n):
    ns = Netns("idle")
    clients = []
    try:
        st = StackProc(ns, "--serve", "discard", "--config", "TCP_MAX_CONNS=%d" % (n + 16),
                       "--config", "SOCKETS=%d" % (n + 64), "--config", "TCP_BACKLOG=1024")
        pid = st.p.pid
        ns.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"], check=True)
        base = rss_kb(pid)
        t0 = time.monotonic()
        left = n
        while left > 0:
            k = min(PER_CLIENT, left)
            left -= k
            p = ns.popen([sys.executable, "-c", CLIENT, str(k)], stdin=subprocess.PIPE)
            clients.append(p)
            line = p.stdout.readline().split()
            if not line or line[0] != "open":
                raise RuntimeError("a client could not open its connections: %s" % line)
        took = time.monotonic() - t0
        c = st.wait_counters(lambda c: c.get("tcp.conn_established", 0) >= n, 30)
        held = rss_kb(pid)
        c0 = cpu_seconds([pid])
        time.sleep(IDLE_S)
        idle = (cpu_seconds([pid]) - c0) / IDLE_S
        for p in clients:
            p.stdin.close()
        for p in clients:
            p.wait(60)
        end = st.stop()
        per = (held - base) * 1024 / n
        return {"conns": n, "established": c.get("tcp.conn_established", 0),
                "open_s": took, "conn_per_s": n / took, "rss_base_mb": base / 1024.0,
                "rss_held_mb": held / 1024.0, "bytes_per_conn": per,
                "idle_cpu_pct": 100.0 * idle,
                "rss_100k_mb": (base * 1024 + per * TARGET) / 1048576.0,
                "pbuf_back": end["pbuf.free"] == end["pbuf.count"]}
    finally:
        for p in clients:
            if p.poll() is None:
                p.kill()
        ns.close()


def render(r, quick):
    return "\n".join([
        "# Idle TCP connections held by ustack", "",
        "`python -m benchmarks.idle_conns%s` (`invoke bench`), %s, %s, Python %s; `ustack up "
        "--serve discard` (CPython runtime, compiled core) with its table sized for the "
        "connections; Linux clients in the namespace open them one after another and keep "
        "them open." % (" --quick" if quick else "", time.strftime("%Y-%m-%d"),
                        platform.machine(), platform.python_version()), "",
        "| connections | opened in (s) | connections/s | stack RSS before / held (MB) | "
        "bytes per idle connection | stack CPU while idle | RSS at 100 000 (MB, "
        "extrapolated) |",
        "|---|---|---|---|---|---|---|",
        "| %d | %.1f | %d | %.1f / %.1f | %d | %.1f %% | %d |" % (
            r["conns"], r["open_s"], r["conn_per_s"], r["rss_base_mb"], r["rss_held_mb"],
            r["bytes_per_conn"], r["idle_cpu_pct"], r["rss_100k_mb"]), "",
        "The seed's target is 100 000 connections in under 100 MB (about 1 KB each beside the "
        "stack's own RSS); the table says how far the stack is from it. An idle connection "
        "holds its TCB, its socket and no buffers (rings take storage only while they hold "
        "data). The connections open one at a time from each client (a handshake each), "
        "so connections/s is a handshake rate, not a SYN flood's.", ""])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.idle_conns")
    p.add_argument("--quick", action="store_true", help="2 000 connections (CI smoke)")
    p.add_argument("--conns", type=int, default=0, help="how many (default 30 000)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "idle.md"))
    p.add_argument("--readme", action="store_true", help="also show the table in README.md")
    a = p.parse_args(argv)
    n = a.conns or (2000 if a.quick else 30000)
    if not 1 <= n <= 65000:
        p.error("--conns %d: 1..65000 (TCP_MAX_CONNS's bound)" % n)
    r = measure(n)
    from benchmarks.bench import publish
    publish(render(r, a.quick), a.out, "idle" if a.readme else None)
    return r


if __name__ == "__main__":
    main()
