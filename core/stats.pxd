# Types for stats.py under Cython (the .py stays MicroPython's): a counter group is a C struct
# for the counters every frame or segment moves (issue 13: a generic `st.x += 1` on an
# instance __dict__ cost ~0.1 us, about 1 us a request), the rest stay plain attributes in
# its __dict__. One class for every group: a group names its own counters (_names), and
# items(), nonzero() and reset() go by those names only, so `stats` shows exactly what it
# showed before; a hot name another group owns is an unused C field here.

cdef class Counters:
    cdef dict __dict__
    cdef public object _names
    # interface (iface.py) and IPv4 (ipv4.py), per frame
    cdef public long long rx_packets, rx_bytes, tx_packets, tx_bytes, tx_busy
    cdef public long long tx_gso_frames, tx_tso_frames, rx_budget_hit, rx_delivered
    # TCP (tcp/proto.py), per segment
    cdef public long long rx_segments, rx_conn_segments, rx_data_bytes, rx_sack_blocks
    cdef public long long rx_dup_acks, tx_segments, tx_data_bytes, tx_tso_segments
    cdef public long long delayed_acks, burst_acks, rx_predicted
    # UDP (udp.py), per datagram
    cdef public long long rx_datagrams, tx_datagrams
