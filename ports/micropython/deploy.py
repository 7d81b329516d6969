"""`invoke deploy --board B --port P`: copy a board's build to it with mpremote and start it.

    deploy("w5500_evb_pico", "/dev/ttyACM0")            # fs cp, then reset: main.py boots
    deploy("unix", "/tmp/mpty", dest="/tmp/run")        # the unix port under a pty (CI)
    deploy("pico_enc28j60", "/dev/ttyACM0", mode="mount")   # run from the host's build dir

Modes:
  cp     `fs cp` main.py, board_cfg.py and lib/ to `dest` on the board (":" = its root), then
         start: a real board is reset (it boots into main.py); with `resume` (the unix port,
         where Ctrl-D would exit the interpreter, HAL-NOTES 1.6) main.py is exec'd in place
         without waiting for it.
  mount  `mount` the build directory and `exec "import main"`: nothing is written to the
         board; mpremote stays attached while the stack runs (the returned process).

`resume` defaults to True when the port is a pty (a unix port under socat): then mpremote
never soft-resets. `settings` (dict) are written into board_cfg.py before copying, e.g.
{"LINK": "unix:/tmp/x.sock", "SERVE": "echo"}. Returns a dict: board, port, mode, dest,
files, bytes, commands (and "process" for mount).
"""
import os
import shutil
import subprocess
import sys

from ustack.ports.micropython.stage import board_cfg_source


def mpremote_exe():
    cand = os.path.join(os.path.dirname(sys.executable), "mpremote")
    if os.path.exists(cand):
        return [cand]
    found = shutil.which("mpremote")
    if found:
        return [found]
    return [sys.executable, "-m", "mpremote"]


def is_pty(port):
    try:
        real = os.path.realpath(port)
    except (OSError, TypeError):
        return False
    return real.startswith("/dev/pts/")


def _files(root):
    out = []
    for d, dirs, files in os.walk(root):
        if d == root:
            dirs[:] = [x for x in dirs if x != "freeze"]  # for firmware builds, not the board
        dirs.sort()
        for f in sorted(files):
            if f == "manifest.json":
                continue
            out.append(os.path.relpath(os.path.join(d, f), root))
    return out


def _dest_path(dest, rel):
    if dest in (":", ""):
        return ":" + rel
    return ":" + dest.rstrip("/") + "/" + rel


def run_mpremote(port, args, resume, timeout=120, check=True):
    cmd = mpremote_exe() + ["connect", port] + (["resume"] if resume else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError("mpremote failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd),
                                                              r.stdout, r.stderr))
    return r


def deploy(board, port, out_dir="build/mpy", mode="cp", dest=":", run=True, resume=None,
           settings=None, build_first=True):
    from ustack import boards
    from ustack.ports.micropython.build import build
    if isinstance(board, str):
        board = boards.load(board)
    name = getattr(board, "NAME", "board")
    if not port:
        raise ValueError("deploy needs --port (a serial device, a pty, socket:// or rfc2217://)")
    if resume is None:
        resume = is_pty(port)
    src = os.path.join(out_dir, name)
    if build_first or not os.path.exists(os.path.join(src, "main.py")):
        report = build(board, out_dir)
        src = report["out"]
    if settings:
        with open(os.path.join(src, "board_cfg.py"), "w") as f:
            f.write(board_cfg_source(board, extra=settings))
    files = _files(src)
    total = sum(os.path.getsize(os.path.join(src, f)) for f in files)
    result = {"board": name, "port": port, "mode": mode, "dest": dest, "files": len(files),
              "bytes": total, "commands": []}
    if mode == "mount":
        cmd = mpremote_exe() + ["connect", port] + (["resume"] if resume else []) + \
            ["mount", src, "exec", "import main"]
        result["commands"].append(cmd)
        if run:
            result["process"] = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True)
        return result
    if mode != "cp":
        raise ValueError("mode must be cp or mount")
    # directories first (fs mkdir fails on existing ones: ignore), then every file
    dirs = sorted({os.path.dirname(f) for f in files if os.path.dirname(f)},
                  key=lambda d: d.count("/"))
    allp = set()
    for d in dirs:
        parts = d.split("/")
        for i in range(1, len(parts) + 1):
            allp.add("/".join(parts[:i]))
    if dest not in (":", ""):
        run_mpremote(port, ["fs", "mkdir", ":" + dest.rstrip("/")], resume, check=False)
    for d in sorted(allp, key=lambda d: (d.count("/"), d)):
        run_mpremote(port, ["fs", "mkdir", _dest_path(dest, d)], resume, check=False)
    args = []
    for f in files:
        if args:
            args.append("+")
        args += ["fs", "cp", os.path.join(src, f), _dest_path(dest, f)]
    result["commands"].append(args)
    run_mpremote(port, args, resume, timeout=600)
    if run:
        if resume:
            # the unix port: no reset; run main.py where it was copied, and do not wait
            where = "." if dest in (":", "") else dest
            code = "import os; os.chdir(%r); exec(open('main.py').read())" % where
            run_mpremote(port, ["exec", "--no-follow", code], resume)
            result["commands"].append(["exec", "--no-follow", code])
        else:
            run_mpremote(port, ["reset"], resume, check=False)
            result["commands"].append(["reset"])
    return result


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="ustack-deploy", description="copy a board build with mpremote and start it")
    p.add_argument("--board", default="unix")
    p.add_argument("--port", default="", help="serial device, pty, socket://host:port ...")
    p.add_argument("--out", default="build/mpy", help="build directory (invoke mpy --out)")
    p.add_argument("--mode", choices=("cp", "mount"), default="cp")
    p.add_argument("--dest", default=":", help="directory on the board (default its root)")
    p.add_argument("--no-run", action="store_true", help="copy only")
    p.add_argument("--resume", action="store_true", default=None,
                   help="never soft-reset (the unix port; default for ptys)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="board_cfg override, e.g. LINK=unix:/tmp/x.sock (repeatable)")
    a = p.parse_args(argv)
    if not a.port:
        print("deploy: no --port given (a serial device such as /dev/ttyACM0, a pty, "
              "socket://host:port or rfc2217://); nothing done")
        return 2
    settings = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        try:
            v = int(v)
        except ValueError:
            pass
        settings[k] = v
    r = deploy(a.board, a.port, a.out, a.mode, a.dest, not a.no_run, a.resume, settings or None)
    print("deployed %s to %s (%s): %d files, %d bytes" % (r["board"], r["port"], r["mode"],
                                                          r["files"], r["bytes"]))
    proc = r.get("process")
    if proc is not None:
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
        except KeyboardInterrupt:
            proc.terminate()
        return proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
