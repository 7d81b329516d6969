"""`invoke deploy`: mpremote copies a board build and starts it - checked against the unix
port on a pty, driven exactly as a board on a serial port (minus the reset: `resume`)."""
import os
import subprocess
import time

import pytest

from tests import frames as F
from tests.micropython.mpyhelp import needs_micropython, PtyBoard

pytestmark = [needs_micropython]

try:
    from ustack.ports.micropython.deploy import mpremote_exe, deploy, is_pty
    subprocess.run(mpremote_exe() + ["--help"], capture_output=True, timeout=30)
    HAVE_MPREMOTE = True
except Exception:
    HAVE_MPREMOTE = False

needs_mpremote = pytest.mark.skipif(not HAVE_MPREMOTE, reason="no mpremote")


@pytest.fixture
def board(tmp_path):
    b = PtyBoard(cwd=str(tmp_path))
    yield b
    b.close()


@needs_mpremote
def test_mpremote_talks_to_the_unix_port_on_a_pty(board):
    r = subprocess.run(mpremote_exe() + ["connect", board.path, "resume", "exec", "print(6*7)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "42", r.stdout + r.stderr
    assert is_pty(board.path)


@needs_mpremote
@pytest.mark.parametrize("mode", ["cp", "mount"])
def test_deploy_copies_and_starts_the_stack(board, tmp_path, mode):
    from ustack.ports.cpython.bridge import listen, FrameStream
    ls, spec = listen("unix:" + str(tmp_path / "link.sock"))
    dev = str(tmp_path / "device")
    t0 = time.monotonic()
    r = deploy("unix", board.path, out_dir=str(tmp_path / "build"), mode=mode, dest=dev,
               settings={"LINK": spec, "SERVE": "echo"})
    proc = r.get("process")
    try:
        ls.settimeout(60)
        conn, _ = ls.accept()
        took = time.monotonic() - t0
        fs = FrameStream(conn)
        fs.send(F.arp_request_frame())
        got = None
        for _ in range(5):
            f = fs.recv(5)
            if f is not None and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02":
                got = f
                break
        assert got is not None, "no ARP reply from the deployed stack"
        fs.send(F.echo_request_frame(56, seq=7))
        f = fs.recv(5)
        assert f is not None and f[34] == 0 and f[41] == 7
        print("deploy %s: %d files, %d bytes, stack answering after %.1f s" % (
            mode, r["files"], r["bytes"], took))
        if mode == "cp":
            assert os.path.exists(os.path.join(dev, "lib", "ustack", "core", "stack.mpy"))
            assert os.path.exists(os.path.join(dev, "main.py"))
            assert "LINK = %r" % spec in open(os.path.join(dev, "board_cfg.py")).read()
        conn.close()
    finally:
        ls.close()
        if proc is not None:
            proc.terminate()
            proc.wait(10)
