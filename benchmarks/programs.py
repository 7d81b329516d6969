"""Programs no one here wrote, run unmodified over ustack against Linux: their own figures.

    python -m benchmarks.programs [--quick] [--out benchmarks/programs.md]

- uiperf3 (PyPI, pure-Python iperf3) as the server under `ustack run -- python -m uiperf3 -s`,
  measured by Debian's `iperf3 -c` for --seconds in both directions (-R: ustack sends);
- stdlib `http.server` over ustack serving a 100 MB random file that Linux `curl` fetches,
  SHA-256 compared, MB/s from curl's own timing;
- the same uiperf3 with the kernel as its network (no ustack), for scale: what the program
  itself costs, since uiperf3 is Python on both sides of the comparison.

Needs root (a throwaway namespace per run, tests/netns.py). The short CI versions of these
runs are tests/interop/test_programs_over_ustack.py.
"""
import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.netns import Netns, ProgramRun as UstackRun, STACK_IP  # noqa: E402

PY = sys.executable
IPERF3 = shutil.which("iperf3") or "/usr/bin/iperf3"


def iperf3(ns, target, seconds, reverse, hang_ok=False):
    """Debian's iperf3 client: (Mbit/s, bytes) as the receiver counted them; None when the
    run did not end (hang_ok: see tests/interop/test_programs_over_ustack.py on -R)."""
    argv = [IPERF3, "-c", target, "-t", str(seconds), "--json", "--connect-timeout", "5000"]
    if reverse:
        # 16 KB blocks: iperf3 3.12's own end-of-test wait for the rest of a block (see
        # tests/interop/test_programs_over_ustack.py) strikes about 1 run in 10, not 7
        argv += ["-R", "-l", "16K"]
    try:
        r = ns.run(argv, timeout=seconds + 20)
    except subprocess.TimeoutExpired:
        if hang_ok:
            return None
        raise
    if r.returncode != 0:
        raise RuntimeError("iperf3: " + r.stdout[-2000:] + r.stderr)
    end = json.loads(r.stdout)["end"]
    return end["sum_received"]["bits_per_second"] / 1e6, end["sum_received"]["bytes"]


UNIT = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
INTERVAL = re.compile(r"^\s*([\d.]+)-([\d.]+)\s+sec\s+[\d.]+ \w?Bytes\s+([\d.]+) (\w?)bits/sec$")


def uiperf3_intervals(out, run):
    """uiperf3's own per-second lines of its run-th client (0-based): the mean Mbit/s of the
    whole seconds. uiperf3 prints them while it sends, whether or not the run's end hangs."""
    runs = out.split("Accepted connection")
    rates = []
    for line in runs[run + 1].splitlines() if len(runs) > run + 1 else ():
        m = INTERVAL.match(line)
        if m and float(m.group(2)) - float(m.group(1)) > 0.9:
            rates.append(float(m.group(3)) * UNIT[m.group(4)] / 1e6)
    return sum(rates) / len(rates) if rates else 0.0


def uiperf3_over_ustack(seconds):
    """(Mbit/s, bytes) Linux -> uiperf3, then uiperf3 -> Linux: (Mbit/s from uiperf3's own
    lines, whether iperf3's run ended)."""
    ns = Netns("bprog")
    try:
        srv = UstackRun(ns, ["-m", "uiperf3", "-s"], "Server listening")
        try:
            up = iperf3(ns, STACK_IP, seconds, False)
            time.sleep(1)  # uiperf3 reopens its listener between runs
            down = iperf3(ns, STACK_IP, seconds, True, hang_ok=True)
        finally:
            out = srv.interrupt(30)
    finally:
        ns.close()
    return up, (uiperf3_intervals(out, 1), down is not None)


