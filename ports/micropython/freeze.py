"""`invoke freeze --board B --micropython DIR`: build MicroPython firmware with a board's ustack
modules frozen in (their bytecode then runs from flash, not the heap).

    python -m ustack.ports.micropython.freeze --board w5500_evb_pico --micropython ~/micropython

Steps: the board's module set (build.select_modules, as `invoke mpy` ships it) is written to
`build/mpy/<board>/freeze/` (sources + board_cfg.py + manifest.py); then, in the user's MicroPython checkout,
`make -C mpy-cross` and `make -C ports/<PORT> BOARD=<BOARD> FROZEN_MANIFEST=<manifest>`,
where PORT and BOARD are MicroPython's names for the board (the board file's MPY_PORT and
MPY_BOARD; --mpy-board overrides the latter). The firmware lands where the port's make puts
it (ports/<PORT>/build-<BOARD>/); only main.py is then deployed.

Refusals (one line naming the flag, nothing built): a board without a MicroPython port, a
directory that is not a MicroPython checkout (no py/mpconfig.h or no ports/<PORT>/Makefile).
"""
import os
import subprocess
import sys


class FreezeError(Exception):
    pass


def target(board_name, mpy_board=None):
    """(port, MicroPython board) the board builds for."""
    from ustack import boards
    try:
        b = boards.load(board_name)
    except Exception:
        raise FreezeError("--board %s: no such board (known: %s)"
                          % (board_name, ", ".join(boards.names())))
    port = getattr(b, "MPY_PORT", None)
    if port is None:
        raise FreezeError("--board %s: not a MicroPython board (no MPY_PORT: it runs under "
                          "CPython or the unix port)" % board_name)
    return port, mpy_board or b.MPY_BOARD


def check_checkout(mp_dir, port):
    """A MicroPython source tree with the board's port."""
    if not mp_dir or not os.path.isfile(os.path.join(mp_dir, "py", "mpconfig.h")):
        raise FreezeError("--micropython %s: not a MicroPython checkout (no py/mpconfig.h)"
                          % (mp_dir or "''"))
    if not os.path.isfile(os.path.join(mp_dir, "ports", port, "Makefile")):
        raise FreezeError("--micropython %s: has no ports/%s/Makefile" % (mp_dir, port))


def read_manifest(path):
    """What a manifest.py freezes, read as MicroPython's tools/manifestfile.py reads it: the
    file is executed with include/package/module/freeze as functions. Returns
    {"include": [...], "package": [(name, dir)], "module": [(file, dir)]} with base_path
    resolved against the manifest's folder; checks each one exists (include paths with
    $(PORT_DIR) are left as written)."""
    here = os.path.dirname(os.path.abspath(path))
    out = {"include": [], "package": [], "module": []}

    def base(bp):
        return os.path.normpath(os.path.join(here, bp))

    def include(p, **kw):
        out["include"].append(p)

    def package(name, files=None, base_path=".", opt=None):
        d = os.path.join(base(base_path), name)
        if not os.path.isdir(d):
            raise FreezeError("manifest %s: package %s: no folder %s" % (path, name, d))
        out["package"].append((name, d))

    def module(name, base_path=".", opt=None):
        f = os.path.join(base(base_path), name)
        if not os.path.isfile(f):
            raise FreezeError("manifest %s: module %s: no file %s" % (path, name, f))
        out["module"].append((name, f))

    def freeze(*a, **kw):
        raise FreezeError("manifest %s: freeze() is deprecated in MicroPython manifests" % path)

    with open(path) as f:
        code = f.read()
    exec(compile(code, path, "exec"), {"include": include, "package": package,
                                       "module": module, "freeze": freeze,
                                       "require": lambda *a, **k: None,
                                       "options": type("O", (), {})()})
    return out


def prepare(board_name, out_dir="build/mpy"):
    """out_dir/<board>/freeze/: the board's module sources, its board_cfg.py and the
    manifest.py (no mpy-cross: the firmware's build compiles what it freezes). Returns
    (manifest path, {"modules": [...], "notes": [...]})."""
    import shutil
    from ustack import boards
    from ustack.ports.micropython import build
    from ustack.ports.micropython.stage import board_cfg_source
    board = boards.load(board_name)
    dest = os.path.join(out_dir, board_name)
    if os.path.exists(os.path.join(dest, "freeze")):
        shutil.rmtree(os.path.join(dest, "freeze"))
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "board_cfg.py"), "w") as f:
        f.write(board_cfg_source(board))
    mods, notes, _ = build.select_modules(board)
    build.write_freeze(dest, board_name, [r for r, _ in mods])
    return (os.path.abspath(os.path.join(dest, "freeze", "manifest.py")),
            {"modules": [r for r, _ in mods], "notes": notes})


def freeze(board_name, mp_dir, mpy_board=None, out_dir="build/mpy", jobs=None, run=None):
    """Build the board's freeze folder and the firmware; returns (manifest, make argv list).
    run(argv) runs a command (default: subprocess, output shown); raises FreezeError."""
    port, mb = target(board_name, mpy_board)
    check_checkout(mp_dir, port)
    manifest, report = prepare(board_name, out_dir)
    read_manifest(manifest)   # every package/module it names exists
    j = "-j%d" % (jobs or os.cpu_count() or 1)
    cmds = [["make", j, "-C", os.path.join(mp_dir, "mpy-cross")],
            ["make", j, "-C", os.path.join(mp_dir, "ports", port), "BOARD=" + mb,
             "FROZEN_MANIFEST=" + manifest]]
    if port in ("rp2", "esp32"):
        # these ports fetch their SDK's submodules first (MicroPython's documented step)
        cmds.insert(1, ["make", "-C", os.path.join(mp_dir, "ports", port), "BOARD=" + mb,
                        "submodules"])
    run = run or _run
    for argv in cmds:
        rc = run(argv)
        if rc != 0:
            raise FreezeError("%s failed (exit %d)" % (" ".join(argv), rc))
    return manifest, cmds, report


def _run(argv):
    print("freeze: " + " ".join(argv), flush=True)
    return subprocess.call(argv)


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="ustack-freeze", description=__doc__.split("\n")[0])
    p.add_argument("--board", required=True, help="a MicroPython board in boards/")
    p.add_argument("--micropython", required=True, metavar="DIR",
                   help="your MicroPython checkout (git clone + submodules)")
    p.add_argument("--mpy-board", default=None,
                   help="MicroPython's board name when not the board file's MPY_BOARD")
    p.add_argument("--out", default="build/mpy")
    p.add_argument("--jobs", type=int, default=None)
    a = p.parse_args(argv)
    try:
        manifest, cmds, _ = freeze(a.board, a.micropython, a.mpy_board, a.out, a.jobs)
    except FreezeError as e:
        raise SystemExit("ustack freeze: %s" % e)
    print("freeze: firmware built with %s frozen; flash it, then deploy main.py only"
          % manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
