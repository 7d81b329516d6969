"""The server's CPU time per TCP connection (issue 13), no TAP and no kernel: a client stack
and a server stack on the in-memory wire; FLIGHT connections at once, each connecting,
sending one byte, reading its echo and closing first (the bench's connect+close row, against
`ustack up --serve echo`'s EventService), or with --server-closes the server answering one
byte and closing first (an HTTP/1.0-style server: its TIME-WAITs fill the table). Only the
server stack's polls are timed (thread CPU time, so other load on the machine inflates it
less than wall time), microseconds per connection, best of --rounds.

    python -m benchmarks.cps_cost [--conns 4000] [--rounds 3] [--server-closes] [--pure]
                                  [--base DIR] [--phases]

--base DIR: the same measurement with another copy of the package (DIR/ustack, compiled: a
build from before a change), the two alternated round by round for a before/after under the
same load. Each round runs in a fresh process. --phases: the server's time split by step of a
connection's life (SYN, handshake ACK and accept, request and echo, ACK, FIN and close, last
ACK), the connections moved in lock step so that each poll sees one step."""
import argparse
import errno
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLIGHT = 16


def _pair(**client):
    """A client stack (room for many connections, short TIME-WAIT; `client`: more of its
    config) and a server stack on an in-memory wire, both on the clock now[0] the caller
    moves: (a, b, now)."""
    from ustack.core.stack import Stack
    from ustack.hal.loopback import Wire
    from ustack.boards import pc_tap
    w = Wire(depth=4096)
    a = Stack(dict(pc_tap.CONFIG, TCP_MAX_CONNS=4096, SOCKETS=4096, TCP_MSL_MS=5, **client))
    b = Stack(dict(pc_tap.CONFIG))
    now = [1000]
    for s in (a, b):
        s.clock = lambda: now[0]
    a.add_interface("a0", w.port(b"\x02\0\0\0\0\x01"), ip="192.0.2.1/24")
    b.add_interface("b0", w.port(b"\x02\0\0\0\0\x02"), ip="192.0.2.2/24")
    return a, b, now


def measure(conns, server_closes):
    """Server microseconds per connection, and the server's counters of note."""
    from ustack.core import socket as so
    from ustack.ports.cpython.tcp_services import EventService
    a, b, now = _pair()
    if server_closes:
        ls = b.socket(so.AF_INET, so.SOCK_STREAM)
        ls.bind(("", 7))
        ls.listen(256)
        ls.setblocking(False)

        def serve():
            while ls.readable():
                c, _ = ls.accept()
                c.send(b"1")
                c.close()
        b.burst_hook = serve
    else:
        b.burst_hook = EventService(b, "echo", 7)
    for _ in range(20):
        now[0] += 1
        a.poll(now[0])
        b.poll(now[0])
    live = []

    def start():
        c = a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        e = c.connect_ex(("192.0.2.2", 7))
        if e not in (0, errno.EINPROGRESS):
            raise SystemExit("connect: %d" % e)
        live.append([c, False])
    for _ in range(FLIGHT):
        start()
    done = 0
    spent = 0.0
    while done < conns:
        now[0] += 1
        a.poll(now[0])
        for ent in list(live):
            c = ent[0]
            if server_closes or ent[1]:
                if c.readable():
                    d = c.recv(10)
                    if server_closes and d:
                        continue
                    if d != (b"" if server_closes else b"1"):
                        raise SystemExit("no echo: %r" % (d,))
                    c.close()
                    live.remove(ent)
                    done += 1
                    start()
            elif c.tcb is not None and c.tcb.state >= 4 and c.writable():
                c.send(b"1")
                ent[1] = True
        t = time.thread_time()
        b.poll(now[0])
        spent += time.thread_time() - t
    c = b.counters()
    return {"us": spent / conns * 1e6, "passive": c["tcp.conn_passive"],
            "tx": c["tcp.tx_segments"], "rx": c["tcp.rx_segments"]}


PHASES = ("SYN", "ACK+accept", "data+echo", "ACK of echo", "FIN+close", "last ACK")


