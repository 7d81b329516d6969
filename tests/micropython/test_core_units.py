"""The core's unit tests (tests/unit) under the MicroPython unix port, with CPython as the
oracle: unit_runner.py runs the same test files on both runtimes, and every test that passes
on CPython must pass on MicroPython with the viper hot paths, and the files that exercise
them most also with the pure Python ones (core/checksum_viper.py left out), as ports without
the native emitter run.

Test files that import CPython-only machinery (threads, the CPython runner) are not portable
by design; they are listed in NOT_PORTABLE and must fail to import for exactly that reason."""
import glob
import json
import os
import subprocess
import sys

import pytest

from tests.micropython.mpyhelp import needs_micropython, MPY, ROOT, HERE

pytestmark = [needs_micropython]

RUNNER = os.path.join(HERE, "unit_runner.py")
UNIT_FILES = sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "test_*.py")))
UNIT_HEAP = "8M"
NOT_PORTABLE = {
    "test_runner.py": "threading",         # ports/cpython/runner.py: threads drive the stack
}


def results(cmd, timeout=600):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            out[d["id"]] = d
    return out, r


@pytest.fixture(scope="module")
def oracle():
    """CPython's outcomes from the same runner (the installed ustack, compiled or not)."""
    out, r = results([sys.executable, RUNNER, "--root", ROOT] + UNIT_FILES)
    assert out, r.stdout + r.stderr
    return out


# The two variants differ only where core/checksum_viper.py replaces the pure checksum and
# copy (core/checksum.py, core/wire/fields.py): every file runs with the viper hot paths (what
# boards with the native emitter run), and the files that exercise those two functions the
# most also run without them (ports without the native emitter)
PURE_TOO = ("test_checksum.py", "test_wire.py", "test_ipv4_rules.py", "test_ipv6_frag.py",
            "test_tcp_segments.py")
VARIANTS = [(p, "viper") for p in UNIT_FILES] + \
    [(p, "pure") for p in UNIT_FILES if os.path.basename(p) in PURE_TOO]


@pytest.mark.parametrize("path,variant", VARIANTS,
                         ids=["%s-%s" % (os.path.basename(p), v) for p, v in VARIANTS])
def test_unit_file_passes_under_micropython_as_on_cpython(oracle, mpy_lib, mpy_lib_pure,
                                                          path, variant):
    base = os.path.basename(path)
    lib = mpy_lib if variant == "viper" else mpy_lib_pure
    # a heap that holds the tests' own two-stack rigs (their pools and rings): what the
    # core's code and a board need is tests/micropython/test_memory.py's to measure
    got, r = results([MPY, "-X", "heapsize=" + UNIT_HEAP, RUNNER, "--lib", lib, "--root", ROOT,
                      path])
    assert got, "no results from micropython:\n" + r.stdout + r.stderr
    if base in NOT_PORTABLE:
        imp = got.get(base + "::<import>")
        assert imp is not None and NOT_PORTABLE[base] in imp["msg"], got
        pytest.skip("not portable by design: " + NOT_PORTABLE[base])
    mine = {k: v for k, v in oracle.items() if k.startswith(base + "::")}
    assert mine, "the CPython oracle ran nothing from " + base
    bad = []
    for tid, want in sorted(mine.items()):
        have = got.get(tid)
        if want["outcome"] == "pass" and (have is None or have["outcome"] != "pass"):
            bad.append("%s: CPython pass, MicroPython %s %s" % (
                tid, have and have["outcome"], have and have["msg"]))
    extra = sorted(set(got) - set(mine))
    assert not bad, "\n".join(bad)
    assert not extra, "tests only MicroPython ran: %s" % extra
    passed = sum(1 for v in got.values() if v["outcome"] == "pass")
    print("%s [%s]: %d/%d pass under MicroPython" % (base, variant, passed, len(mine)))


def test_the_runner_agrees_with_pytest_on_cpython(oracle):
    """The oracle itself: unit_runner.py on CPython passes what pytest passes."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--co"] + UNIT_FILES, capture_output=True, text=True, cwd=ROOT)
    collected = [ln for ln in r.stdout.splitlines() if "::" in ln]
    ran = [k for k, v in oracle.items() if not k.endswith("::<import>")]
    failed = ["%s: %s" % (k, v["msg"]) for k, v in oracle.items()
              if v["outcome"] not in ("pass", "skip")]
    assert not failed, ("unit_runner.py cannot run these the way pytest does; extend "
                        "tests/micropython/mpy_shims/pytest.py or unit_runner.py:\n" +
                        "\n".join(failed))
    assert len(ran) == len(collected), (
        "pytest collects %d unit tests, unit_runner.py ran %d (test classes? a pytest feature "
        "the runner lacks?)" % (len(collected), len(ran)))
