"""Seeded network simulator: TCP goodput against loss, in virtual time. Two stacks on the
in-memory wire, each direction impaired with the given loss and a fixed one-way delay; the
result is deterministic for a given code version, so the table in benchmarks/loss.md changes
only when TCP's behaviour does (a congestion-control change shows up as a diff)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.sim.test_tcp_impair import BIG, ImpairedBench, pair, transfer  # noqa: E402

SIZE = 2 * 1000 * 1000
DELAY_MS = 10  # each way: RTT 20 ms
LOSSES = (0.0, 0.001, 0.01, 0.02, 0.05, 0.10)


def one(loss, seed=1):
    b = ImpairedBench(BIG, loss=loss, delay_ms=DELAY_MS, seed=seed)
    c, s = pair(b)
    t0 = b.t
    data = bytes(i % 251 for i in range(SIZE))
    transfer(b, c, s, data)
    ms = b.t - t0
    st = b.a.tcp.stats
    return ms, st.tx_retransmits, st.fast_retransmits, st.rto_expired


def main(out="benchmarks/loss.md"):
    lines = ["# TCP goodput against loss (virtual time, deterministic)", "",
             "%d bytes one way between two ustack instances on the in-memory wire, %d ms one-way "
             "delay (RTT %d ms), NewReno, seeded loss on both directions. Regenerate with "
             "`python -m benchmarks.loss_table`." % (SIZE, DELAY_MS, 2 * DELAY_MS), "",
             "| loss | time (virtual ms) | goodput (Mbit/s) | retransmits | fast retransmits | RTOs |",
             "|---|---|---|---|---|---|"]
    for loss in LOSSES:
        ms, rx, fr, rto = one(loss)
        lines.append("| %.1f%% | %d | %.2f | %d | %d | %d |" % (loss * 100, ms, SIZE * 8 / ms / 1000.0,
                                                             rx, fr, rto))
    text = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
