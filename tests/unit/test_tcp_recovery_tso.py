"""SACK loss recovery's new data on a link that cuts TSO segments (issue 12, 0 ms / 2 %): the
bytes a PRR budget (RFC 6937 3) lets out while NextSeg names new data (RFC 6675 4 rule 2) go
in one segment of many MSS, as outside recovery - the wire sees the same MSS-sized segments;
the sender makes one buffer and one driver write for them, not one each. Never past the
budget, the peer's window or the data queued."""
from ustack.core.buf import OFL_GSO_SHIFT
from ustack.core.iface import CAP_CSUM_RX, CAP_CSUM_TX, CAP_GRO, CAP_TSO4
from ustack.core.tcp.seq import seq_sub
from tests.twostack import Bench, MAC_A, MAC_B
from tests.unit.test_offload import CFG, KernelLink, move, pair, pattern


def test_new_data_in_sack_recovery_goes_in_tso_segments_within_the_prr_budget():
    """RFC 6675 5 (C) with RFC 6937: one wire segment lost every 40, a receiver whose ACKs
    each cover several segments (GRO); during each recovery
    the new data the budget allows leaves as TSO segments (whole MSS, <= budget and the
    peer's window); every byte arrives, one retransmission per loss, no timeout."""
    links = []
    seen = []

    def wrap(port, bench):
        if port.mac == MAC_A:
            k = KernelLink(port, CAP_CSUM_TX | CAP_TSO4)
            k.lose = tuple(range(40, 4000, 40))
            links.append(k)
            return k
        if port.mac == MAC_B:
            # the receiver's link merges in-sequence frames (Linux's GRO): one ACK acknowledges
            # several segments, so one ACK's budget covers several (as from Linux, issue 12)
            return KernelLink(port, CAP_CSUM_RX | CAP_GRO)
        return port
    b = Bench(config=dict(CFG, TCP_RACK=False), wrap=wrap)
    try:
        s, conn, ls = pair(b)
        drv = b.ia.driver
        orig = drv.send_offload

        def spy(buf, n, offload):
            t = s.tcb
            sb = t.sb if t is not None else None
            if sb is not None and sb.in_recovery and offload >> OFL_GSO_SHIFT:
                # the TCP payload (IPv4 and TCP headers with timestamps: 14 + 20 + 32)
                seen.append((n - 66, t.mss, sb.budget, t.snd_wnd,
                             seq_sub(t.snd_nxt, t.snd_una)))
            return orig(buf, n, offload)
        drv.send_offload = spy
        data = pattern(1500000)
        assert move(b, s, conn, data, limit_ms=60000) == data
        ca = b.a.counters()
        lost = len([x for x in links[0].lose if x <= links[0].nth])
        assert ca["tcp.sack_recoveries"] > 5
        assert seen, "no TSO segment of new data during recovery"
        for n, mss, budget, wnd, flight in seen:
            assert n > mss and n % mss == 0, (n, mss)
            assert n <= budget and flight + n <= wnd, (n, budget, flight, wnd)
        assert ca["tcp.tx_retransmits"] <= lost + 2, (ca["tcp.tx_retransmits"], lost)
        assert ca.get("tcp.rto_expired", 0) == 0
    finally:
        b.close_all()
