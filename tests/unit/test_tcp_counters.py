"""TCP counters say what happened: rx_data_bytes is every payload byte delivered in order to
the receive buffer, whether it arrived in order or waited beyond a hole (ooo.py)."""
from tests.unit.test_tcp_states import Net, connected, close_all


def test_rx_data_bytes_counts_the_bytes_a_filled_hole_releases_from_the_out_of_order_store():
    net = Net()
    c, s = connected(net)
    mss = c.tcb.mss
    lost = []

    def drop_the_first_data_segment(seg):
        if seg[3] > 0 and not lost:
            lost.append(seg[1])
            return True
        return False
    net.drop_a = drop_the_first_data_segment
    c.send(b"x" * (4 * mss))
    got = 0
    end = net.t + 30000
    while got < 4 * mss and net.t < end:
        net.jump(50, lambda: s.readable())
        if s.readable():
            got += len(s.recv(8 * mss))
    assert got == 4 * mss
    st = net.b.tcp.stats
    assert st.rx_ooo >= 1                      # three segments waited beyond the hole
    assert st.rx_data_bytes == 4 * mss         # and are counted once they are delivered
    net.drop_a = None
    close_all(net)
