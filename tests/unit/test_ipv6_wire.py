"""IPv6 wire formats: the header, the extension-header walk's verdicts (RFC 8200 4, RFC 5095,
RFC 6946, RFC 7112), the pseudo-header checksum (8.1), ICMPv6 errors and their rules
(RFC 4443), ND messages and options (RFC 4861 4), MLD layouts (RFC 3810 5).

The byte strings marked "scapy" were written by scapy 2.8 from the same fields (an
independent encoder); tests/property/test_ipv6_oracles.py re-checks checksums against a
reference sum on random packets."""
from ustack.core import addr6
from ustack.core.checksum import csum
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6

A1 = addr6.pton("2001:db8::1")
A2 = addr6.pton("2001:db8::2")
LL1 = addr6.pton("fe80::ff:fe00:1")
MC = addr6.pton("ff02::1")

SCAPY_ECHO = bytes.fromhex(
    "60000000000e3a4020010db800000000000000000000000120010db80000000000000000000000028000"
    "c4cc1234000175737461636b")
SCAPY_UDP = bytes.fromhex(
    "60000000000d1101fe800000000000000000000000000001ff02000000000000000000000000000114e9"
    "14e9000d94aa68656c6c6f")
SCAPY_NS = bytes.fromhex(
    "6000000000203afffe80000000000000000000fffe000001ff0200000000000000000001ff0000028700"
    "7c9700000000fe80000000000000000000fffe0000020101020000000001")
SCAPY_MLD = bytes.fromhex(
    "6000000000240001fe80000000000000000000fffe000001ff0200000000000000000000000000163a00"
    "0502000001008f0072070000000104000000ff0200000000000000000001ff000001")


def packet(nh, ext, upper, dst=A2, src=A1, plen=None):
    """An IPv6 packet: header, extension-header bytes, upper-layer bytes."""
    body = ext + upper
    b = bytearray(40 + len(body))
    ip6.write_header(b, 0, 0, 0, len(body) if plen is None else plen, nh, 64, src, dst)
    b[40:] = body
    return b


def opts_header(nh, options):
    """A Hop-by-Hop/Destination Options header holding the given option bytes, padded
    with PadN/Pad1 to a multiple of 8."""
    body = bytes([nh, 0]) + options
    pad = (-len(body)) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes([1, pad - 2]) + bytes(pad - 2)
    body = bytearray(body)
    body[1] = len(body) // 8 - 1
    return bytes(body)


UDP8 = b"\x00\x35\x00\x35\x00\x08\x00\x00"


def walk(b, mcast=False, **kw):
    res = ip6.new_result()
    why = ip6.walk(b, 0, len(b), mcast, res, **kw)
    return why, res


# ---- header ----------------------------------------------------------------------------------
def test_header_fields_round_trip():
    b = bytearray(40)
    ip6.write_header(b, 0, 0xB8, 0xABCDE, 1234, ip6.NH_UDP, 7, A1, A2)
    assert ip6.version(b, 0) == 6 and ip6.traffic_class(b, 0) == 0xB8
    assert ip6.flow_label(b, 0) == 0xABCDE and ip6.payload_len(b, 0) == 1234
    assert b[ip6.NEXT_HDR] == 17 and b[ip6.HOP_LIMIT] == 7
    assert bytes(b[ip6.SRC:ip6.SRC + 16]) == A1 and bytes(b[ip6.DST:ip6.DST + 16]) == A2


def test_header_matches_scapy():
    b = bytearray(40)
    ip6.write_header(b, 0, 0, 0, 14, ip6.NH_ICMPV6, 64, A1, A2)
    assert bytes(b) == SCAPY_ECHO[:40]


