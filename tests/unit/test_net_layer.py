"""The network layer as transports see it (issue 9, core/net/): the per-packet metadata IPv4
input fills (where the addresses and the transport message are, the pseudo-header sum),
neutral error kinds mapped from every ICMPv4 type/code and back, address helpers for 4 and
16 bytes, segment sizes from the family's header length, and the one output call.

Expected values come from the frames as tests/frames.py builds them (struct) and from the
independent checksum in tests/unit_ref.py, never from the stack's own helpers."""
import struct

from ustack.core.compat import EAFNOSUPPORT
from ustack.core.net import ip as net
from ustack.core.net import errors as E
from ustack.core.icmp import kind_of
from ustack.core.tcp import tcb as T
from ustack.core import socket as so
from tests import frames as F
from tests.feed import Fed
from tests.unit_ref import csum

ETH_IP = 0x0800
OPTS = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL: a 24-byte header moves the transport along


def snapshot(m):
    return {"family": m.family, "hdr": m.hdr, "src": m.src, "dst": m.dst, "alen": m.alen,
            "l4": m.l4, "l4len": m.l4len, "proto": m.proto, "psum": m.psum, "ecn": m.ecn,
            "iface": m.iface, "bcast": m.bcast}


def record_input(fed, proto_name):
    """Wrap a transport's input: snapshots of the metadata each delivery carried."""
    seen = []
    obj = getattr(fed.stack, proto_name)
    real = obj.input

    def rec(pb, m):
        seen.append(snapshot(m))
        real(pb, m)
    obj.input = rec
    return seen


def ref_psum(src, dst, proto):
    """RFC 768 / RFC 9293 3.1: the pseudo-header without its length field, summed."""
    return csum(src + dst + struct.pack("!BB", 0, proto))


# ---- metadata -------------------------------------------------------------------------------
def test_a_udp_datagrams_metadata_locates_addresses_and_transport_behind_ip_options():
    fed = Fed()
    seen = record_input(fed, "udp")
    data = b"metadata"
    dgram = F.udp(F.HOST_IP, F.STACK_IP, 40000, 9, data)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP,
                   F.ipv4(F.HOST_IP, F.STACK_IP, 17, dgram, options=OPTS)))
    assert len(seen) == 1
    m = seen[0]
    assert m["family"] == net.AF_INET == so.AF_INET
    assert m["hdr"] == 14                     # behind the Ethernet header
    assert m["src"] == 14 + 12 and m["dst"] == 14 + 16 and m["alen"] == 4
    assert m["l4"] == 14 + 24                 # behind the header and its options
    assert m["l4len"] == len(dgram) == 8 + len(data)
    assert m["proto"] == 17
    assert m["iface"] is fed.iface and m["bcast"] is False
    assert m["psum"] == ref_psum(F.HOST_IP, F.STACK_IP, 17)
    # the sum plus the length verifies the datagram as the full pseudo-header would
    full = csum(F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 17, len(dgram)) + dgram)
    assert full == 0xFFFF
    assert csum(struct.pack("!HH", m["psum"], len(dgram)) + dgram) == 0xFFFF


def test_a_tcp_segments_metadata_carries_the_ecn_field_and_the_pseudo_header_sum():
    fed = Fed()
    seen = record_input(fed, "tcp")
    seg = F.tcp(F.HOST_IP, F.STACK_IP, 40000, 80, 1000, 0, 0x02)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP,
                   F.ipv4(F.HOST_IP, F.STACK_IP, 6, seg, tos=0x03)))
    m = seen[0]
    assert m["ecn"] == 3                      # RFC 3168 5: CE, from the TOS byte's low bits
    assert m["l4"] == 14 + 20 and m["l4len"] == len(seg) and m["proto"] == 6
    assert m["psum"] == ref_psum(F.HOST_IP, F.STACK_IP, 6)


def test_a_broadcast_datagram_is_marked_as_such_in_its_metadata():
    fed = Fed()
    seen = record_input(fed, "udp")
    bc = bytes([192, 0, 2, 255])
    fed.feed(F.eth(b"\xff" * 6, F.HOST_MAC, ETH_IP,
                   F.ipv4(F.HOST_IP, bc, 17, F.udp(F.HOST_IP, bc, 40000, 9, b"x"))))
    assert seen[0]["bcast"] is True
    assert seen[0]["psum"] == ref_psum(F.HOST_IP, bc, 17)


