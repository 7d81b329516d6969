"""Forwarding through ustack beside forwarding through Linux, between the same two Linux hosts
(issue 14), written to benchmarks/forwarding.md.

Topology, built twice in throwaway namespaces:
    host A 192.0.2.1 --- router --- 198.51.100.2 host B
- ustack: `ustack up --forward --link tap=ustk1,...` on two TAPs (A's kernel is the namespace
  the stack runs in; B's TAP end is moved into B's namespace), as tests/interop/test_router.py;
- Linux: a third namespace with ip_forward=1 and two veth pairs (the kernel's own forwarding:
  the limit on this machine).

Rows: TCP A->B bulk (MB/s, SHA-256 checked), 64-byte UDP datagrams forwarded per second while A
offers as many as one Python sender can (received at B / duration; the offered rate is shown
too), the median ping RTT A->B through the router, and the router's CPU seconds per GB of the
TCP transfer (ustack only: Linux forwards in softirq, not in a process).

    python -m benchmarks.forwarding [--quick] [--out FILE] [--readme]
"""
import argparse
import hashlib
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.netns import Netns, HOST_IP, STACK_IP, sha256_sink  # noqa: E402
from tests.routerkit import stack_between  # noqa: E402
from benchmarks.peers import cpu_seconds  # noqa: E402

B_ROUTER = "198.51.100.1"
B_HOST = "198.51.100.2"
TCP_PORT = 5001
UDP_PORT = 5002
ROWS = [("tcp_mbs", "TCP A->B through the router (MB/s)"),
        ("udp_pps", "64 B UDP datagrams forwarded (/s)"),
        ("udp_offered", "64 B UDP datagrams offered by A (/s)"),
        ("ping_ms", "ping A->B median (ms)"),
        ("cpu_s_gb", "router CPU per GB of TCP (s)")]


