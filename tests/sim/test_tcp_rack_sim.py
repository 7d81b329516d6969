"""RACK (RFC 8985 6) end to end: two ustack instances on the in-memory wire, in virtual time,
a 20 ms path (10 ms each way) whose impairment holds a fraction of frames back 3 ms
(hal/impair.py reorder=, reorder_ms=) and loses none. Every retransmission there is
spurious: RFC 6675's DupThresh retransmits a held segment as soon as three later ones are
SACKed; RACK waits a reordering window (min_RTT / 4, 6.2 step 4) past the held segment's RTT,
and it arrives inside it."""
import hashlib

import pytest

from tests.sim.test_tcp_impair import BIG, ImpairedBench, pair, transfer, finish

SIZE = 2 * 1000 * 1000


def run(cc, reorder=0.02, loss=0.0, seed=1, **cfg):
    b = ImpairedBench(dict(BIG, TCP_CC=cc, **cfg), loss=loss, reorder=reorder, reorder_ms=3,
                      delay_ms=10, seed=seed)
    c, s = pair(b)
    data = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(SIZE))
    t0 = b.t
    n, digest = transfer(b, c, s, data)
    assert n == SIZE and digest == hashlib.sha256(data).hexdigest()
    return b, c, s, b.t - t0


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_3ms_reordering_on_a_20ms_path_causes_almost_no_spurious_retransmission(cc):
    b, c, s, ms = run(cc)
    st = b.a.tcp.stats
    held = b.imps[0].reordered                    # data frames the wire held back 3 ms
    assert held > 20 and b.imps[0].lost == 0
    assert st.rack_reordering > 0                 # 6.2 step 3: seen, the window opens
    # at most the first reordering (before any is seen reo_wnd is 0 once DupThresh
    # segments are SACKed, 6.2 step 4) costs a retransmission
    assert st.tx_retransmits <= 3, st.tx_retransmits
    assert st.sack_recoveries <= 2 and st.rto_expired == 0
    finish(b, c, s)


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_rfc6675_dupthresh_alone_retransmits_what_reordering_held_back(cc):
    """The same path with RACK off (TCP_RACK False): the baseline RACK is measured against."""
    b, c, s, ms = run(cc, TCP_RACK=False)
    st = b.a.tcp.stats
    assert st.sack_recoveries > 10 and st.tx_retransmits > 10
    finish(b, c, s)


def test_rack_keeps_up_with_rfc6675_when_frames_are_lost_too():
    """2 % loss beside the reordering: RACK's time-based detection still finds the losses
    (no retransmission timeouts storm) and retransmits about what was lost."""
    b, c, s, ms_rack = run("cubic", loss=0.02, seed=4)
    st = b.a.tcp.stats
    lost = b.imps[0].lost
    assert lost > 10 and st.sack_recoveries > 0
    assert st.tx_retransmits <= lost + lost // 4 + 3, (st.tx_retransmits, lost)
    finish(b, c, s)
    b2, c2, s2, ms_dup = run("cubic", loss=0.02, seed=4, TCP_RACK=False)
    assert ms_rack <= ms_dup * 1.1, (ms_rack, ms_dup)
    finish(b2, c2, s2)
