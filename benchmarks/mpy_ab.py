"""MicroPython runtime before/after: the bench's MicroPython rows for this checkout and for other
copies of the package (older commits), in one run, interleaved, on the same client and TAP path.

    python -m benchmarks.mpy_ab --base old=/tmp/mpyab/old [--base mid=DIR ...]
                                [--rounds 5] [--groups ping,bulk,rates,wrk] [--quick]
                                [--out benchmarks/mpy_ab.md]

A base is a folder holding a `ustack` package (a symlink to a `git worktree add` of the older
commit will do); its `ustack up --runtime micropython` runs with PYTHONPATH=DIR, so the whole
runtime (bridge, staging, the core under MicroPython) is that copy's. Each row group is taken
for every copy in turn, the order reversed every other round (ABBA...), so a burst of load on
the shared machine lands on both; a figure is the median of its rounds, and every round's
figure is kept in the JSON (--json, default --out's name with .json). The rows and the client
are benchmarks/bench.py's (same budgets: --quick is its quick run). Also the peer's CPU
(micropython + bridge) per row group: seconds of CPU per operation is less at the mercy of the
machine's load than a wall-clock rate.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import bench as B  # noqa: E402
from benchmarks import peers as P  # noqa: E402

class Copy(P.Ustack):
    """ustack up --runtime micropython from another copy of the package (base None: this one)."""

    def __init__(self, name, base):
        P.Ustack.__init__(self, "m" + name, name, runtime="micropython")
        self.base = base
        self.env = {"PYTHONPATH": base} if base else {}


def package_dir(base):
    env = dict(os.environ, PYTHONPATH=base)
    r = subprocess.run([sys.executable, "-c", "import os, ustack; "
                        "print(os.path.dirname(os.path.abspath(ustack.__file__)))"],
                       capture_output=True, text=True, env=env, cwd="/")
    return r.stdout.strip()


def commit_of(path):
    r = subprocess.run(["git", "-C", path, "log", "-1", "--format=%h %s"], capture_output=True,
                       text=True)
    return r.stdout.strip()[:90] or "(not a git checkout: its name says which commit)"


# the rows, each measured on its own (so the peer's CPU time is that row's): the bench's
# client for each, and what one operation is (for the CPU per operation)
ROWS = {"ping": "pings", "bulk_rx": "MB", "bulk_tx": "MB", "echo": "round trips",
        "udp": "requests", "cps": "connections", "cps_conc": "connections",
        "wrk": "requests"}
GROUPS = ["ping", "bulk", "rates", "wrk"]
GROUP_ROWS = {"ping": ["ping"], "bulk": ["bulk_rx", "bulk_tx"],
              "rates": ["echo", "udp", "cps", "cps_conc"], "wrk": ["wrk"]}


def measure(c, row, budget):
    """One row for one copy: ({bench row: figure}, operations done)."""
    if row == "ping":
        return {"ping": B.ping_rtt(c.ns, budget["pings"])}, budget["pings"]
    if row == "wrk":
        v = B.wrk_row(c.ns, budget)
        return {"wrk": v}, v * budget["wrk"]
    if row in ("cps", "cps_conc"):
        c.ns.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535",
                  "net.ipv4.tcp_max_tw_buckets=0"], check=True)
    r = B.client(c.ns, row, budget)
    if row.startswith("bulk"):
        return {row: r[row]}, r["bytes"] / 1e6
    if row == "echo":
        return {"echo_med": r["echo_med"], "echo_p99": r["echo_p99"]}, budget["echoes"] + 10
    if row == "udp":
        return {"udp_pps": r["udp_pps"]}, r["udp_pps"] * budget["secs"]
    return {row: r[row]}, r[row] * budget["secs"]


def run(copies, rows, budget, rounds, log):
    """samples {copy: [{row: figure}]}, cpu {copy: {row: [CPU us per operation]}}."""
    return P.interleaved(copies, rows, budget, rounds, measure, log, "mpy_ab")


median = P.median


def render(res):
    m = res["meta"]
    labels = [c["label"] for c in res["copies"]]
    lines = ["# MicroPython runtime, before and after (same run)", "",
             "Measured %s on %s, %d cores, load average %.1f at the end (shared machine); "
             "`%s`. Each figure is the median of %d rounds, the copies interleaved "
             "(order reversed every other group); the round-by-round figures are in the JSON. "
             "Budgets as `invoke bench`'s %s run." % (
                 m["date"], m["machine"], m["cpus"], m["load_average"][0], m["command"],
                 m["rounds"], m["mode"]), ""]
    for c in res["copies"]:
        lines.append("- %s: %s (%s)" % (c["label"], c["commit"], c["dir"]))
    lines += ["", "| measurement | " + " | ".join(labels) + " | %s / %s |" % (labels[-1],
                                                                              labels[0]),
              "|---|" + "---|" * (len(labels) + 1)]
    for key, label, unit, better in B.ROWS:
        vals = [median([s[key] for s in res["samples"][l] if key in s]) for l in labels]
        if all(v is None for v in vals):
            continue
        cells = [B.fmt(v) if v is not None else "n/a" for v in vals]
        ratio = (B.rfmt(vals[-1] / vals[0]) if vals[0] and vals[-1] is not None else "-")
        lines.append("| %s (%s, %s is better) | %s | %s |" % (label, unit, better,
                                                             " | ".join(cells), ratio))
    for row in res["rows"]:
        vals = [median(res["cpu"][l].get(row, [])) for l in labels]
        if all(v is None for v in vals):
            continue
        cells = [B.fmt(v) if v is not None else "n/a" for v in vals]
        ratio = B.rfmt(vals[-1] / vals[0]) if vals[0] and vals[-1] is not None else "-"
        lines.append("| peer CPU per %s, %s (us, lower is better) | %s | %s |" % (
            ROWS[row][:-1] if ROWS[row] != "MB" else "MB", row, " | ".join(cells), ratio))
    lines += ["", "Rounds (each copy's figure per round, in run order):", ""]
    for row in res["rows"]:
        per = ["%s %s" % (l, " ".join(B.fmt(x) for x in res["cpu"][l].get(row, [])))
               for l in labels]
        lines.append("- peer CPU per operation, %s: %s" % (row, "; ".join(per)))
    for key, label, unit, better in B.ROWS:
        per = []
        for l in labels:
            xs = [s[key] for s in res["samples"][l] if key in s]
            if xs:
                per.append("%s %s" % (l, " ".join(B.fmt(x) for x in xs)))
        if per:
            lines.append("- %s: %s" % (label, "; ".join(per)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", action="append", default=[], metavar="NAME=DIR",
                    help="another copy: DIR/ustack is the package (repeatable, run order)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--quick", action="store_true", help="bench.py's quick budgets")
    ap.add_argument("--bulk-cap", type=float, default=None,
                    help="seconds per bulk transfer (default the budget's)")
    ap.add_argument("--secs", type=float, default=None,
                    help="seconds of each UDP and connect+close row (default the budget's)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "mpy_ab.md"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    groups = a.groups.split(",")
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        ap.error("--groups: unknown %s (known: %s)" % (", ".join(bad), ", ".join(GROUPS)))
    rows = [r for g in groups for r in GROUP_ROWS[g]]
    copies, info = [], []
    for spec in a.base:
        name, _, d = spec.partition("=")
        d = os.path.abspath(d)
        if not name or not d or package_dir(d) != os.path.join(d, "ustack"):
            ap.error("--base %s: want NAME=DIR with DIR/ustack the package" % spec)
        copies.append(Copy(name, d))
        info.append({"label": name, "dir": d,
                     "commit": commit_of(os.path.realpath(os.path.join(d, "ustack")))})
    copies.append(Copy("new", None))
    info.append({"label": "new", "dir": ROOT, "commit": commit_of(ROOT) + " + work tree"})
    budget = dict(B.BUDGETS["quick" if a.quick else "full"])
    if a.bulk_cap:
        budget["bulk_cap"] = a.bulk_cap
    if a.secs:
        budget["secs"] = a.secs
    samples, cpu = run(copies, rows, budget, a.rounds,
                       lambda s: print(s, file=sys.stderr, flush=True))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": os.uname().machine, "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "rounds": a.rounds,
            "mode": "quick" if a.quick else "full", "budget": budget,
            "command": "python -m benchmarks.mpy_ab " + " ".join(argv or sys.argv[1:])}
    res = {"meta": meta, "copies": info, "rows": rows, "samples": samples, "cpu": cpu}
    with open(a.json or os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    text = render(res)
    with open(a.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
