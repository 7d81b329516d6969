"""Seeded network simulator: TCP goodput against loss, in virtual time. Two stacks on the
in-memory wire, each direction impaired (hal/impair.py) with the same loss and a fixed one-way
delay; the result is deterministic for a given code version, so the table in
benchmarks/loss.md changes only when TCP's behaviour does (a congestion-control or
loss-recovery change shows up as a diff in review, and tests/sim/test_loss_table_regression.py
fails when goodput drops below it).

The grid (issue 12): congestion control {NewReno (RFC 5681/6582), CUBIC (RFC 9438)} x SACK
{off (RFC 6582 recovery), on (RFC 6675 + PRR, RACK-TLP)} x loss {0, 0.1, 1, 2, 5 %} x RTT
{1, 50, 200 ms} x loss model {random: independent drops; bursty: Gilbert-Elliott with the
same average loss and bursts of BURST frames on average}, then a reordering set (no loss,
Impair reorder=: a frame held back REORDER_MS ms). `--compare KEY=VALUE ...` runs every cell
with and without those config keys, same seeds, and prints both (how TCP_ACK_BURST=8 was
judged: 71 of 116 cells fell more than 5 %, 22 rose, so the default stayed 2)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.sim.test_tcp_impair import BIG, ImpairedBench, pair, transfer  # noqa: E402

SIZE = 2 * 1000 * 1000
CCS = ("newreno", "cubic")
LOSSES = (0.0, 0.001, 0.01, 0.02, 0.05)
# RTT (ms) -> one-way delay (ms): a frame sent in one tick is seen by the peer in the same
# tick and its ACK comes back in the next, so the round trip is 2 * delay + 1 ms.
RTTS = ((1, 0), (50, 25), (200, 100))
MODELS = ("random", "bursty")
BURST = 4          # mean burst length (frames) of the bursty model
REORDERS = (0.01, 0.05)
REORDER_MS = 3     # how long a reordered frame is held back
REORDER_RTT = 50
SEED = 1
HEADER = ("| CC | SACK | model | loss | RTT (ms) | time (virtual ms) | goodput (Mbit/s) | "
          "retransmits | fast retransmits | RTOs | tail loss probes |")


def one(cc="newreno", sack=True, loss=0.0, rtt=50, model="random", reorder=0.0, size=SIZE,
        seed=SEED, over=None):
    """One cell -> dict(ms, goodput, retransmits, fast, rtos, tlps); over: config keys on
    both stacks beside the table's."""
    imp = dict(loss=loss, delay_ms=dict(RTTS)[rtt], seed=seed)
    if model == "bursty" and loss:
        imp["burst"] = BURST
    if reorder:
        imp["reorder"] = reorder
        imp["reorder_ms"] = REORDER_MS
    b = ImpairedBench(dict(BIG, TCP_SACK=sack, TCP_CC=cc, **(over or {})), **imp)
    c, s = pair(b)
    t0 = b.t
    data = bytes(i % 251 for i in range(size))
    n, _ = transfer(b, c, s, data)
    assert n == size, (cc, sack, loss, rtt, model, reorder, n)
    ms = b.t - t0
    st = b.a.tcp.stats
    return dict(ms=ms, goodput=size * 8 / ms / 1000.0, retransmits=st.tx_retransmits,
                fast=st.fast_retransmits, rtos=st.rto_expired, tlps=st.tlp_probes)


def cells():
    """Every row of the table as (key, kwargs); key = (cc, sack, model, loss %, rtt)."""
    for rtt, _ in RTTS:
        for model in MODELS:
            for loss in LOSSES:
                if model == "bursty" and not loss:
                    continue   # no loss: the same cell as random
                for cc in CCS:
                    for sack in (False, True):
                        yield (cc, sack, model, loss, rtt), dict(cc=cc, sack=sack, loss=loss,
                                                                 rtt=rtt, model=model)
    for r in REORDERS:
        for cc in CCS:
            for sack in (False, True):
                yield ((cc, sack, "reorder %g%%" % (r * 100), 0.0, REORDER_RTT),
                       dict(cc=cc, sack=sack, rtt=REORDER_RTT, reorder=r))


