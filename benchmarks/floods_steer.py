"""The TAP's steering program (hal/tapsteer.py) on and off, back to back: each flood run with
`USTACK_TAP_STEER=1` then `=0` (the kernel's own flow steering and the reader before it), in
rounds, so that both meet the same load on a shared machine. Written to
benchmarks/floods-steer.md: per run, new connections through (each given 5 s), the
established echo connection's round trips (median / p99 / max, 5 s timeouts), ping loss,
frames absorbed per second.

    python -m benchmarks.floods_steer [--secs 30] [--rounds 3] [--only syn-rand-source,frag]
        [--single frag@q0]   (those kinds also into a TAP of one queue: no steering at all)
"""
import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.floodkit import percentile  # noqa: E402


def run(kind, secs, steer, single_queue=False):
    """kind: a flood of tests/floodkit.py FLOODS, or KIND@qN: from a source address the
    kernel's own steering hashes onto queue N (q0: the queue the stack reads first and
    sends on without the program)."""
    from benchmarks.floods import one
    old = os.environ.get("USTACK_TAP_STEER")
    os.environ["USTACK_TAP_STEER"] = "1" if steer else "0"
    base, _, q = kind.partition("@q")
    try:
        r = one(base, secs, "cpython", int(q) if q else None, single_queue)
        r["kind"] = kind
        r["mode"] = "1 queue" if single_queue else "on" if steer else "off"
    finally:
        if old is None:
            del os.environ["USTACK_TAP_STEER"]
        else:
            os.environ["USTACK_TAP_STEER"] = old
    c = r["counters"]
    assert (c.get("link.tap_steering") == 1) == steer, c
    assert c["link.tap_queues"] == (1 if single_queue else 8), c
    return r


def row(r):
    rt = [x * 1000 for x in r["rtts"]]
    new = r["new"]
    ok = sum(1 for good, _ in new if good)
    late = [s for good, s in new if good and s > 0.5]
    return "| %s | %s | %d/%d (%.0f%%) | %s | %s | %d | %d/%d | %.0f | %d |" % (
        r["kind"], r["mode"], ok, len(new), 100.0 * ok / max(1, len(new)),
        "%d, max %.1f s" % (len(late), max(late)) if late else "0",
        "%.1f / %.0f / %.0f" % (percentile(rt, 0.5), percentile(rt, 0.99), max(rt)) if rt else "-",
        len(r["fails"]), r["ping_got"], r["ping_sent"], r["tap_read"] / r["secs"],
        r["counters"].get("link.tap_queue_moves", 0))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="syn-rand-source,frag")
    ap.add_argument("--single", default="", help="kinds also run into a TAP of one queue")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "floods-steer.md"))
    a = ap.parse_args(argv)
    rows = []
    for n in range(a.rounds):
        for kind in a.only.split(","):
            modes = [(True, False), (False, False)]
            if kind in a.single.split(","):
                modes.append((False, True))
            for steer, single in modes:
                r = run(kind, a.secs, steer, single)
                rows.append(row(r))
                print(rows[-1], flush=True)
    import ustack
    with open(a.out, "w") as f:
        f.write("# The TAP's steering program on and off (`python -m benchmarks.floods_steer`)\n\n")
        f.write("hping3 `--flood` into the TAP of `ustack up` (compiled=%s), %.0f s each, the "
                "program on (`USTACK_TAP_STEER=1`, hal/tapsteer.py) then off (`=0`: the "
                "kernel's flow steering and the reader before it) back to back, %d rounds, on "
                "%s (%d CPUs shared with other work, %s; load average at the end %s). "
                "Alongside, as in benchmarks/floods.md: an echo round trip every 50 ms, a new "
                "connection every 0.5 s (each given 5 s; Linux retransmits its SYN after 1 s), a "
                "ping every 0.1 s, an HTTP download. The new connections run one after the "
                "other (a slow one delays the next, so fewer are tried when they are slow); "
                "\"after > 0.5 s\" counts those that needed a retransmitted SYN or more. "
                "KIND@q0: hping3 sends from an address (-a) whose frames the kernel's own "
                "steering puts on queue 0, the one the stack sends on and reads first when "
                "the program is off (found by sending a fragment of it into a TAP of 8 "
                "queues first: tests/floodkit.py source_on_queue); \"first queue moved\": "
                "times the reader without the program moved its first queue off a queue a "
                "flood kept full (hal/tap.py SWITCH). \"1 queue\": the same flood into a TAP "
                "of one queue (`ip tuntap add` without multi_queue, as a one-queue link has): "
                "the flood and the flows we talk to share its ring.\n\n" % (
                    ustack.compiled, a.secs, a.rounds, platform.machine(), os.cpu_count(),
                    time.strftime("%Y-%m-%d"), "%.1f %.1f %.1f" % os.getloadavg()))
        f.write("| flood | program | new conns ok | of them after > 0.5 s | echo RTT ms median "
                "/ p99 / max | echo 5 s timeouts | ping | absorbed frames/s | first queue "
                "moved |\n")
        f.write("|---|---|---|---|---|---|---|---|---|\n")
        for line in rows:
            f.write(line + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
