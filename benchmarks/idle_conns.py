"""Many idle TCP connections held by one stack (issue 13: the seed's "100k connections in under
100 MB"), written to benchmarks/idle.md.

`ustack up --serve discard` (compiled core, CPython runtime) with its connection table sized for
N; Linux clients in the namespace open N connections to the discard port and keep them open
(several client processes: a process here may hold 20 000 descriptors at most). Measured: the
stack's RSS before and after (bytes per idle connection), how fast the connections opened, the
stack's CPU while they sit idle, and the RSS 100 000 connections would take at that cost.

    python -m benchmarks.idle_conns [--quick] [--conns N] [--out FILE] [--readme]
    python -m benchmarks.idle_conns --breakdown [--conns N]

--breakdown needs no root: one stack in this process (the core this interpreter imports:
compiled, or pure with USTACK_PURE=1) behind a driver the benchmark feeds, the `--serve
discard` service's code on it, N handshakes crafted here. It prints the Python heap each
idle connection costs (tracemalloc) and what it is made of: every object only that
connection reaches (sys.getsizeof by type; the objects two connections share are left
out) and the growth of the stack's and the service's tables.
"""
import argparse
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.netns import Netns, StackProc, STACK_IP, HOST_IP  # noqa: E402
from benchmarks.peers import cpu_seconds  # noqa: E402

PER_CLIENT = 15000     # descriptors per client process (the machine allows 20 000)
PER_SOURCE = 28000     # connections from one client address (connect() takes the even ones
                       # address and port: 1024..65535)
IDLE_S = 5             # how long the stack's idle CPU is watched
TARGET = 100000        # the seed's figure

