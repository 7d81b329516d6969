"""One benchmark run, every stack side by side: ustack (compiled with and without the TAP's
offloads, pure Python, MicroPython), lwIP, PyTCP and Linux over a veth pair, measured by the
same Linux client over the same TAP path, plus the minimal Python TAP endpoint's bulk rows (the
floor of issue 13's no-offload target).

    python -m benchmarks.bench [--smoke | --quick] [--offload] [--readme]
                               [--stacks compiled,lwip,...] [--groups ping,rates,...]
                               [--out benchmarks/results.md] [--json benchmarks/results.json]

The stacks are the peers of benchmarks/peers.py; the client is the kernel of the peer's
namespace (Python sockets, ping, Debian's iperf3 and wrk). Rows (BUDGETS gives the sizes):
ping RTT, TCP bulk each way (Linux -> peer: MB/s until the peer has read the last byte, i.e.
the client shuts down and waits for the peer's close; peer -> Linux: MB/s as the client reads
it), 64-byte TCP echo latency (median, p99), UDP echo
request/response per second, TCP connect+close per second (one at a time: latency-bound; and
CPS_FLIGHT in flight: capacity), the peer's CPU seconds per GB moved
in the two bulk rows, and two real clients: `iperf3 -c` against uiperf3 (PyPI) running on the
stack's sockets, and wrk against the stack's HTTP service. Every cell is a number or an
explicit "n/a" from NOT_APPLICABLE with its reason: nothing is left blank silently.

Results: JSON (--json) and a markdown table (--out) with each figure's ratio to lwIP's and to
Linux's beside it; with --readme the table goes into README.md between its bench markers.
`--render results.json` writes the table again from a run's JSON, measuring nothing.
"""
import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import peers as P  # noqa: E402
from tests.netns import STACK_IP  # noqa: E402

# connections the concurrent connect+close client keeps open at once (one process, non-blocking:
# a stack's capacity, where the sequential row measures one round trip after another)
CPS_FLIGHT = 16

# (row key, label, unit, which way is better)
ROWS = [
    ("ping", "ping RTT, median", "us", "lower"),
    ("bulk_rx", "TCP bulk, peer -> Linux", "MB/s", "higher"),
    ("bulk_tx", "TCP bulk, Linux -> peer", "MB/s", "higher"),
    ("echo_med", "TCP echo 64 B, median", "us", "lower"),
    ("echo_p99", "TCP echo 64 B, p99", "us", "lower"),
    ("udp_pps", "UDP echo 64 B, request/response", "/s", "higher"),
    ("cps", "TCP connect + close, one at a time (latency-bound)", "/s", "higher"),
    ("cps_conc", "TCP connect + close, %d in flight" % CPS_FLIGHT, "/s", "higher"),
    ("cpu_gb", "peer CPU per GB moved (bulk rows)", "s/GB", "lower"),
    ("iperf3", "iperf3 -c -> uiperf3 on the stack's sockets", "Mbit/s", "higher"),
    ("wrk", "wrk -> the stack's HTTP service", "req/s", "higher"),
]
ROW_KEYS = [r[0] for r in ROWS]

# the cells that are not measured, each with why (checked by tests/bench/test_bench_smoke.py)
NOT_APPLICABLE = {
    ("micropython", "iperf3"): "uiperf3 does not run on MicroPython's unix port (it takes its "
                               "CPython branch: tests/interop/test_programs_over_ustack.py)",
    ("lwip", "iperf3"): "a C library: no Python socket module to run uiperf3 on",
    ("pytcp", "iperf3"): "PyTCP's sockets are its own API, not a drop-in socket module",
}
# the floor is not a stack: bulk bytes only (benchmarks/floor_endpoint.py)
NOT_APPLICABLE.update({("floor", k): "not a stack: it only moves bulk bytes, the measure of "
                                     "issue 13's no-offload target"
                       for k in ("ping", "echo_med", "echo_p99", "udp_pps", "cps", "cps_conc",
                                 "iperf3", "wrk")})
# issue 13: ustack without offloads moves at least this share of the floor's MB/s
FLOOR_TARGET = 0.60

