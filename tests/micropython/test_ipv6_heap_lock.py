"""The IPv6 building blocks allocate nothing per packet (issue 9): under MicroPython with
micropython.heap_lock() held, mp_scripts/ipv6_heaplock.py runs 1000 rounds of the
extension-header walk, the ICMPv6 error rule and build, ND validation, the pseudo-header
checksum, address compares, source selection and the neighbour cache's steady state - with
the viper hot paths and with the pure-Python ones."""
import json
import os

import pytest

from tests.micropython.mpyhelp import needs_micropython, run_mpy, HERE

pytestmark = [needs_micropython]

SCRIPT = os.path.join(HERE, "mp_scripts", "ipv6_heaplock.py")


@pytest.mark.parametrize("lib", ["mpy_lib", "mpy_lib_pure"])
def test_ipv6_per_packet_paths_allocate_nothing(request, lib):
    r = run_mpy([SCRIPT, request.getfixturevalue(lib), "1000"], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print("IPv6 paths, heap locked:", res)
    assert res["failure"] is None, res
    assert res["rounds"] == 1000
    assert res["ok"] == 1000 * res["per_round"], res
    assert res["control_caught"], "the heap lock did not catch a bytearray: proves nothing"
