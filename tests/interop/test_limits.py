"""Limits are visible (issue 8): `ustack up` prints, when it stops, a `limits` line with the
packet-buffer pool's low-water mark and every counter that says a bound was hit. A bound is
provoked from the Linux side: a UDP datagram bigger than REASS_SIZE arrives in fragments,
and reassembly refuses each one (reass.too_big)."""
import json

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]


@pytest.fixture
def ns():
    n = Netns("lim")
    yield n
    n.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_ustack_up_prints_the_pool_low_water_mark_and_the_limits_hit(ns, runtime):
    st = StackProc(ns, "--serve", "discard", "--config", "REASS_SIZE=1000", runtime=runtime)
    r = ns.python("import socket\n"
                  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "for i in range(3):\n"
                  "    s.sendto(b'x' * 3000, (%r, 9))\n" % STACK_IP)
    assert r.returncode == 0, r.stderr
    ping = ns.run(["ping", "-n", "-c", "3", "-i", "0.2", STACK_IP], timeout=30)
    assert " 0% packet loss" in ping.stdout, ping.stdout
    c = st.stop()
    out = "".join(st.lines)
    lines = [ln for ln in out.splitlines() if ln.startswith("limits ")]
    assert len(lines) == 1, out
    lim = json.loads(lines[0][len("limits "):])
    assert lim["pbuf.count"] == c["pbuf.count"]
    assert 0 <= lim["pbuf.low_water"] < lim["pbuf.count"]
    assert lim["pbuf.low_water"] == c["pbuf.low_water"]
    assert lim["reass.too_big"] == 9  # three datagrams of three fragments, each refused
    for k in lim:  # nothing but bounds: no plain traffic counters
        assert k.startswith("pbuf.") or any(m in k for m in ("_full", "too_big", "no_", "_fail",
                                                              "_limit", "evicted", "_dropped",
                                                              "exceptions", "_overflow")), k
