"""CUBIC (with HyStart++) and the fixed-window controller allocate nothing per ACK: the
two-stack heap-lock bench (mp_scripts/twostack_heaplock.py, see test_heap_lock.py) with the
board's TCP_CC set to each, 1 MB of TCP echo with micropython.heap_lock() held."""
import json

import pytest

from tests.micropython.mpyhelp import needs_micropython, run_mpy
from tests.micropython.test_heap_lock import SCRIPT

pytestmark = [needs_micropython]


@pytest.mark.parametrize("cc", ["cubic", "none"])
def test_two_stacks_heap_locked_tcp_with_controller(mpy_lib, cc):
    r = run_mpy([SCRIPT, mpy_lib, "10", str(1 << 20), json.dumps({"TCP_CC": cc})],
                timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(cc, "heap locked:", res)
    assert res["failure"] is None
    assert res["tcp_bytes_echoed"] == 1 << 20 and res["tcp_mismatches"] == 0
