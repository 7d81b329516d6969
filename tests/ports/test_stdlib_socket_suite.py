"""CPython's own socket tests (test_socket, test_socketserver, test_selectors, asyncio's
test_sock_lowlevel) against ustack.socket over the loopback interface: the included classes
(see stdlib_socket_tests.md) all pass, in a fresh interpreter because the suite patches
`socket`; and the .md lists every class and exclusion the harness has."""
import os
import re
import subprocess
import sys

from tests.ports import stdlib_socket_suite as suite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MD = os.path.join(ROOT, "tests", "ports", "stdlib_socket_tests.md")
# the counts recorded in stdlib_socket_tests.md
PASSED_AT_LEAST = {"socket": 289, "socketserver": 23, "selectors": 76, "asyncio": 13}


def test_cpythons_socket_suites_pass_on_ustack_socket_over_lo():
    r = subprocess.run([sys.executable, "-m", "tests.ports.stdlib_socket_suite", "-q"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    found = {}
    for m in re.finditer(r"ustack (\w+): run=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+) "
                         r"passed=(\d+)", r.stdout):
        found[m.group(1)] = tuple(int(x) for x in m.groups()[1:])
    assert set(found) == set(PASSED_AT_LEAST), r.stdout[-3000:] + r.stderr[-6000:]
    for name, (run, failures, errors, skipped, passed) in found.items():
        assert (failures, errors) == (0, 0), (name, r.stderr[-8000:])
        assert passed >= PASSED_AT_LEAST[name], (name, r.stdout[-2000:])
    assert r.returncode == 0, r.stdout[-2000:]


def test_the_md_file_lists_every_included_class_and_every_exclusion():
    md = open(MD).read()
    for key, (mod, classes) in suite.SUITES.items():
        assert "`%s`" % mod in md, mod
        for c in classes:
            assert "`%s`" % c in md, c
    for tid, why in suite.EXCLUDED.items():
        assert "- `%s`: %s" % (tid, why) in md, tid
