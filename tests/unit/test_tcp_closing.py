"""The connections a host still owes a FIN (TCP.closing) and giving up on them (abort_closing):
what `ustack run` and Host.close wait for after the program, so that a FIN lost then is
resent (issue 12's impaired-path stall: the program's stack stopped with its FIN lost on the
path, and the Linux peer waited for the end of the stream for ever)."""
from ustack.core import socket as so
from ustack.hal.impair import Impair
from tests.twostack import Bench, IP_B, MAC_A


def fin_from_a(frame):
    """An IPv4 TCP segment from A with FIN set (Ethernet + a 20-byte IPv4 header)."""
    return frame[6:12] == MAC_A and frame[12:14] == b"\x08\x00" and frame[23] == 6 and \
        frame[14 + 20 + 13] & 0x01


def bench_losing_first_fins(k):
    """A bench whose wire loses A's first k FINs."""
    lost = [0]

    def drop(frame):
        if fin_from_a(frame) and lost[0] < k:
            lost[0] += 1
            return True
        return False
    return Bench(wrap=lambda port, bench: Impair(port, drop=drop) if port.mac == MAC_A
                 else port), lost


def connected(bench):
    lst = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    lst.bind(("", 9000))
    lst.listen(1)
    lst.setblocking(False)
    return dial(bench, lst)


def dial(bench, lst):
    """A connection from A to B's listener lst: (A's socket, B's), both non-blocking."""
    c = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect((IP_B, 9000))
    except OSError:
        pass
    assert bench.until(lambda: lst.readable())
    s, _ = lst.accept()
    s.setblocking(False)
    return c, s


def read_to_end(bench, s):
    got = []
    end = []

    def step():
        while s.readable():
            d = s.recv(65536)
            if not d:
                end.append(True)
                return True
            got.append(d)
        return False
    assert bench.until(step, limit_ms=20000)
    return b"".join(got)


def test_closing_counts_a_fin_until_it_is_acknowledged_a_lost_one_too():
    bench, lost = bench_losing_first_fins(1)
    c, s = connected(bench)
    tcp = bench.a.tcp
    assert tcp.closing() == 0
    c.send(b"x" * 3000)
    c.close()  # an orphan now: FIN-WAIT-1 with its FIN behind the data
    assert tcp.closing() == 1
    bench.pump()
    assert lost[0] == 1 and tcp.closing() == 1  # the FIN went and was lost
    assert read_to_end(bench, s) == b"x" * 3000  # resent after the RTO: end of stream
    bench.pump()  # B's ACK of it
    assert tcp.closing() == 0
    assert bench.a.tcp.stats.tx_retransmits >= 1 and bench.a.tcp.stats.tx_rst == 0
    s.close()
    bench.close_all()


def test_closing_counts_the_last_ack_side_and_not_fin_wait_2():
    bench, lost = bench_losing_first_fins(0)
    c, s = connected(bench)
    s.close()  # B closes first: A in CLOSE-WAIT, B in FIN-WAIT-2 once A ACKs its FIN
    bench.pump()
    assert bench.b.tcp.closing() == 0  # FIN-WAIT-2: its FIN is acknowledged
    assert bench.a.tcp.closing() == 0  # CLOSE-WAIT: nothing queued yet
    c.close()  # LAST-ACK
    assert bench.a.tcp.closing() == 1
    bench.pump()
    assert bench.a.tcp.closing() == 0
    bench.close_all()


def test_abort_closing_resets_what_still_owes_its_fin_and_nothing_else():
    bench, lost = bench_losing_first_fins(100)  # every FIN from A lost: never acknowledged
    c, s = connected(bench)
    c2, s2 = connected_again(bench)
    c.close()
    bench.run(300)
    tcp = bench.a.tcp
    assert tcp.closing() == 1 and lost[0] >= 1
    tcp.abort_closing()
    assert tcp.closing() == 0
    assert tcp.stats.tx_rst == 1 and tcp.stats.conn_aborted == 1
    bench.pump()
    try:
        s.recv(10)
        assert False, "B's end of the reset connection still open"
    except OSError as e:
        assert e.errno == 104  # ECONNRESET: the peer knows
    c2.send(b"still here")  # the other connection was left alone
    bench.pump()
    assert s2.recv(100) == b"still here"
    for x in (s, c2, s2):
        x.close()
    bench.close_all()


def connected_again(bench):
    """A second connection to B's listener on port 9000."""
    return dial(bench, [x for x in bench.b.sockets if getattr(x, "listening", False)][0])