BUDGETS = {
    # ping count, bulk bytes, bulk time cap (s), echo round trips, rate seconds,
    # iperf3 seconds, wrk seconds, rounds (each figure is the median of its rounds)
    "full": dict(pings=1000, bulk=100 * 1000 * 1000, bulk_cap=20.0, echoes=2000, secs=3.0,
                 iperf=5, wrk=5, rounds=3),
    "quick": dict(pings=200, bulk=20 * 1000 * 1000, bulk_cap=10.0, echoes=500, secs=1.0,
                  iperf=2, wrk=2, rounds=1),
    "smoke": dict(pings=50, bulk=1000 * 1000, bulk_cap=1.5, echoes=100, secs=0.15,
                  iperf=1, wrk=1, rounds=1),
}

# One Python client per row group in the client namespace, printing one JSON line.
CLIENT = r"""
import json, socket, statistics, time, sys
ip, what = %r, %r
b = %r
out = {}
if what == "bulk_rx":
    c = socket.create_connection((ip, 19), timeout=10)
    buf = bytearray(1 << 20); got = 0
    t = time.perf_counter(); end = t + b["bulk_cap"]
    while got < b["bulk"] and time.perf_counter() < end:
        k = c.recv_into(buf)
        if not k: raise SystemExit("chargen closed early")
        got += k
    out["bulk_rx"] = got / (time.perf_counter() - t) / 1e6; out["bytes"] = got
    c.close()
elif what == "bulk_tx":
    c = socket.create_connection((ip, 9), timeout=30)
    blk = b"x" * 65536; sent = 0
    t = time.perf_counter(); end = t + b["bulk_cap"]
    while sent < b["bulk"] and time.perf_counter() < end:
        c.sendall(blk); sent += len(blk)
    c.shutdown(socket.SHUT_WR)
    if c.recv(10) != b"": raise SystemExit("discard sent data")
    out["bulk_tx"] = sent / (time.perf_counter() - t) / 1e6; out["bytes"] = sent
    c.close()
if what in ("echo", "rates"):
    c = socket.create_connection((ip, 7), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    m = b"r" * 64; lat = []
    for i in range(b["echoes"] + 10):
        t = time.perf_counter(); c.sendall(m); got = 0
        while got < 64:
            k = len(c.recv(64))
            if not k: raise SystemExit("echo closed")
            got += k
        if i >= 10: lat.append(time.perf_counter() - t)
    lat.sort()
    out["echo_med"] = statistics.median(lat) * 1e6
    out["echo_p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    c.close()
if what in ("udp", "rates"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.connect((ip, 7)); m = b"u" * 64; n = 0; lost = 0
    t = time.perf_counter(); end = t + b["secs"]
    while time.perf_counter() < end:
        s.send(m)
        try:
            s.recv(2048); n += 1
        except socket.timeout:
            lost += 1
    out["udp_pps"] = n / (time.perf_counter() - t); out["lost"] = lost
if what in ("cps", "rates"):
    k = 0; t = time.perf_counter(); end = t + b["secs"]
    while time.perf_counter() < end:
        c = socket.create_connection((ip, 7), timeout=5)
        c.sendall(b"1")
        if c.recv(1) != b"1": raise SystemExit("connect+close: no echo")
        c.close(); k += 1
    out["cps"] = k / (time.perf_counter() - t)
if what in ("cps_conc", "rates"):
    # CPS_FLIGHT connections at once, each: connect, send 1 byte, read its echo, close (the
    # client closes first, as in the row above); a finished one is replaced at once
    import errno, selectors
    sel = selectors.DefaultSelector(); W, R = selectors.EVENT_WRITE, selectors.EVENT_READ
    def start():
        c = socket.socket(); c.setblocking(False)
        e = c.connect_ex((ip, 7))
        if e not in (0, errno.EINPROGRESS): raise SystemExit("connect: " + errno.errorcode[e])
        sel.register(c, W, time.perf_counter())
    k = 0; t = time.perf_counter(); end = t + b["secs"]
    for _ in range(b["flight"]): start()
    while time.perf_counter() < end:
        for key, ev in sel.select(5) or [(None, 0)]:
            if key is None: raise SystemExit("connect+close in flight: 5 s without progress")
            c = key.fileobj
            if key.events == W:
                e = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e: raise SystemExit("connect: " + errno.errorcode.get(e, str(e)))
                c.send(b"1"); sel.modify(c, R, key.data)
            else:
                if c.recv(1) != b"1": raise SystemExit("connect+close in flight: no echo")
                sel.unregister(c); c.close(); k += 1
                start()
    out["cps_conc"] = k / (time.perf_counter() - t)
    for key in list(sel.get_map().values()): key.fileobj.close()
print(json.dumps(out))
"""


