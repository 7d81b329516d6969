"""The HIL harness (`invoke hil`) smoke-tested without hardware: the unix port on a pty
plays the board (mpremote deploys to it exactly as to a serial port, minus the reset), its
StreamLink is bridged to a TAP in a throwaway namespace, and the harness's checks run from
inside that namespace against the board's address."""
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, HOST_IP, STACK_IP
from tests.micropython.mpyhelp import needs_micropython, PtyBoard

pytestmark = [needs_netns, needs_micropython]


@pytest.fixture
def ns():
    n = Netns("mpy")
    yield n
    n.close()


def test_hil_harness_against_the_unix_port_on_a_pty(ns, tmp_path):
    sock = str(tmp_path / "link.sock")
    br = ns.popen([sys.executable, "-u", "-m", "ustack.ports.cpython.bridge", "--tap", "ustk0",
                   "--listen", "unix:" + sock, "--host-ip", HOST_IP + "/24"])
    line = br.stdout.readline()
    assert line.startswith("listening "), line + br.stdout.read()
    board = PtyBoard(cwd=str(tmp_path))
    try:
        r = ns.run([sys.executable, "-m", "ustack.ports.micropython.hil", "--board", "unix",
                    "--port", board.path, "--ip", STACK_IP, "--out", str(tmp_path / "build"),
                    "--set", "LINK=unix:" + sock, "--set", "SERVE=echo",
                    "--tcp-bytes", str(256 * 1024)], timeout=300)
        print(r.stdout)
        assert r.returncode == 0, r.stdout + r.stderr
        for check in ("deploy", "answers", "ping", "ping 1472", "udp echo", "tcp echo"):
            assert any(ln.startswith(check + " ") and " ok " in ln for ln in r.stdout.splitlines()), check
        assert "hil: passed" in r.stdout
    finally:
        board.close()
        time.sleep(0.2)
        if br.poll() is None:
            br.terminate()
            br.wait(10)
