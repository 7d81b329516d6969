"""CPython's own socket tests (test_socket, test_socketserver, test_selectors, asyncio's
test_sock_lowlevel) against ustack.socket, over the loopback interface and over TAPs (two
stacks, the Linux kernel of a throwaway namespace forwarding between them): the included
classes (see stdlib_socket_tests.md) all pass, in a fresh interpreter because the suite
patches `socket`, at least as many as the .md records; and the .md lists every class and
exclusion the harness has."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import _can_netns, needs_netns
from tests.netns import Netns
from tests.ports import stdlib_socket_suite as suite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MD = os.path.join(ROOT, "tests", "ports", "stdlib_socket_tests.md")
# the counts recorded in stdlib_socket_tests.md: passed, over lo and over the TAPs, and of
# the latter the passed tests that sent TCP or UDP through the TAPs
PASSED_AT_LEAST = {"socket": 305, "socketserver": 25, "selectors": 76, "asyncio": 13}
TAP_PASSED_AT_LEAST = {"socket": 305, "socketserver": 25, "selectors": 72, "asyncio": 13}
# measured 136, 14, 63, 12: a few less, as a connection closing late may count for the next
OVER_TAP_AT_LEAST = {"socket": 128, "socketserver": 12, "selectors": 58, "asyncio": 10}
LINE = re.compile(r"ustack (\w+): run=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+) "
                  r"passed=(\d+)(?: tap=(\d+))?")


def results(r):
    """{suite: (run, failures, errors, skipped, passed, tap)} from the harness's lines."""
    return dict((m.group(1), tuple(int(x or 0) for x in m.groups()[1:]))
                for m in LINE.finditer(r.stdout))


def reports(err):
    """unittest's report of each failed or erroring test in err (its ERROR:/FAIL: blocks up
    to the next rule), whichever suite printed it: the tail alone is the last suite's."""
    out, keep = [], False
    for line in err.splitlines():
        if line.startswith(("ERROR: ", "FAIL: ")):
            keep = True
        elif line.startswith("-" * 20) and keep and out and not out[-1].startswith(
                ("ERROR: ", "FAIL: ")):
            keep = False
            out.append("")
        if keep:
            out.append(line)
    return "\n".join(out)[-8000:]


def check(r, passed_at_least, over_tap_at_least=None):
    found = results(r)
    assert set(found) == set(passed_at_least), r.stdout[-3000:] + r.stderr[-6000:]
    for name, (run, failures, errors, skipped, passed, tap) in found.items():
        assert (failures, errors) == (0, 0), (name, reports(r.stderr) or r.stderr[-8000:])
        assert passed >= passed_at_least[name], (name, r.stdout[-2000:])
        if over_tap_at_least is not None:
            assert tap >= over_tap_at_least[name], (name, tap)
    assert r.returncode == 0, r.stdout[-2000:]


class Run:
    """One run of the harness in a fresh interpreter, started at once and read when asked."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)

    def result(self):
        try:
            out, err = self.p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        return subprocess.CompletedProcess(self.p.args, self.p.returncode, out, err)


@pytest.fixture(scope="module")
def runs():
    """Both runs at once: most of their time is the suites' own timeouts and sleeps (a socket
    timeout test waits its seconds), so side by side they take the time of one."""
    ns = Netns("suite") if _can_netns() else None
    started = {"lo": Run([sys.executable, "-m", "tests.ports.stdlib_socket_suite", "-q"])}
    if ns is not None:
        started["tap"] = Run(ns.cmd([sys.executable, "-m", "tests.ports.stdlib_socket_suite",
                                     "-q", "--tap"]))
    try:
        yield started
    finally:
        for run in started.values():
            if run.p.poll() is None:
                run.p.kill()
                run.p.wait()
        if ns is not None:
            ns.close()


def test_cpythons_socket_suites_pass_on_ustack_socket_over_lo(runs):
    check(runs["lo"].result(), PASSED_AT_LEAST)


@needs_netns
def test_cpythons_socket_suites_pass_on_ustack_socket_over_taps_through_linux(runs):
    check(runs["tap"].result(), TAP_PASSED_AT_LEAST, OVER_TAP_AT_LEAST)


def test_the_tap_mode_refuses_to_run_outside_a_network_namespace():
    # it makes TAPs and turns IPv4 forwarding on: never in the host's own namespace
    r = subprocess.run([sys.executable, "-m", "tests.ports.stdlib_socket_suite", "--tap"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "network namespace" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_the_md_file_lists_every_included_class_and_every_exclusion():
    md = open(MD).read()
    for key, (mod, classes) in suite.SUITES.items():
        assert "`%s`" % mod in md, mod
        for c in classes:
            assert "`%s`" % c in md, c
    for tid, why in list(suite.EXCLUDED.items()) + list(suite.TAP_EXCLUDED.items()):
        assert "- `%s`: %s" % (tid, why) in md, tid