def test_pseudo_header_checksum_matches_scapy_for_icmpv6_and_udp():
    for pkt, nh, co in ((SCAPY_ECHO, ip6.NH_ICMPV6, 2), (SCAPY_UDP, ip6.NH_UDP, 6)):
        b = bytearray(pkt)
        n = len(b) - 40
        want = (b[40 + co] << 8) | b[41 + co]
        b[40 + co] = b[41 + co] = 0
        got = ~csum(b, 40, n, ip6.pseudo_sum(b, 0, nh, n)) & 0xFFFF
        assert got == want
        assert ip6.pseudo_sum_addrs(b, 8, b, 24, nh, n) == ip6.pseudo_sum(b, 0, nh, n)
    assert icmp6.checksum_ok(SCAPY_ECHO, 0, 40, len(SCAPY_ECHO) - 40)


def test_hop_by_hop_router_alert_matches_scapy():
    b = bytearray(8)
    assert ip6.write_hbh_router_alert(b, 0, ip6.NH_ICMPV6) == 8
    assert bytes(b) == SCAPY_MLD[40:48]


# ---- the extension-header walk ---------------------------------------------------------------
def test_walk_plain_udp_reaches_the_upper_layer():
    why, res = walk(packet(ip6.NH_UDP, b"", UDP8))
    assert why is None
    assert res[ip6.R_PROTO] == 17 and res[ip6.R_OFF] == 40 and res[ip6.R_NH_PTR] == 6
    assert res[ip6.R_FRAG] == -1 and res[ip6.R_HDRS] == 0


def test_walk_link_padding_beyond_payload_length_is_fine():
    b = packet(ip6.NH_UDP, b"", UDP8) + bytearray(10)
    assert walk(b)[0] is None


def test_walk_rejects_short_wrong_version_and_truncated_packets():
    assert walk(bytearray(39))[0] == "rx_too_short"
    b = packet(ip6.NH_UDP, b"", UDP8)
    b[0] = 0x45
    assert walk(b)[0] == "rx_bad_version"
    b = packet(ip6.NH_UDP, b"", UDP8, plen=9)
    assert walk(b)[0] == "rx_truncated"


def test_walk_skips_hop_by_hop_and_destination_options():
    ext = opts_header(ip6.NH_DSTOPTS, b"\x05\x02\x00\x00") + opts_header(ip6.NH_UDP, b"")
    why, res = walk(packet(ip6.NH_HOPOPTS, ext, UDP8))
    assert why is None and res[ip6.R_PROTO] == 17 and res[ip6.R_OFF] == 56
    assert res[ip6.R_NH_PTR] == 48 and res[ip6.R_HDRS] == 2


def test_hop_by_hop_anywhere_but_first_is_parameter_problem_code_1():
    """RFC 8200 4.1: Hop-by-Hop only immediately after the IPv6 header."""
    ext = opts_header(ip6.NH_HOPOPTS, b"") + opts_header(ip6.NH_UDP, b"")
    why, res = walk(packet(ip6.NH_DSTOPTS, ext, UDP8))
    assert why == "rx_hbh_not_first"
    assert res[ip6.R_PP_CODE] == ip6.PP_UNRECOGNIZED_NH and res[ip6.R_PP_PTR] == 40


def unknown_option(action):
    return bytes([(action << 6) | 0x1E, 2, 0xAA, 0xBB])


def test_unknown_option_action_00_skips_it():
    ext = opts_header(ip6.NH_UDP, unknown_option(0))
    why, res = walk(packet(ip6.NH_DSTOPTS, ext, UDP8))
    assert why is None and res[ip6.R_PROTO] == 17


def test_unknown_option_action_01_discards_silently():
    ext = opts_header(ip6.NH_UDP, unknown_option(1))
    why, res = walk(packet(ip6.NH_DSTOPTS, ext, UDP8))
    assert why == "rx_unknown_option_discard" and res[ip6.R_PP_CODE] == -1