def uiperf3_over_kernel(seconds):
    """The same uiperf3 with Linux's own sockets (loopback of a fresh namespace)."""
    ns = Netns("bprogk")
    try:
        p = ns.popen([PY, "-m", "uiperf3", "-s"], env=dict(os.environ, PYTHONUNBUFFERED="1"))
        line = p.stdout.readline()
        assert "Server listening" in line, line
        up = iperf3(ns, "127.0.0.1", seconds, False)
        time.sleep(1)
        down = iperf3(ns, "127.0.0.1", seconds, True)
    finally:
        ns.close()
    return up, down


def http_server_download(size_mb):
    ns = Netns("bhttp")
    d = tempfile.mkdtemp(prefix="ustack-bench-www-")
    try:
        path = os.path.join(d, "big.bin")
        h = hashlib.sha256()
        with open(path, "wb") as f:
            for _ in range(size_mb):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        srv = UstackRun(ns, ["-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", d],
                        "Serving HTTP")
        try:
            out = os.path.join(d, "got.bin")
            r = ns.run(["curl", "-sS", "--max-time", "600", "-o", out, "-w",
                        "%{size_download} %{time_total}", "http://%s:8000/big.bin" % STACK_IP],
                       timeout=660)
            if r.returncode != 0:
                raise RuntimeError("curl: " + r.stderr)
        finally:
            srv.interrupt(30)
        size, secs = r.stdout.split()
        g = hashlib.sha256()
        with open(out, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                g.update(chunk)
        return int(size), float(secs), g.hexdigest() == h.hexdigest()
    finally:
        ns.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 s iperf3 runs, a 20 MB file")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "programs.md"))
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    a = ap.parse_args()
    seconds = 3 if a.quick else 10
    size_mb = 20 if a.quick else 100
    import ustack
    rows = []
    (up_mbit, up_b), (down_mbit, down_ended) = uiperf3_over_ustack(seconds)
    (kup, _), (kdown, _) = uiperf3_over_kernel(seconds)
    rows.append(("uiperf3 -s over ustack, Linux `iperf3 -c` sends (Mbit/s, %d s)" % seconds,
                 "%.1f (%.1f MB received)" % (up_mbit, up_b / 1e6), "%.1f" % kup))
    rows.append(("uiperf3 -s over ustack sends, Linux `iperf3 -c -R -l 16K` (Mbit/s, %d s)"
                 % seconds, "%.1f (uiperf3's per-second lines; the run %s)" % (
                     down_mbit, "ended" if down_ended else "hung at its end"), "%.1f" % kdown))
    size, secs, same = http_server_download(size_mb)
    rows.append(("http.server over ustack, Linux curl fetches %d MB (MB/s)" % size_mb,
                 "%.1f (%.1f s, SHA-256 %s)" % (size / 1e6 / secs, secs,
                                                 "equal" if same else "DIFFERENT"), "-"))
    text = ["# Programs over ustack", "",
            "Measured %s on %s, %d cores; `ustack run` (CPython runtime, core %s). The programs "
            "are unmodified: uiperf3 %s from PyPI, Python %s's http.server; the peer is the Linux "
            "kernel in a throwaway namespace across the TAP. \"uiperf3 over the kernel\" is the "
            "same uiperf3 on Linux sockets (loopback), for scale: uiperf3 is Python and sends "
            "or receives one buffer per poll. Made by `invoke bench` (benchmarks/programs.py)%s."
            % (time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count() or 1,
               "Cython-compiled" if ustack.compiled else "pure Python", _uiperf3_version(),
               platform.python_version(), ", --quick" if a.quick else ""),
            "", "| program | over ustack | uiperf3 over the kernel |", "|---|---|---|"]
    text += ["| %s | %s | %s |" % r for r in rows]
    text = "\n".join(text) + "\n"
    from benchmarks.bench import publish
    publish(text, a.out, "programs" if a.readme else None)
    if not same:
        raise SystemExit("http.server download: SHA-256 differs")


def _uiperf3_version():
    try:
        from importlib.metadata import version
        return version("uiperf3")
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
