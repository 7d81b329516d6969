"""benchmarks/loss.md is the simulator's goodput table (benchmarks/loss_table.py: seeded loss,
virtual time, so every cell is deterministic for a given code version). These tests recompute
a representative subset of its cells and fail when goodput falls more than NOISE below the
committed figure: a change that slows TCP down must regenerate the table, so the cost shows in
review. They also pin the comparisons the table shows and that matter: CUBIC (RFC 9438) ahead
of NewReno at 1 % loss and 50 ms RTT, SACK recovery (RFC 6675) ahead of NewReno's at 5 %."""
import os

import pytest

from benchmarks import loss_table as lt

NOISE = 0.05   # deterministic simulator: only float formatting and rounding in the table
TABLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks", "loss.md")

# (cc, sack, model, loss, rtt, reorder): quick cells across every axis of the grid
SUBSET = [
    ("newreno", False, "random", 0.0, 50, 0.0),
    ("cubic", True, "random", 0.001, 50, 0.0),
    ("newreno", False, "random", 0.01, 50, 0.0),
    ("newreno", True, "random", 0.01, 50, 0.0),
    ("cubic", False, "random", 0.01, 50, 0.0),
    ("cubic", True, "random", 0.01, 50, 0.0),
    ("newreno", False, "random", 0.05, 50, 0.0),
    ("newreno", False, "random", 0.02, 1, 0.0),
    ("cubic", True, "random", 0.02, 1, 0.0),
    ("newreno", True, "random", 0.05, 50, 0.0),
    ("cubic", True, "random", 0.05, 1, 0.0),
    ("newreno", True, "bursty", 0.01, 1, 0.0),
    ("cubic", True, "bursty", 0.001, 50, 0.0),
    ("cubic", True, "random", 0.01, 200, 0.0),
    ("cubic", True, "reorder 1%", 0.0, 50, 0.01),
    ("newreno", False, "reorder 5%", 0.0, 50, 0.05),
]
_cache = {}


def table():
    if "table" not in _cache:
        with open(TABLE) as f:
            _cache["table"] = lt.parse(f.read())
    return _cache["table"]


def goodput(cc, sack, model, loss, rtt, reorder=0.0):
    key = (cc, sack, model, loss, rtt)
    if key not in _cache:
        kw = dict(cc=cc, sack=sack, loss=loss, rtt=rtt, model=model, reorder=reorder)
        if reorder:
            kw["model"] = "random"
        _cache[key] = lt.one(**kw)["goodput"]
    return _cache[key]


def test_the_committed_table_covers_the_whole_grid():
    t = table()
    rows = list(lt.cells())
    assert len(t) == len(rows) == 2 * 2 * (5 + 4) * 3 + 2 * 2 * len(lt.REORDERS)
    for key, _ in rows:
        assert key in t, key


@pytest.mark.parametrize("cell", SUBSET, ids=["%s-%s-%s-%g-%d" % c[:5] for c in SUBSET])
def test_goodput_has_not_regressed_below_the_committed_table(cell):
    cc, sack, model, loss, rtt, reorder = cell
    want = table()[(cc, sack, model, loss, rtt)]
    got = goodput(cc, sack, model, loss, rtt, reorder)
    assert got >= want * (1 - NOISE), (
        "goodput %.2f Mbit/s, the table says %.2f: a regression, or regenerate "
        "benchmarks/loss.md with python -m benchmarks.loss_table" % (got, want))


def test_cubic_beats_newreno_at_1_percent_loss_and_50_ms_rtt():
    # RFC 9438 4.6: beta 0.7 instead of 0.5 and a cubic regrowth recover more per loss;
    # summed over three seeds (one seed's loss pattern alone gave 1.11 with SACK off once
    # limited transmit sped both up: 1.11, 1.60, 1.11 for seeds 1-3)
    for sack in (False, True):
        c = n = 0
        for seed in (1, 2, 3):
            c += lt.one(cc="cubic", sack=sack, loss=0.01, rtt=50, seed=seed)["goodput"]
            n += lt.one(cc="newreno", sack=sack, loss=0.01, rtt=50, seed=seed)["goodput"]
        assert c > 1.15 * n, (sack, c, n)


def test_a_loss_right_after_a_recovery_point_is_fast_retransmitted_not_timed_out():
    # RFC 6582 3.2 step 2: duplicate ACKs at the old recovery point "cover more than" it (the
    # highest sequence number sent then): at 1 ms RTT each needless 200 ms RTO cost 200 RTTs
    # (2 % loss, SACK off: 1 RTO and 47.6 Mbit/s NewReno, 3 and 22.1 CUBIC before the fix)
    for cc in lt.CCS:
        r = lt.one(cc=cc, sack=False, loss=0.02, rtt=1)
        assert r["rtos"] <= 1 and r["goodput"] > 45, (cc, r)


def test_sack_recovery_beats_newreno_recovery_at_5_percent_loss():
    # RFC 6675: several holes repaired per round trip, against one per RTT (RFC 6582)
    assert (goodput("newreno", True, "random", 0.05, 50)
            > 1.25 * goodput("newreno", False, "random", 0.05, 50))


def test_rack_keeps_reordering_from_being_retransmitted():
    # RFC 8985 6: once reordering is seen, a segment held back 3 ms is waited for (reo_wnd =
    # min_RTT / 4), not retransmitted; without SACK (RFC 6582) every overtaken one goes again
    for cc in lt.CCS:
        with_rack = lt.one(cc=cc, sack=True, rtt=lt.REORDER_RTT, reorder=0.05)
        without = lt.one(cc=cc, sack=False, rtt=lt.REORDER_RTT, reorder=0.05)
        assert with_rack["retransmits"] <= 3 < 10 < without["retransmits"], cc