def test_unknown_option_action_10_discards_with_parameter_problem_even_to_multicast():
    for mcast in (False, True):
        ext = opts_header(ip6.NH_UDP, b"\x01\x00" + unknown_option(2))
        why, res = walk(packet(ip6.NH_DSTOPTS, ext, UDP8, dst=MC if mcast else A2), mcast)
        assert why == "rx_unknown_option_icmp"
        assert res[ip6.R_PP_CODE] == ip6.PP_UNRECOGNIZED_OPTION
        assert res[ip6.R_PP_PTR] == 40 + 2 + 2     # the option's type byte


def test_unknown_option_action_11_parameter_problem_only_to_unicast():
    ext = opts_header(ip6.NH_UDP, unknown_option(3))
    why, res = walk(packet(ip6.NH_HOPOPTS, ext, UDP8))
    assert why == "rx_unknown_option_icmp" and res[ip6.R_PP_CODE] == 2
    assert res[ip6.R_PP_PTR] == 42
    why, res = walk(packet(ip6.NH_HOPOPTS, ext, UDP8, dst=MC), True)
    assert why == "rx_unknown_option_discard" and res[ip6.R_PP_CODE] == -1


def test_option_running_past_its_header_is_malformed():
    ext = bytearray(opts_header(ip6.NH_UDP, b"\x1e\x02\x00\x00"))
    ext[3] = 9   # option length beyond the 8-byte header
    assert walk(packet(ip6.NH_DSTOPTS, bytes(ext), UDP8))[0] == "rx_ext_bad_option"


def test_padding_longer_than_seven_bytes_is_dropped():
    """RFC 4942 2.1.9.5: padding is never needed beyond 7 bytes; a long PadN hides data."""
    ext = bytes([ip6.NH_UDP, 1, 1, 10]) + bytes(12)
    assert walk(packet(ip6.NH_DSTOPTS, ext, UDP8))[0] == "rx_ext_bad_padding"
    ext = bytes([ip6.NH_UDP, 0, 1, 4]) + bytes(4)   # 6 bytes of padding: fine
    assert walk(packet(ip6.NH_DSTOPTS, ext, UDP8))[0] is None


def test_too_many_options_in_one_header_are_dropped():
    ext = opts_header(ip6.NH_UDP, b"\x1e\x00" * 9)
    assert walk(packet(ip6.NH_DSTOPTS, ext, UDP8))[0] == "rx_ext_too_many_options"
    assert walk(packet(ip6.NH_DSTOPTS, ext, UDP8), max_opts=9)[0] is None


def test_routing_header_type_0_with_segments_left_is_rejected():
    """RFC 5095 3: RH0 is treated as an unrecognised routing type: Parameter Problem code 0
    at the Routing Type field."""
    rh = bytes([ip6.NH_UDP, 2, 0, 1, 0, 0, 0, 0]) + A2
    why, res = walk(packet(ip6.NH_ROUTING, rh, UDP8))
    assert why == "rx_routing_type0"
    assert res[ip6.R_PP_CODE] == ip6.PP_ERRONEOUS_FIELD and res[ip6.R_PP_PTR] == 42


def test_routing_header_with_no_segments_left_is_ignored():
    for rtype in (0, 4):
        rh = bytes([ip6.NH_UDP, 2, rtype, 0, 0, 0, 0, 0]) + A2
        why, res = walk(packet(ip6.NH_ROUTING, rh, UDP8))
        assert why is None and res[ip6.R_PROTO] == 17 and res[ip6.R_OFF] == 64


def test_unknown_routing_type_with_segments_left_is_parameter_problem():
    rh = bytes([ip6.NH_UDP, 2, 4, 1, 0, 0, 0, 0]) + A2
    why, res = walk(packet(ip6.NH_ROUTING, rh, UDP8))
    assert why == "rx_routing_unknown" and res[ip6.R_PP_PTR] == 42