CLIENT = """
import socket, sys, time
n = int(sys.argv[1]); src = sys.argv[2]; ss = []
t0 = time.monotonic()
for i in range(n):
    s = socket.socket(); s.settimeout(30)
    s.setsockopt(socket.SOL_IP, 24, 1)   # IP_BIND_ADDRESS_NO_PORT: the port at connect()
    s.bind((src, 0)); s.connect(('%s', 9))
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
        # more than one address's ports: further client addresses on the host's side
        srcs = [HOST_IP]
        for i in range(1, (n + PER_SOURCE - 1) // PER_SOURCE):
            a = "192.0.2.%d" % (10 + i)
            ns.run(["ip", "addr", "add", a + "/24", "dev", "ustk0"], check=True)
            srcs.append(a)
        base = rss_kb(pid)
        t0 = time.monotonic()
        left = n
        done = 0
        while left > 0:
            k = min(PER_CLIENT, left, PER_SOURCE - done % PER_SOURCE)
            src = srcs[done // PER_SOURCE]
            left -= k
            done += k
            p = ns.popen([sys.executable, "-c", CLIENT, str(k), src], stdin=subprocess.PIPE)
            clients.append(p)
            line = p.stdout.readline().split()
            if not line or line[0] != "open":
                raise RuntimeError("a client could not open its connections: %s" % line)
        took = time.monotonic() - t0
        c = st.wait_counters(lambda c: c.get("tcp.conn_established", 0) >= n, 60)
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


def breakdown(n):
    """One stack here, fed N handshakes; the bytes per idle ESTABLISHED connection."""
    import gc
    import struct
    import tracemalloc
    from tests import frames as F
    from tests.feed import Fed
    from tests.unit_ref import csum
    from ustack.core.wire import tcp as w
    from ustack.ports.cpython.tcp_services import EventService
    import ustack

    def frame(sport, seq, ack, flags, opts=b""):
        h = struct.pack("!HHIIBBHHH", sport, 9, seq, ack, ((20 + len(opts)) // 4) << 4,
                        flags, 65535, 0, 0) + opts
        c = ~csum(F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 6, len(h)) + h) & 0xFFFF
        h = h[:16] + struct.pack("!H", c) + h[18:]
        return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 6, h))

    # what Linux's connect() offers: MSS, SACK permitted, timestamps, window scale
    syn_opts = struct.pack("!BBHBBBBII BBB B".replace(" ", ""), 2, 4, 1460, 4, 2, 8, 10, 1,
                           0, 3, 3, 7, 1)
    fed = Fed({"TCP_MAX_CONNS": n + 16, "SOCKETS": n + 64, "TCP_BACKLOG": 1024,
               "TCP_SYN_QUEUE": min(1024, n + 8)})
    svc = EventService(fed.stack, "discard", 9)

    def connect(i):
        out = fed.feed(frame(10000 + i, 1000, 0, w.SYN, syn_opts))
        sa = out[-1][14 + 20:]
        iss = struct.unpack("!I", sa[4:8])[0]
        tsv = struct.unpack("!I", sa[24:28])[0] if len(sa) >= 28 else 0
        ts = struct.pack("!BBBBII", 1, 1, 8, 10, 2, tsv)
        fed.feed(frame(10000 + i, 1001, iss + 1, w.ACK_F, ts))
        svc()

    connect(0)  # the first connection's one-time costs (lazily made tables) out of the sum
    gc.collect()
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    for i in range(1, n + 1):
        connect(i)
    gc.collect()
    per = (tracemalloc.get_traced_memory()[0] - t0) / float(n)
    tracemalloc.stop()
    tcp = fed.stack.tcp
    est = sum(1 for t in tcp.conns if t.state == 4)
    socks = [c for c in fed.stack.sockets if c is not None and
             getattr(c, "on_event", None) is svc.news]
    stop = set(id(o) for o in (fed, fed.stack, tcp, svc, svc.conns, svc.ls, tcp.rings,
                               tcp.conns, tcp.table, fed.stack.sockets, tcp.bound, socks))

    def reach(root):
        seen = {}
        todo = [root]
        while todo:
            o = todo.pop()
            if id(o) in seen or id(o) in stop or isinstance(o, type) or \
                    type(o).__name__ in ("module", "function", "builtin_function_or_method",
                                         "cython_function_or_method"):
                continue
            seen[id(o)] = o
            todo.extend(gc.get_referents(o))
            # a compiled TCB's object fields: gc sees them; the C integers are inline
            for a in ("sock", "cc", "rc", "snd", "rcv", "ooo", "sb", "tcb"):
                v = getattr(o, a, None) if type(o).__name__ in ("TCB", "TcpSocket") else None
                if v is not None:
                    todo.append(v)
        return seen

    k1, k2 = socks[n // 2], socks[n // 3]
    r1 = reach(k1)
    r1.update(reach(svc.conns.get(k1)))
    r2 = reach(k2)
    r2.update(reach(svc.conns.get(k2)))
    objs = {}
    for k, o in r1.items():
        if k not in r2 and not isinstance(o, bool) and o is not None:
            name = type(o).__name__
            if name == "list" and o is svc.conns.get(k1):
                name = "list (service entry)"
            elif name == "method":
                name = "bound method (service on_event)"
            b, c = objs.get(name, (0, 0))
            objs[name] = (b + sys.getsizeof(o), c + 1)
    tables = [("stack: tcp.table (bucket list)", tcp.table), ("stack: tcp.conns (list)", tcp.conns),
              ("stack: sockets (list)", fed.stack.sockets), ("stack: tcp.bound (list)", tcp.bound),
              ("service: conns (dict)", svc.conns)]
    for name, t in tables:
        objs[name] = (sys.getsizeof(t) / float(n), 0)
    return {"conns": n, "established": est, "compiled": bool(ustack.compiled),
            "heap_per_conn": per, "objects": objs}


def render_breakdown(r):
    rows = ["| object | bytes | count |", "|---|---|---|"]
    tot = 0
    for name, (b, c) in sorted(r["objects"].items(), key=lambda kv: -kv[1][0]):
        rows.append("| %s | %d | %s |" % (name, b, c or "per connection, amortised"))
        tot += b
    rows.append("| **sum** | %d | |" % tot)
    rows.append("| **Python heap per connection (tracemalloc)** | %d | |" % r["heap_per_conn"])
    return "\n".join(
        ["%d idle ESTABLISHED connections (%d), %s core: what one costs" % (
            r["conns"], r["established"], "compiled" if r["compiled"] else "pure"), ""] + rows)


def render(r, quick):
    return "\n".join([
        "# Idle TCP connections held by ustack", "",
        "`python -m benchmarks.idle_conns%s` (`invoke bench`), %s, %s, Python %s; `ustack up "
        "--serve discard` (CPython runtime, compiled core) with its table sized for the "
        "connections; Linux clients in the namespace open them one after another and keep "
        "them open." % (" --quick" if quick else " --conns %d" % r["conns"],
                        time.strftime("%Y-%m-%d"),
                        platform.machine(), platform.python_version()), "",
        "| connections | opened in (s) | connections/s | stack RSS before / held (MB) | "
        "bytes per idle connection | stack CPU while idle | RSS at 100 000 (MB, "
        "extrapolated) |",
        "|---|---|---|---|---|---|---|",
        "| %d | %.1f | %d | %.1f / %.1f | %d | %.1f %% | %d |" % (
            r["conns"], r["open_s"], r["conn_per_s"], r["rss_base_mb"], r["rss_held_mb"],
            r["bytes_per_conn"], r["idle_cpu_pct"], r["rss_100k_mb"]), "",
        "The seed's target is 100 000 connections in under 100 MB (about 1 KB each beside the "
        "stack's own RSS); the table says where the stack stands. An idle connection "
        "holds its TCB and its socket: no congestion controller (made with its first send), "
        "no buffers and no rings of its own (rings and their storage only while they hold "
        "data). The connections open one at a time from each client (a handshake each), "
        "so connections/s is a handshake rate, not a SYN flood's (and it follows the "
        "machine's load: other work shares its 2 cores).", ""])


HISTORY = """## Where the bytes go

