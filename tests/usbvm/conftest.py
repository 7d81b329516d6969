"""USB tier 2 (QEMU guest with Debian's kernel): the results summary printed at the end of
every run (also without -s). Tests add lines through the `usbvm_summary` fixture (importing
this module would give a second copy: the repo root is itself a package)."""
import pytest

SUMMARY = []


@pytest.fixture(scope="session")
def usbvm_summary():
    return SUMMARY


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("usbvm: ustack + our USB NIC drivers vs the Linux gadget")
        for line in SUMMARY:
            terminalreporter.write_line(line)