def tcp_through(a, b, size):
    """A's kernel sends `size` bytes to B's kernel; MB/s, SHA-256 checked at B."""
    size -= size % 256
    sink = sha256_sink(b, TCP_PORT)
    t0 = time.monotonic()
    r = a.python("import socket\n"
                 "s = socket.create_connection(('%s', %d), timeout=30)\n"
                 "s.sendall(bytes(range(256)) * %d)\n"
                 "s.close()\n" % (B_HOST, TCP_PORT, size // 256), timeout=300)
    out, _ = sink.communicate(timeout=300)
    took = time.monotonic() - t0
    want = hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
    if r.returncode != 0 or out.split() != [str(size), want]:
        raise RuntimeError("TCP through the router failed: %s %s" % (r.stderr[-500:], out))
    return size / took / 1e6


def udp_through(a, b, secs):
    """(forwarded/s, offered/s): A sends 64-byte datagrams as fast as it can for `secs`; B
    counts what arrives until a quiet 0.5 s after the sender stops."""
    rx = b.popen([sys.executable, "-c",
                  "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)\n"
                  "s.bind(('', %d)); print('bound', flush=True)\nn = 0\n"
                  "s.settimeout(5)\n"
                  "try:\n    s.recv(64); n = 1\n    s.settimeout(0.5)\n"
                  "    while True:\n        s.recv(64); n += 1\n"
                  "except OSError:\n    pass\nprint(n, flush=True)\n" % UDP_PORT])
    assert "bound" in rx.stdout.readline()
    r = a.python("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                 "s.connect(('%s', %d)); d = bytes(64); n = 0\n"
                 "end = time.monotonic() + %f\n"
                 "while time.monotonic() < end:\n"
                 "    for _ in range(64):\n"
                 "        try:\n            s.send(d); n += 1\n"
                 "        except OSError:\n            pass\n"
                 "print(n)\n" % (B_HOST, UDP_PORT, secs), timeout=secs + 60)
    out, _ = rx.communicate(timeout=secs + 60)
    return int(out.split()[-1]) / secs, int(r.stdout.split()[-1]) / secs


def ping_ms(a, count):
    r = a.run(["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", B_HOST])
    rtts = [float(w.split("=")[1]) for w in r.stdout.split() if w.startswith("time=")]
    if not rtts:
        raise RuntimeError("no ping answer through the router: " + r.stdout[-500:])
    return statistics.median(rtts)


def measure(a, b, size, secs, pings, pids=()):
    res = {"ping_ms": ping_ms(a, pings)}
    c0 = cpu_seconds(pids) if pids else 0
    res["tcp_mbs"] = tcp_through(a, b, size)
    if pids:
        res["cpu_s_gb"] = (cpu_seconds(pids) - c0) / (size / 1e9)
    res["udp_pps"], res["udp_offered"] = udp_through(a, b, secs)
    return res


def via_ustack(size, secs, pings):
    with stack_between("fw", ["--forward", "--link", "tap=ustk1,ip=%s/24" % B_ROUTER],
                       b_cmds=[["ip", "link", "set", "ustk1", "up"],
                               ["ip", "addr", "add", B_HOST + "/24", "dev", "ustk1"],
                               ["ip", "route", "add", "default", "via", B_ROUTER]],
                       a_cmds=[["ip", "route", "add", "198.51.100.0/24", "via", STACK_IP]]) \
            as (a, b, st):
        res = measure(a, b, size, secs, pings, pids=[st.p.pid])
        c = st.stop()
        res["fwd_packets"] = c.get("ip.fwd_packets", 0)
        return res


def via_linux(size, secs, pings):
    a, r, b = Netns("fla"), Netns("flr"), Netns("flb")
    try:
        for ns, peer, dev, mine, theirs in ((a, "ra", "fa", HOST_IP, STACK_IP),
                                           (b, "rb", "fb", B_HOST, B_ROUTER)):
            # the veth pair is made in the router's namespace, one end moved to the host's
            r.run(["ip", "link", "add", peer, "type", "veth", "peer", "name", dev], check=True)
            r.run(["ip", "link", "set", dev, "netns", ns.name], check=True)
            r.run(["ip", "addr", "add", theirs + "/24", "dev", peer], check=True)
            r.run(["ip", "link", "set", peer, "up"], check=True)
            ns.run(["ip", "addr", "add", mine + "/24", "dev", dev], check=True)
            ns.run(["ip", "link", "set", dev, "up"], check=True)
            other = "198.51.100.0/24" if ns is a else "192.0.2.0/24"
            ns.run(["ip", "route", "add", other, "via", theirs], check=True)
        r.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        return measure(a, b, size, secs, pings)
    finally:
        b.close()
        r.close()
        a.close()


def fmt(x):
    if x is None:
        return "—"
    return "%d" % round(x) if x >= 100 else "%.3g" % x


def render(res, quick):
    cols = ("ustack", "linux")
    lines = ["# Forwarding: ustack beside Linux between the same two Linux hosts", "",
             "`python -m benchmarks.forwarding%s` (`invoke bench`), %s, %s, Python %s; "
             "ustack compiled, `--forward` over two TAPs; Linux: a namespace with "
             "ip_forward=1 and two veth pairs." % (" --quick" if quick else "",
                                                   time.strftime("%Y-%m-%d"),
                                                   platform.machine(),
                                                   platform.python_version()), "",
             "| row | ustack | Linux | ustack / Linux |", "|---|---|---|---|"]
    for key, label in ROWS:
        v = [res[c].get(key) for c in cols]
        ratio = ("%.3f" % (v[0] / v[1])) if (v[0] and v[1]) else "—"
        cells = [fmt(x) for x in v]
        lines.append("| %s | %s | %s | %s |" % (label, cells[0], cells[1], ratio))
    lines += ["", "The UDP sender is one Python process: the Linux row is bounded by what it "
              "offers. Router CPU for Linux is softirq time, not a process's, so it is not shown."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.forwarding")
    p.add_argument("--quick", action="store_true", help="small transfers (CI smoke)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "forwarding.md"))
    p.add_argument("--readme", action="store_true", help="also show the table in README.md")
    a = p.parse_args(argv)
    size, secs, pings = (2000000, 1.0, 10) if a.quick else (50000000, 5.0, 50)
    res = {"ustack": via_ustack(size, secs, pings), "linux": via_linux(size, secs, pings)}
    from benchmarks.bench import publish
    publish(render(res, a.quick), a.out, "forwarding" if a.readme else None)
    return res


if __name__ == "__main__":
    main()
