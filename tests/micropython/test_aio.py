"""The asyncio facade (ports/micropython/aio.py) drives two stacks as tasks, with UDP and
TCP echo between them, under MicroPython's asyncio; CPython's asyncio run of the same
script is the oracle for the transcript."""
import os
import subprocess
import sys

from tests.micropython.mpyhelp import needs_micropython, run_mpy, HERE, ROOT

SCRIPT = os.path.join(HERE, "mp_scripts", "aio_demo.py")


def test_aio_demo_on_cpython():
    r = subprocess.run([sys.executable, SCRIPT, ""], capture_output=True, text=True, timeout=60,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("done")
    assert "tcp client got 65536 back, same: True" in r.stdout


@needs_micropython
def test_aio_demo_under_micropython_matches_cpython(mpy_lib):
    want = subprocess.run([sys.executable, SCRIPT, ""], capture_output=True, text=True,
                          timeout=60, cwd=ROOT).stdout
    r = run_mpy([SCRIPT, mpy_lib], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == want