def test_recvfrom_names_the_source_the_metadata_located_even_behind_ip_options():
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 5000))
    s.setblocking(False)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP,
                   F.ipv4(F.HOST_IP, F.STACK_IP, 17,
                          F.udp(F.HOST_IP, F.STACK_IP, 41234, 5000, b"hello"), options=OPTS)))
    data, addr = s.recvfrom(100)
    assert data == b"hello" and addr == ("192.0.2.1", 41234)
    s.close()


def test_a_raw_socket_gets_the_whole_datagram_and_its_source():
    fed = Fed()
    r = fed.stack.socket(so.AF_INET, so.SOCK_RAW, 17)
    r.setblocking(False)
    ip = F.ipv4(F.HOST_IP, F.STACK_IP, 17, F.udp(F.HOST_IP, F.STACK_IP, 1, 2, b"raw"),
                options=OPTS)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP, ip))
    data, addr = r.recvfrom(2048)
    assert data == ip and addr == ("192.0.2.1", 0)
    r.close()


# ---- neutral error kinds ------------------------------------------------------------------------
UNREACH_KINDS = {
    0: E.ERR_NET_UNREACH, 1: E.ERR_HOST_UNREACH, 2: E.ERR_PROTO_UNREACH,
    3: E.ERR_PORT_UNREACH, 4: E.ERR_PKT_TOO_BIG, 5: E.ERR_HOST_UNREACH,
    6: E.ERR_HOST_UNREACH, 7: E.ERR_HOST_UNREACH, 8: E.ERR_HOST_UNREACH,
    9: E.ERR_ADMIN_PROHIBITED, 10: E.ERR_ADMIN_PROHIBITED, 11: E.ERR_HOST_UNREACH,
    12: E.ERR_HOST_UNREACH, 13: E.ERR_ADMIN_PROHIBITED, 14: E.ERR_HOST_UNREACH,
    15: E.ERR_HOST_UNREACH,
}


def test_every_icmpv4_destination_unreachable_code_has_a_neutral_kind():
    for code in range(16):
        assert kind_of(3, code) == UNREACH_KINDS[code], code


def test_time_exceeded_parameter_problem_and_source_quench_have_their_kinds():
    assert kind_of(11, 0) == E.ERR_TIME_EXCEEDED      # TTL exceeded in transit
    assert kind_of(11, 1) == E.ERR_REASS_TIMEOUT      # fragment reassembly time exceeded
    assert kind_of(12, 0) == E.ERR_PARAM_PROBLEM
    assert kind_of(12, 2) == E.ERR_PARAM_PROBLEM
    assert kind_of(4, 0) == E.ERR_SOURCE_QUENCH


def test_messages_that_are_no_errors_have_no_kind():
    for t in (0, 5, 8, 13, 14):                       # echo reply, redirect, echo, timestamps
        assert kind_of(t, 0) == 0


def test_unreachable_kinds_and_hard_kinds_are_told_apart():
    unreach = (E.ERR_NET_UNREACH, E.ERR_HOST_UNREACH, E.ERR_PROTO_UNREACH,
               E.ERR_PORT_UNREACH, E.ERR_PKT_TOO_BIG, E.ERR_ADMIN_PROHIBITED)
    for k in unreach:
        assert E.is_unreachable(k)
    for k in (E.ERR_TIME_EXCEEDED, E.ERR_REASS_TIMEOUT, E.ERR_PARAM_PROBLEM,
              E.ERR_SOURCE_QUENCH, 0):
        assert not E.is_unreachable(k)
    assert [k for k in unreach if E.is_hard(k)] == [E.ERR_PROTO_UNREACH, E.ERR_PORT_UNREACH]


