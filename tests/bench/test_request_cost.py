"""benchmarks/request_cost.py (issue 13) with a tiny budget: `ustack up --serve echo`'s runner
and services answer every TCP echo, UDP echo and ping with exactly its one reply (the tool
stops on a missing, doubled or wrong one), and each row gets a figure."""


def test_request_cost_answers_every_request_once():
    from benchmarks import request_cost
    r = request_cost.main(["--requests", "300", "--rounds", "1"])
    assert set(r) == {"tcp", "udp", "ping"}, r
    assert all(0 < v < 10000 for v in r.values()), r
