"""Seeded network simulator: TCP goodput against loss, in virtual time. Two stacks on the
in-memory wire, each direction impaired with the given loss and a fixed one-way delay; the
result is deterministic for a given code version, so the table in benchmarks/loss.md changes
only when TCP's behaviour does (a congestion-control or loss-recovery change shows up as a
diff). Each loss rate runs twice: SACK off (NewReno's fast retransmit and partial ACKs,
RFC 6582) and on (RFC 6675 recovery with PRR, RACK-TLP's probe)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.sim.test_tcp_impair import BIG, ImpairedBench, pair, transfer  # noqa: E402

SIZE = 2 * 1000 * 1000
DELAY_MS = 10  # each way: RTT 20 ms
LOSSES = (0.0, 0.001, 0.01, 0.02, 0.05, 0.10)


def one(loss, seed=1, sack=True):
    b = ImpairedBench(dict(BIG, TCP_SACK=sack), loss=loss, delay_ms=DELAY_MS, seed=seed)
    c, s = pair(b)
    t0 = b.t
    data = bytes(i % 251 for i in range(SIZE))
    transfer(b, c, s, data)
    ms = b.t - t0
    st = b.a.tcp.stats
    return ms, st.tx_retransmits, st.fast_retransmits, st.rto_expired, st.tlp_probes


def main(out="benchmarks/loss.md"):
    lines = ["# TCP goodput against loss (virtual time, deterministic)", "",
             "%d bytes one way between two ustack instances on the in-memory wire, %d ms one-way "
             "delay (RTT %d ms), NewReno, seeded loss on both directions; SACK off (NewReno "
             "recovery, RFC 6582) and on (RFC 6675 + PRR, RACK-TLP). Regenerate with "
             "`python -m benchmarks.loss_table`." % (SIZE, DELAY_MS, 2 * DELAY_MS), "",
             "| loss | SACK | time (virtual ms) | goodput (Mbit/s) | retransmits | "
             "fast retransmits | RTOs | tail loss probes |",
             "|---|---|---|---|---|---|---|---|"]
    for loss in LOSSES:
        for sack in (False, True):
            ms, rx, fr, rto, tlp = one(loss, sack=sack)
            lines.append("| %.1f%% | %s | %d | %.2f | %d | %d | %d | %d |" % (
                loss * 100, "on" if sack else "off", ms, SIZE * 8 / ms / 1000.0, rx, fr, rto,
                tlp))
    text = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
