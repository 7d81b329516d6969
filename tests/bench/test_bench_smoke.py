"""`invoke bench`'s harness (benchmarks/bench.py) end to end with a tiny budget: every stack
(ustack compiled, pure and on MicroPython, lwIP through our TAP glue, PyTCP from PyPI, Linux
over veth) comes up beside the same Linux client, every row gives a number for every stack
or an n/a the harness declares with its reason, and the JSON and markdown say the same.

One run for the module (~30 s): 1 MB bulk each way (1.5 s at most), 50 pings, 0.15 s rates,
1 s of wrk and iperf3. A missing tool (cc, liblwip-dev, wrk, iperf3, micropython) fails the
run: .ci/setup installs them; PyPI's PyTCP is installed into build/pytcp-venv on first use.
"""
import hashlib
import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import needs_netns

pytestmark = [needs_netns]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACKS = ["compiled", "nooffload", "pure", "micropython", "lwip", "pytcp", "linux", "floor"]


def readme_hash():
    with open(os.path.join(ROOT, "README.md"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    before = readme_hash()
    md, js = d / "results.md", d / "results.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--smoke", "--out", str(md),
                        "--json", str(js)], cwd=ROOT, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return {"json": json.loads(js.read_text()), "md": md.read_text(),
            "readme_unchanged": readme_hash() == before}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def test_every_stack_gives_a_positive_number_for_every_row_or_a_declared_na(smoke):
    from benchmarks.bench import NOT_APPLICABLE, ROW_KEYS
    res = smoke["json"]
    assert [s["key"] for s in res["stacks"]] == STACKS
    assert [r["key"] for r in res["rows"]] == ROW_KEYS
    na = set()
    for s in STACKS:
        assert set(res["values"][s]) == set(ROW_KEYS), s
        for k in ROW_KEYS:
            v = res["values"][s][k]
            if isinstance(v, dict):
                assert v["na"] == NOT_APPLICABLE.get((s, k)), (s, k, v)
                na.add((s, k))
            elif k == "cpu_gb":
                # 2 MB moved is a few clock ticks of CPU at most (10 ms each): lwIP's can be 0
                assert is_number(v) and v >= 0, (s, k, v)
            else:
                assert is_number(v) and v > 0, (s, k, v)
    # the n/a cells are exactly the declared ones: a failed measurement is never one of them
    assert na == set(NOT_APPLICABLE)
    # ustack compiled and Linux run every row, the real clients included
    assert all(is_number(res["values"][s][k]) for s in ("compiled", "linux") for k in ROW_KEYS)


def test_json_says_how_and_where_it_was_measured(smoke):
    res = smoke["json"]
    meta = res["meta"]
    for k in ("date", "machine", "cpus", "kernel", "python", "ustack", "mode", "budget"):
        assert meta[k], k
    assert meta["mode"] == "smoke" and meta["budget"]["bulk"] == 1000 * 1000
    for r in res["rows"]:
        assert r["unit"] and r["label"] and r["better"] in ("higher", "lower"), r
    info = {s["key"]: s["info"] for s in res["stacks"]}
    # each stack said it was up, in its own words: the compiled and pure cores are what they say
    assert "compiled=True" in info["compiled"] and "compiled=False" in info["pure"]
    # the no-offload column is the compiled build moving plain frames: it says so
    assert "compiled=True" in info["nooffload"] and "offload=none" in info["nooffload"]
    assert info["floor"] == "ready floor"
    assert "runtime=micropython" in info["micropython"]
    assert info["lwip"].startswith("ready lwip 2.") and "TCP_MSS=1460" in info["lwip"]
    assert info["pytcp"] == "ready pytcp" and info["linux"].startswith("ready linux")


def test_lwip_glue_compiles_warning_free_and_answers_every_service(smoke, tmp_path):
    from benchmarks import peers
    exe = peers.build_lwip(str(tmp_path / "lwip_tap"))  # a fresh build: -Wall -Wextra -Werror
    r = subprocess.run([exe], capture_output=True, text=True)
    assert r.returncode == 2 and "usage: lwip_tap TAP IPV4 PREFIXLEN" in r.stderr
    v = smoke["json"]["values"]["lwip"]
    for k in ("ping", "bulk_rx", "bulk_tx", "echo_med", "udp_pps", "cps", "wrk"):
        assert is_number(v[k]) and v[k] > 0, k


def test_markdown_table_has_every_figure_with_its_two_ratios(smoke):
    res, md = smoke["json"], smoke["md"]
    lines = md.splitlines()
    header = [l for l in lines if l.startswith("| measurement |")][0]
    assert header.count("|") == len(STACKS) + 2
    for r in res["rows"]:
        (line,) = [l for l in lines if l.startswith("| %s (" % r["label"])]
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        assert len(cells) == len(STACKS), line
        for s, cell in zip(STACKS, cells):
            v = res["values"][s][r["key"]]
            if isinstance(v, dict):
                assert cell == "n/a", (s, cell)
            else:
                # "figure (ratio to lwIP, ratio to Linux)"; "-" where lwIP has no figure
                fig, rest = cell.split(" (")
                a, b = rest.rstrip(")").split(", ")
                assert float(fig) >= 0 and (b == "-" or float(b) >= 0), cell
                assert a == "-" if isinstance(res["values"]["lwip"][r["key"]], dict) \
                    else (a == "-" or float(a) >= 0), cell
                if r["key"] != "cpu_gb":
                    assert float(fig) > 0 and float(b) > 0, cell
    assert "n/a: " in md  # the declared n/a cells give their reasons under the table


def test_the_floor_gives_bulk_figures_and_the_table_says_the_no_offload_share(smoke):
    from benchmarks.bench import FLOOR_TARGET
    v = smoke["json"]["values"]
    for k in ("bulk_rx", "bulk_tx"):
        assert is_number(v["floor"][k]) and v["floor"][k] > 0, k
        assert is_number(v["nooffload"][k]) and v["nooffload"][k] > 0, k
    (line,) = [l for l in smoke["md"].splitlines() if "against the Python TAP endpoint" in l]
    assert "target is %d %%" % (FLOOR_TARGET * 100) in line
    share = v["nooffload"]["bulk_tx"] / v["floor"]["bulk_tx"]
    assert "Linux -> peer" in line and ("= %.2f" % share) in line, line


def test_the_no_offload_column_turns_offloads_off(monkeypatch):
    from benchmarks import peers
    monkeypatch.setattr(peers, "StackProc", FakeStackProc)
    monkeypatch.setattr(peers, "Netns", lambda tag: type("N", (), {"close": lambda s: None})())
    monkeypatch.setattr(peers, "wait_reachable", lambda ns: None)
    FakeStackProc.seen = []
    (p,) = [p for p in peers.all_peers() if p.key == "nooffload"]
    p.start()
    (flags,) = FakeStackProc.seen
    assert flags[flags.index("--offload") + 1] == "off"
    # and so does the program the column's iperf3 row runs on its sockets (`ustack run`)
    seen = []
    monkeypatch.setattr(peers, "ProgramRun", lambda ns, argv, wait_for, flags=(), timeout=0:
                        seen.append(list(flags)))
    p.program(["-m", "uiperf3", "-s"], "Server listening")
    assert seen == [["--offload", "off"]]


def test_the_readme_is_left_alone_without_readme(smoke):
    assert smoke["readme_unchanged"]


class FakeStackProc:
    """Records the flags `ustack up` would get; answers like a ready stack."""
    seen = []

    def __init__(self, ns, *flags, **kw):
        FakeStackProc.seen.append(flags)
        self.p = type("P", (), {"pid": os.getpid(), "poll": lambda self: 0})()
        self.ready = "ready fake"


def test_offload_column_passes_offload_only_to_a_ustack_that_lists_it(monkeypatch):
    from benchmarks import peers
    monkeypatch.setattr(peers, "StackProc", FakeStackProc)
    monkeypatch.setattr(peers, "Netns", lambda tag: type("N", (), {"close": lambda s: None})())
    monkeypatch.setattr(peers, "wait_reachable", lambda ns: None)
    FakeStackProc.seen = []
    ps = peers.all_peers(offload=True)
    assert [p.key for p in ps][:2] == ["compiled", "offload"]
    assert "offload" not in [p.key for p in peers.all_peers()]
    for p in ps[:2]:
        p.start()
    plain, off = FakeStackProc.seen
    assert "--offload" not in plain and "--offload" in off
    # `--offload` takes a value (auto|on|off): alone, `ustack up` exits on a usage error;
    # `on` fails in one line when the kernel refuses an offload, as a column of it should
    assert off[off.index("--offload") + 1] == "on"


def test_offload_column_is_na_in_every_row_where_ustack_has_no_offload(monkeypatch):
    from benchmarks import bench, peers
    monkeypatch.setattr(peers, "all_peers", lambda offload: [peers.Ustack(
        "offload", "ustack compiled + offloads", offload=True)])
    monkeypatch.setattr(peers, "ustack_has_offload", lambda: False)
    res = bench.run("smoke", offload=True, log=lambda s: None)
    cells = res["values"]["offload"]
    assert set(cells) == set(bench.ROW_KEYS)
    assert all("--offload" in c["na"] for c in cells.values()), cells
    (header,) = [l for l in bench.render(res).splitlines() if l.startswith("| measurement")]
    assert header == "| measurement | ustack compiled + offloads |"


def test_render_writes_the_same_table_again_from_the_json_alone(smoke, tmp_path, capsys):
    from benchmarks import bench
    js, out = tmp_path / "r.json", tmp_path / "r.md"
    js.write_text(json.dumps(smoke["json"]))
    bench.main(["--render", str(js), "--out", str(out)])
    assert out.read_text() == smoke["md"]
