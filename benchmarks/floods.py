"""Floods from hping3 at full speed against `ustack up` (`invoke bench`), written to
benchmarks/floods.md: for each flood, frames/s offered (what hping3 sent) vs absorbed (read
by the stack from the TAP, each then counted by one of its counters) vs dropped (counted by
the kernel at the TAP's queue, because the stack did not read them in time), and what ran
alongside: the established connection's 512-byte echo round trips every 50 ms (median, p99,
max), new connections, ping loss, the HTTP transfer's SHA-256 and the stack's peak RSS.

    python -m benchmarks.floods [--secs 30] [--runtime cpython|micropython] [--out FILE]
"""
import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.floodkit import (FLOODS, pattern_sha, percentile, run_flood, tap_counters,  # noqa: E402
                            source_on_queue)
from tests.netns import Netns, StackProc, STACK_IP  # noqa: E402

TRANSFER = 4000000


def one(kind, secs, runtime, on_queue=None, single_queue=False):
    """kind's flood for secs; on_queue: from a source address whose fragments the kernel's
    own steering puts on that queue of the TAP (tests/floodkit.py source_on_queue);
    single_queue: into a TAP of one queue (made first, as `ip tuntap add` makes one)."""
    ns = Netns("fb")
    try:
        source = None if on_queue is None else source_on_queue(ns, on_queue)
        if single_queue:
            ns.run(["ip", "tuntap", "add", "dev", "ustk0", "mode", "tap"], check=True)
        # under MicroPython, the unix board (2 MB heap, its buffer sizes), as its tests
        board = ["--board", "unix"] if runtime == "micropython" else []
        st = StackProc(ns, "--serve", "echo,discard,chargen,http", *board, runtime=runtime)
        ns.run(["ping", "-n", "-c", "2", "-i", "0.1", STACK_IP])
        r = run_flood(ns, st, kind, secs, transfer=TRANSFER, source=source)
        tap = tap_counters(ns)
        c = st.stop()
        r["counters"] = c
        r["tap_total"] = tap
        return r
    finally:
        ns.close()


def row(r):
    s = r["secs"]
    rt = [x * 1000 for x in r["rtts"]]
    new = r["new"]
    return "| %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %d/%d | %.0f%% | %s | %.1f |" % (
        r["kind"], (r["hping_sent"] or 0) / s, (r["tap_read"] + r["tap_dropped"]) / s,
        r["tap_read"] / s, r["tap_dropped"] / s,
        "%.1f / %.0f / %.0f" % (percentile(rt, 0.5), percentile(rt, 0.99), max(rt)) if rt else "-",
        len(rt), "%d/%d" % (sum(1 for ok, _ in new if ok), len(new)),
        r["ping_got"], r["ping_sent"], 100.0 * (1 - r["ping_got"] / float(r["ping_sent"] or 1)),
        "ok" if r.get("sha256") == pattern_sha(TRANSFER) else "BAD",
        r["rss_peak_kb"] / 1024.0)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=30)
    ap.add_argument("--runtime", default="cpython")
    ap.add_argument("--only", default="", help="comma-separated flood kinds")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "floods.md"))
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    a = ap.parse_args(argv)
    kinds = [k for k in FLOODS if not a.only or k in a.only.split(",")]
    rows = []
    for k in kinds:
        r = one(k, a.secs, a.runtime)
        rows.append(row(r))
        print(rows[-1], flush=True)
    import ustack
    with open(a.out, "w") as f:
        f.write("# Floods (`invoke bench`, benchmarks/floods.py)\n\n")
        f.write("hping3 `--flood` from the Linux kernel in a throwaway namespace into the TAP of "
                "`ustack up --runtime %s` (compiled=%s), %.0f s each, on %s (%d CPUs, %s; "
                "load average at the end %s). Alongside each flood: an established TCP echo "
                "connection doing a 512-byte round trip every 50 ms, a new connection every "
                "0.5 s, a ping every 0.1 s and a %d-byte HTTP download checked by SHA-256.\n\n" % (
                    a.runtime, ustack.compiled, a.secs, platform.machine(), os.cpu_count(),
                    time.strftime("%Y-%m-%d"), "%.1f %.1f %.1f" % os.getloadavg(), TRANSFER))
        f.write("hping3: packets hping3 says it sent per second (a fragmented one is many "
                "frames). Offered: frames that reached the TAP per second (the stack's and the "
                "kernel's counters: read + dropped; includes the traffic alongside). Absorbed: "
                "frames the stack read from the TAP per second, each then counted by exactly "
                "one of its counters. Dropped: frames the kernel dropped at the TAP's queues "
                "per second (the TAP's tx_dropped: the stack did not read them in time). The "
                "TAP has 8 queues and a steering program (hal/tapsteer.py): the flows the "
                "stack talks to, ARP and ND on the one it reads first, SYNs, SYNs sent again "
                "and fragments on one each, the rest by flow hash.\n\n")
        f.write("| flood | hping3/s | offered/s | absorbed/s | dropped at TAP/s | echo RTT ms "
                "median / p99 / max | round trips | new conns ok | ping | ping loss | transfer "
                "| peak RSS MB |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for line in rows:
            f.write(line + "\n")
    print("wrote", a.out)
    if a.readme:
        from benchmarks.bench import update_readme
        with open(a.out) as f:
            update_readme(f.read(), "floods")


if __name__ == "__main__":
    main()
