"""Socket receive queues and the packet-buffer pool: no socket, however slow its reader, can
take the buffers the stack needs to receive, answer ARP and ping, and transmit (issue 8,
holes 1 and 3). Raw sockets get whole datagrams, as Linux's do."""
import errno

import pytest

from ustack.core import socket as so
from tests.twostack import Bench, udp, IP_A, IP_B
from tests.exhaust import (unread_sockets_leave_the_stack_working,
                           arp_strangers_leave_the_stack_working)


def _teardown(b):
    b.close_all()
    for st in (b.a, b.b):
        for slot in st.ipv4.reass.slots:
            assert not slot.in_use and not slot.busy, "reassembly slot leaked"


@pytest.fixture
def bench():
    b = Bench()
    b.a.ping(IP_B, count=1)  # resolve ARP both ways first: fragments are not held for it
    yield b
    _teardown(b)


def raw(stack, proto=so.IPPROTO_ICMP):
    s = stack.socket(so.AF_INET, so.SOCK_RAW, proto)
    s.setblocking(False)
    return s


# ---- hole 1: a datagram bigger than one packet buffer to a raw socket -----------------------
def test_raw_socket_receives_a_reassembled_echo_request_whole(bench):
    """Linux `ping -s 3000` at a stack with a raw ICMP socket open: the 3028-byte datagram
    reaches the raw socket whole (header included, as BSD/Linux give it), and the echo
    reply still goes out."""
    r = raw(bench.b)
    p = bench.a.icmp.pinger(IP_B, 3000)
    p.send(0, bench.t)
    bench.pump(60)
    assert p.received == 1
    data, addr = r.recvfrom(65535)
    assert addr == (IP_A, 0)
    assert len(data) == 3028 and (data[2] << 8 | data[3]) == 3028
    assert data[20] == 8  # the echo request itself
    c = bench.b.counters()
    assert c["raw.rx_delivered"] == 1
    p.close()


def test_raw_socket_big_datagram_is_read_whole_or_truncated_to_bufsize(bench):
    r = raw(bench.b)
    bench.a.ping(IP_B, count=1, size=4000, timeout_ms=200)
    bench.a.ping(IP_B, count=1, size=4000, timeout_ms=200)
    head = r.recv(100)
    assert len(head) == 100 and head[0] == 0x45
    whole = r.recv(65535)
    assert len(whole) == 4028
    assert whole[0] == 0x45 and (whole[2] << 8 | whole[3]) == 4028
    assert whole[28:100] == head[28:100]  # the same echo payload pattern
    with pytest.raises(OSError) as e:
        r.recv(10)
    assert e.value.errno == errno.EAGAIN


def test_raw_socket_over_its_budget_drops_and_counts_the_big_datagram(bench):
    """A datagram that needs more buffers than the socket's SO_RCVBUF leaves is dropped and
    counted, the stack keeps answering."""
    r = raw(bench.b)
    r.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1)  # the minimum: one buffer's worth
    p = bench.a.ping(IP_B, count=1, size=56, timeout_ms=200)   # fills the budget
    assert p.received == 1
    p = bench.a.ping(IP_B, count=1, size=3000, timeout_ms=200)
    assert p.received == 1  # the stack still answers
    c = bench.b.counters()
    assert c["raw.rx_delivered"] == 1 and c["raw.rx_rcvbuf"] == 1
    assert len(r.recv(65535)) == 84
    with pytest.raises(OSError):
        r.recv(65535)


# ---- hole 3: unread sockets cannot take the pool ---------------------------------------------
def _close_all(b, socks):
    for s in socks:
        s.close()
    _teardown(b)


def test_four_unread_udp_sockets_leave_arp_ping_and_tcp_working():
    """The issue's numbers: 4 unread sockets x UDP_RX_QUEUE datagrams once equalled
    PBUF_COUNT, and B could neither receive nor send anything."""
    b, socks = unread_sockets_leave_the_stack_working(None, nsock=4)
    _close_all(b, socks)


