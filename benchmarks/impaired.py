"""ustack against Linux over one real impaired path (issue 12): goodput at each loss rate and
added delay, for NewReno and CUBIC, ustack->Linux and Linux->ustack beside Linux->Linux.

    python -m benchmarks.impaired [--quick] [--secs S] [--out benchmarks/impaired.md] [--readme]
                                  [--long MB] [--long-only]

The path (tests/impaired.py): vde2's wirefilter between two vde_switches, each owning a TAP
in its own namespace. ns a holds ustack's TAP and Linux A's bridge on the same switch port,
ns b holds Linux B: so ustack<->B and A<->B cross the same filter with the same loss (each
direction, uniform random), the same added delay (half of it each way) and nothing else.
This kernel has no netem; wirefilter is user space, so it also caps what any path can carry
(the loss-free Linux->Linux figure shows the cap).

Per cell, each transfer runs for --secs seconds:
- ustack->Linux: B fetches /bytes/N from `ustack up --serve http --config TCP_CC=cc`, hashes
  what arrived and compares it with the pattern's SHA-256;
- Linux->ustack: B sends the pattern to ustack's discard service; the time runs until
  ustack's FIN, which discard sends once it has read the stream to its end (every byte
  delivered; tests/interop/test_impaired_path.py checks the SHA-256 on ustack's sockets);
- Linux->Linux: A sends the pattern to a sink in B (SHA-256 compared), the sending socket's
  TCP_CONGESTION set to the same algorithm (reno for newreno; the namespaces default to bbr,
  and a namespace may not change its default to an algorithm init_net restricts).
Frames the filter dropped are counted at its two TAPs (in minus out, the data's direction);
retransmissions are ustack's tcp.tx_retransmits and the sending kernel's TcpRetransSegs.
Needs root and vde2.
"""
import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.impaired import (B_IP, FETCH, LINUX_CC, SENDER, SINK, STACK_IP,  # noqa: E402
                            ImpairedPath, linux_retransmits, pattern_sha, py, sink_result,
                            start_sink)

LOSSES = (0.0, 0.5, 2.0, 5.0)
DELAYS = (0, 20)  # ms added to the RTT (half each way)
CCS = ("newreno", "cubic")
HUGE = 10 ** 12  # /bytes/N: more than any run fetches
PORT = 9200


def ustack_cell(path, cc, secs):
    """(ustack->Linux, Linux->ustack) as dicts: MB/s, bytes, intact, dropped, retransmits."""
    path.start_stack("--serve", "discard,http", "--config", "TCP_CC=" + cc)
    try:
        before = path.frames()
        f = py(path.b, FETCH, STACK_IP, HUGE, secs, timeout=secs + 120)
        got, sha, dt = int(f[1]), f[2], float(f[3])
        up = {"mbs": got / dt / 1e6, "bytes": got, "intact": sha == pattern_sha(got),
              "dropped": path.dropped_since(before)[0]}
        before = path.frames()
        r0 = linux_retransmits(path.b)
        f = py(path.b, SENDER, STACK_IP, 9, 0, secs, LINUX_CC[cc], timeout=secs + 120)
        assert f[3] == LINUX_CC[cc], f
        sent, dt = int(f[1]), float(f[2])
        down = {"mbs": sent / dt / 1e6, "bytes": sent, "dropped": path.dropped_since(before)[1],
                "retransmits": linux_retransmits(path.b) - r0}
    finally:
        c = path.stop_stack()
    up["retransmits"] = c.get("tcp.tx_retransmits", 0)  # zeros are left out
    # the sender's EOF came after ustack's discard read to the end of the stream: every byte
    # was delivered in order (tcp.rx_data_bytes counts only segments that arrived in order)
    down["intact"] = sent > 0
    return up, down


def linux_cell(path, cc, secs):
    """Linux A -> Linux B over the same filter."""
    sink = start_sink(path.b, PORT)
    before = path.frames()
    r0 = linux_retransmits(path.a)
    f = py(path.a, SENDER, B_IP, PORT, 0, secs, LINUX_CC[cc], timeout=secs + 120)
    assert f[3] == LINUX_CC[cc], f
    sent, dt = int(f[1]), float(f[2])
    n, sha, _ = sink_result(sink)
    return {"mbs": sent / dt / 1e6, "bytes": n, "intact": n == sent and sha == pattern_sha(n),
            "dropped": path.dropped_since(before)[0],
            "retransmits": linux_retransmits(path.a) - r0}