def test_an_icmp_error_reaches_udp_as_its_kind_with_the_mtu_and_the_quote_located():
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 5000))
    s.connect(("192.0.2.1", 7))
    got = []
    real = fed.stack.udp.icmp_error

    def rec(kind, arg, b, q):
        got.append((kind, arg, q.family, q.alen, bytes(b[q.src:q.src + 4]),
                    bytes(b[q.dst:q.dst + 4]), (b[q.l4] << 8) | b[q.l4 + 1]))
        real(kind, arg, b, q)
    fed.stack.udp.icmp_error = rec
    ours = F.ipv4(F.STACK_IP, F.HOST_IP, 17, F.udp(F.STACK_IP, F.HOST_IP, 5000, 7, b"x"))
    body = ours[:28]
    msg = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + body
    msg = msg[:2] + struct.pack("!H", ~csum(msg) & 0xFFFF) + msg[4:]
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP, F.ipv4(F.HOST_IP, F.STACK_IP, 1, msg)))
    assert got == [(E.ERR_PKT_TOO_BIG, 1400, net.AF_INET, 4, F.STACK_IP, F.HOST_IP, 5000)]
    s.close()


def sent_icmp(fed, kind, arg):
    """What ICMP sends when a transport reports kind about a datagram it was handed."""
    stack = fed.stack

    def reject(pb, m):
        stack.ip.error(pb, m, kind, arg)
        stack.free(pb)
    stack.udp.input = reject
    out = fed.feed(F.udp_frame(9, b"q"))
    assert len(out) == 1
    ip = out[0][14:]
    assert ip[9] == 1 and ip[12:16] == F.STACK_IP and ip[16:20] == F.HOST_IP
    icmp = ip[(ip[0] & 0x0F) * 4:(ip[2] << 8) | ip[3]]
    assert csum(icmp) == 0xFFFF
    return icmp


def test_each_kind_a_transport_reports_leaves_as_the_icmp_message_that_means_it():
    for kind in (E.ERR_NET_UNREACH, E.ERR_HOST_UNREACH, E.ERR_PROTO_UNREACH,
                 E.ERR_PORT_UNREACH, E.ERR_ADMIN_PROHIBITED, E.ERR_TIME_EXCEEDED,
                 E.ERR_REASS_TIMEOUT, E.ERR_PARAM_PROBLEM):
        fed = Fed({"ICMP_RATE_MS": 0})
        icmp = sent_icmp(fed, kind, 0)
        assert kind_of(icmp[0], icmp[1]) == kind, kind
        assert icmp[8:12] == bytes([0x45, 0, 0, 29])  # the quote: the offending header


def test_packet_too_big_carries_the_mtu_and_parameter_problem_its_pointer():
    icmp = sent_icmp(Fed({"ICMP_RATE_MS": 0}), E.ERR_PKT_TOO_BIG, 1280)
    assert (icmp[0], icmp[1]) == (3, 4) and struct.unpack("!H", icmp[6:8])[0] == 1280
    icmp = sent_icmp(Fed({"ICMP_RATE_MS": 0}), E.ERR_PARAM_PROBLEM, 9)
    assert (icmp[0], icmp[4], icmp[6], icmp[7]) == (12, 9, 0, 0)  # RFC 792: pointer at 4


# ---- addresses ----------------------------------------------------------------------------------
V6_A = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1])
V6_B = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [2])


def test_addresses_of_4_and_16_bytes_compare_in_place():
    b = bytearray(40)
    b[3:7] = F.HOST_IP
    b[20:36] = V6_A
    assert net.addr_eq(b, 3, F.HOST_IP, 4) and not net.addr_eq(b, 3, F.STACK_IP, 4)
    assert net.addr_eq(b, 20, V6_A, 16) and not net.addr_eq(b, 20, V6_B, 16)


def test_address_hash_keeps_the_ipv4_mix_and_tells_ipv6_addresses_apart():
    a = F.HOST_IP
    assert net.addr_hash(a, 0, 4) == (a[0] << 22) ^ (a[1] << 15) ^ (a[2] << 8) ^ a[3]
    assert net.addr_hash(V6_A, 0, 16) != net.addr_hash(V6_B, 0, 16)
    for v in (a, V6_A, V6_B, b"\xff" * 16):
        assert 0 <= net.addr_hash(v, 0, len(v)) < (1 << 30)  # a small int on MicroPython


def test_the_unspecified_address_of_either_family():
    assert net.is_any(b"\0" * 4) and net.is_any(b"\0" * 16)
    assert not net.is_any(F.HOST_IP) and not net.is_any(V6_A)