def row(key, r):
    cc, sack, model, loss, rtt = key
    return "| %s | %s | %s | %.1f%% | %d | %d | %.2f | %d | %d | %d | %d |" % (
        cc, "on" if sack else "off", model, loss * 100, rtt, r["ms"], r["goodput"],
        r["retransmits"], r["fast"], r["rtos"], r["tlps"])


def parse(text):
    """benchmarks/loss.md -> {(cc, sack bool, model, loss fraction, rtt): goodput}."""
    out = {}
    for line in text.splitlines():
        f = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(f) != 11 or f[0] not in CCS:
            continue
        out[(f[0], f[1] == "on", f[2], round(float(f[3].rstrip("%")) / 100, 6),
             int(f[4]))] = float(f[6])
    return out


def main(out="benchmarks/loss.md"):
    lines = ["# TCP goodput against loss (virtual time, deterministic)", "",
             "%d bytes one way between two ustack instances on the in-memory wire, every cell. "
             "Loss is seeded (xorshift32, seed %d) and applied on both directions (data and "
             "ACKs). RTT 1 ms = no added delay (one tick of the virtual clock); 50 and 200 ms "
             "= 25 and 100 ms each way (plus the tick, so 51 and 201). `random`: independent "
             "drops; `bursty`: a Gilbert-Elliott chain with the same average loss in bursts of "
             "%d frames on average (hal/impair.py `burst=`). The chain steps once per frame (as "
             "netem's gemodel does), so a burst that begins as a sender falls idle still holds "
             "when it sends again: a retransmission after an RTO is then lost with probability "
             "1 - 1/%d, in either direction, and repeated RTO backoff (up to the 60 s cap) "
             "dominates the bursty cells at 1 %% and 5 %%. Reordering rows: no loss, %d ms "
             "RTT, a fraction of frames held back %d ms. CC: NewReno (RFC 5681/6582) or CUBIC "
             "(RFC 9438, `TCP_CC`); SACK off: RFC 6582 recovery; on: RFC 6675 + PRR, RACK-TLP. "
             "Send and receive buffers 256 KB, so 200 ms RTT caps goodput near 10 Mbit/s. "
             "Regenerate with `python -m benchmarks.loss_table`; "
             "tests/sim/test_loss_table_regression.py recomputes a subset and fails when "
             "goodput falls more than 5 %% below these figures." % (
                 SIZE, SEED, BURST, BURST, REORDER_RTT, REORDER_MS), "",
             HEADER, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, kw in cells():
        lines.append(row(key, one(**kw)))
    text = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(text)


def compare(over, noise=0.05):
    """Every cell with the defaults and with the config keys `over` (e.g. TCP_ACK_BURST=8),
    same seeds, in one run: a table of both goodputs and their ratio; returns the keys of
    the cells that fell more than `noise` below the default's."""
    print("| CC | SACK | model | loss | RTT (ms) | default (Mbit/s, RTOs) | %s | ratio |" %
          " ".join("%s=%s" % kv for kv in sorted(over.items())))
    print("|---|---|---|---|---|---|---|---|")
    worse = []
    for key, kw in cells():
        a = one(**kw)
        b = one(over=over, **kw)
        r = b["goodput"] / a["goodput"]
        if r < 1 - noise:
            worse.append(key)
        cc, sack, model, loss, rtt = key
        print("| %s | %s | %s | %.1f%% | %d | %.2f (%d) | %.2f (%d) | %.2f |" % (
            cc, "on" if sack else "off", model, loss * 100, rtt, a["goodput"], a["rtos"],
            b["goodput"], b["rtos"], r))
    print("%d cells more than %d %% below the default's" % (len(worse), noise * 100))
    return worse


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        # python -m benchmarks.loss_table --compare TCP_ACK_BURST=8 [KEY=VALUE ...]
        compare(dict((a.split("=")[0], int(a.split("=")[1])) for a in sys.argv[2:]))
    else:
        main(*sys.argv[1:])