def test_depth_and_length_bounds():
    ext = b""
    for _ in range(8):
        ext += opts_header(ip6.NH_DSTOPTS, b"")
    last = opts_header(ip6.NH_UDP, b"")
    assert walk(packet(ip6.NH_DSTOPTS, ext[:-8] + last, UDP8))[0] is None      # 8 headers
    assert walk(packet(ip6.NH_DSTOPTS, ext + last, UDP8))[0] == "rx_ext_too_many"  # 9
    big = bytes([ip6.NH_UDP, 64]) + bytes([1, 5]) + bytes(5) + (b"\x1e\x04\x00\x00\x00\x00" +
                                                                  b"\x01\x00") * 64
    big = big[:520]
    assert walk(packet(ip6.NH_DSTOPTS, big, UDP8), max_opts=100)[0] == "rx_ext_too_long"


def test_truncated_extension_headers_are_dropped():
    ext = opts_header(ip6.NH_UDP, b"\x1e\x0a" + bytes(10))   # 16 bytes
    assert walk(packet(ip6.NH_DSTOPTS, ext[:8], b""))[0] == "rx_ext_truncated"
    assert walk(packet(ip6.NH_DSTOPTS, b"\x11", b""))[0] == "rx_ext_truncated"
    assert walk(packet(ip6.NH_FRAGMENT, b"\x11\x00\x00", b""))[0] == "rx_ext_truncated"


def frag(nh, offset, more, ident=0x12345678):
    v = (offset << 3) | (1 if more else 0)
    return bytes([nh, 0, v >> 8, v & 0xFF, ident >> 24, (ident >> 16) & 0xFF,
                  (ident >> 8) & 0xFF, ident & 0xFF])


def test_fragment_header_is_located_for_reassembly():
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_UDP, 0, True), UDP8 + bytes(8)))
    assert why is None
    assert res[ip6.R_FRAG] == 40 and res[ip6.R_PROTO] == 17 and res[ip6.R_OFF] == 48
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_UDP, 2, False), b"tail"))
    assert why is None and res[ip6.R_FRAG] == 40 and res[ip6.R_OFF] == 48


def test_atomic_fragment_is_processed_on_its_own():
    """RFC 6946 4: offset 0 and M 0: no reassembly, the packet goes on."""
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_UDP, 0, False), UDP8))
    assert why is None and res[ip6.R_FRAG] == -1 and res[ip6.R_PROTO] == 17
    assert res[ip6.R_OFF] == 48 and res[ip6.R_NH_PTR] == 40


def test_non_last_fragment_not_multiple_of_8_is_parameter_problem():
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_UDP, 0, True), UDP8 + b"x"))
    assert why == "rx_frag_bad_length" and res[ip6.R_PP_CODE] == 0
    assert res[ip6.R_PP_PTR] == ip6.PAYLOAD_LEN


def test_fragment_beyond_65535_bytes_is_parameter_problem():
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_UDP, 8190, False), bytes(16)))
    assert why == "rx_frag_too_big" and res[ip6.R_PP_PTR] == 42


def test_first_fragment_must_hold_the_whole_header_chain():
    """RFC 7112 5: Parameter Problem code 3, pointer 0."""
    ext = frag(ip6.NH_DSTOPTS, 0, True) + bytes([ip6.NH_UDP, 1]) + bytes(6)  # says 16
    why, res = walk(packet(ip6.NH_FRAGMENT, ext, b""))
    assert why == "rx_frag_incomplete_chain"
    assert res[ip6.R_PP_CODE] == ip6.PP_INCOMPLETE_CHAIN and res[ip6.R_PP_PTR] == 0
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_TCP, 0, True), bytes(8)))
    assert why == "rx_frag_incomplete_chain"       # a TCP header needs 20 bytes
    why, res = walk(packet(ip6.NH_FRAGMENT, frag(ip6.NH_TCP, 0, True), bytes(24)))
    assert why is None