def client(ns, what, budget):
    r = ns.run([sys.executable, "-c", CLIENT % (STACK_IP, what, dict(budget, flight=CPS_FLIGHT))],
               timeout=budget["bulk_cap"] + budget["secs"] + 120)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("bench client %s failed: %s%s" % (what, r.stdout, r.stderr[-2000:]))


def ping_rtt(ns, count):
    """Median RTT in microseconds of `count` pings 2 ms apart; all must come back."""
    r = ns.run(["ping", "-n", "-c", str(count), "-i", "0.002", "-W", "1", STACK_IP],
               timeout=count * 0.01 + 60)
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", r.stdout)]
    if len(rtts) < count * 0.95:
        raise RuntimeError("ping: %d of %d answered:\n%s" % (len(rtts), count, r.stdout[-500:]))
    return statistics.median(rtts) * 1000


def iperf3_row(peer, budget):
    """Debian's iperf3 client, Linux sending, against uiperf3 -s on the peer's sockets:
    Mbit/s the receiver counted."""
    started = peer.program(["-m", "uiperf3", "-s"], "Server listening")
    ns, run = started
    client_ns = ns or peer.ns
    try:
        # uiperf3 prints "Server listening" before it listens: a refused connection (nothing
        # consumed) is tried again; any other failure is the row's
        for _ in range(20):
            r = client_ns.run([shutil.which("iperf3") or "iperf3", "-c", STACK_IP, "-t",
                               str(budget["iperf"]), "--json", "--connect-timeout", "5000"],
                              timeout=budget["iperf"] + 30)
            if "Connection refused" not in r.stdout:
                break
            time.sleep(0.1)
        try:
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        except (ValueError, KeyError):
            raise RuntimeError("iperf3: " + r.stdout[-2000:] + r.stderr)
    finally:
        try:
            run.interrupt(30)
        except subprocess.TimeoutExpired:
            # keep what the program said: a run where it never ended is the figure's story
            run.p.kill()
            out = "".join(getattr(run, "lines", [])) + (run.p.communicate()[0] or "")
            raise RuntimeError("uiperf3 under `ustack run` did not end within 30 s of SIGINT; "
                               "its output ends:\n" + out[-3000:])
        finally:
            if ns is not None:
                ns.close()


