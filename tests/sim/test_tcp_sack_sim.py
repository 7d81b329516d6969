"""SACK-based loss recovery (RFC 6675 + PRR, RACK-TLP) end to end: two ustack instances on
the in-memory wire with seeded loss (hal/impair.py), in virtual time - deterministic, so the
bounds below move only when TCP's behaviour does (benchmarks/loss.md holds the table)."""
import hashlib

from tests.sim.test_tcp_impair import BIG, ImpairedBench, pair, transfer, finish

SIZE = 2 * 1000 * 1000


def run(loss, sack, seed=1):
    b = ImpairedBench(dict(BIG, TCP_SACK=sack), loss=loss, delay_ms=10, seed=seed)
    c, s = pair(b)
    data = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(SIZE))
    t0 = b.t
    n, digest = transfer(b, c, s, data)
    assert n == SIZE and digest == hashlib.sha256(data).hexdigest()
    ms = b.t - t0
    return b, c, s, ms


def test_sack_recovery_moves_data_much_faster_than_newreno_at_5_percent_loss():
    b_off, c, s, ms_off = run(0.05, False)
    finish(b_off, c, s)
    b, c, s, ms_on = run(0.05, True)
    st = b.a.tcp.stats
    assert st.sack_recoveries > 10 and b.b.tcp.stats.rx_ooo > 0
    # at least 1.2 times the goodput: 4505 against 5630 ms (9070 ms, 15 RTOs, before NewReno
    # got limited transmit and fast retransmit at the old recovery point: RFC 3042, RFC 6582
    # 3.2 step 2; SACK's own run was 4820 ms)
    assert ms_on * 6 < ms_off * 5
    # 0 RTOs against 3 (15 before those fixes)
    assert st.rto_expired * 3 < b_off.a.tcp.stats.rto_expired
    finish(b, c, s)


def test_sack_retransmits_about_what_was_lost():
    """Each data frame the wire dropped is sent again, and little else is: no go-back-N."""
    b, c, s, ms = run(0.02, True, seed=5)
    st = b.a.tcp.stats
    lost = b.imps[0].lost                         # frames a (the sender) lost on the wire
    assert lost > 10 and st.sack_recoveries > 0
    assert lost <= st.tx_retransmits <= lost + lost // 4 + 3
    assert st.rx_sack_bad == 0
    finish(b, c, s)
