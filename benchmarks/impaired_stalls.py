"""Where ustack->Linux goodput goes at 0 ms / 2 % loss (issue 12): the 0 ms cells of
benchmarks/impaired.py (0 % and 2 %, each CC) with a pcap of ustack's TAP during the 2 %
transfer, read back as stalls - gaps of more than 3 ms with nothing on the wire - named by
what ended them: an ACK arriving, new data (a probe or a late send), the last segment again
(a tail loss probe), or the segment at SND.UNA (in or out of a recovery: a retransmission
timeout, RACK's timer, the probe at a recovery's tail), with the ACK delay each probe saw.

    python -m benchmarks.impaired_stalls [--runs N] [--secs S] [--cc cubic,newreno]

Needs root, vde2, tcpdump and tshark. Prints one line per run and CC (ratio to the loss-free
figure, beside Linux->Linux's own), ustack's recovery counters, then the stalls."""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.impaired import FETCH, STACK_IP, ImpairedPath, pattern_sha, py  # noqa: E402
from benchmarks.impaired import HUGE, linux_cell  # noqa: E402

GAP = 0.003  # s: longer than any RTT of this path when nothing is wrong
KEYS = ("tlp", "rto", "retrans", "recover", "rexmit", "undo", "spurious", "dsack", "rack")


def fetch(path, cc, secs, pcap=None):
    """ustack->Linux for secs (with a pcap of ustack's TAP when pcap names a file)."""
    path.start_stack("--serve", "http", "--config", "TCP_CC=" + cc)
    td = None
    try:
        if pcap:
            td = path.a.popen(["tcpdump", "-i", "ustk0", "-s", "96", "-w", pcap, "-U", "tcp"])
            time.sleep(1)
        f = py(path.b, FETCH, STACK_IP, HUGE, secs, timeout=secs + 120)
        got, sha, dt = int(f[1]), f[2], float(f[3])
        assert sha == pattern_sha(got)
    finally:
        if td is not None:
            time.sleep(0.5)
            td.terminate()
            td.wait()
        c = path.stop_stack()
    return got / dt / 1e6, {k[4:]: v for k, v in c.items()
                            if k.startswith("tcp.") and any(s in k for s in KEYS)}


def stalls(pcap):
    """{(ended by, 'rec'/'open'/''): [gap s]}, {probe kind: [ACK delay s]}, seconds of data."""
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.time_relative",
                          "-e", "ip.src", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len",
                          "-e", "tcp.srcport"], capture_output=True, text=True).stdout
    gaps = collections.defaultdict(list)
    delays = collections.defaultdict(list)
    hi = una = prev = probe = point = start = end = None
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 6 or not f[0]:
            continue
        t, mine, seq, ack, n = float(f[0]), f[1] == STACK_IP, int(f[2]), int(f[3]), int(f[4] or 0)
        if mine and (f[5] != "80" or not n):
            continue
        gap = t - prev if prev is not None else 0
        prev = t
        if mine:
            start = t if start is None else start
            end = t
            e = (seq + n) & 0xFFFFFFFF
            hi = seq if hi is None else hi
            new = e != hi and ((e - hi) & 0xFFFFFFFF) < 0x80000000
            kind = ("new" if new else "SND.UNA again" if seq == una else
                    "last segment again" if e == hi else "a hole again")
            rec = point is not None
            if kind != "new" and point is None:
                point = hi  # a retransmission: recovery until an ACK reaches this
            if gap > GAP and start != t:
                gaps[(kind, "rec" if rec else "open")].append(gap)
                if kind in ("new", "last segment again"):
                    probe = (t, kind)
            if new:
                hi = e
        else:
            if una is None or ((ack - una) & 0xFFFFFFFF) < 0x80000000:
                una = ack
            if point is not None and ((una - point) & 0xFFFFFFFF) < 0x80000000:
                point = None
            if gap > GAP and start is not None:
                gaps[("an ACK", "")].append(gap)
            if probe is not None:
                delays[probe[1]].append(t - probe[0])
                probe = None
    return gaps, delays, (end - start) if start is not None else 0.0


def report(pcap, log=print):
    gaps, delays, dur = stalls(pcap)
    total = 0.0
    for (kind, where), v in sorted(gaps.items()):
        v.sort()
        total += sum(v)
        log("  stalls ended by %-18s %-4s %4d, %.3f s (median %.1f ms)"
            % (kind, where, len(v), sum(v), 1000 * v[len(v) // 2]))
    log("  stalled %.2f s of %.2f s" % (total, dur))
    for kind, v in sorted(delays.items()):
        v.sort()
        log("  probe (%s): %d, its ACK after %.1f ms median, %.1f ms max"
            % (kind, len(v), 1000 * v[len(v) // 2], 1000 * v[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--secs", type=float, default=6.0)
    ap.add_argument("--cc", default="cubic,newreno")
    a = ap.parse_args()
    ccs = a.cc.split(",")
    tmp = tempfile.mkdtemp(prefix="stalls-")
    os.chmod(tmp, 0o777)  # tcpdump writes as its own user
    for run in range(a.runs):
        res = {}
        for loss in (0.0, 2.0):
            path = ImpairedPath(loss=loss, delay_ms=0, tag="stl")
            try:
                for cc in ccs:
                    pcap = os.path.join(tmp, "%s-%d.pcap" % (cc, run)) if loss else None
                    res[(loss, cc)] = fetch(path, cc, a.secs, pcap) + (pcap,)
                    res[(loss, cc, "linux")] = linux_cell(path, cc, a.secs)["mbs"]
            finally:
                path.close()
        for cc in ccs:
            u0, u2, l0, l2 = (res[(0.0, cc)][0], res[(2.0, cc)][0], res[(0.0, cc, "linux")],
                              res[(2.0, cc, "linux")])
            print("run %d %s: ustack->Linux %.2f / %.2f MB/s at 0 / 2 %%: %.2f; Linux->Linux "
                  "%.2f / %.2f: %.2f" % (run, cc, u0, u2, u2 / u0, l0, l2, l2 / l0), flush=True)
            print("  counters at 2 %%: %s" % json.dumps(res[(2.0, cc)][1], sort_keys=True))
            report(res[(2.0, cc)][2])
    print("pcaps kept in %s" % tmp)


if __name__ == "__main__":
    main()