Issue 13's cuts (session 7), measured the same way: 2742 bytes per idle connection at 2 000
connections before them (308 MB extrapolated to 100 000); after them 2007 at 2 000 and 1542 at
20 000 (`--conns 20000`: 193 MB extrapolated, 46 MB of it the stack's own; a 2 000-connection
run's few MB of RSS growth are coarse). What an idle connection no longer
holds: an out-of-order table (a RangeSet and two 8-slot lists, 312 bytes: taken only while
data waits beyond a hole, spares kept in fixed slots), an accept-queue list (56: a listener
alone has one), its own copies of the two addresses (74: consecutive connections share the
bytes objects). What became smaller: the TCB (616 -> 488 bytes, 32-bit C fields where the
values stay far below 2**31, so it is a pymalloc object), NewReno (216 bytes and two boxed
ints -> 144, a C struct, core/tcp/cc_newreno.pxd), the socket (352 bytes and a boxed peer
port -> 280, core/socket.pxd). A connection that has sent data still holds its SACK
scoreboard afterwards (Scoreboard 248, its RangeSet 312, RACK's 224 and run log 368: about
1.2 KB more; releasing it needs a deadline after the last D-SACK could come, not done).
The `--serve discard` service kept about 180 bytes of its own per connection (its entry
list, a bound method made per connection for on_event, its dict's share).

Issue 13's cuts (session 8), measured at 100 000 connections (`--conns 100000`: four client
addresses, 28 000 connections each), before and after in the same way:

| | stack RSS before / held (MB) | bytes per idle connection | Python heap per connection | stack CPU idle |
|---|---|---|---|---|
| before session 8 | 47.4 / 187.3 | 1467 | 1354 | 1.0 % |
| after | 48.2 / 172.8 | 1307 | 1210 | 0.2 % |

What changed: a ring is 48 bytes, not 80 (no reference to its pool, C ints and a bytearray:
an object the garbage collector does not track); the `--serve discard` service keeps no list
per connection (80 bytes: the dict's value is echo's pending bytes or chargen's offset);
TCP.tick visits only the connections with a timer armed (TCP.timed), not all 100 000 on
every tick. Tried and taken back: the route cache as five fields of the TCB (56 bytes less
on CPython, but a MicroPython TCB past 73 attributes costs 384 bytes more). Still about
73 MB over the seed's 100: the stack's own 48 MB (the interpreter with the CLI imported is
about 20 MB of it: libpython, libcrypto and libsqlite3 mapped by imports, the compiled
modules) and 1.3 KB per connection: TCB 488, TcpSocket 280, NewReno 144, two rings 96,
RouteCache 72, the tables' share about 100, the allocator's rounding about 100. Next: the
TCP socket as a C struct (about 48 bytes), NewReno's and the route cache's fields in the
compiled TCB only (MicroPython's kept as they are), the SACK scoreboard released when idle,
a smaller baseline (imports the stack does not need).

Issue 13's cuts (session 9), each measured at 100 000 connections as above:

| | stack RSS before / held (MB) | bytes per idle connection | Python heap per connection |
|---|---|---|---|
| before session 9 | 51.0 / 176.4 | 1315 | 1210 |
| without pyroute2 | 33.2 / - | - | 1210 |
| + bucket table, socket struct, shared route cache | 33.2 / 140.2 | 1122 | 1037 |
| + NewReno 120, socket options a byte each | 33.2 / 134.4 | 1061 | 989 |
| + 32-bit keepalive times (TCB 472) | 33.1 / 132.0 | 1036 | 965 |
| + the socket reads TCP through its stack: 208 | 33.1 / 129.8 | 1013 | 957 |
| after (shared empty rings, no service entry) | 33.2 / 115.1 | 858 | 824 |

What changed: `ustack up` no longer imports pyroute2 to configure the TAP's host side
(ports/cpython/hostlink.py speaks rtnetlink on a plain socket): its import mapped sqlite3,
ssl, asyncio and all of pyroute2, 19 MB of the stack's own RSS. The connection table is a
bucket list made once (sized a power of two at least TCP_MAX_CONNS: 1 MB at 100 000), not a
dict: 84 bytes a connection at 100 000 (its entries, a boxed key each) gone, and inserting
allocates nothing. A TCP socket's own fields are a C struct (core/tcp/socket.pxd; TcpSocket a
Python subclass for the lazily made __dict__), its byte-sized options and flags a byte each:
280 -> 208 bytes (it reads the stack's TCP through its stack). Consecutive connections
from one peer address share its route cache (72 bytes), as they share its address bytes: a
server whose every connection comes from another address still pays it. NewReno's counts 32-bit and flags a byte: 144 -> 120. The keepalive
options take Linux's bounds (EINVAL beyond 32767 s, 127 probes), so their times are 32-bit:
TCB 488 -> 472. Still over the seed's 100 MB: the stack's own 33 MB (libpython 5 MB, the
compiled modules 9 MB, the TAP steering program's BPF maps 3 MB) and about 1 KB a connection:
TCB 472, TcpSocket 208, NewReno 120, two rings 96, the service's dict entry about 50, the
lists' 24, the allocator's rounding and arenas about 70.

Then an idle connection's rings went: its TCB points at the ring pool's shared empty ring of
each cap (RingPool.share; one per distinct buffer size, at most 8), which never holds a byte.
A writer takes a ring of its own (RingPool.own, from the pool's idle ones) before it takes
storage, and RingPool.shed gives ring and storage back once the data is read or
acknowledged: 96 bytes a connection. The `--serve` event services keep no dict entry for an
idle connection (a socket is theirs while its on_event is their hook; the dict holds only
state other than the initial one: echo's unsent bytes, chargen's offset): about 36 bytes.
Still over the seed's 100 MB: the stack's own 33 MB and about 860 bytes a connection: TCB
472, TcpSocket 208, NewReno 120, the lists' 24, the allocator's rounding and arenas about 36.
Next: NewReno's fields in the compiled TCB (120 bytes; the TCB would pass 512 bytes, out of
pymalloc, unless fields move out with them) or a controller made only when the connection
first sends; the lists of sockets and bound ports as fixed slots (24). The BPF maps (3 MB of
the stack's own) are sized for the SYN-flood filter, not for connections: SEEN's three
generations of 2**17 words keep a flood SYN's chance of passing as a client's resent SYN
near 1 in 70 at 300 000 SYNs/s; half the words would make it about 1 in 20. STAMPS is 32 KB.

Issue 13's cuts (session 10), each measured at 100 000 connections as above (the Python heap
per connection from `--breakdown`):

| | stack RSS before / held (MB) | bytes per idle connection | Python heap per connection |
|---|---|---|---|
| before session 10 | 34.3 / 116.1 | 858 | 824 |
| + no controller until the first send, TCB 416 | - | - | 648 |
| + socket 168 (after) | 33.8 / 94.3 | 634 | 608 |

What changed: a connection's congestion controller (NewReno's 120 bytes, a pymalloc class of
128) is made when it first has data or a FIN to send (core/tcp/cc.py `of`, from output), not
at establishment: a connection that only receives never makes one; the initial window after a
lost SYN or SYN-ACK is applied then (RFC 5681 3.1, RFC 6928 2), `ss` shows the controller to
come. The compiled TCB's sequence numbers, ACK numbers and the peer's TSval are unsigned
32-bit fields (relative values, 0 .. 2**32 - 1, only ever assigned from seq.py's modulo-2**32
helpers): TCB 472 -> 416 bytes, a pymalloc class of 416 instead of 480. A TCP socket's
rarely set options (keepalive times, linger, TCP_CONGESTION) are class defaults, kept in its
lazily made __dict__ once set; ports are 16-bit and family, type and protocol a byte each:
TcpSocket 208 -> 168 bytes (a class of 176). Under the seed's 100 MB now: the stack's own
34 MB (libpython 5 MB, the compiled modules about 9 MB, the BPF maps 3 MB, the 1 MB
connection table, the packet pool) and about 630 bytes a connection: TCB 416, TcpSocket 168,
the lists' 24 and the table's 8, the allocator's rounding and arenas about 25. Next, if more
is wanted: the TCB's 16-bit halves (ISS, IRS, TSval bases) and byte-sized fields (state,
window scales, TTL, TOS, error) as C shorts and bytes (416 -> 384), the lists of sockets and
bound ports as fixed slots.

Below, `python -m benchmarks.idle_conns --breakdown` (no root: one stack in this process, fed
the handshakes, the `--serve discard` service's code on it): every object only one connection
reaches, the tables' growth per connection, and the Python heap per connection tracemalloc
counts. The RSS figure above is higher by the allocator's rounding and arenas.
"""


def render_full(r, quick, b):
    return render(r, quick) + "\n" + HISTORY + "\n" + render_breakdown(b) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.idle_conns")
    p.add_argument("--quick", action="store_true", help="2 000 connections (CI smoke)")
    p.add_argument("--conns", type=int, default=0, help="how many (default 30 000)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "idle.md"))
    p.add_argument("--readme", action="store_true", help="also show the table in README.md")
    p.add_argument("--breakdown", action="store_true",
                   help="in this process, no root: what one idle connection is made of")
    a = p.parse_args(argv)
    if a.breakdown:
        r = breakdown(a.conns or 2000)
        print(render_breakdown(r))
        return r
    n = a.conns or (2000 if a.quick else 30000)
    if not 1 <= n <= 200000:
        p.error("--conns %d: 1..200000" % n)
    r = measure(n)
    from benchmarks.bench import publish, update_readme
    publish(render_full(r, a.quick, breakdown(2000)), a.out, None)
    if a.readme:
        update_readme(render(r, a.quick), "idle")  # README: the table, not the breakdown
    return r


if __name__ == "__main__":
    main()
