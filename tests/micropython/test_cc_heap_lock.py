"""CUBIC (with HyStart++) and the fixed-window controller allocate nothing per ACK: the
two-stack heap-lock bench (mp_scripts/twostack_heaplock.py, see test_heap_lock.py) with the
board's TCP_CC set to each, 1 MB of TCP echo with micropython.heap_lock() held."""
import json
import os

import pytest

from tests.micropython.mpyhelp import needs_micropython, run_mpy
from tests.micropython.test_heap_lock import SCRIPT

HERE = os.path.dirname(os.path.abspath(__file__))

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


def test_cubic_congestion_avoidance_with_loss_and_reordering_heap_locked(mpy_lib):
    """Issue 12: CUBIC (RFC 9438) between losses - every 50th frame lost both ways, every 7th
    delivered after the next - with the heap locked: its congestion avoidance epochs, SACK
    recovery (RFC 6675 + PRR) and RACK (RFC 8985: the run log, reordering detection, the
    reordering window and timer) allocate nothing (mp_scripts/sack_heaplock.py)."""
    script = os.path.join(HERE, "mp_scripts", "sack_heaplock.py")
    r = run_mpy([script, mpy_lib, str(512 << 10), "50", json.dumps({"TCP_CC": "cubic"}), "7"],
                timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print("CUBIC with loss and reordering, heap locked:", res)
    assert res["failure"] is None
    assert res["tcp_bytes_echoed"] >= 512 << 10 and res["tcp_mismatches"] == 0
    assert res["lost"] > 20 and res["swapped"] > 20 and res["sack_recoveries"] > 0
    assert res["cubic_epochs"] > 0          # congestion avoidance stages began under the lock
    assert res["rack_reordering"] > 0       # RACK saw reordering: its detection ran locked
