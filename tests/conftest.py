import os
import shutil
import signal

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


# `invoke test` runs the suite on pytest-xdist workers, then the `alone` tests by
# themselves. Alone: tests whose bounds are timing, loss or ratios measured while the
# machine's cores are theirs (floods beside ping and echo, clean-vs-lossy transfer times,
# retransmission counts through timed loss or reordering): a second worker's load would
# make those bounds flaky, not the stack.
ALONE = (
    "tests/interop/test_floods.py",
    "tests/interop/test_impaired_path.py",
    "tests/interop/test_linux_cubic.py",
    "tests/interop/test_linux_ecn.py",
    "tests/interop/test_linux_sack.py",
    "tests/interop/test_linux_undo.py",
    "tests/micropython/test_floods_mpy.py",
    "tests/ports/test_runner_flood.py",
    "tests/ports/test_stdlib_socket_suite.py",  # CPython's socket tests: their own timeouts
    "tests/sim/test_driver_bench.py",
)
# tests in those files whose checks hold under load (what an nmap scan finds, a TAP's queue
# count): they run with the rest, not in the serial part
NOT_ALONE = (
    "tests/interop/test_floods.py::test_nmap_scans_find_exactly_the_served_ports_and_the_stack_keeps_answering",
    "tests/interop/test_floods.py::test_the_tap_has_8_queues_and_a_tap_made_without_multi_queue_still_opens",
)


def pytest_configure(config):
    # A shell without job control starts background commands with SIGINT and SIGQUIT ignored
    # (POSIX), and `nohup` ignores SIGHUP; every process a test starts would inherit that:
    # `ustack` then never sees the signals the tests send. The suite's processes get the
    # defaults back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:  # nohup
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


# The longest modules, started first when the suite runs on xdist workers (`--dist loadfile`:
# each module on one worker, so a module fixture - a QEMU guest boot, a wheel build - is
# made once), so that no long module is left alone at the end while the other worker idles.
# (`--no-loadscope-reorder`: else xdist would start the modules with the most tests first.)
FIRST = (
    "tests/micropython/test_core_units.py",
    "tests/micropython/test_board_sets.py",
    "tests/interop/test_linux_dhcp.py",
    "tests/micropython/test_wasm_boards.py",
    "tests/ports/test_cli_mistakes.py",
    "tests/usbvm/test_usb_gadget.py",
    "tests/micropython/test_mpy_build.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("::")[0] in ALONE and item.nodeid not in NOT_ALONE:
            item.add_marker(pytest.mark.alone)
    if hasattr(config, "workerinput"):  # an xdist worker: every worker sorts alike
        rank = dict((p, i) for i, p in enumerate(FIRST))
        items.sort(key=lambda it: rank.get(it.nodeid.split("::")[0], len(FIRST)))


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
