"""CI's share of the fuzzing: every checked-in seed runs clean, the seeds are what corpus.py
writes, and a short coverage-guided run (atheris, pure-Python core) from the seed corpus finds
no crash. Longer runs: `invoke fuzz --seconds N`."""
import os
import re
import subprocess
import sys

from tests.fuzz import corpus
from tests.fuzz.fuzz_input import run_one

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEEDS = os.path.join(HERE, "corpus")
SECONDS = int(os.environ.get("USTACK_FUZZ_SECONDS", "10"))  # CI's share; invoke fuzz runs longer


def test_the_checked_in_seeds_are_what_corpus_py_writes():
    want = corpus.seeds()
    assert sorted(os.listdir(SEEDS)) == sorted(want)
    for name, data in want.items():
        with open(os.path.join(SEEDS, name), "rb") as f:
            assert f.read() == data, name


def test_every_seed_runs_clean():
    for name in sorted(os.listdir(SEEDS)):
        with open(os.path.join(SEEDS, name), "rb") as f:
            run_one(f.read())


def test_fuzzing_from_the_seed_corpus_finds_no_crash(tmp_path, capsys):
    work = tmp_path / "corpus"
    work.mkdir()
    env = dict(os.environ, USTACK_PURE="1")
    r = subprocess.run(
        [sys.executable, os.path.join(HERE, "fuzz_input.py"), str(work), SEEDS,
         "-max_total_time=%d" % SECONDS, "-print_final_stats=1", "-timeout=20",
         "-rss_limit_mb=2048", "-artifact_prefix=%s/" % tmp_path],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
    log = r.stdout + r.stderr
    crashes = [p for p in os.listdir(tmp_path) if p.startswith(("crash-", "timeout-", "oom-"))]
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    assert r.returncode == 0 and not crashes and m, log[-6000:]
    with capsys.disabled():
        print("\nfuzz: %s executions in %d s, %d new inputs beyond %d seeds" % (
            m.group(1), SECONDS, len(os.listdir(work)), len(os.listdir(SEEDS))))


def test_invoke_lists_the_fuzz_task():
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "invoke"), "--list"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "fuzz" in r.stdout.split(), r.stdout + r.stderr