def test_no_next_header_and_unknown_protocols_are_the_callers():
    why, res = walk(packet(ip6.NH_NONE, b"", b""))
    assert why is None and res[ip6.R_PROTO] == ip6.NH_NONE
    why, res = walk(packet(ip6.NH_DSTOPTS, opts_header(253, b""), b"xx"))
    assert why is None and res[ip6.R_PROTO] == 253 and res[ip6.R_NH_PTR] == 40


def test_walk_allocates_no_result_of_its_own():
    res = ip6.new_result()
    b = packet(ip6.NH_UDP, b"", UDP8)
    assert ip6.walk(b, 0, len(b), False, res) is None
    assert len(res) == ip6.RES_SIZE


def test_walk_at_an_offset_inside_a_frame():
    b = bytearray(14) + packet(ip6.NH_HOPOPTS, opts_header(ip6.NH_UDP, b""), UDP8)
    res = ip6.new_result()
    assert ip6.walk(b, 14, len(b) - 14, False, res) is None
    assert res[ip6.R_OFF] == 14 + 48 and res[ip6.R_NH_PTR] == 40


# ---- ICMPv6 errors ---------------------------------------------------------------------------
def test_error_quotes_as_much_as_fits_in_1280_bytes():
    inv = packet(ip6.NH_UDP, b"", UDP8 + bytes(1400))
    out = bytearray(1500)
    n = icmp6.build_error(out, 0, icmp6.DEST_UNREACH, icmp6.PORT_UNREACH, 0, A2, A1, inv, 0,
                          len(inv), 64)
    assert n == 1280
    assert ip6.payload_len(out, 0) == 1240 and out[6] == ip6.NH_ICMPV6
    assert out[40] == 1 and out[41] == 4
    assert bytes(out[48:1280]) == bytes(inv[:1232])
    assert icmp6.checksum_ok(out, 0, 40, 1240)


def test_error_about_a_small_packet_quotes_it_whole():
    inv = packet(ip6.NH_UDP, b"", UDP8)
    out = bytearray(200)
    n = icmp6.build_error(out, 0, icmp6.PACKET_TOO_BIG, 0, 1280, A2, A1, inv, 0, len(inv), 64)
    assert n == 40 + 8 + 48
    assert icmp6.get32(out, 40 + icmp6.PARAM) == 1280
    assert bytes(out[48:n]) == bytes(inv)


def echo(dst=A2, src=A1):
    return packet(ip6.NH_ICMPV6, b"", bytes([128, 0, 0, 0, 0, 1, 0, 1]), dst=dst, src=src)


def may(typ, code, b, l2=False, ptr=-1):
    why, res = walk(b, b[24] == 0xFF)
    return icmp6.may_send_error(typ, code, ptr, b, 0, res[ip6.R_PROTO], res[ip6.R_OFF], l2)


def test_errors_answer_ordinary_unicast_packets():
    assert may(icmp6.DEST_UNREACH, icmp6.PORT_UNREACH, packet(ip6.NH_UDP, b"", UDP8))
    assert may(icmp6.TIME_EXCEEDED, 0, echo())


def test_never_an_error_about_an_error_or_a_redirect():
    err = packet(ip6.NH_ICMPV6, b"", bytes([1, 4, 0, 0, 0, 0, 0, 0]))
    assert not may(icmp6.PARAM_PROBLEM, 0, err)
    red = packet(ip6.NH_ICMPV6, b"", bytes([137, 0, 0, 0]) + bytes(36))
    assert not may(icmp6.DEST_UNREACH, 0, red)


def test_never_an_error_to_unspecified_or_multicast_sources():
    assert not may(icmp6.DEST_UNREACH, 4, packet(ip6.NH_UDP, b"", UDP8, src=addr6.ANY))
    assert not may(icmp6.DEST_UNREACH, 4, packet(ip6.NH_UDP, b"", UDP8, src=MC))


