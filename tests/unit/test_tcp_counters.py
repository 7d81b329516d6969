"""TCP counters say what happened: rx_data_bytes is every payload byte delivered in order to
the receive buffer, whether it arrived in order or waited beyond a hole (ooo.py)."""
from tests.unit.test_tcp_states import Net, connected, close_all, first_dropped, recv_all


def test_rx_data_bytes_counts_the_bytes_a_filled_hole_releases_from_the_out_of_order_store():
    net = Net()
    c, s = connected(net)
    mss = c.tcb.mss
    net.drop_a = first_dropped(lambda seg: seg[3] > 0)  # the first data segment
    c.send(b"x" * (4 * mss))
    assert recv_all(net, s, 4 * mss, step=50, limit=30000) == 4 * mss
    st = net.b.tcp.stats
    assert st.rx_ooo >= 1                      # three segments waited beyond the hole
    assert st.rx_data_bytes == 4 * mss         # and are counted once they are delivered
    net.drop_a = None
    close_all(net)
