"""benchmarks/latency_ab.py (issue 13's latency rows, before/after) with the bench's smoke
budget: two copies of `ustack up` (this checkout as it is and with `--offload off`) come up,
each row gives every copy a figure and a CPU per request, and the table and the JSON say so."""
import json

from tests.conftest import needs_netns

pytestmark = [needs_netns]


def test_latency_ab_gives_every_copy_every_row(tmp_path):
    from benchmarks import latency_ab
    out = tmp_path / "ab.md"
    res = latency_ab.main(["--smoke", "--rounds", "1", "--with", "", "--copy", "new=",
                           "--copy", "plain=", "--up", "plain=--offload off",
                           "--out", str(out)])
    assert [p["label"] for p in res["peers"]] == ["new", "plain"]
    assert "offload=none" in res["peers"][1]["info"] and "--offload off" in \
        res["peers"][1]["info"]
    for label in ("new", "plain"):
        (s,) = res["samples"][label]
        assert set(s) == {"ping", "echo_med", "echo_p99", "udp_pps"}, s
        assert all(v > 0 for v in s.values()), s
        assert set(res["cpu"][label]) == {"ping", "echo", "udp"}
        assert all(v[0] > 0 for v in res["cpu"][label].values()), res["cpu"]
    text = out.read_text()
    assert "| TCP echo 64 B, median (us) |" in text and "| peer CPU per ping (us) |" in text
    assert json.loads((tmp_path / "ab.json").read_text())["samples"] == res["samples"]