def test_multicast_gets_only_packet_too_big_and_option_type_10_errors():
    b = packet(ip6.NH_UDP, b"", UDP8, dst=MC)
    assert not may(icmp6.DEST_UNREACH, icmp6.PORT_UNREACH, b)
    assert not may(icmp6.TIME_EXCEEDED, 0, b)
    assert may(icmp6.PACKET_TOO_BIG, 0, b)
    assert not may(icmp6.DEST_UNREACH, 4, packet(ip6.NH_UDP, b"", UDP8), l2=True)
    opt10 = packet(ip6.NH_DSTOPTS, opts_header(ip6.NH_UDP, unknown_option(2)), UDP8, dst=MC)
    why, res = walk(opt10, True)
    assert why == "rx_unknown_option_icmp"
    assert icmp6.may_send_error(icmp6.PARAM_PROBLEM, res[ip6.R_PP_CODE], res[ip6.R_PP_PTR],
                                opt10, 0, -1, -1, False)
    opt11 = packet(ip6.NH_DSTOPTS, opts_header(ip6.NH_UDP, unknown_option(3)), UDP8, dst=MC)
    assert not icmp6.may_send_error(icmp6.PARAM_PROBLEM, 2, 42, opt11, 0, -1, -1, False)


# ---- Neighbor Discovery ---------------------------------------------------------------------
MAC1 = b"\x02\x00\x00\x00\x00\x01"


def nd_packet(msg, src=LL1, dst=MC, hlim=255):
    b = bytearray(40 + len(msg))
    ip6.write_header(b, 0, 0, 0, len(msg), ip6.NH_ICMPV6, hlim, src, dst)
    b[40:] = msg
    icmp6.fill_checksum(b, 0, 40, len(msg))
    return b


def test_neighbor_solicitation_matches_scapy():
    b = bytearray(72)
    ip6.write_header(b, 0, 0, 0, 32, ip6.NH_ICMPV6, 255, LL1,
                     addr6.pton("ff02::1:ff00:2"))
    n = icmp6.write_ns(b, 40, addr6.pton("fe80::ff:fe00:2"), MAC1)
    assert n == 32
    icmp6.fill_checksum(b, 0, 40, n)
    assert bytes(b) == SCAPY_NS
    assert icmp6.nd_check(b, 0, 40, n) is None


def test_na_and_rs_layouts():
    b = bytearray(32)
    assert icmp6.write_na(b, 0, icmp6.NA_FLAG_SOLICITED | icmp6.NA_FLAG_OVERRIDE, A1,
                          MAC1) == 32
    assert b[0] == 136 and b[4] == 0x60 and bytes(b[8:24]) == A1
    assert b[24] == icmp6.OPT_TLLA and b[25] == 1 and bytes(b[26:32]) == MAC1
    assert icmp6.write_rs(b, 0, None) == 8 and b[0] == 133


def test_option_walk_finds_each_option():
    b = bytearray(16 + 8 + 32 + 8)
    icmp6.write_ra(b, 0, 64, 0, 1800, 0, 0)
    p = 16
    p += icmp6.write_lla_option(b, p, icmp6.OPT_SLLA, MAC1)
    p += icmp6.write_prefix_option(b, p, A1, 64, 0xC0, 3600, 1800)
    p += icmp6.write_mtu_option(b, p, 1400)
    assert icmp6.options_valid(b, 16, p)
    assert icmp6.find_option(b, 16, p, icmp6.OPT_SLLA) == 16
    assert icmp6.find_option(b, 16, p, icmp6.OPT_PREFIX_INFO) == 24
    assert icmp6.find_option(b, 16, p, icmp6.OPT_MTU) == 56
    assert icmp6.find_option(b, 16, p, icmp6.OPT_TLLA) == -1
    assert icmp6.next_option(b, 24) == 56
    assert icmp6.get32(b, 56 + icmp6.MTU_VALUE) == 1400


