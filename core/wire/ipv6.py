"""IPv6 header and extension-header chain (RFC 8200).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Traffic Class |           Flow Label                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Payload Length        |  Next Header  |   Hop Limit   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Source Address (128 bits)                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Destination Address (128 bits)                |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

walk(b, o, n, mcast, res) follows the extension headers of the packet at b[o] (n bytes
available) without allocating: it returns None and fills res (a caller-owned list of
RES_SIZE ints) with the upper-layer protocol and offset, or returns the name of the drop
counter. A drop that deserves an ICMPv6 Parameter Problem (RFC 8200 section 4) leaves
res[R_PP_CODE] >= 0 and res[R_PP_PTR] (offset from the IPv6 header); otherwise
res[R_PP_CODE] is -1. Whether the error may really be sent (never to a multicast
destination, except option type 10xxxxxx) is wire/icmp6.may_send_error's call.

Bounds: at most max_hdrs extension headers, at most max_bytes of them, at most max_opts
non-padding options per options header, no padding run longer than 7 bytes (RFC 4942
section 2.1.9.5 / Linux): an attacker's long chain costs us a bounded walk.
"""
from ustack.core.compat import const
from ustack.core.checksum import csum

VER_TC_FL = const(0)
PAYLOAD_LEN = const(4)
NEXT_HDR = const(6)
HOP_LIMIT = const(7)
SRC = const(8)
DST = const(24)
HDR_LEN = const(40)
ADDR_LEN = const(16)

MIN_MTU = const(1280)       # RFC 8200 section 5
DEFAULT_HOP_LIMIT = const(64)

# Next Header values (IANA protocol numbers; RFC 8200 section 4.1 for the extension headers)
NH_HOPOPTS = const(0)
NH_ICMP = const(1)
NH_TCP = const(6)
NH_UDP = const(17)
NH_ROUTING = const(43)
NH_FRAGMENT = const(44)
NH_ESP = const(50)
NH_AH = const(51)
NH_ICMPV6 = const(58)
NH_NONE = const(59)
NH_DSTOPTS = const(60)

# Hop-by-Hop / Destination options (RFC 8200 section 4.2)
OPT_PAD1 = const(0)
OPT_PADN = const(1)
OPT_ROUTER_ALERT = const(5)   # RFC 2711, hop-by-hop only; MLD uses value 0
OPT_ACTION_SKIP = const(0)          # 00: skip over this option
OPT_ACTION_DISCARD = const(1)       # 01: discard the packet
OPT_ACTION_DISCARD_ICMP = const(2)  # 10: discard, Parameter Problem code 2 even to multicast
OPT_ACTION_DISCARD_ICMP_UNICAST = const(3)  # 11: ... only when not to a multicast address
MAX_PAD_RUN = const(7)        # RFC 4942 2.1.9.5: padding never needs more than 7 bytes

# Routing header (RFC 8200 section 4.4); type 0 deprecated by RFC 5095
RH_TYPE = const(2)
RH_SEGMENTS_LEFT = const(3)
RH_TYPE0 = const(0)

# Fragment header (RFC 8200 section 4.5)
FRAG_HDR_LEN = const(8)
FRAG_OFF = const(2)           # 13-bit offset << 3 | res | M
FRAG_M = const(1)
FRAG_ID = const(4)

# Parameter Problem codes (RFC 4443 section 3.4, RFC 7112 section 5)
PP_ERRONEOUS_FIELD = const(0)
PP_UNRECOGNIZED_NH = const(1)
PP_UNRECOGNIZED_OPTION = const(2)
PP_INCOMPLETE_CHAIN = const(3)

# the walk's result slots
R_PROTO = const(0)     # upper-layer protocol (after a fragment header: the fragmentable part's)
R_OFF = const(1)       # its absolute offset in b
R_NH_PTR = const(2)    # offset (from the IPv6 header) of the Next Header field naming it
R_FRAG = const(3)      # absolute offset of a (non-atomic) fragment header, else -1
R_PP_CODE = const(4)   # on a drop: Parameter Problem code to send, else -1
R_PP_PTR = const(5)    # its pointer, from the start of the IPv6 header
R_HDRS = const(6)      # extension headers walked
RES_SIZE = const(7)

EXT_MAX_HDRS = const(8)      # config IPV6_EXT_MAX_HDRS
EXT_MAX_BYTES = const(512)   # config IPV6_EXT_MAX_BYTES
EXT_MAX_OPTS = const(8)      # config IPV6_EXT_MAX_OPTS

# the walk's drop counters (an IPv6 input counts these names)
WALK_DROPS = (
    "rx_too_short", "rx_bad_version", "rx_truncated", "rx_hbh_not_first", "rx_ext_truncated",
    "rx_ext_bad_option", "rx_ext_bad_padding", "rx_ext_too_many_options",
    "rx_unknown_option_discard", "rx_unknown_option_icmp", "rx_routing_type0",
    "rx_routing_unknown", "rx_frag_bad_length", "rx_frag_too_big", "rx_frag_incomplete_chain",
    "rx_ext_too_many", "rx_ext_too_long",
)


