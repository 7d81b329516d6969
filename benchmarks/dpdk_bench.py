"""The DPDK driver beside the plain TAP driver in the same run: ping RTT and TCP bulk each way
(chargen to Linux, Linux to discard) through `ustack up --driver dpdk` (net_tap, EAL without
hugepages) and `ustack up --driver tap`, the Linux kernel of a throwaway namespace as the
client. Needs root and the DPDK binding (hal/dpdk/README.md).

    python -m benchmarks.dpdk_bench [--mb 20] [--pings 200]
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.netns import Netns, StackProc, STACK_IP  # noqa: E402

# the same bulk client and CPU reading as benchmarks/offload_bench.py and the harness
from benchmarks.offload_bench import CLIENT  # noqa: E402
from benchmarks.peers import cpu_seconds  # noqa: E402


def measure(driver, mb, pings):
    ns = Netns("dpb")
    try:
        s = StackProc(ns, "--driver", driver, "--serve", "chargen,discard",
                      tap="dtap0" if driver == "dpdk" else "ustk0")
        try:
            r = ns.run(["ping", "-q", "-c", str(pings), "-i", "0.01", STACK_IP], timeout=120)
            m = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/([\d.]+) ms", r.stdout)
            row = {"driver": driver, "ping_avg_ms": float(m.group(1)) if m else None,
                   "ping_mdev_ms": float(m.group(2)) if m else None}
            c0 = cpu_seconds([s.p.pid])
            r = ns.python(CLIENT % (STACK_IP, mb * 1000 * 1000), timeout=300)
            row["stack_cpu_s_per_gb"] = (cpu_seconds([s.p.pid]) - c0) / (2 * mb / 1000.0)
            if r.returncode == 0:
                out = json.loads(r.stdout)
                row["rx_mb_s"], row["tx_mb_s"] = out["rx"], out["tx"]
            else:
                row["error"] = r.stderr[-500:]
        finally:
            c = s.stop()
        row["frames"] = c.get("link.dpdk_rx_frames")
        return row
    finally:
        ns.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=20, help="MB each way")
    ap.add_argument("--pings", type=int, default=200)
    a = ap.parse_args()
    rows = [measure(d, a.mb, a.pings) for d in ("tap", "dpdk")]
    print("| driver | ping avg (ms) | mdev | chargen -> Linux MB/s | Linux -> discard MB/s | "
          "stack CPU s/GB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| %s | %s | %s | %.1f | %.1f | %.1f |" % (
            r["driver"], r["ping_avg_ms"], r["ping_mdev_ms"], r.get("rx_mb_s", 0),
            r.get("tx_mb_s", 0), r.get("stack_cpu_s_per_gb", 0)))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