def test_zero_length_option_invalidates_the_message():
    """RFC 4861 4.6: nodes MUST silently discard an ND packet with an option of length 0."""
    msg = bytearray(32)
    icmp6.write_ns(msg, 0, A2, MAC1)
    msg[25] = 0
    b = nd_packet(msg)
    assert not icmp6.options_valid(b, 64, 72)
    assert icmp6.nd_check(b, 0, 40, 32) == "rx_nd_bad_option"


def test_nd_needs_hop_limit_255_and_code_0():
    msg = bytearray(24)
    icmp6.write_ns(msg, 0, A2, None)
    assert icmp6.nd_check(nd_packet(msg, hlim=64), 0, 40, 24) == "rx_nd_hop_limit"
    msg[1] = 1
    assert icmp6.nd_check(nd_packet(msg), 0, 40, 24) == "rx_nd_bad_code"
    assert icmp6.nd_check(nd_packet(bytearray(b"\x87\x00\x00\x00")), 0, 40, 4) == \
        "rx_nd_short"


def test_nd_semantic_checks():
    ns = bytearray(24)
    icmp6.write_ns(ns, 0, MC, None)
    assert icmp6.nd_check(nd_packet(ns), 0, 40, 24) == "rx_nd_bad_target"
    # a DAD probe (from ::) goes to a solicited-node group and carries no SLLA
    icmp6.write_ns(ns, 0, A2, None)
    assert icmp6.nd_check(nd_packet(ns, src=addr6.ANY), 0, 40, 24) == "rx_nd_bad_dest"
    assert icmp6.nd_check(nd_packet(ns, src=addr6.ANY, dst=addr6.pton("ff02::1:ff00:2")),
                          0, 40, 24) is None
    ns2 = bytearray(32)
    icmp6.write_ns(ns2, 0, A2, MAC1)
    assert icmp6.nd_check(nd_packet(ns2, src=addr6.ANY, dst=addr6.pton("ff02::1:ff00:2")),
                          0, 40, 32) == "rx_nd_bad_option"
    na = bytearray(24)
    icmp6.write_na(na, 0, icmp6.NA_FLAG_SOLICITED, A2, None)
    assert icmp6.nd_check(nd_packet(na), 0, 40, 24) == "rx_nd_bad_flags"
    ra = bytearray(16)
    icmp6.write_ra(ra, 0, 64, 0, 1800, 0, 0)
    assert icmp6.nd_check(nd_packet(ra, src=A1), 0, 40, 16) == "rx_nd_bad_source"
    assert icmp6.nd_check(nd_packet(ra), 0, 40, 16) is None


# ---- MLD -----------------------------------------------------------------------------------------
def test_mldv2_report_matches_scapy():
    b = bytearray(76)
    ip6.write_header(b, 0, 0, 0, 36, ip6.NH_HOPOPTS, 1, LL1, addr6.ALL_MLDV2_ROUTERS)
    ip6.write_hbh_router_alert(b, 40, ip6.NH_ICMPV6)
    n = icmp6.write_mld2_report_header(b, 48, 1)
    n += icmp6.write_mld2_record(b, 48 + n, icmp6.CHANGE_TO_EXCLUDE,
                                 addr6.pton("ff02::1:ff00:1"), 0)
    assert n == 28
    icmp6.fill_checksum(b, 0, 48, n)
    assert bytes(b) == SCAPY_MLD


def test_mld_query_version_by_length():
    """RFC 3810 8.1: 24 bytes is MLDv1, 28 or more MLDv2, anything else ignored."""
    assert icmp6.mld_query_version(24) == 1
    assert icmp6.mld_query_version(28) == 2 and icmp6.mld_query_version(44) == 2
    for n in (8, 23, 25, 27):
        assert icmp6.mld_query_version(n) == 0