def test_the_family_follows_the_address_length():
    assert net.family_of(F.HOST_IP) == net.AF_INET
    assert net.family_of(V6_A) == net.AF_INET6
    assert net.hdr_len(4) == 20 and net.hdr_len(16) == 40


# ---- segment sizes ---------------------------------------------------------------------------------
def test_our_mss_option_is_the_mtu_less_the_familys_headers():
    tcp = Fed().stack.tcp
    assert tcp.adv_mss_for(1500, 4) == 1460       # RFC 9293 3.7.1: 1500 - 20 - 20
    assert tcp.adv_mss_for(1500, 16) == 1440      # RFC 8200 8.3: 1500 - 40 - 20
    assert tcp.adv_mss_for(1280, 16) == 1220


def test_the_send_mss_follows_the_connections_family():
    tcp = Fed().stack.tcp
    for rip, want in ((F.HOST_IP, 1460), (V6_A, 1440)):
        t = T.TCB()
        t.remote_ip = rip
        t.peer_mss = 9000
        t.iface_mtu = 1500
        tcp.set_mss(t)
        assert t.mss == want, rip


# ---- output ------------------------------------------------------------------------------------
def test_output_to_a_family_without_an_implementation_is_refused_and_frees_the_buffer():
    fed = Fed()
    st = fed.stack
    pb = st.alloc()
    pb.n = 8
    assert st.ip.output(pb, 17, None, V6_A, 6) == EAFNOSUPPORT
    assert st.pool.full()
    assert st.ip.alloc_tx(V6_A) is None


def test_the_checksum_filled_from_the_pseudo_header_sum_verifies():
    b = bytearray(F.HOST_IP + F.STACK_IP + bytes(16))
    b[8:16] = struct.pack("!HHHH", 40000, 9, 16, 0)
    b[16:24] = b"payload!"
    net.fill_csum(b, 8, 16, 14, net.pseudo_sum(b, 0, 4, 17), 17)
    ph = F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 17, 16)
    assert csum(ph + bytes(b[8:24])) == 0xFFFF


def test_a_computed_zero_udp_checksum_is_sent_as_all_ones():
    # RFC 768: find a payload whose checksum computes to zero, then fill it
    b = bytearray(F.HOST_IP + F.STACK_IP + bytes(10))
    b[8:14] = struct.pack("!HHH", 1, 2, 10)
    ph = F.HOST_IP + F.STACK_IP + struct.pack("!BBH", 0, 17, 10)
    s = csum(ph + bytes(b[8:18]))
    word = 0xFFFF - s                          # makes the sum 0xFFFF: the checksum 0
    b[16:18] = struct.pack("!H", word)
    net.fill_csum(b, 8, 10, 14, net.pseudo_sum(b, 0, 4, 17), 17)
    assert b[14:16] == b"\xff\xff"


# ---- socket addresses ---------------------------------------------------------------------------
def test_socket_addresses_are_parsed_by_family():
    assert so.parse_addr(("192.0.2.1", 7), "connect", so.AF_INET) == (F.HOST_IP, 7)
    assert so.parse_addr(("localhost", 7)) == (bytes([127, 0, 0, 1]), 7)
    assert so.any_addr(so.AF_INET) == bytes(4)
    assert so.loopback_addr(so.AF_INET) == bytes([127, 0, 0, 1])
    assert so.fmt_addr(F.HOST_IP, 7) == ("192.0.2.1", 7)
    # AF_INET6: (host, port[, flowinfo[, scope_id]]), a %zone accepted; names as 4-tuples
    assert so.parse_addr(("2001:db8::1", 7), "connect", so.AF_INET6) == (V6_A, 7)
    assert so.parse_addr(("2001:db8::1%eth0", 7, 0, 0), "bind", so.AF_INET6) == (V6_A, 7)
    assert so.parse_addr(("", 7), "bind", so.AF_INET6) == (bytes(16), 7)
    assert so.any_addr(so.AF_INET6) == bytes(16)
    assert so.fmt_addr(V6_A, 7) == ("2001:db8::1", 7, 0, 0)