def test_many_unread_udp_sockets_at_a_small_pool_leave_the_stack_working():
    cfg = {"PBUF_COUNT": 12, "UDP_RX_QUEUE": 16, "SOCKETS": 12}
    b, socks = unread_sockets_leave_the_stack_working(cfg, nsock=8)
    assert b.b.counters()["udp.rx_pool_share"] > 0
    _close_all(b, socks)


def test_socket_queue_budget_is_charged_whole_buffers():
    """SO_RCVBUF counts each queued datagram's buffer (Linux's truesize), not its payload:
    one-byte datagrams fill the budget as fast as full ones."""
    b = Bench()
    b.a.ping(IP_B)
    s = udp(b.b, 9)
    s.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 3 * b.b.pool.size // 2)  # Linux doubles it
    assert s.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == 3 * b.b.pool.size
    cli = udp(b.a)
    for i in range(5):
        cli.sendto(b"x", (IP_B, 9))
        b.pump(2)
    assert s.qlen == 3
    assert b.b.counters()["udp.rx_rcvbuf"] == 2
    _teardown(b)


def test_so_rcvbuf_is_clamped_like_linux():
    """Linux: at least a minimum, at most rmem_max (doubled); here at least one buffer and at
    most the socket queues' share of the pool; negative values mean the maximum."""
    b = Bench()
    s = udp(b.b)
    size = b.b.pool.size
    share = b.b.config["SOCK_QUEUE_PBUFS"] * size
    assert s.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == b.b.config["UDP_RCVBUF"]
    for v, want in ((1, size), (0, size), (-5, share), (1 << 30, share), (size, 2 * size)):
        s.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, v)
        assert s.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == want, v
    r = raw(b.b)
    r.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1)
    assert r.getsockopt(so.SOL_SOCKET, so.SO_RCVBUF) == size
    _teardown(b)


def test_receive_never_takes_the_transmit_reserve():
    """With the pool down to its reserve, received frames wait in the driver (counted), and
    what the stack must send still goes out."""
    b = Bench()
    b.a.ping(IP_B)
    pool = b.b.pool
    held = []
    while pool.nfree > pool.reserve:
        held.append(pool.alloc())
    cli = udp(b.a)
    srv = udp(b.b, 5)
    cli.sendto(b"waits", (IP_B, 5))
    b.pump(3)
    assert pool.rx_reserve_hit > 0 and srv.qlen == 0
    srv.sendto(b"but B can send", (IP_A, cli.getsockname()[1]))  # transmit uses the reserve
    b.pump(3)
    assert cli.recv(100) == b"but B can send"
    for pb in held:
        pool.free(pb)
    b.pump(3)
    assert srv.recv(100) == b"waits"
    c = b.b.counters()
    assert c["pbuf.rx_reserve_hit"] > 0 and c["pbuf.low_water"] <= pool.reserve
    _teardown(b)


def test_raw_socket_copies_leave_the_reserve_and_count_the_drop(bench):
    pool = bench.b.pool
    r = raw(bench.b)
    held = []
    while pool.nfree > pool.reserve + 1:
        held.append(pool.alloc())
    # one buffer above the reserve: the echo request gets in, its copy for r does not
    assert bench.a.ping(IP_B, count=1, timeout_ms=200).received == 1
    assert bench.b.counters()["raw.rx_no_buffer"] == 1 and r.qlen == 0
    for pb in held:
        pool.free(pb)


def test_broadcast_copies_are_bounded_like_the_first(bench):
    """Every socket matching a broadcast gets a copy; copies obey each socket's budget and
    the pool share like the original."""
    socks = []
    for i in range(3):
        s = udp(bench.b)
        s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        s.bind(("", 520))
        s.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1)  # one buffer each
        socks.append(s)
    cli = udp(bench.a)
    cli.setsockopt(so.SOL_SOCKET, so.SO_BROADCAST, 1)
    for i in range(3):
        cli.sendto(b"b%d" % i, ("192.0.2.255", 520))
        bench.pump(2)
    assert [s.qlen for s in socks] == [1, 1, 1]
    assert bench.b.counters()["udp.rx_rcvbuf"] == 6
    assert bench.b.pool.queued == 3


