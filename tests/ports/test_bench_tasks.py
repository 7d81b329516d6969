"""`invoke bench` and friends as a user meets them: README.md is rewritten only when asked
(--readme), no per-frame time comes out negative however the machine stalls, and the long
tasks (build, bench, mpy) say what they are doing."""
import hashlib
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVOKE = os.path.join(os.path.dirname(sys.executable), "invoke")


def inv(*args, timeout=300):
    return subprocess.run([INVOKE] + list(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def readme_hash():
    with open(os.path.join(ROOT, "README.md"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class StallingClock:
    """ticks_us for the driver bench: 1 us per call, and one stall of 100 ms at call number
    `stall_at` (a preemption on a loaded machine, landing wherever it lands)."""

    def __init__(self, stall_at):
        self.t = 0
        self.calls = 0
        self.stall_at = stall_at

    def __call__(self):
        self.calls += 1
        self.t += 1
        if self.calls == self.stall_at:
            self.t += 100000
        return self.t


def test_no_driver_time_is_negative_wherever_the_machine_stalls(monkeypatch):
    """The driver's time per frame is the run's time less the chip model's and the frame
    check's, each measured inside that same run: a stall anywhere is charged to one of
    them, never subtracted from the driver's share."""
    from benchmarks import driver_rates as dr
    count = 6
    probe = StallingClock(0)
    monkeypatch.setattr(dr, "ticks_us", probe)
    dr.spi_rows(count)
    calls = probe.calls
    assert calls > 100
    for stall_at in range(1, calls, max(1, calls // 400)):
        monkeypatch.setattr(dr, "ticks_us", StallingClock(stall_at))
        for kind, size, rx, tx, tr, by, drv_us in dr.spi_rows(count):
            assert drv_us >= 0, (stall_at, kind, size, drv_us)
            assert rx > 0 and tx > 0


def test_drivers_bench_leaves_the_readme_alone_by_default(tmp_path):
    before = readme_hash()
    out = tmp_path / "drivers.md"
    r = subprocess.run([sys.executable, "-m", "benchmarks.drivers", "--count", "20",
                        "--no-micropython", "--out", str(out)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert readme_hash() == before
    assert out.exists()
    # and no negative figure anywhere in what it wrote
    assert not re.search(r"(?<![\w-])-\d", out.read_text()), out.read_text()


def test_bench_task_rewrites_the_readme_only_with_readme():
    plain = inv("--dry", "bench")
    asked = inv("--dry", "bench", "--readme")
    assert plain.returncode == 0 and asked.returncode == 0, plain.stderr + asked.stderr
    runs = lambda out: [l for l in out.splitlines() if " -m benchmarks." in l]
    assert runs(plain.stdout) and len(runs(plain.stdout)) == len(runs(asked.stdout))
    assert not [l for l in runs(plain.stdout) if "--readme" in l], plain.stdout
    # every script that can show its results in README.md is asked to
    for script in ("benchmarks.bench", "benchmarks.drivers", "benchmarks.floods",
                   "benchmarks.programs"):
        (line,) = [l for l in runs(asked.stdout) if "-m %s " % script in l + " "]
        assert "--readme" in line, line


def test_bench_micropython_task_asks_for_the_readme_only_with_readme():
    plain = inv("--dry", "bench", "--runtime", "micropython")
    asked = inv("--dry", "bench", "--runtime", "micropython", "--readme")
    assert not [l for l in plain.stdout.splitlines() if " -m benchmarks." in l and "--readme" in l]
    (line,) = [l for l in asked.stdout.splitlines() if "-m benchmarks.memory" in l]
    assert "--readme" in line
    # the MicroPython column is measured (README's promise: benchmarks/results-micropython.md),
    # never into README's bench table, which is the CPython run's
    (line,) = [l for l in asked.stdout.splitlines() if "-m benchmarks.bench " in l + " "]
    assert "--stacks micropython," in line and "results-micropython.md" in line, line
    assert "--readme" not in line


@pytest.mark.parametrize("task", [["build"], ["bench"], ["bench", "--runtime", "micropython"],
                                  ["mpy", "--board", "w5500_evb_pico"]])
def test_long_tasks_say_each_step_before_it_runs(task):
    r = inv("--dry", *task)
    assert r.returncode == 0, r.stderr
    name = task[0]
    steps = [l for l in r.stdout.splitlines() if l.startswith(name + ": ")]
    cmds = [l for l in r.stdout.splitlines() if not l.startswith(name + ": ")]
    assert steps, r.stdout
    # a progress line comes before the first command, and one says where the results went
    first_cmd = r.stdout.splitlines().index(cmds[0]) if cmds else 0
    assert r.stdout.splitlines().index(steps[0]) < first_cmd, r.stdout


def test_one_stack_failing_one_row_costs_that_figure_not_the_run(monkeypatch):
    # PyTCP's bulk receive once timed out and the whole 10-minute run ended in a traceback
    from benchmarks import bench

    class Peer:
        def __init__(self, key, broken):
            self.key, self.label, self.info, self.broken = key, key, "ready", broken

        def start(self):
            pass

        def close(self):
            pass

    def measure(peer, group, budget):
        if peer.broken and group == "bulk":
            raise RuntimeError("bench client bulk_rx failed: Traceback\nTimeoutError: timed out")
        return {k: 1.0 for k in bench.GROUP_KEYS[group]}
    monkeypatch.setattr(bench.P, "all_peers", lambda offload: [Peer("ok", False),
                                                              Peer("pytcp", True)])
    monkeypatch.setattr(bench, "measure", measure)
    monkeypatch.setattr(bench, "NOT_APPLICABLE", {})
    log = []
    res = bench.run("smoke", log=log.append)
    assert res["values"]["ok"]["bulk_rx"] == 1.0
    assert res["values"]["pytcp"]["ping"] == 1.0 and res["values"]["pytcp"]["wrk"] == 1.0
    assert res["values"]["pytcp"]["bulk_rx"] == {
        "na": "failed in every round: TimeoutError: timed out"}
    assert any("bulk, pytcp failed" in line for line in log)
    assert "failed in every round" in bench.render(res)