def phases(conns):
    """The server's microseconds per connection in each step of a connection's life (echo
    service, client closes first): FLIGHT connections move through the handshake, the
    request, the close, in lock step, so each server poll sees one kind of segment (SYN;
    the handshake's ACK, which the service accepts; the byte it echoes; the client's ACK
    of the echo, sent on its own as Linux's client does; the FIN, which the service
    answers by closing; the ACK of its FIN). {phase: us per connection}."""
    from ustack.core import socket as so
    from ustack.ports.cpython.tcp_services import EventService
    # the client acknowledges every segment at once (its delayed ACK off), as Linux's
    # quick-ACK mode does in a connection's first segments
    a, b, now = _pair(TCP_DELACK_MS=0)
    b.burst_hook = EventService(b, "echo", 7)
    spent = [0.0] * len(PHASES)

    def step(i):
        now[0] += 1
        a.poll(now[0])
        t = time.thread_time()
        b.poll(now[0])
        spent[i] += time.thread_time() - t

    c = a.socket(so.AF_INET, so.SOCK_STREAM)   # one first: ARP resolved on both sides
    c.setblocking(False)
    c.connect_ex(("192.0.2.2", 7))
    for _ in range(20):
        step(0)
    c.close()
    for _ in range(20):
        step(0)
        now[0] += 5
    spent[0] = 0.0
    done = 0
    while done < conns:
        cs = []
        for _ in range(FLIGHT):
            c = a.socket(so.AF_INET, so.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("192.0.2.2", 7))
            cs.append(c)
        step(0)     # SYNs in, SYN-ACKs out
        step(1)     # the client's ACKs in: accepted
        for c in cs:
            c.send(b"1")
        step(2)     # the bytes in, echoed
        step(3)     # the client's ACKs of the echo in
        for c in cs:
            if c.recv(10) != b"1":
                raise SystemExit("no echo")
            c.close()
        step(4)     # FINs in: the service closes, its FINs out
        step(5)     # the ACKs of those in
        if b.tcp.conns:
            raise SystemExit("server connections left: %d" % len(b.tcp.conns))
        done += FLIGHT
        for _ in range(3):   # the client's TIME-WAITs (MSL 5 ms) expire meanwhile
            now[0] += 5
            a.poll(now[0])
    return dict(zip(PHASES, [x / done * 1e6 for x in spent]))


def one(pkg_parent, conns, server_closes, pure, call="measure(%d, %r)"):
    """One round in a fresh process importing the package under pkg_parent."""
    env = dict(os.environ)
    if pkg_parent:
        env["PYTHONPATH"] = pkg_parent
    if pure:
        env["USTACK_PURE"] = "1"
    else:
        env.pop("USTACK_PURE", None)
    code = ("import json, sys; p = %r; p and sys.path.insert(0, p); import ustack; "
            "from benchmarks.cps_cost import measure, phases; r = " + call + "; "
            "r['compiled'] = ustack.compiled; r['from'] = ustack.__file__; print(json.dumps(r))"
            ) % (pkg_parent, conns, server_closes)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=600)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-closes", action="store_true",
                    help="the server closes first (its TIME-WAITs fill the table)")
    ap.add_argument("--pure", action="store_true", help="USTACK_PURE=1 (both builds)")
    ap.add_argument("--base", metavar="DIR", help="also DIR/ustack, alternated round by round")
    ap.add_argument("--phases", action="store_true",
                    help="the server's time per step of a connection's life (phases())")
    a = ap.parse_args(argv)
    builds = [("this", None)]  # the package this file belongs to (as installed)
    if a.base:
        builds.append(("base", os.path.abspath(a.base)))
    if a.phases:
        show_phases(builds, a)
        return
    best = {}
    for i in range(a.rounds):
        for name, parent in builds:
            r = one(parent, a.conns, a.server_closes, a.pure)
            print("round %d %-4s %6.1f us/conn (compiled=%s, %s)" % (
                i + 1, name, r["us"], r["compiled"], os.path.dirname(r["from"])), flush=True)
            best[name] = min(best.get(name, r["us"]), r["us"])
    for name, _ in builds:
        print("best %-4s %6.1f us/conn" % (name, best[name]))
    if a.base:
        print("this/base %.2f" % (best["this"] / best["base"]))


def show_phases(builds, a):
    """phases() for each build, alternated round by round; the best round of each phase."""
    best = {}
    for i in range(a.rounds):
        for name, parent in builds:
            r = one(parent, a.conns, False, a.pure, "phases(%d) or %r")
            print("round %d %-4s %s" % (i + 1, name, "  ".join(
                "%s %.1f" % (k, r[k]) for k in PHASES)), flush=True)
            b = best.setdefault(name, {})
            for k in PHASES:
                b[k] = min(b.get(k, r[k]), r[k])
    print("us per connection, best round of each step")
    print("%-12s" % "step" + "".join("%8s" % n for n, _ in builds))
    for k in PHASES + ("total",):
        print("%-12s" % k + "".join("%8.1f" % (sum(best[n].values()) if k == "total"
                                               else best[n][k]) for n, _ in builds))


if __name__ == "__main__":
    main()