def new_result():
    """The walk's result list (once per interface, not per packet)."""
    return [0] * RES_SIZE


def write_header(b, o, tc, flow, payload_len, nh, hlim, src, dst):
    """A 40-byte header at b[o]; src and dst are 16-byte addresses (RFC 6437 flow label, 20
    bits; RFC 2474 traffic class, 8 bits)."""
    b[o] = 0x60 | ((tc >> 4) & 0x0F)
    b[o + 1] = ((tc & 0x0F) << 4) | ((flow >> 16) & 0x0F)
    b[o + 2] = (flow >> 8) & 0xFF
    b[o + 3] = flow & 0xFF
    b[o + 4] = (payload_len >> 8) & 0xFF
    b[o + 5] = payload_len & 0xFF
    b[o + 6] = nh
    b[o + 7] = hlim
    i = 0
    while i < 16:
        b[o + 8 + i] = src[i]
        b[o + 24 + i] = dst[i]
        i += 1


def version(b, o):
    return b[o] >> 4


def traffic_class(b, o):
    return ((b[o] & 0x0F) << 4) | (b[o + 1] >> 4)


def flow_label(b, o):
    return ((b[o + 1] & 0x0F) << 16) | (b[o + 2] << 8) | b[o + 3]


def payload_len(b, o):
    return (b[o + 4] << 8) | b[o + 5]


def flow_label_for(src, dst, proto, sport, dport, key):
    """RFC 6437 section 3: a flow's label from a keyed hash of its 5-tuple - uniformly
    spread, not guessable without the key, never 0 for a real flow. Once per connection
    (it allocates: SHA-256 via hashlib, on MicroPython too)."""
    import hashlib
    h = hashlib.sha256()
    h.update(bytes(key))
    h.update(bytes(src[0:16]))
    h.update(bytes(dst[0:16]))
    h.update(bytes((proto, sport >> 8, sport & 0xFF, dport >> 8, dport & 0xFF)))
    d = h.digest()
    v = ((d[0] & 0x0F) << 16) | (d[1] << 8) | d[2]
    return v if v else 1


def write_hbh_router_alert(b, o, nh):
    """An 8-byte Hop-by-Hop header holding a Router Alert for MLD (RFC 2711 value 0,
    RFC 3810 section 5) and a 0-length PadN."""
    b[o] = nh
    b[o + 1] = 0
    b[o + 2] = OPT_ROUTER_ALERT
    b[o + 3] = 2
    b[o + 4] = 0
    b[o + 5] = 0
    b[o + 6] = OPT_PADN
    b[o + 7] = 0
    return 8


def pseudo_sum(b, o, nh, l4len):
    """Sum of the RFC 8200 section 8.1 pseudo-header for the IPv6 header at b[o]: both
    addresses, the 32-bit upper-layer length, and the upper-layer Next Header."""
    return csum(b, o + SRC, 32, nh + (l4len >> 16) + (l4len & 0xFFFF))


def pseudo_sum_addrs(src, so, dst, do, nh, l4len):
    """The same sum from addresses anywhere (before the header is written)."""
    return csum(dst, do, 16, csum(src, so, 16, nh + (l4len >> 16) + (l4len & 0xFFFF)))


def _pp(res, code, ptr):
    res[R_PP_CODE] = code
    res[R_PP_PTR] = ptr


def _options(b, o, p, hend, mcast, max_opts, res):
    """The TLV options of one Hop-by-Hop or Destination Options header (RFC 8200 4.2)."""
    pad = 0
    nopt = 0
    while p < hend:
        t = b[p]
        if t == OPT_PAD1:
            pad += 1
            p += 1
        else:
            if p + 2 > hend or p + 2 + b[p + 1] > hend:
                return "rx_ext_bad_option"
            ln = b[p + 1]
            if t == OPT_PADN:
                pad += 2 + ln
            else:
                pad = 0
                nopt += 1
                if nopt > max_opts:
                    return "rx_ext_too_many_options"
                # we know no option but padding and Router Alert (action 00): the two
                # high bits of the type say what to do with the others (RFC 8200 4.2)
                act = t >> 6
                if act == OPT_ACTION_DISCARD or (act == OPT_ACTION_DISCARD_ICMP_UNICAST and mcast):
                    return "rx_unknown_option_discard"
                if act != OPT_ACTION_SKIP:
                    _pp(res, PP_UNRECOGNIZED_OPTION, p - o)
                    return "rx_unknown_option_icmp"
            p += 2 + ln
        if pad > MAX_PAD_RUN:
            return "rx_ext_bad_padding"
    return None


