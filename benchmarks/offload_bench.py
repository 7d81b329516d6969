"""TCP bulk each way over the TAP to Linux in a namespace, `ustack up --offload off` against
`--offload on` (issue 13), alternated run by run on this noisy shared machine: medians, the
ratio on/off from the same run, and the stack's CPU seconds per GB (its process's
utime+stime, less sensitive to other load than wall time).

    python -m ustack.benchmarks.offload_bench [--runs 3] [--mb 200] [--config KEY=VALUE ...]
                                              [--floor] [--base DIR]

--floor adds the minimal Python TCP endpoint on the same TAP path (benchmarks/
floor_endpoint.py: plain 1514-byte frames, no stack) to every run: the issue's target for
the stack without offloads is 60 % of its MB/s, printed as off/floor.

--base DIR adds `--offload off` and `--offload on` of another copy of the package (DIR holds
it as DIR/ustack, with its compiled modules: a build from before a change) to every run, as
base-off and base-on: a before/after from the same run, the machine's load alike for both.

rx: Linux reads from the stack's chargen (the stack sends: TSO out); tx: Linux writes to the
stack's discard (the stack receives: GRO in). MB/s = 10**6 bytes/s."""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from tests.netns import Netns, StackProc, STACK_IP  # noqa: E402
from benchmarks.peers import cpu_seconds  # noqa: E402

CLIENT = r"""
import json, socket, time
ip = %r; n = %d
out = {}
c = socket.create_connection((ip, 19), timeout=10)
got = 0; t = time.perf_counter(); buf = bytearray(1 << 20)
while got < n:
    k = c.recv_into(buf)
    if not k: break
    got += k
out["rx"] = got / (time.perf_counter() - t) / 1e6; out["rx_bytes"] = got
c.close()
c = socket.create_connection((ip, 9), timeout=10)
blk = b"x" * (1 << 20); t = time.perf_counter(); left = n
while left > 0:
    c.sendall(blk[:min(left, len(blk))]); left -= len(blk)
c.shutdown(socket.SHUT_WR); c.recv(10)
out["tx"] = n / (time.perf_counter() - t) / 1e6
c.close()
print(json.dumps(out))
"""


RETRIES = 2   # a run whose client failed (the floor's lost frame) is run again, at most twice


def one(mode, mb, config, base=None):
    ns = Netns("offb")
    try:
        if mode == "floor":
            p = ns.popen([sys.executable, os.path.join(HERE, "benchmarks", "floor_endpoint.py")])
            ready = p.stdout.readline()
            if not ready.startswith("ready floor"):
                raise RuntimeError("floor endpoint: " + ready + p.stdout.read()[-2000:])
            pid = p.pid
        else:
            env = None
            if mode.startswith("base-"):
                # the other copy first on the path (ahead of the editable install's finder)
                env = {"PYTHONPATH": base}
                mode = mode[5:]
            flags = ["--serve", "discard,chargen", "--offload", mode]
            for c in config:
                flags += ["--config", c]
            sp = StackProc(ns, *flags, env=env)
            pid, ready = sp.p.pid, sp.ready
        c0 = cpu_seconds([pid])
        r = ns.python(CLIENT % (STACK_IP, mb * 1000 * 1000), timeout=900)
        c1 = cpu_seconds([pid])
        if mode != "floor":
            sp.stop()
        lines = r.stdout.strip().splitlines()
        if r.returncode != 0 or not lines:
            # the floor endpoint has no retransmission: a frame the TAP's queue dropped on
            # a loaded machine ends its run (the client times out)
            raise RuntimeError("%s: the client failed: %s" % (mode, r.stderr.strip()[-300:]))
        v = json.loads(lines[-1])
        v["cpu_s_per_gb"] = (c1 - c0) / (2.0 * mb / 1000.0)
        v["ready"] = ready.strip()
        return v
    finally:
        ns.close()


def _package_dir(base):
    """The folder `import ustack` finds with base first on the path."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=base)
    r = subprocess.run([sys.executable, "-c", "import os, ustack; "
                        "print(os.path.dirname(os.path.abspath(ustack.__file__)))"],
                       capture_output=True, text=True, env=env, cwd="/")
    return r.stdout.strip()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--floor", action="store_true",
                   help="also the minimal Python TAP endpoint (benchmarks/floor_endpoint.py)")
    p.add_argument("--base", metavar="DIR",
                   help="also the package copy DIR/ustack (a build from before a change)")
    a = p.parse_args(argv)
    res = {"off": [], "on": []}
    modes = ("off", "on")
    if a.base:
        a.base = os.path.abspath(a.base)
        where = _package_dir(a.base)
        if where != os.path.join(a.base, "ustack"):
            p.error("--base %s: the package imported from there is %s" % (a.base, where))
        res["base-off"] = []
        res["base-on"] = []
        modes += ("base-off", "base-on")
    if a.floor:
        res["floor"] = []
        modes += ("floor",)
    for i in range(a.runs):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            for attempt in range(RETRIES + 1):
                try:
                    res[mode].append(one(mode, a.mb, a.config, a.base))
                    break
                except RuntimeError as e:
                    if attempt == RETRIES:
                        raise
                    print(mode, "failed, run again:", str(e).splitlines()[0], flush=True)
            print(mode, json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                    for k, v in res[mode][-1].items() if k != "ready"}),
                  flush=True)
    med = {m: {k: statistics.median([r[k] for r in res[m]]) for k in ("rx", "tx", "cpu_s_per_gb")}
           for m in res}
    print("offload ready line: " + res["on"][0]["ready"])
    for k in ("rx", "tx"):
        print("%s MB/s: off %.0f, on %.0f, ratio %.2f" % (
            k, med["off"][k], med["on"][k], med["on"][k] / med["off"][k]))
    print("CPU s/GB: off %.2f, on %.2f" % (med["off"]["cpu_s_per_gb"],
                                            med["on"]["cpu_s_per_gb"]))
    if a.base:
        for k in ("rx", "tx"):
            print("%s MB/s before (--base): off %.0f, on %.0f; after/before: off %.2f, on %.2f"
                  % (k, med["base-off"][k], med["base-on"][k], med["off"][k] /
                     med["base-off"][k], med["on"][k] / med["base-on"][k]))
    if a.floor:
        for k in ("rx", "tx"):
            print("%s floor (minimal Python endpoint, plain frames) %.0f MB/s: off/floor %.2f "
                  "(target 0.60), on/floor %.2f" % (k, med["floor"][k], med["off"][k] /
                                                    med["floor"][k], med["on"][k] / med["floor"][k]))
            if a.base:
                print("%s before (--base): off/floor %.2f, on/floor %.2f" % (
                    k, med["base-off"][k] / med["floor"][k], med["base-on"][k] / med["floor"][k]))
    if a.json:
        print(json.dumps({"median": med, "runs": res}))
    return {"median": med, "runs": res}


if __name__ == "__main__":
    main()