def test_replies_waiting_for_arp_hold_only_their_share():
    """Datagrams from on-link addresses that never answer ARP: each answer waits for ARP.
    They once could hold up to ARP_ENTRIES buffers - the whole pool of a small board."""
    b = arp_strangers_leave_the_stack_working({"PBUF_COUNT": 16, "ARP_ENTRIES": 16,
                                                "ARP_PENDING_PBUFS": 2})
    assert b.b.ifaces[0].arp.stats.pending_dropped >= 8


# ---- configuration: no board can configure itself into starvation ---------------------------
@pytest.mark.parametrize("bad", [
    {"PBUF_COUNT": 8, "SOCK_QUEUE_PBUFS": 6, "PBUF_RESERVE_TX": 1},   # nothing left to receive
    {"PBUF_COUNT": 8, "SOCK_QUEUE_PBUFS": 4, "PBUF_RESERVE_TX": 2, "ARP_PENDING_PBUFS": 2},
    {"PBUF_RESERVE_TX": 0},                                           # no transmit reserve
    {"PBUF_COUNT": 8, "PBUF_RESERVE_TX": 8},
    {"SOCK_QUEUE_PBUFS": 0},
    {"ARP_PENDING_PBUFS": -1},
    {"UDP_RCVBUF": 100},                                              # not even one buffer
    {"PBUF_COUNT": 8, "UDP_RCVBUF": 1 << 20},                         # beyond the queues' share
    {"RX_BATCH": 0},
])
def test_configurations_that_could_starve_the_pool_are_rejected(bad):
    from ustack.core.config import make_config
    with pytest.raises(ValueError):
        make_config(bad)


@pytest.mark.parametrize("count", [4, 5, 6, 8, 10, 16, 64, 256])
def test_derived_pool_shares_are_valid_for_any_pool_size(count):
    from ustack.core.config import make_config
    cfg = make_config({"PBUF_COUNT": count})
    assert cfg["PBUF_RESERVE_TX"] >= 1 and cfg["SOCK_QUEUE_PBUFS"] >= 1
    assert cfg["SOCK_QUEUE_PBUFS"] + cfg["ARP_PENDING_PBUFS"] + cfg["PBUF_RESERVE_TX"] < count


# ---- hole 12, raw sockets: API errors as CPython's raw socket gives them on Linux -----------
# (checked against socket.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) on 127.0.0.1 as root)
@pytest.mark.parametrize("call,args,exc", [
    ("bind", (None,), TypeError),                  # "AF_INET address must be tuple, not NoneType"
    ("bind", ("192.0.2.11",), TypeError),
    ("bind", (("192.0.2.11",),), TypeError),      # "must be a pair (host, port)"
    ("bind", (("192.0.2.11", "x"),), TypeError),
    ("bind", (("192.0.2.11", 70000),), OverflowError),
    ("connect", (None,), TypeError),
    ("connect", (("192.0.2.10",),), TypeError),
    ("sendto", (b"x", None), TypeError),
    ("sendto", (b"x", ("192.0.2.10",)), TypeError),
    ("sendto", ("text", ("192.0.2.10", 0)), TypeError),  # a bytes-like object is required
    ("recv", (-1,), ValueError),                   # "negative buffersize in recv"
    ("recvfrom", (-1,), ValueError),
])
def test_raw_socket_argument_errors_match_cpython(bench, call, args, exc):
    r = raw(bench.b)
    with pytest.raises(exc):
        getattr(r, call)(*args)
    assert bench.b.pool.full()


