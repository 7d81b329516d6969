"""CPython's own test_socket against ustack.socket: the included classes (see
stdlib_socket_tests.md) all pass, in a fresh interpreter because the suite patches `socket`."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSED_AT_LEAST = 277  # the count recorded in stdlib_socket_tests.md


def test_cpythons_test_socket_passes_on_ustack_socket():
    r = subprocess.run([sys.executable, "-m", "tests.ports.stdlib_socket_suite", "-q"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"ustack test_socket: run=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+) "
                  r"passed=(\d+)", r.stdout)
    assert m, r.stdout[-3000:] + r.stderr[-6000:]
    run, failures, errors, skipped, passed = (int(x) for x in m.groups())
    assert (failures, errors) == (0, 0), r.stderr[-8000:]
    assert passed >= PASSED_AT_LEAST and r.returncode == 0, r.stdout[-2000:]
