"""The floods of tests/interop/test_floods.py (shorter) against `ustack up --runtime
micropython`: hping3 at full speed into the TAP, through the CPython bridge, to the stack
running under the MicroPython unix port. The stack survives each flood and keeps echoing and
answering pings afterwards, its heap stays within the size it was given (micropython.mem_peak
under -X heapsize), every frame the bridge read from the TAP reached the stack, and nothing
leaks (every packet buffer back in the pool). The heap-locked
steady-state proofs are tests/micropython/test_heap_lock.py."""
import re

import pytest

from tests.conftest import needs_netns
from tests.floodkit import run_flood
from tests.interop.test_floods import _tools
from tests.micropython.mpyhelp import needs_micropython
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns, needs_micropython]

FLOOD_SECS = 3
HEAP = 2 * 1024 * 1024   # boards/unix.py HEAPSIZE ("2M"): what micropython gets as -X heapsize


@pytest.fixture
def ns():
    _tools()
    n = Netns("mfl")
    yield n
    n.close()


@pytest.mark.parametrize("kind", ["syn", "ack", "frag", "udp"])
def test_micropython_stack_survives_a_flood_within_its_heap(ns, kind):
    st = StackProc(ns, "--serve", "echo,discard", "--board", "unix", runtime="micropython")
    try:
        assert "heapsize=2M" in st.ready, st.ready
        ns.run(["ping", "-n", "-c", "2", "-i", "0.1", "-w", "10", STACK_IP])
        r = run_flood(ns, st, kind, FLOOD_SECS, transfer=0)
        print("%s flood, micropython: %d frames/s offered, %d absorbed; echo RTT max %.3f s; "
              "ping %d/%d" % (kind, (r["tap_read"] + r["tap_dropped"]) / r["secs"],
                              r["tap_read"] / r["secs"], max(r["rtts"] or [0]), r["ping_got"],
                              r["ping_sent"]))
        assert r["tap_read"] + r["tap_dropped"] >= (r["hping_sent"] or 1), r
        assert r["fails"] == [] and r["bad"] == 0 and r["rtts"], r
        # after the flood: answering again, every ping
        p = ns.run(["ping", "-n", "-c", "10", "-i", "0.05", "-w", "20", STACK_IP], timeout=60)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        assert m and m.group(1) == m.group(2), p.stdout
        assert st.p.poll() is None, "the stack died:\n" + "".join(st.lines)[-3000:]
        c = st.stop()
    finally:
        if st.p.poll() is None:
            st.stop()
    # mem_peak on the unix port: bytes allocated and not explicitly freed (garbage the GC
    # reclaimed still counts), so it also bounds the churn - a path that allocates per frame
    # pushes it past the heap within a few seconds of flood
    assert c["mem.peak"] <= HEAP, "mem_peak %d B over the %d B heap: %r" % (
        c["mem.peak"], HEAP, {k: v for k, v in c.items() if k.startswith(("mem.", "reass."))})
    assert c["pbuf.free"] == c["pbuf.count"], c
    assert c["link.tap_queues"] == 16, c  # boards/unix.py TAP_QUEUES, read by the bridge
    assert c.get("bridge.tap_drops", 0) == 0 and c["eth0.rx_packets"] >= c["bridge.to_stack"], c
