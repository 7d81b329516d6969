"""`benchmarks/offload_bench.py --floor` (issue 13) with a tiny budget: `ustack up --offload
off`, `--offload on` and the minimal Python TAP endpoint (benchmarks/floor_endpoint.py) each
move the bytes both ways with Linux in a namespace, and each gets a figure - the floor the
issue's target for a stack without offloads is measured against."""
from tests.conftest import needs_netns

pytestmark = [needs_netns]


def test_offload_bench_measures_off_on_and_the_floor_in_one_run():
    from benchmarks import offload_bench
    r = offload_bench.main(["--runs", "1", "--mb", "5", "--floor"])
    for mode in ("off", "on", "floor"):
        run = r["runs"][mode][0]
        assert run["rx_bytes"] >= 5 * 1000 * 1000, (mode, run)   # every byte, each way
        assert run["rx"] > 0 and run["tx"] > 0 and run["cpu_s_per_gb"] > 0, (mode, run)
    assert "offload=csum,tso,gro" in r["runs"]["on"][0]["ready"]
    assert "offload=none" in r["runs"]["off"][0]["ready"]
    assert r["runs"]["floor"][0]["ready"] == "ready floor"


def test_offload_bench_base_runs_another_copy_of_the_package_beside_this_one(tmp_path):
    """--base DIR: a before/after in the same run. DIR/ustack here is this checkout again
    (a link), so both sides move every byte; a DIR without the package is refused in one
    line, before any namespace is made."""
    import os
    import subprocess
    import sys
    from benchmarks import offload_bench
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.symlink(root, str(tmp_path / "ustack"))
    r = offload_bench.main(["--runs", "1", "--mb", "5", "--base", str(tmp_path)])
    for mode in ("off", "on", "base-off", "base-on"):
        run = r["runs"][mode][0]
        assert run["rx_bytes"] >= 5 * 1000 * 1000, (mode, run)
        assert run["rx"] > 0 and run["tx"] > 0, (mode, run)
    assert "offload=none" in r["runs"]["base-off"][0]["ready"]
    assert "offload=csum,tso,gro" in r["runs"]["base-on"][0]["ready"]
    empty = tmp_path / "empty"
    empty.mkdir()
    p = subprocess.run([sys.executable, "-m", "benchmarks.offload_bench", "--base", str(empty)],
                       cwd=root, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--base" in p.stderr and p.stdout == "", p


def test_a_run_whose_client_failed_is_run_again(monkeypatch):
    """The floor endpoint has no retransmission: on a loaded machine a frame the TAP's queue
    drops ends its run. Such a run is repeated (at most RETRIES times), not the whole
    bench lost."""
    from benchmarks import offload_bench
    calls = []

    def one(mode, mb, config, base=None):
        calls.append(mode)
        if mode == "floor" and calls.count("floor") == 1:
            raise RuntimeError("floor: the client failed: timed out")
        return {"rx": 1.0, "tx": 2.0, "cpu_s_per_gb": 3.0, "ready": "ready " + mode}
    monkeypatch.setattr(offload_bench, "one", one)
    r = offload_bench.main(["--runs", "1", "--floor"])
    assert calls == ["off", "on", "floor", "floor"]
    assert len(r["runs"]["floor"]) == 1 and r["median"]["floor"]["tx"] == 2.0
