"""The MicroPython app loop survives exceptions (issue 8, hole 2): a protocol handler that
raises for one frame (caught inside Stack.poll) and a driver whose recv raises (out of poll
itself, caught by App.run). Each is counted once as stack.exceptions and logged as one line,
the failed ping is the only one lost, and the pool is full again. CPython runs the same
script as the oracle."""
import json
import os
import subprocess
import sys

from tests.micropython.mpyhelp import needs_micropython, run_mpy, HERE, ROOT

SCRIPT = os.path.join(HERE, "mp_scripts", "app_survives.py")
WANT = {"replies": [True, False, True, True, True], "exceptions": 2, "pool_full": True}


def check(out):
    lines = out.splitlines()
    assert json.loads(lines[-1]) == WANT
    logged = [ln for ln in lines if ln.startswith("ustack: exception in ")]
    assert len(logged) == 2
    assert "ValueError: handler bug; frame[" in logged[0]
    assert "RuntimeError: device hiccup" in logged[1]


def test_app_loop_survives_on_cpython():
    r = subprocess.run([sys.executable, SCRIPT, os.path.dirname(ROOT)], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    check(r.stdout)


@needs_micropython
def test_app_loop_survives_under_micropython(mpy_lib):
    r = run_mpy([SCRIPT, mpy_lib], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    check(r.stdout)