def test_ipv6_sockets_are_refused_while_config_ipv6_is_off():
    try:
        Fed().stack.socket(so.AF_INET6, so.SOCK_DGRAM)
    except OSError as e:
        assert e.args[0] == EAFNOSUPPORT
    else:
        assert False, "AF_INET6 accepted with IPv6 off"


# ---- routing tables per family ---------------------------------------------------------------------
def test_each_family_has_its_own_routing_table():
    st = Fed().stack
    assert st.routes_for(so.AF_INET) is st.routes and st.routes.alen == 4
    assert st.routes_for(so.AF_INET6) is None     # config IPV6 off: no IPv6 table


def test_prefix_masks_of_any_length_agree_with_ipv4s():
    from ustack.core.route import prefix_mask
    from ustack.core.wire import ipv4 as ip4
    for p in range(33):
        assert prefix_mask(p, 4) == ip4.prefix_mask(p), p
    assert prefix_mask(64, 16) == b"\xff" * 8 + b"\0" * 8
    assert prefix_mask(127, 16) == b"\xff" * 15 + b"\xfe"


def test_a_table_of_16_byte_addresses_matches_the_longest_prefix_and_writes_the_next_hop():
    from ustack.core.route import RouteTable
    class Link:
        def __init__(self, name):
            self.name = name
    default, onlink = Link("default"), Link("on-link")
    rt = RouteTable(4, 16)
    gw = bytes([0xfe, 0x80] + [0] * 13 + [1])
    net64 = bytes([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [0] * 8)
    rt.add(bytes(16), 0, gw, default)                 # ::/0 via fe80::1
    rt.add(net64, 64, None, onlink)                   # 2001:db8:0:1::/64 connected
    dst = bytes(net64[:8]) + bytes([0, 0, 0, 0, 0, 0, 0, 9])
    b = bytearray(8) + dst
    r = rt.lookup(b, 8)
    assert rt.iface[r] is onlink and bytes(rt.nexthop) == dst   # on-link: itself
    r = rt.lookup(V6_A, 0)                            # 2001:db8::1: only the default
    assert rt.iface[r] is default and bytes(rt.nexthop) == gw
    assert rt.remove(bytes(16), 0) and rt.lookup(V6_A, 0) == -1
    assert rt.table() == [("2001:db8:0:1:0:0:0:0", 64, None, "on-link")]


def test_peek_source_names_a_queued_datagrams_source_without_taking_it():
    fed = Fed()
    s = fed.stack.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 5000))
    s.setblocking(False)
    fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, ETH_IP,
                   F.ipv4(F.HOST_IP, F.STACK_IP, 17,
                          F.udp(F.HOST_IP, F.STACK_IP, 41234, 5000, b"hi"), options=OPTS)))
    peer = bytearray(4)
    assert s.peek_source(peer) == 41234 and bytes(peer) == F.HOST_IP
    assert s.recv(10) == b"hi"
    s.close()


def test_routing_goes_by_the_destinations_family():
    st = Fed().stack
    assert st.ip.route_out(F.HOST_IP, 0, 4) is st.route_out(F.HOST_IP, 0) is st.ifaces[0]
    assert bytes(st.routes.nexthop) == F.HOST_IP           # on-link: the host itself
    assert st.ip.route_out(bytes([203, 0, 113, 1]), 0, 4) is None   # no default route
    assert st.ip.route_out(V6_A, 0, 16) is None            # no IPv6 routes yet


def test_our_addresses_are_looked_up_by_family():
    st = Fed().stack
    assert st.ip.local_iface(F.STACK_IP, 0, 4) is st.ifaces[0]
    assert st.ip.local_iface(F.HOST_IP, 0, 4) is None
    assert st.ip.local_iface(V6_A, 0, 16) is None
    s = st.socket(so.AF_INET, so.SOCK_DGRAM)
    try:
        s.bind(("192.0.2.77", 5000))               # not ours: EADDRNOTAVAIL, as on Linux
    except OSError as e:
        assert e.args[0] == 99
    else:
        assert False, "bound to an address that is not ours"
    s.bind(("192.0.2.2", 5000))
    assert s.getsockname() == ("192.0.2.2", 5000)
    s.close()