@pytest.mark.parametrize("call,args,err", [
    ("send", (b"\x08\x00\xf7\xff\x00\x00\x00\x00",), errno.EDESTADDRREQ),  # not connected
    ("bind", (("198.51.100.7", 0),), errno.EADDRNOTAVAIL),               # not our address
    ("listen", (1,), errno.EOPNOTSUPP),
    ("accept", (), errno.EOPNOTSUPP),
    ("shutdown", (so.SHUT_RDWR,), errno.ENOTCONN),
    ("sendto", (b"x" * 70000, (IP_A, 0)), errno.EMSGSIZE),
])
def test_raw_socket_oserrors_match_cpython(bench, call, args, err):
    r = raw(bench.b)
    sent = bench.ib.stats.tx_packets
    with pytest.raises(OSError) as e:
        getattr(r, call)(*args)
    assert e.value.errno == err
    bench.pump(3)
    assert bench.ib.stats.tx_packets == sent  # nothing went out (once, to 0.0.0.0)


def test_raw_socket_send_after_connect_reaches_the_peer(bench):
    r = raw(bench.b)
    seen = raw(bench.a)
    r.connect((IP_A, 0))
    r.send(b"\x08\x00\xf7\xff\x00\x00\x00\x00")  # an echo request, id 0 seq 0
    bench.pump(3)
    got = seen.recv(100)
    assert got[9] == 1 and got[20:28] == b"\x08\x00\xf7\xff\x00\x00\x00\x00"
    r.shutdown(so.SHUT_RDWR)  # connected: allowed, as on Linux


def test_raw_socket_connect_fixes_the_routed_source_address_as_linux_does(bench):
    # Linux (ip4_datagram_connect, as for UDP): getsockname() names the source after connect
    r = raw(bench.b)
    assert r.getsockname() == ("0.0.0.0", so.IPPROTO_ICMP)
    r.connect((IP_A, 0))
    assert r.getsockname() == (IP_B, so.IPPROTO_ICMP)
    with pytest.raises(OSError) as e:
        raw(bench.b).connect(("203.0.113.5", 0))  # no route: refused at connect, as Linux
    assert e.value.errno == errno.ENETUNREACH


def test_raw_bind_none_says_what_cpython_says(bench):
    r = raw(bench.b)
    for call in ("bind", "connect"):
        with pytest.raises(TypeError) as e:
            getattr(r, call)(None)
        assert str(e.value) == "%s(): AF_INET address must be tuple, not NoneType" % call


# ---- the class: every copy into a packet buffer is bounded by the buffer --------------------
SMALL_BUFS = {"PBUF_SIZE": 600, "PBUF_COUNT": 32}  # buffers smaller than the 1500-byte MTU


def test_fragments_fit_buffers_smaller_than_the_mtu():
    """ipv4._fragment cut fragments by the MTU alone: with PBUF_SIZE below MTU + headers the
    fragment copy overran its buffer (BufferError out of sendto, or out of poll() when the
    reply to a big ping is fragmented)."""
    b = Bench(SMALL_BUFS)
    b.a.ping(IP_B)
    srv = udp(b.b, 9)
    srv.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1 << 20)
    cli = udp(b.a)
    data = bytes(range(256)) * 12
    cli.sendto(data, (IP_B, 9))
    b.pump(30)
    assert srv.recv(4000) == data
    assert b.a.ping(IP_B, count=1, size=2000, timeout_ms=500).received == 1  # B fragments too
    _teardown(b)


