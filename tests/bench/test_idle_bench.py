"""`benchmarks/idle_conns.py` (issue 13's idle-connections row) with its quick budget: 2 000
Linux connections to `ustack up --serve discard` all open and are held, the figures are
measured (not zero), and every buffer is back in the pool afterwards."""
import pytest

from tests.conftest import needs_netns

pytestmark = [needs_netns]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from benchmarks import idle_conns
    out = tmp_path_factory.mktemp("idle") / "idle.md"
    return idle_conns.main(["--quick", "--out", str(out)]), out.read_text()


def test_every_connection_opens_and_is_held_idle(run):
    r, _ = run
    assert r["established"] >= r["conns"] == 2000, r
    assert r["conn_per_s"] > 0 and r["pbuf_back"], r
    # an idle connection holds a TCB and a socket, no buffers and no congestion controller:
    # 633 bytes at 100 000 (1013 in session 9), more in this run's coarse few MB of growth
    # (issue 13's target is under 100 MB at 100 000; benchmarks/idle.md shows where it stands)
    assert 0 < r["bytes_per_conn"] < 4096, r
    # the stack's own RSS before any connection: 51 MB while pyroute2 (and with it sqlite3,
    # ssl, asyncio) was imported to configure the TAP's host side, 33 MB without (issue 13)
    assert r["rss_base_mb"] < 40, r


def test_the_table_states_the_extrapolation_to_100k(run):
    r, md = run
    assert "| 2000 |" in md and "RSS at 100 000" in md
    assert r["rss_100k_mb"] > r["rss_base_mb"]