def wrk_row(ns, budget):
    """wrk, 1 thread, 4 keep-alive connections, against GET / on port 80: requests/s,
    refusing a run with errors or non-2xx answers."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk missing (apt-get install wrk: .ci/setup does)")
    r = ns.run([exe, "-t1", "-c4", "-d%ds" % budget["wrk"], "--timeout", "2s",
                "http://%s/" % STACK_IP], timeout=budget["wrk"] + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError("wrk: " + r.stdout + r.stderr)
    if "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
        raise RuntimeError("wrk saw errors:\n" + r.stdout)
    return float(m.group(1))


# the row groups, each measured for every stack before the next (see run)
GROUPS = ["ping", "bulk", "rates", "wrk", "iperf3"]
GROUP_KEYS = {"ping": ("ping",), "bulk": ("bulk_rx", "bulk_tx", "cpu_gb"),
              "rates": ("echo_med", "echo_p99", "udp_pps", "cps", "cps_conc"), "wrk": ("wrk",),
              "iperf3": ("iperf3",)}


def measure(peer, group, budget):
    """One row group for one started peer: {row: number}."""
    if group == "ping":
        return {"ping": ping_rtt(peer.ns, budget["pings"])}
    if group == "bulk":
        v = {}
        cpu0 = P.cpu_seconds(peer.pids)
        moved = 0
        for what in ("bulk_rx", "bulk_tx"):
            r = client(peer.ns, what, budget)
            v[what] = r[what]
            moved += r["bytes"]
        v["cpu_gb"] = (P.cpu_seconds(peer.pids) - cpu0) / (moved / 1e9)
        return v
    if group == "rates":
        # the connect+close rows open tens of thousands of connections, and the client
        # closes first: its TIME-WAITs (60 s each) would fill the client namespace's ports
        # and slow its every connect() to a crawl in the next round (lwIP fell from 13 000/s
        # to 60/s so). No TIME-WAIT kept there (tcp_max_tw_buckets=0: the client's FIN and its
        # ACK of the stack's FIN go out as before), and every port
        peer.ns.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535",
                     "net.ipv4.tcp_max_tw_buckets=0"], check=True)
        r = client(peer.ns, "rates", budget)
        return {k: r[k] for k in GROUP_KEYS["rates"]}
    if group == "wrk":
        return {"wrk": wrk_row(peer.ns, budget)}
    if group == "iperf3":
        return {"iperf3": iperf3_row(peer, budget)}
    raise ValueError(group)


def run(mode="full", offload=False, log=print, only=None, groups=None):
    """The whole run: {"meta", "stacks", "rows", "values", "samples"}.

    Every stack is up at once, each in its own namespaces (idle, they cost next to nothing:
    0-5 % of a core), and the rows are taken group by group, every stack in turn, for
    budget["rounds"] rounds; a figure is the median of its rounds. So a burst of load on this
    shared machine lands on all stacks alike rather than on whichever ran at the time.
    only, groups: only these peers (keys) and row groups (GROUPS); None: all. A row left
    out is n/a "not measured in this run"."""
    budget = BUDGETS[mode]
    import ustack
    stacks, values = [], {}
    peers = [p for p in P.all_peers(offload) if only is None or p.key in only]
    groups = [g for g in GROUPS if groups is None or g in groups]
    has_offload = P.ustack_has_offload() if offload else False
    active = []
    samples = {}
    failed = {}   # {stack: {row: why}}: rows a stack failed in some round
    try:
        for peer in peers:
            stacks.append({"key": peer.key, "label": peer.label})
            if peer.key == "offload" and not has_offload:
                values[peer.key] = {k: {"na": "this ustack's `up --help` lists no --offload"}
                                    for k in ROW_KEYS}
                continue
            log("bench: starting %s" % peer.label)
            peer.start()
            active.append(peer)
            stacks[-1]["info"] = peer.info
            samples[peer.key] = []
        for i in range(budget["rounds"]):
            got = {p.key: {} for p in active}
            for group in groups:
                for peer in active:
                    if all((peer.key, k) in NOT_APPLICABLE for k in GROUP_KEYS[group]):
                        continue
                    log("bench: round %d/%d, %s, %s" % (i + 1, budget["rounds"], group,
                                                        peer.label))
                    try:
                        got[peer.key].update(measure(peer, group, budget))
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        # one stack failing one row (PyTCP's bulk once timed out) costs
                        # that row's figure this round, not the run
                        lines = str(e).strip().splitlines() or [type(e).__name__]
                        why = lines[-1][:200]
                        log("bench: %s, %s failed: %s" % (group, peer.label, str(e)[-3000:]))
                        failed.setdefault(peer.key, {}).update(
                            {k: why for k in GROUP_KEYS[group]})
            for peer in active:
                samples[peer.key].append(got[peer.key])
    finally:
        for peer in active:
            peer.close()
    for peer in active:
        values[peer.key] = {}
        for k in ROW_KEYS:
            got = [r[k] for r in samples[peer.key] if k in r]
            if (peer.key, k) in NOT_APPLICABLE:
                values[peer.key][k] = {"na": NOT_APPLICABLE[(peer.key, k)]}
            elif not any(k in GROUP_KEYS[g] for g in groups):
                values[peer.key][k] = {"na": "not measured in this run (--groups)"}
            elif not got:
                values[peer.key][k] = {"na": "failed in every round: %s" %
                                       failed.get(peer.key, {}).get(k, "no figure")}
            else:
                values[peer.key][k] = statistics.median(got)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": os.uname().machine, "cpus": os.cpu_count(), "kernel": os.uname().release,
            "python": sys.version.split()[0], "ustack": ustack.__version__, "mode": mode,
            "budget": budget, "load_average": os.getloadavg()}
    return {"meta": meta, "stacks": stacks,
            "rows": [{"key": k, "label": l, "unit": u, "better": b} for k, l, u, b in ROWS],
            "values": values, "samples": samples}


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(x):
    return "%.0f" % x if abs(x) >= 100 else ("%.1f" % x if abs(x) >= 10 else "%.2f" % x)


def rfmt(r):
    """A ratio with two significant figures at least (0.0026, 0.45, 1.35, 28)."""
    return "%.0f" % r if r >= 10 else ("%.2f" % r if r >= 1 else "%.2g" % r)


def render(res):
    """The markdown table: a row per measurement, a column per stack, each figure with its
    ratio to lwIP's and to Linux's (the figure divided by theirs)."""
    stacks, vals, m = res["stacks"], res["values"], res["meta"]
    b = m["budget"]
    lines = [
        "# ustack benchmarks",
        "",
        "Measured %s on %s, %d cores, Linux %s, Python %s, ustack %s; `invoke bench` "
        "(benchmarks/bench.py, %s run). Every stack is the peer of the same Linux client (the "
        "kernel of a throwaway namespace) over the same TAP path; Linux is the kernel on both "
        "ends of a veth pair, the limit. Beside each figure: (its ratio to lwIP's, to "
        "Linux's); for times lower is better, for rates higher. Bulk: %d MB each way or %g s, "
        "whichever ends first; %d pings 2 ms apart; %d echo round trips; %g s of UDP and "
        "connect rates; wrk -d %d, iperf3 -t %d. All stacks were up at once and each row "
        "was taken for every stack in turn, %d round%s: each figure is the median of its "
        "rounds. The machine is shared (load average %.1f on %d cores at the end: other jobs "
        "ran beside this one), so compare within a run, not across runs."
        % (m["date"], m["machine"], m["cpus"], m["kernel"], m["python"], m["ustack"],
           m["mode"], b["bulk"] // 1000000, b["bulk_cap"], b["pings"], b["echoes"], b["secs"],
           b["wrk"], b["iperf"], b["rounds"], "s" if b["rounds"] > 1 else "",
           m["load_average"][0], m["cpus"]),
        "",
        "| measurement | " + " | ".join(s["label"] for s in stacks) + " |",
        "|---|" + "---|" * len(stacks),
    ]
    for r in res["rows"]:
        k = r["key"]
        ref = {x: vals.get(x, {}).get(k) for x in ("lwip", "linux")}
        cells = []
        for s in stacks:
            v = vals[s["key"]][k]
            if not number(v):
                cells.append("n/a")
                continue
            rat = [rfmt(v / ref[x]) if number(ref[x]) and ref[x] else "-"
                   for x in ("lwip", "linux")]
            cells.append("%s (%s, %s)" % (fmt(v), rat[0], rat[1]))
        lines.append("| %s (%s) | %s |" % (r["label"], r["unit"], " | ".join(cells)))
    na = [(s["label"], r["label"], vals[s["key"]][r["key"]]["na"]) for r in res["rows"]
          for s in stacks if not number(vals[s["key"]][r["key"]])]
    floor = floor_line(vals)
    if floor:
        lines += ["", floor]
    if na:
        lines += ["", "n/a: " + "; ".join("%s, %s: %s" % x for x in na) + "."]
    lines += ["", "How each stack ran:", ""]
    lines += ["- %s: `%s`" % (s["label"], s.get("info", "not run")) for s in stacks]
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


def floor_line(vals):
    """ustack without offloads as a share of the floor endpoint's bulk MB/s, the same run
    (issue 13's target: FLOOR_TARGET), or None where either was not measured."""
    off, floor = vals.get("nooffload", {}), vals.get("floor", {})
    parts = []
    for k, what in (("bulk_rx", "peer -> Linux"), ("bulk_tx", "Linux -> peer")):
        a, b = off.get(k), floor.get(k)
        if number(a) and number(b) and b > 0:
            parts.append("%s %s of %s MB/s = %.2f" % (what, fmt(a), fmt(b), a / b))
    if not parts:
        return None
    return ("ustack compiled with --offload off against the Python TAP endpoint (the floor: "
            "plain 1514-byte frames, no stack; issue 13's target is %d %%): %s."
            % (FLOOR_TARGET * 100, "; ".join(parts)))


NOTES = """Notes.

- lwIP is Debian's liblwip 2.1.3 driven by benchmarks/lwip/lwip_tap.c (raw API, one thread,
  our own TAP glue: Debian's tapif sizes its frame buffer from glibc's TCP_MSS 512; here it
  answered 560-byte pings, and a 600-byte one made glibc abort on heap corruption). Its options
  are those Debian compiled in (TCP_MSS 1460, TCP_WND 65535 with window scaling, TCP_SND_BUF
  65535, TCP_SND_QUEUELEN 180, pools from malloc, checksum on copy); the glue raises each
  connection's send buffer to 240 KB (the queue limit still bounds it) and turns Nagle off for
  echo and HTTP.
- PyTCP runs from PyPI in its own venv (build/pytcp-venv) with `python -O` and its logging off,
  serving with its socket API and a thread per connection. Its start-up is shortened (IPv4 only,
  its three ARP probes 50 ms apart); its chargen waits while 256 KB are queued, since its send()
  buffers without bound.
- Linux's services (benchmarks/linux_peer.py) are Python on kernel sockets: TCP echo one epoll
  loop (as ustack's echo service is one event handler), the others a thread each; its CPU
  figure is the server process's only (the kernel's receive work partly runs in the client's
  softirq context). "peer CPU" sums user and system time of the peer process and its children.
- HTTP: lwIP, PyTCP and Linux return the page ustack's http service shows at / (73 bytes),
  keep-alive. ustack's http service (ports/cpython/tcp_services.py) is a thread per
  connection, answering with one write (head and body) with TCP_NODELAY set.
- TCP connect + close: one Python client process in the client namespace; each connection
  connects, sends 1 byte, reads its echo (port 7) and closes. "One at a time" is a blocking
  loop: a round trip after another, it measures latency (Linux over veth gets no more from
  it). "%d in flight" keeps that many connections open at once with non-blocking sockets
  (selectors), replacing each finished one at once: the stack's capacity, as far as one
  client process on the other core can offer it. The client namespace keeps no TIME-WAIT
  (tcp_max_tw_buckets=0; the segments on the wire are the same), else tens of thousands of
  them slow the client's own connect() in later rounds.
- "ustack compiled" runs `ustack up` as a user would, offloads on where the TAP offers them
  (its ready line says which); "--offload off" is the same build moving plain 1514-byte frames
  with software checksums. The floor (benchmarks/floor_endpoint.py) is no stack: one Python
  process moving 1514-byte frames between the TAP and one TCP connection, without
  retransmission, timers or congestion control; only its bulk rows are measured.
- The old "Linux behind a Python relay" row is gone: the relay capped Linux near ustack's own
  speed.""" % CPS_FLIGHT


def publish(text, out, marker=None):
    """Write a results file, show it in README between its markers (marker None: not), print."""
    with open(out, "w") as f:
        f.write(text)
    if marker:
        update_readme(text, marker)
    sys.stdout.write(text)


def update_readme(text, marker="bench"):
    """Show the latest results in README between the <!-- marker:start/end --> lines."""
    p = os.path.join(ROOT, "README.md")
    s = open(p).read()
    a, b = "<!-- %s:start -->\n" % marker, "<!-- %s:end -->" % marker
    if a in s and b in s:
        body = text.split("\n", 2)[2]  # drop the title
        s = s[:s.index(a) + len(a)] + body + s[s.index(b):]
        open(p, "w").write(s)


def main(argv=None):
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="shorter runs (20 MB bulk, 200 pings)")
    g.add_argument("--smoke", action="store_true", help="CI's tiny run (1 MB bulk, 50 pings)")
    ap.add_argument("--offload", action="store_true",
                    help="also a 'ustack compiled + offloads' column (ustack up --offload on: "
                         "no fallback; n/a where this ustack has no such flag); the default "
                         "columns already hold ustack with offloads (auto) and without (off)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results.md"))
    ap.add_argument("--json", default=None, help="results as JSON (default: --out's name, .json)")
    ap.add_argument("--runtime", default="cpython",
                    help="ignored: every runtime is a column of the one run (kept for old callers)")
    ap.add_argument("--readme", action="store_true",
                    help="also show the results in README.md (between its bench markers)")
    ap.add_argument("--stacks", default=None,
                    help="only these stacks, comma-separated keys (%s; offload with "
                         "--offload); default all" % ",".join(p.key for p in P.all_peers()))
    ap.add_argument("--groups", default=None,
                    help="only these row groups, comma-separated (%s; rates: both echo rows, "
                         "UDP and both connect+close rows); default all" % ",".join(GROUPS))
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="measure nothing: write the table (--out) from this run's JSON")
    a = ap.parse_args(argv)
    if a.render:
        with open(a.render) as f:
            res = json.load(f)
    else:
        mode = "smoke" if a.smoke else ("quick" if a.quick else "full")
        pick = [x.split(",") if x else None for x in (a.stacks, a.groups)]
        for got, known, flag in ((pick[0], [p.key for p in P.all_peers(True)], "--stacks"),
                                 (pick[1], GROUPS, "--groups")):
            bad = [x for x in got or () if x not in known]
            if bad:
                ap.error("%s: unknown %s (known: %s)" % (flag, ", ".join(bad), ", ".join(known)))
        res = run(mode, a.offload, log=lambda s: print(s, file=sys.stderr, flush=True),
                  only=pick[0], groups=pick[1])
        js = a.json or os.path.splitext(a.out)[0] + ".json"
        with open(js, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
    publish(render(res), a.out, "bench" if a.readme else None)


if __name__ == "__main__":
    main()
