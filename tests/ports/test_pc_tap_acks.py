"""boards/pc_tap.py's ACK policy (issue 13): TCP_ACK_BURST is at least RX_BATCH, so the
in-order full-sized segments a poll reads share one ACK at the burst's end (RFC 5681 4.2's
every second full-sized segment, per burst as for a GRO batch) - without offloads each ACK
is a write in which a Linux sender sends its next segments in the stack's time. CPython
only: MicroPython's unit runner has no boards package."""
from ustack.boards import pc_tap
from tests.unit.test_ack_burst import burst, in_order
from tests.unit.test_tcp_segments import Peer


def test_a_whole_poll_of_full_segments_gets_one_ack_on_pc_tap():
    cfg = pc_tap.CONFIG
    p = Peer({"TCP_ACK_BURST": cfg["TCP_ACK_BURST"], "TCP_RCV_BUF": cfg["TCP_RCV_BUF"]})
    p.sa = p.connect()
    p.mss = p.tcb().mss
    n = p.stack.config["RX_BATCH"]
    assert cfg.get("RX_BATCH", n) <= cfg["TCP_ACK_BURST"]
    r = burst(p, in_order(p, n))
    # one ACK, covering all of them (16 gave two: one at the 16th, one at the burst's end)
    assert [(s.f, s.ack) for s in r] == [(".", p.seq)]
