"""benchmarks/request_cost.py (issue 13) with a tiny budget: `ustack up --serve echo`'s runner
and services answer every TCP echo, UDP echo and ping with exactly its one reply (the tool
stops on a missing, doubled or wrong one), and each row gets a figure."""


def test_request_cost_answers_every_request_once():
    from benchmarks import request_cost
    r = request_cost.main(["--requests", "300", "--rounds", "1"])
    assert set(r) == {"tcp", "udp", "ping"}, r
    assert all(0 < v < 10000 for v in r.values()), r


def test_request_cost_with_a_gap_sleeps_before_each_request_and_counts_no_sleep():
    """--gap: a sleep before each request (the caches cold, as between a ping's requests); the
    sleep itself is not CPU time, so 100 requests 5 ms apart do not read as 5 ms each."""
    import time
    from benchmarks import request_cost
    t = time.monotonic()
    try:
        r = request_cost.main(["--requests", "100", "--rounds", "1", "--only", "ping",
                               "--gap", "5"])
    finally:
        request_cost.GAP[0] = 0.0
    assert time.monotonic() - t >= 100 * 0.005
    assert 0 < r["ping"] < 5000, r


def test_request_cost_base_runs_each_build_in_its_own_process(tmp_path, capsys):
    """--base DIR: each round runs this package and DIR/ustack in child processes (order
    swapped every round); both get a figure and each line names where its package came from.
    DIR here: a link to this checkout under another name, so both children differ only in
    how ustack was found."""
    import os
    from benchmarks import request_cost
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.symlink(root, str(tmp_path / "ustack"))
    r = request_cost.main(["--requests", "200", "--rounds", "2", "--only", "udp",
                           "--base", str(tmp_path)])
    assert set(r) == {"udp"} and set(r["udp"]) == {"new", "base"}, r
    assert all(0 < v < 10000 for v in r["udp"].values()), r
    out = capsys.readouterr().out
    assert "base (%s)" % str(tmp_path / "ustack") in out, out
