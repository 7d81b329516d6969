import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _can_netns():
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and shutil.which("ip") is not None


def pytest_report_header(config):
    import ustack
    return "ustack compiled=%s (USTACK_PURE=%s), netns tests %s" % (
        ustack.compiled, os.environ.get("USTACK_PURE", ""), "enabled" if _can_netns() else "skipped")


# The core every stack this suite starts must run: the one the suite was started with. A test
# module that set USTACK_PURE in os.environ while being imported once made every later
# `ustack up` of the session the pure-Python core, silently (tests/fuzz/fuzz_input.py).
_PURE_AT_START = os.environ.get("USTACK_PURE")


@pytest.fixture(autouse=True, scope="session")
def _core_unchanged_by_collection():
    assert os.environ.get("USTACK_PURE") == _PURE_AT_START, \
        "a module changed USTACK_PURE while being collected: later stacks would run another core"
    yield


needs_netns = pytest.mark.skipif(not _can_netns(),
                                 reason="needs root, /dev/net/tun and iproute2 for a throwaway netns")


# In CI every tier must run: a test that skipped there (no root, no micropython, no QEMU...)
# would make a green run that proved nothing. `invoke test` sets USTACK_NO_SKIPS=1 when CI
# is set; then any skip fails the session, with the reasons listed.
_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("USTACK_NO_SKIPS") == "1":
        _skipped.append("%s: %s" % (report.nodeid, report.longrepr[2] if isinstance(
            report.longrepr, tuple) else report.longrepr))


def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.section("USTACK_NO_SKIPS: these tests skipped, which fails the run")
        for line in _skipped:
            terminalreporter.write_line(line)