def walk(b, o, n, mcast, res, max_hdrs=EXT_MAX_HDRS, max_bytes=EXT_MAX_BYTES,
         max_opts=EXT_MAX_OPTS):
    """Follow the header chain of the IPv6 packet at b[o] (n bytes there, link padding
    allowed); mcast: the destination is a multicast address. None and res filled, or the
    drop counter's name (see the module docstring)."""
    res[R_PP_CODE] = -1
    res[R_FRAG] = -1
    res[R_HDRS] = 0
    if n < HDR_LEN:
        return "rx_too_short"
    if b[o] >> 4 != 6:
        return "rx_bad_version"
    end = o + HDR_LEN + ((b[o + 4] << 8) | b[o + 5])
    if end > o + n:
        return "rx_truncated"
    nh = b[o + NEXT_HDR]
    nhp = NEXT_HDR
    p = o + HDR_LEN
    hdrs = 0
    first_frag = False
    while True:
        if nh == NH_HOPOPTS or nh == NH_DSTOPTS or nh == NH_ROUTING or nh == NH_FRAGMENT:
            if nh == NH_HOPOPTS and p != o + HDR_LEN:
                # RFC 8200 4.1: only immediately after the IPv6 header
                _pp(res, PP_UNRECOGNIZED_NH, nhp)
                return "rx_hbh_not_first"
            hdrs += 1
            if hdrs > max_hdrs:
                return "rx_ext_too_many"
            if nh == NH_FRAGMENT:
                hl = FRAG_HDR_LEN
            else:
                hl = 0
                if p + 2 <= end:
                    hl = (b[p + 1] + 1) << 3
            if hl == 0 or p + hl > end:
                if first_frag:
                    # RFC 7112 section 5: the first fragment must hold the whole chain
                    _pp(res, PP_INCOMPLETE_CHAIN, 0)
                    return "rx_frag_incomplete_chain"
                return "rx_ext_truncated"
            if p + hl - o - HDR_LEN > max_bytes:
                return "rx_ext_too_long"
            if nh == NH_HOPOPTS or nh == NH_DSTOPTS:
                why = _options(b, o, p + 2, p + hl, mcast, max_opts, res)
                if why is not None:
                    return why
            elif nh == NH_ROUTING:
                if b[p + RH_SEGMENTS_LEFT] != 0:
                    # RFC 8200 4.4: a type we do not process with segments left is an
                    # error at the type field; RFC 5095 3: type 0 is such a type
                    _pp(res, PP_ERRONEOUS_FIELD, p + RH_TYPE - o)
                    if b[p + RH_TYPE] == RH_TYPE0:
                        return "rx_routing_type0"
                    return "rx_routing_unknown"
                # segments left 0: ignore the header, go on (RFC 8200 4.4, RFC 5095 3)
            else:
                fo = (b[p + 2] << 8) | b[p + 3]
                if (fo & 0xFFF9) == 0:
                    # RFC 6946 section 4: an atomic fragment is processed on its own
                    nhp = p - o
                    nh = b[p]
                    p += hl
                    continue
                flen = end - p - FRAG_HDR_LEN
                if (fo & FRAG_M) and (flen & 7):
                    # RFC 8200 4.5: non-last fragment not a multiple of 8 bytes
                    _pp(res, PP_ERRONEOUS_FIELD, PAYLOAD_LEN)
                    return "rx_frag_bad_length"
                # RFC 8200 4.5: the reassembled Payload Length counts the headers in
                # front of this one (the unfragmentable part) too
                if (p - o - HDR_LEN) + (fo & 0xFFF8) + flen > 65535:
                    _pp(res, PP_ERRONEOUS_FIELD, p + FRAG_OFF - o)
                    return "rx_frag_too_big"
                if res[R_FRAG] < 0:
                    res[R_FRAG] = p
                    res[R_PROTO] = b[p]
                    res[R_OFF] = p + FRAG_HDR_LEN
                    res[R_NH_PTR] = p - o
                    res[R_HDRS] = hdrs
                if fo & 0xFFF8:
                    return None    # a later fragment: the rest is payload, for reassembly
                first_frag = True  # RFC 7112: walk on to check the chain is all here
            nhp = p - o
            nh = b[p]
            p += hl
            continue
        if res[R_FRAG] < 0:
            res[R_PROTO] = nh
            res[R_OFF] = p
            res[R_NH_PTR] = nhp
            res[R_HDRS] = hdrs
        elif first_frag and nh != NH_NONE and not _upper_header_fits(nh, p, end):
            _pp(res, PP_INCOMPLETE_CHAIN, 0)
            return "rx_frag_incomplete_chain"
        return None


def _upper_header_fits(nh, p, end):
    """RFC 7112 section 5: the first fragment holds the upper-layer header too."""
    if nh == NH_TCP:
        return p + 20 <= end
    if nh == NH_UDP:
        return p + 8 <= end
    if nh == NH_ICMPV6:
        return p + 4 <= end
    return True