def test_mld_maximum_response_code():
    """RFC 3810 5.1.3: below 32768 milliseconds as is; above, mantissa and exponent."""
    b = bytearray(28)
    b[4], b[5] = 0x27, 0x10
    assert icmp6.mld_max_resp_ms(b, 0, 2) == 10000
    b[4], b[5] = 0x80, 0x00          # exp 0, mant 0: 0x1000 << 3
    assert icmp6.mld_max_resp_ms(b, 0, 2) == 32768
    b[4], b[5] = 0xFF, 0xFF          # exp 7, mant 0xFFF
    assert icmp6.mld_max_resp_ms(b, 0, 2) == 0x1FFF << 10
    assert icmp6.mld_max_resp_ms(b, 0, 1) == 0xFFFF


# ---- echo ------------------------------------------------------------------------------------
def test_echo_reply_in_place_swaps_addresses_and_keeps_the_checksum_right():
    b = bytearray(SCAPY_ECHO)
    icmp6.echo_reply_in_place(b, 0, 40, None, 0, 64)
    assert b[40] == icmp6.ECHO_REPLY and b[7] == 64
    assert bytes(b[8:24]) == A2 and bytes(b[24:40]) == A1
    assert bytes(b[44:]) == SCAPY_ECHO[44:]            # id, sequence, data untouched
    assert icmp6.checksum_ok(b, 0, 40, len(b) - 40)


def test_echo_reply_to_a_multicast_request_comes_from_our_address():
    b = bytearray(SCAPY_ECHO)
    b[24:40] = MC
    icmp6.fill_checksum(b, 0, 40, len(b) - 40)
    mine = b"xx" + addr6.pton("2001:db8::77")
    icmp6.echo_reply_in_place(b, 0, 40, mine, 2, 255)
    assert bytes(b[8:24]) == mine[2:] and bytes(b[24:40]) == A1 and b[7] == 255
    assert icmp6.checksum_ok(b, 0, 40, len(b) - 40)


def redirect(target, dest, src=LL1):
    msg = bytearray(40)
    msg[0] = icmp6.REDIRECT
    msg[8:24] = target
    msg[24:40] = dest
    return nd_packet(msg, src=src, dst=A1)


def test_redirect_taken_only_from_the_current_first_hop():
    router = addr6.pton("fe80::ff:fe00:1")
    b = redirect(addr6.pton("fe80::5"), A2)
    assert icmp6.nd_check(b, 0, 40, 40) is None
    assert icmp6.redirect_check(b, 0, 40, 40, router, 0) is None
    other = addr6.pton("fe80::99")
    assert icmp6.redirect_check(b, 0, 40, 40, other, 0) == "rx_redirect_not_first_hop"


def test_redirect_target_is_a_router_or_the_destination_itself():
    router = LL1
    assert icmp6.redirect_check(redirect(A2, A2), 0, 40, 40, router, 0) is None   # on-link
    assert icmp6.redirect_check(redirect(A1, A2), 0, 40, 40, router, 0) == \
        "rx_redirect_bad_target"
    assert icmp6.nd_check(redirect(A2, MC), 0, 40, 40) == "rx_nd_bad_dest"
    assert icmp6.nd_check(redirect(A2, A2, src=A1), 0, 40, 40) == "rx_nd_bad_source"


def test_flow_label_is_20_bits_keyed_and_stable_per_flow():
    """RFC 6437 3: a hash of the 5-tuple with a secret."""
    k = b"k" * 16
    f = ip6.flow_label_for(A1, A2, 6, 40000, 80, k)
    assert 0 < f < 1 << 20
    assert ip6.flow_label_for(A1, A2, 6, 40000, 80, k) == f
    others = {ip6.flow_label_for(A1, A2, 6, 40001, 80, k),
              ip6.flow_label_for(A2, A1, 6, 40000, 80, k),
              ip6.flow_label_for(A1, A2, 17, 40000, 80, k),
              ip6.flow_label_for(A1, A2, 6, 40000, 80, b"j" * 16)}
    assert f not in others and len(others) == 4
