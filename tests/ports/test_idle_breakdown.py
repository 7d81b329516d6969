"""Issue 13's per-connection cost, in this process (no root): `python -m benchmarks.idle_conns
--breakdown` feeds one stack N handshakes with the `--serve discard` service on it and counts
the Python heap each idle connection takes (tracemalloc) and what it is made of."""
import ustack
from benchmarks import idle_conns


def test_an_idle_connection_costs_under_700_bytes_of_python_heap():
    """Compiled core, CPython 3.11: about 608 bytes (2100+ before issue 13's cuts, 1354 after
    session 7's, 1210 after session 8's, 957 before the shared empty rings, 824 after
    session 9's); no congestion controller (made with the first send), no out-of-order
    table, no SACK scoreboard, no accept-queue list, no ring of its own (the pool's shared
    empty rings), no entry in the service's dict or in a connection-table dict, a route
    cache shared with the peer's other connections. The bound leaves ~15%; the pure core
    keeps every field as a Python int (about 1330 bytes)."""
    r = idle_conns.breakdown(300)
    assert r["established"] >= 300, r
    objs = r["objects"]
    assert objs["TCB"][1] == 1 and objs["TcpSocket"][1] == 1, objs
    for gone in ("RangeSet", "Scoreboard", "Rack", "dict", "list (service entry)", "list",
                 "NewReno", "Cubic",   # the controller comes with the first send
                 "RouteCache",    # one peer address here: its connections share one
                 "Ring"):         # idle: the pool's shared empty rings
        assert gone not in objs, (gone, objs)
    assert objs["service: conns (dict)"][0] < 1, objs   # an idle connection has no entry
    print("heap per idle connection:", r["heap_per_conn"])
    assert 0 < r["heap_per_conn"] < (700 if ustack.compiled else 1530), r


def test_the_breakdown_table_names_the_parts_and_the_total():
    r = idle_conns.breakdown(50)
    md = idle_conns.render_breakdown(r)
    assert "| TCB |" in md and "tracemalloc" in md and "| **sum** |" in md