def measure(secs, losses=LOSSES, delays=DELAYS, ccs=CCS, log=print):
    """{(loss, delay, cc): {"up": .., "down": .., "linux": ..}}."""
    res = {}
    for delay in delays:
        for loss in losses:
            path = ImpairedPath(loss=loss, delay_ms=delay // 2, tag="bimp")
            try:
                for cc in ccs:
                    up, down = ustack_cell(path, cc, secs)
                    res[(loss, delay, cc)] = {"up": up, "down": down,
                                              "linux": linux_cell(path, cc, secs)}
                    r = res[(loss, delay, cc)]
                    log("loss %g %% delay %d ms %s: ustack->Linux %.2f, Linux->ustack %.2f, "
                        "Linux->Linux %.2f MB/s" % (loss, delay, cc, r["up"]["mbs"],
                                                    r["down"]["mbs"], r["linux"]["mbs"]))
            finally:
                path.close()
    return res


def long_run(mb, log=print):
    """Issue 12's long interop run: mb MB each way through 2 % loss and reordering (1 ms
    jitter, no FIFO), SHA-256 both ways, each direction read through `ss -ti`: Linux's as the
    sender (retransmissions, reordering measured, the D-SACKs it got from us: dsack_dups and
    TcpExtTCPDSACKRecv), ustack's as the sender (sack, rack, reordering) and its counters
    (recovery by SACK and RACK, not timeouts). Returns the report's lines."""
    from tests.interop.test_linux_sack import ss_info, nstat, sampled_while, _ustack_ss
    n = mb * 1000 * 1000
    path = ImpairedPath(loss=2, reorder=True, tag="blong")
    k = ("TcpExtTCPDSACKRecv", "TcpExtTCPSACKReorder", "TcpRetransSegs", "TcpExtTCPTimeouts")
    try:
        # ustack -> Linux: B fetches from `ustack up`'s http; ustack ss -ti sampled meanwhile
        path.start_stack("--serve", "http")
        before = path.frames()
        t0 = time.monotonic()
        fetch = path.b.popen([sys.executable, "-c", FETCH, STACK_IP, str(n), "0"])
        us = sampled_while(fetch, lambda: _ustack_ss(path.a), every=1.0)
        out = fetch.communicate(timeout=600)[0]
        up_s = time.monotonic() - t0
        f = [ln for ln in out.splitlines() if ln.startswith("FETCH ")][0].split()
        up_ok = f[1:3] == [str(n), pattern_sha(n)]
        up_drop = path.dropped_since(before)[0]
        c = path.stop_stack()
        # Linux -> ustack: B sends to a hashing sink on ustack's sockets; Linux's ss sampled
        sink = path.run_program(SINK, ["9301"], "listening")
        before = path.frames()
        n0 = nstat(path.b, *k)
        t0 = time.monotonic()
        snd = path.b.popen([sys.executable, "-c", SENDER, STACK_IP, "9301", str(n), "0",
                            "cubic"])
        lx = sampled_while(snd, lambda: ss_info(path.b, STACK_IP), every=0.5)
        snd.communicate(timeout=600)
        so, _ = sink.communicate(timeout=120)
        down_s = time.monotonic() - t0
        n1 = nstat(path.b, *k)
        line = [ln for ln in so.splitlines() if ln.startswith("SINK ")]
        down_ok = bool(line) and line[0].split()[1:3] == [str(n), pattern_sha(n)]
        down_drop = path.dropped_since(before)[1]
    finally:
        path.close()
    mib = dict((x, n1[x] - n0[x]) for x in k)
    keys = ("dsack_dups", "reordering", "reord_seen", "retrans", "bytes_retrans", "lost")
    lines = ["", "## %d MB each way through 2 %% loss and reordering" % mb, "",
             "ustack->Linux: %.1f s, intact %s, %d frames dropped, ustack %d retransmissions "
             "(%d fast, %d lost retransmissions found, %d TLP, %d RTO), %d D-SACKs received; "
             "`ustack ss -ti`: %s" % (
                 up_s, up_ok, up_drop, c.get("tcp.tx_retransmits", 0),
                 c.get("tcp.fast_retransmits", 0), c.get("tcp.lost_rexmits", 0),
                 c.get("tcp.tlp_probes", 0), c.get("tcp.rto_expired", 0),
                 c.get("tcp.rx_dsack", 0), " ".join(us) if us else "-"), "",
             "Linux->ustack: %.1f s, intact %s, %d frames dropped; Linux's `ss -ti`: %s; "
             "nstat: %s" % (down_s, down_ok, down_drop,
                            " ".join("%s:%s" % (x, lx[x]) for x in keys if x in lx),
                            ", ".join("%s %d" % kv for kv in sorted(mib.items())))]
    for ln in lines:
        log(ln)
    if not (up_ok and down_ok):
        raise SystemExit("long run not intact: up %s, down %s" % (up_ok, down_ok))
    return lines


def cell(t):
    flag = "" if t["intact"] else " **NOT INTACT**"
    return "%.2f (%d drop, %d rtx)%s" % (t["mbs"], t["dropped"], t["retransmits"], flag)


def table(res, secs, quick):
    import ustack
    text = ["# ustack and Linux over one impaired path", "",
            "Measured %s on %s, %d cores shared with other work (noisy: compare within a row); "
            "`ustack up` (CPython runtime, core %s); Linux %s. Each transfer runs %g s over "
            "vde2's wirefilter (uniform random loss each way, delay added to the RTT, half each "
            "way); ustack and Linux A share the filter's port, so every column crosses the same "
            "impairment. MB/s of goodput (bytes delivered and checked: SHA-256, or for discard "
            "delivery up to ustack's FIN), frames the filter dropped in the data's "
            "direction, and the sender's retransmissions. Made by `invoke bench` "
            "(benchmarks/impaired.py)%s."
            % (time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count() or 1,
               "Cython-compiled" if ustack.compiled else "pure Python", platform.release(),
               secs, ", --quick" if quick else ""),
            "", "| cc | delay | loss | ustack->Linux | Linux->ustack | Linux->Linux | "
            "ratios to Linux->Linux (up, down) | ustack->Linux vs its loss-free |",
            "|---|---|---|---|---|---|---|---|"]
    for (loss, delay, cc), r in sorted(res.items(), key=lambda kv: (kv[0][2], kv[0][1],
                                                                      kv[0][0])):
        lin = r["linux"]["mbs"] or 1e-9
        free = res.get((0.0, delay, cc))
        own = "%.2f" % (r["up"]["mbs"] / free["up"]["mbs"]) if free and loss else "-"
        text.append("| %s | %d ms | %g %% | %s | %s | %s | %.2f, %.2f | %s |" % (
            cc, delay, loss, cell(r["up"]), cell(r["down"]), cell(r["linux"]),
            r["up"]["mbs"] / lin, r["down"]["mbs"] / lin, own))
    text += ["", "Targets (issue 12): with 20 ms added delay, at least 0.5 of Linux->Linux in "
             "both directions at every loss rate; with no added delay, ustack->Linux at 2 % "
             "loss at least 0.5 of its own loss-free goodput."]
    return "\n".join(text) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 s transfers")
    ap.add_argument("--secs", type=float, default=None, help="seconds per transfer (default 6)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "impaired.md"))
    ap.add_argument("--readme", action="store_true",
                    help="also show the results in README.md (between its impaired markers)")
    ap.add_argument("--long", type=int, default=None,
                    help="MB each way of the long 2 %% loss run (default 50, 8 with --quick; "
                    "0: none)")
    ap.add_argument("--long-only", action="store_true", help="only the long run, printed")
    a = ap.parse_args()
    secs = a.secs or (2.0 if a.quick else 6.0)
    mb = a.long if a.long is not None else (8 if a.quick else 50)
    err = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if a.long_only:
        long_run(mb or 50, log=print)
        return
    res = measure(secs, log=err)
    text = table(res, secs, a.quick)
    if mb:
        text += "\n".join(long_run(mb, log=err)) + "\n"
    from benchmarks.bench import publish
    publish(text, a.out, "impaired" if a.readme else None)
    bad = [k for k, r in res.items() if not all(r[d]["intact"] for d in ("up", "down", "linux"))]
    if bad:
        raise SystemExit("transfers not intact: %r" % bad)


if __name__ == "__main__":
    main()