def test_forwarded_datagram_moved_to_a_longer_link_header_fits_its_buffer():
    """_forward moves a datagram behind the outgoing link's header; when that header is
    longer than the incoming one the move must still fit the buffer (else: fragment)."""
    from ustack.core.ipv4 import IPv4
    b = Bench(SMALL_BUFS)
    b.a.ping(IP_B)  # ARP resolved: both fragments go out at once
    st = b.b
    pb = st.pool.alloc()
    n = st.pool.size  # a datagram filling the whole buffer from offset 0 (no link header)
    b4 = pb.buf
    b4[0:n] = bytes(n)
    b4[0] = 0x45
    b4[2] = n >> 8
    b4[3] = n & 0xFF
    b4[8] = 64
    b4[9] = 17
    b4[12:16] = bytes([198, 51, 100, 1])
    b4[16:20] = bytes([192, 0, 2, 10])
    from ustack.core.checksum import csum
    c = ~csum(b4, 0, 20, 0) & 0xFFFF
    b4[10] = c >> 8
    b4[11] = c & 0xFF
    st.ipv4.forward = True
    before = st.pool.nfree
    IPv4._forward(st.ipv4, b.ib, pb, 0, 20, n)  # must not raise
    b.pump(5)
    assert st.pool.nfree == before + 1
    assert st.ipv4.stats.tx_fragments == 2 and b.a.ipv4.reass.stats.reassembled == 1
    _teardown(b)


# ---- reassembly slots are not socket storage --------------------------------------------------
def test_unread_big_udp_datagram_does_not_hold_the_reassembly_slot():
    """A reassembled datagram queued on a UDP socket used to stay in its reassembly slot
    until read: with one slot (the embedded boards), one unread socket stopped all
    reassembly. Now it is copied into the socket's own (budgeted) buffers."""
    b = Bench({"REASS_SLOTS": 1, "REASS_SIZE": 3072})
    b.a.ping(IP_B)
    srv = udp(b.b, 9)
    cli = udp(b.a)
    data = bytes(range(256)) * 8  # 2048 bytes: two fragments
    cli.sendto(data, (IP_B, 9))
    b.pump(5)
    assert srv.qlen == 1
    assert b.a.ping(IP_B, count=1, size=2000, timeout_ms=500).received == 1
    assert srv.recvfrom(4000) == (data, (IP_A, cli.getsockname()[1]))
    _teardown(b)


def test_big_udp_datagram_reads_like_a_small_one():
    """recv, recv_into, recvfrom_into and MSG_PEEK on a datagram kept in several buffers."""
    b = Bench()
    b.a.ping(IP_B)
    srv = udp(b.b, 9)
    cli = udp(b.a)
    srv.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 1 << 20)
    data = bytes(range(256)) * 20  # 5120 bytes
    for i in range(3):
        cli.sendto(data, (IP_B, 9))
    b.pump(10)
    assert srv.recv(6000, so.MSG_PEEK) == data
    assert srv.recv(100) == data[:100]          # the rest is discarded, as with BSD
    buf = bytearray(6000)
    assert srv.recv_into(buf) == len(data) and bytes(buf[:len(data)]) == data
    n, addr = srv.recvfrom_into(buf, 3000)
    assert n == 3000 and bytes(buf[:3000]) == data[:3000] and addr[0] == IP_A
    assert b.b.pool.queued == 0
    _teardown(b)


def test_unread_tcp_connection_holds_no_packet_buffers():
    """TCP keeps received and out-of-order bytes in the connection's receive ring (heap,
    bounded by TCP_MAX_CONNS x TCP_RCV_BUF), never in pool buffers: a peer filling an unread
    connection's whole window leaves B's pool full."""
    b = Bench({"PBUF_COUNT": 8})
    ls = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(1)
    ls.setblocking(False)
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, 80))
    b.pump(20)
    srv = ls.accept()[0]
    sent = 0
    for i in range(200):
        try:
            sent += c.send(b"z" * 1000)
        except OSError:
            pass
        b.pump(2)
    assert sent >= b.b.config["TCP_RCV_BUF"]  # B's window is full, nobody reads
    assert b.b.pool.full()
    assert b.a.ping(IP_B, count=1, timeout_ms=200).received == 1
    for s in (c, srv, ls):
        s.close()
    b.pump(50)
    _teardown(b)


