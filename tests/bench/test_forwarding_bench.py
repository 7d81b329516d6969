"""`benchmarks/forwarding.py` (issue 14's forwarding figures) end to end with its quick budget:
the same two Linux hosts reach each other through ustack (`--forward`, two TAPs) and through a
Linux router namespace; every row is a measured positive number, ustack's forwarding counter
saw the traffic, and the table names both routers and their ratio."""
import os

import pytest

from tests.conftest import needs_netns

pytestmark = [needs_netns]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from benchmarks import forwarding
    out = tmp_path_factory.mktemp("fwd") / "forwarding.md"
    res = forwarding.main(["--quick", "--out", str(out)])
    return res, out.read_text()


def test_both_routers_forward_tcp_udp_and_ping(run):
    res, _ = run
    for router in ("ustack", "linux"):
        r = res[router]
        assert r["tcp_mbs"] > 0 and r["ping_ms"] > 0, (router, r)
        # some datagrams crossed, and never more than were offered
        assert 0 < r["udp_pps"] <= r["udp_offered"], (router, r)
    # the transfer (SHA-256 checked inside) and the datagrams went through ustack's forwarding
    assert res["ustack"]["fwd_packets"] > 2000000 // 1500, res["ustack"]
    assert res["ustack"]["cpu_s_gb"] > 0


def test_the_table_shows_every_row_for_both_with_ratios(run):
    from benchmarks.forwarding import ROWS
    _, md = run
    for _, label in ROWS:
        line = [ln for ln in md.splitlines() if ln.startswith("| %s |" % label)]
        assert len(line) == 1, (label, md)
    assert "| ustack | Linux | ustack / Linux |" in md
