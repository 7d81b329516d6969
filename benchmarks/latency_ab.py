"""Request latency before/after: the bench's ping, TCP echo and UDP echo rows for copies of ustack
(this checkout, older commits, other `up` flags) beside lwIP and Linux, in one run, interleaved.

    python -m benchmarks.latency_ab [--copy NAME=DIR ...] [--up NAME='--flag ...']
                                    [--env NAME=K=V] [--with lwip,linux] [--rounds 7]
                                    [--rows ping,echo,udp] [--full | --smoke] [--out FILE.md]

A copy is `ustack up --serve echo,discard,chargen,http` (as the bench starts it) from DIR, a
folder whose `ustack` is the package (DIR/ustack: a symlink to an exported older commit will
do; `--copy new=` or no DIR: this checkout), with PYTHONPATH=DIR, plus the flags of `--up` and
the environment of `--env` for that name. "new" (this checkout, no extra flags) is always there.
Every row is taken for every stack in turn, the order reversed every other row and round, so a
burst of load on the shared machine lands on all of them; a figure is the median of its rounds.
Beside the client's figures (bench.py's client, budgets of its quick run unless --full): the
peer's CPU microseconds per request (its process CPU clock over the row, so for ping also what
it does between pings), which the load bends less than the wall clock.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import bench as B  # noqa: E402
from benchmarks import peers as P  # noqa: E402

ROWS = {"ping": (("ping",), "ping"), "echo": (("echo_med", "echo_p99"), "round trip"),
        "udp": (("udp_pps",), "datagram"),
        "rates": (("cps", "cps_conc"), "connection")}


class Copy(P.Ustack):
    """`ustack up` (CPython runtime) from another copy of the package (dir None: this one)."""

    def __init__(self, name, d, flags=(), env=None):
        P.Ustack.__init__(self, "c" + name, name)
        self.dir = d
        self.flags = list(flags)
        self.env = dict(env or {})
        if d:
            self.env["PYTHONPATH"] = d

    def start(self):
        from tests.netns import Netns, StackProc
        self.ns = Netns("la" + self.key[:5])
        self.sp = StackProc(self.ns, "--serve", P.SERVICES, *self.flags, env=self.env,
                            timeout=60)
        self.pids = [self.sp.p.pid]
        self.info = self.sp.ready.strip()
        P.wait_reachable(self.ns)


def measure(peer, row, budget):
    """({bench row: figure}, requests made)."""
    if row == "ping":
        return {"ping": B.ping_rtt(peer.ns, budget["pings"])}, budget["pings"]
    if row == "rates":  # the bench's connect+close rows (its namespace settings included)
        v = B.measure(peer, "rates", budget)
        return {"cps": v["cps"], "cps_conc": v["cps_conc"]}, \
            (v["cps"] + v["cps_conc"]) * budget["secs"]
    what = "echo" if row == "echo" else "udp"
    r = B.client(peer.ns, what, budget)
    if row == "echo":
        return {"echo_med": r["echo_med"], "echo_p99": r["echo_p99"]}, budget["echoes"] + 10
    return {"udp_pps": r["udp_pps"]}, r["udp_pps"] * budget["secs"]


def run(peers, rows, budget, rounds, log):
    """samples {label: [{row: figure}]}, cpu {label: {row: [CPU us per request]}}."""
    return P.interleaved(peers, rows, budget, rounds, measure, log, "latency_ab")


median = P.median


def render(res):
    m = res["meta"]
    labels = [p["label"] for p in res["peers"]]
    lines = ["# Request latency, copies side by side (same run)", "",
             "Measured %s on %s, %d cores, load average %.1f at the end (shared machine); "
             "`%s`. Each figure is the median of %d rounds, the stacks interleaved (order "
             "reversed every other row); the round-by-round figures are in the JSON. %d pings "
             "2 ms apart, %d TCP echo round trips of 64 bytes, %g s of 64-byte UDP echo." % (
                 m["date"], m["machine"], m["cpus"], m["load_average"][0], m["command"],
                 m["rounds"], m["budget"]["pings"], m["budget"]["echoes"],
                 m["budget"]["secs"]), ""]
    for p in res["peers"]:
        lines.append("- %s: %s" % (p["label"], p["info"]))
    lines += ["", "| measurement | " + " | ".join(labels) + " |",
              "|---|" + "---|" * len(labels)]
    for key, label, unit, better in B.ROWS:
        vals = [median([s[key] for s in res["samples"][l] if key in s]) for l in labels]
        if all(v is None for v in vals):
            continue
        lines.append("| %s (%s) | %s |" % (label, unit, " | ".join(
            B.fmt(v) if v is not None else "n/a" for v in vals)))
    for row in res["rows"]:
        vals = [median(res["cpu"][l].get(row, [])) for l in labels]
        lines.append("| peer CPU per %s (us) | %s |" % (ROWS[row][1], " | ".join(
            B.fmt(v) if v is not None else "n/a" for v in vals)))
    lines += ["", "Rounds (each stack's figure per round, in run order):", ""]
    for key, label, unit, better in B.ROWS:
        per = ["%s %s" % (l, " ".join(B.fmt(s[key]) for s in res["samples"][l] if key in s))
               for l in labels if any(key in s for s in res["samples"][l])]
        if per:
            lines.append("- %s: %s" % (label, "; ".join(per)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copy", action="append", default=[], metavar="NAME=DIR",
                    help="a copy of ustack: DIR/ustack is the package (empty: this checkout)")
    ap.add_argument("--up", action="append", default=[], metavar="NAME=FLAGS",
                    help="more `ustack up` flags for the copy NAME")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=K=V",
                    help="an environment variable for the copy NAME")
    ap.add_argument("--with", dest="others", default="lwip,linux",
                    help="the other stacks, of lwip,linux (empty: none)")
    ap.add_argument("--rows", default="ping,echo,udp")
    ap.add_argument("--rounds", type=int, default=7)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--full", action="store_true", help="bench.py's full budgets, not quick")
    g.add_argument("--smoke", action="store_true", help="bench.py's smoke budgets (a check)")
    ap.add_argument("--out", default=None, help="markdown table (default: stdout only)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    rows = [r for r in a.rows.split(",") if r]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error("--rows: unknown %s (known: %s)" % (", ".join(bad), ", ".join(ROWS)))
    specs = {}
    for s in a.copy:
        name, _, d = s.partition("=")
        if d and not os.path.isdir(os.path.join(d, "ustack")):
            ap.error("--copy %s: DIR/ustack must be the package" % s)
        specs[name] = {"dir": os.path.abspath(d) if d else None, "flags": [], "env": {}}
    specs.setdefault("new", {"dir": None, "flags": [], "env": {}})
    for s in a.up:
        name, _, f = s.partition("=")
        if name not in specs:
            ap.error("--up %s: no --copy named %s" % (s, name))
        specs[name]["flags"] += f.split()
    for s in a.env:
        name, _, kv = s.partition("=")
        k, _, v = kv.partition("=")
        if name not in specs or not k:
            ap.error("--env %s: want NAME=K=V for a --copy NAME" % s)
        specs[name]["env"][k] = v
    peers = [Copy(n, v["dir"], v["flags"], v["env"]) for n, v in specs.items()]
    for o in [x for x in a.others.split(",") if x]:
        if o == "lwip":
            peers.append(P.Lwip())
        elif o == "linux":
            peers.append(P.LinuxVeth())
        else:
            ap.error("--with: unknown %s (lwip, linux)" % o)
    budget = dict(B.BUDGETS["full" if a.full else ("smoke" if a.smoke else "quick")])
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    samples, cpu = run(peers, rows, budget, a.rounds, log)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": os.uname().machine, "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "rounds": a.rounds, "budget": budget,
            "command": "python -m benchmarks.latency_ab " + " ".join(argv or sys.argv[1:])}
    res = {"meta": meta, "rows": rows, "samples": samples, "cpu": cpu,
           "peers": [{"label": p.label, "info": getattr(p, "info", "")
                      + (" (%s %s)" % (p.dir or ROOT, " ".join(p.flags)) if isinstance(p, Copy)
                         else "")} for p in peers]}
    text = render(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        with open(a.json or os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
    sys.stdout.write(text)
    return res


if __name__ == "__main__":
    main()