@pytest.mark.parametrize("n", [1536 - 34 - 8 + 1, 8192 - 8, 8192 - 8 + 1, 65507])
def test_udp_send_bigger_than_a_buffer_fits_or_is_emsgsize(bench, n):
    """udp.output: a payload beyond one buffer goes to the REASS_SIZE scratch buffer (then
    fragments), beyond that EMSGSIZE - never a copy past a buffer's end."""
    s = udp(bench.a)
    big = bench.a.config["REASS_SIZE"] - 8
    if n <= big:
        assert s.sendto(b"q" * n, (IP_B, 9)) == n
    else:
        with pytest.raises(OSError) as e:
            s.sendto(b"q" * n, (IP_B, 9))
        assert e.value.errno == errno.EMSGSIZE
    bench.pump(10)
    assert bench.a.pool.full()
    assert bench.a.ipv4.big is None or not bench.a.ipv4.big.in_use


@pytest.mark.parametrize("hdrincl", [False, True])
def test_raw_send_bigger_than_a_buffer_is_emsgsize(bench, hdrincl):
    r = raw(bench.a)
    if hdrincl:
        r.setsockopt(so.IPPROTO_IP, so.IP_HDRINCL, 1)
    with pytest.raises(OSError) as e:
        r.sendto(b"\x45" + b"\x00" * 1600, (IP_B, 0))
    assert e.value.errno == errno.EMSGSIZE
    assert bench.a.pool.full()


def test_icmp_error_quoting_a_header_with_options_fits_a_small_buffer():
    """The quote is the offending header (up to 60 bytes with options) + 28 bytes: it fits
    the smallest buffer the configuration allows."""
    from tests import frames
    b = Bench({"PBUF_SIZE": 600})
    b.a.ping(IP_B)
    r = b.a.socket(so.AF_INET, so.SOCK_RAW, so.IPPROTO_UDP)
    r.setsockopt(so.IPPROTO_IP, so.IP_HDRINCL, 1)
    src, dst = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11])
    opts = b"\x01" * 40  # 40 bytes of NOP options: a 60-byte header
    r.sendto(frames.ipv4(src, dst, 17, frames.udp(src, dst, 4000, 9999, b"x" * 500),
                         options=opts), (IP_B, 0))
    seen = raw(b.a)
    b.pump(5)
    assert b.b.icmp.stats.tx_errors == 1
    err = seen.recv(2000)
    assert len(err) == 20 + 8 + 60 + 28
    r.close()
    _teardown(b)


def test_raw_socket_names_as_linux_gives_them(bench):
    """Linux: a raw socket's name carries its protocol as the port, and it has no peer name
    even when connected."""
    r = raw(bench.b)
    assert r.getsockname() == ("0.0.0.0", so.IPPROTO_ICMP)
    r.bind((IP_B, 0))
    assert r.getsockname() == (IP_B, so.IPPROTO_ICMP)
    r.connect((IP_A, 0))
    with pytest.raises(OSError) as e:
        r.getpeername()
    assert e.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e:
        r.shutdown(7)
    assert e.value.errno == errno.EINVAL


def test_raw_recv_into_reads_into_the_buffer_and_checks_sizes_like_cpython(bench):
    r = raw(bench.b)
    assert bench.a.ping(IP_B, count=2, interval_ms=10, timeout_ms=200).received == 2
    buf = bytearray(200)
    assert r.recv_into(buf) == 84 and buf[0] == 0x45 and buf[20] == 8
    n, addr = r.recvfrom_into(buf, 30)
    assert n == 30 and addr == (IP_A, 0) and len(buf) == 200
    for call, args, msg in (
            ("recv_into", (buf, -1), "negative buffersize in recv_into"),
            ("recvfrom_into", (buf, -1), "negative buffersize in recvfrom_into"),
            ("recv_into", (buf, 201), "buffer too small for requested bytes"),
            ("recvfrom_into", (buf, 201), "nbytes is greater than the length of the buffer")):
        with pytest.raises(ValueError) as e:
            getattr(r, call)(*args)
        assert str(e.value) == msg
