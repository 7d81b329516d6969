"""benchmarks/cps_cost.py (issue 13) with a tiny budget: the connections it times are whole
ones - each passive open answered, echoed (or answered and closed first by the server) and
closed - and each mode gets a figure."""


def test_cps_cost_times_whole_connections_both_ways():
    from benchmarks import cps_cost
    n = 200
    for server_closes in (False, True):
        r = cps_cost.measure(n, server_closes)
        # every timed connection opened on the server; at most FLIGHT more were under way
        assert n <= r["passive"] <= n + cps_cost.FLIGHT, r
        # echo: SYN-ACK, the echo, FIN; server first: SYN-ACK, data+FIN (or apart), the
        # ACK of the client's FIN
        assert 3 * n <= r["tx"] <= 4 * (n + cps_cost.FLIGHT), r
        assert 0 < r["us"] < 100000, r


def test_cps_cost_phases_time_each_step_of_whole_connections():
    """--phases: every step of a connection's life gets a figure, and the run ends with the
    server's table empty (phases() checks it after every batch: each batch's connections
    went through all six steps)."""
    from benchmarks import cps_cost
    r = cps_cost.phases(64)
    assert sorted(r) == sorted(cps_cost.PHASES), r
    assert all(0 < v < 100000 for v in r.values()), r
