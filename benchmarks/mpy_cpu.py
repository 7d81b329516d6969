"""The core's cost under MicroPython, in process, no TAP, no bridge: benchmarks/mpy_work.py's rows
(two stacks on an in-memory link, the stack under test serving with the MicroPython app's
services, only its work timed) for this checkout and for other copies of the package (older
commits), interleaved run by run, so the machine's load lands on every copy alike.

    python -m benchmarks.mpy_cpu --base old=DIR [--base ...] [--runs 5]
                                 [--rows bulk_in,bulk_out,echo,udp,cps,ping] [--board pc_tap]

A base is a folder holding a `ustack` package (a symlink to a `git worktree add` of the older
commit will do). Prints per row and copy the median and the best of the runs, in µs of the
stack's own time per operation (per MB for the bulk rows), and the ratio of the last copy
(this checkout, "new") to the first. The config is the board's CONFIG (pc_tap: what `ustack up
--runtime micropython` runs in the bench).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORK = os.path.join(ROOT, "benchmarks", "mpy_work.py")
MEMLINK = os.path.join(ROOT, "tests", "micropython", "mp_scripts")
ROWS = {  # row: (operations per run, unit)
    "bulk_in": (4, "us/MB"), "bulk_out": (4, "us/MB"), "echo": (2000, "us/round trip"),
    "udp": (3000, "us/round trip"), "cps": (300, "us/connection"), "http": (1000, "us/request"),
    "ping": (3000, "us/reply"),
}


def stage(tree, dest):
    """dest/ustack: the MicroPython package root of `tree` (a checkout), its core, hal and
    ports/micropython linked, as ports/micropython/stage.py lays it out."""
    pkg = os.path.join(dest, "ustack")
    os.makedirs(os.path.join(pkg, "ports"))
    shutil.copyfile(os.path.join(tree, "ports", "micropython", "ustack_init.py"),
                    os.path.join(pkg, "__init__.py"))
    open(os.path.join(pkg, "ports", "__init__.py"), "w").close()
    os.symlink(os.path.join(tree, "core"), os.path.join(pkg, "core"))
    os.symlink(os.path.join(tree, "hal"), os.path.join(pkg, "hal"))
    os.symlink(os.path.join(tree, "ports", "micropython"),
               os.path.join(pkg, "ports", "micropython"))
    return dest


def one(mpy, lib, row, n, cfg_file, emit=None):
    cmd = [mpy, "-X", "heapsize=16M"] + (["-X", "emit=" + emit] if emit else []) + [
        WORK, lib, MEMLINK, row, str(n), cfg_file]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("%s %s: %s%s" % (lib, row, r.stdout[-1000:], r.stderr[-2000:]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--board", default="pc_tap")
    ap.add_argument("--scale", type=float, default=1.0, help="operations per run x this")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    from ustack import boards
    from ustack.ports.micropython.stage import micropython_exe
    cfg = dict(getattr(boards.load(a.board), "CONFIG", {}))
    rows = a.rows.split(",")
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error("--rows: unknown %s (known: %s)" % (", ".join(bad), ", ".join(ROWS)))
    trees = []
    for spec in a.base:
        name, _, d = spec.partition("=")
        tree = os.path.realpath(os.path.join(d, "ustack"))
        if not name or not os.path.isfile(os.path.join(tree, "core", "stack.py")):
            ap.error("--base %s: want NAME=DIR with DIR/ustack a checkout" % spec)
        trees.append((name, tree))
    trees.append(("new", ROOT))
    mpy = micropython_exe()
    tmp = tempfile.mkdtemp(prefix="mpy-cpu-")
    res = {name: {r: [] for r in rows} for name, _ in trees}
    alls = {name: {r: [] for r in rows} for name, _ in trees}
    try:
        libs = {name: stage(tree, os.path.join(tmp, name)) for name, tree in trees}
        cfg_file = os.path.join(tmp, "config.json")
        with open(cfg_file, "w") as f:
            json.dump(cfg, f)
        for i in range(a.runs):
            for row in rows:
                order = trees if (i % 2 == 0) else trees[::-1]
                for name, _ in order:
                    n = max(1, int(ROWS[row][0] * a.scale))
                    v = one(mpy, libs[name], row, n, cfg_file)
                    if v["ops"] < n * (1000000 if row.startswith("bulk") else 1) * 0.95:
                        raise RuntimeError("%s %s: only %s of %d done" % (name, row, v["ops"], n))
                    res[name][row].append(v["us"])
                    alls[name][row].append(v["all"])
                    print("run %d %s %s %.1f %.1f" % (i + 1, row, name, v["us"], v["all"]),
                          file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = [t[0] for t in trees]
    print("CPU time (the unix port's time.clock, 1 ms ticks), median of %d runs (best): the "
          "stack under test's own poll and services, then the whole process (both stacks)."
          % a.runs)
    print()
    print("| row (unit) | " + " | ".join("%s" % x for x in names) +
          " | %s / %s | " % (names[-1], names[0]) + " | ".join("%s, both" % x for x in names) +
          " | %s / %s, both |" % (names[-1], names[0]))
    print("|---|" + "---|" * (2 * len(names) + 2))
    for row in rows:
        cells = []
        for d in (res, alls):
            med = [statistics.median(d[x][row]) for x in names]
            cells += ["%.1f (%.1f)" % (m, min(d[x][row])) for m, x in zip(med, names)]
            cells.append("%.2f" % (med[-1] / med[0]))
        print("| %s (%s) | %s |" % (row, ROWS[row][1], " | ".join(cells)))
    out = {"board": a.board, "runs": a.runs, "trees": trees, "results": res, "both": alls}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
