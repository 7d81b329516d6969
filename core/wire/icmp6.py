"""ICMPv6 (RFC 4443), Neighbor Discovery messages (RFC 4861 section 4) and MLDv2 (RFC 3810).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  errors: unused / MTU (PTB) / pointer (param problem); echo: id, seq  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  errors: as much of the invoking packet as fits in 1280 bytes |

ND options are type, length in units of 8 bytes, data; a zero length makes the whole
message invalid (RFC 4861 4.6). Every function reads or writes at (buffer, offset) and
allocates nothing.
"""
from ustack.core.compat import const
from ustack.core.checksum import csum, update16
from ustack.core.wire import ipv6 as ip6
from ustack.core.wire.fields import get32, put32  # noqa: F401 (slaac.py reads them here)

TYPE = const(0)
CODE = const(1)
CSUM = const(2)
HDR_LEN = const(4)
ERR_HDR_LEN = const(8)
PARAM = const(4)     # errors: 32-bit MTU (PTB) or pointer (parameter problem)
ID = const(4)
SEQ = const(6)

# error messages (RFC 4443 section 3)
DEST_UNREACH = const(1)
PACKET_TOO_BIG = const(2)
TIME_EXCEEDED = const(3)
PARAM_PROBLEM = const(4)
# informational messages (RFC 4443 section 4, RFC 4861 section 4, RFC 3810)
ECHO_REQUEST = const(128)
ECHO_REPLY = const(129)
MLD_QUERY = const(130)
MLD_REPORT_V1 = const(131)
MLD_DONE = const(132)
ROUTER_SOLICIT = const(133)
ROUTER_ADVERT = const(134)
NEIGHBOR_SOLICIT = const(135)
NEIGHBOR_ADVERT = const(136)
REDIRECT = const(137)
MLD_REPORT_V2 = const(143)

# Destination Unreachable codes (RFC 4443 3.1)
NO_ROUTE = const(0)
ADMIN_PROHIBITED = const(1)
BEYOND_SCOPE = const(2)
ADDR_UNREACH = const(3)
PORT_UNREACH = const(4)
SRC_POLICY_FAILED = const(5)
REJECT_ROUTE = const(6)
# Time Exceeded codes (RFC 4443 3.3)
HOP_LIMIT_EXCEEDED = const(0)
REASS_TIME_EXCEEDED = const(1)
# Parameter Problem codes (RFC 4443 3.4, RFC 7112 5)
ERRONEOUS_FIELD = const(0)
UNRECOGNIZED_NH = const(1)
UNRECOGNIZED_OPTION = const(2)
INCOMPLETE_CHAIN = const(3)

ERR_MAX_LEN = const(1280)   # RFC 4443 2.4 (c): the error packet fits the minimum MTU
ND_HOP_LIMIT = const(255)   # RFC 4861 6.1.1/7.1.1: proves the sender is on the link

# ND message layouts (RFC 4861 section 4): fixed part length and field offsets
RS_LEN = const(8)
RA_LEN = const(16)
RA_CUR_HOP_LIMIT = const(4)
RA_FLAGS = const(5)
RA_ROUTER_LIFETIME = const(6)
RA_REACHABLE_TIME = const(8)
RA_RETRANS_TIMER = const(12)
RA_FLAG_MANAGED = const(0x80)
RA_FLAG_OTHER = const(0x40)
NS_LEN = const(24)
NA_LEN = const(24)
ND_TARGET = const(8)
NA_FLAGS = const(4)
NA_FLAG_ROUTER = const(0x80)
NA_FLAG_SOLICITED = const(0x40)
NA_FLAG_OVERRIDE = const(0x20)
REDIRECT_LEN = const(40)
REDIRECT_DEST = const(24)

# ND options (RFC 4861 4.6)
OPT_SLLA = const(1)
OPT_TLLA = const(2)
OPT_PREFIX_INFO = const(3)
OPT_REDIRECTED_HDR = const(4)
OPT_MTU = const(5)
PI_LEN = const(32)
PI_PREFIX_LEN = const(2)
PI_FLAGS = const(3)
PI_FLAG_ONLINK = const(0x80)
PI_FLAG_AUTO = const(0x40)
PI_VALID = const(4)
PI_PREFERRED = const(8)
PI_PREFIX = const(16)
MTU_OPT_LEN = const(8)
MTU_VALUE = const(4)
OPT_ROUTE_INFO = const(24)   # RFC 4191 2.3: Route Information
RIO_PREFIX_LEN = const(2)
RIO_FLAGS = const(3)         # Prf in bits 0x18: 01 high, 00 medium, 11 low, 10 reserved
RIO_LIFETIME = const(4)
RIO_PREFIX = const(8)
OPT_RDNSS = const(25)        # RFC 8106 5.1: Recursive DNS Server
RDNSS_LIFETIME = const(4)
RDNSS_ADDRS = const(8)
INFINITE = const(0xFFFFFFFF)

# MLD (RFC 3810 5.1 queries, 5.2 version 2 reports)
MLD_MAX_RESP = const(4)
MLD_ADDR = const(8)
MLD_V1_LEN = const(24)
MLD_V2_QUERY_MIN = const(28)
MLD_QRV = const(24)
MLD_QQIC = const(25)
MLD_NSRC = const(26)
MLD2_NRECORDS = const(6)
MLD2_REC_LEN = const(20)    # a record without sources or aux data
MODE_IS_INCLUDE = const(1)
MODE_IS_EXCLUDE = const(2)
CHANGE_TO_INCLUDE = const(3)
CHANGE_TO_EXCLUDE = const(4)

ND_DROPS = ("rx_nd_hop_limit", "rx_nd_bad_code", "rx_nd_short", "rx_nd_bad_option",
            "rx_nd_bad_target", "rx_nd_bad_source", "rx_nd_bad_dest", "rx_nd_bad_flags",
            "rx_redirect_not_first_hop", "rx_redirect_bad_target")


def is_error(t):
    return t < 128


# ---- errors ---------------------------------------------------------------------------------
def may_send_error(typ, code, ptr, b, o, upper, uoff, l2_mcast):
    """RFC 4443 section 2.4 (e): may an error typ/code (ptr: a Parameter Problem's pointer,
    from the IPv6 header) answer the packet whose IPv6 header is at b[o]? upper/uoff: its
    upper-layer protocol and absolute offset from the walk (-1 when unknown); l2_mcast: it
    came as a link-layer multicast or broadcast. Never about an ICMPv6 error or a Redirect
    (e.1, e.2); never to a source that is not one node (e.6); to a multicast destination
    or link-layer group (e.3-e.5) only Packet Too Big and a Parameter Problem code 2 about
    an option whose type has the high bits 10 (RFC 8200 4.2)."""
    if upper == ip6.NH_ICMPV6 and uoff >= 0:
        t = b[uoff]
        if t < 128 or t == REDIRECT:
            return False
    s = o + ip6.SRC
    if b[s] == 0xFF or _unspec(b, s):
        return False
    if b[o + ip6.DST] == 0xFF or l2_mcast:
        if typ == PACKET_TOO_BIG:
            return True
        return typ == PARAM_PROBLEM and code == UNRECOGNIZED_OPTION and ptr >= 0 and \
            (b[o + ptr] & 0xC0) == 0x80
    return True


def write_error(out, oo, typ, code, param, inv, io, ilen, room):
    """An ICMPv6 error at out[oo] quoting the invoking packet inv[io:io+ilen] as far as
    room bytes (the IPv6 packet's budget: ERR_MAX_LEN minus the headers in front of the
    message) allow; checksum left 0 (fill_checksum). Returns the message length."""
    q = room - ERR_HDR_LEN
    if q > ilen:
        q = ilen
    if q < 0:
        q = 0
    out[oo] = typ
    out[oo + 1] = code
    out[oo + 2] = 0
    out[oo + 3] = 0
    put32(out, oo + PARAM, param)
    i = 0
    d = oo + ERR_HDR_LEN
    while i < q:
        out[d + i] = inv[io + i]
        i += 1
    return ERR_HDR_LEN + q


def build_error(out, oo, typ, code, param, src, dst, inv, io, ilen, hlim):
    """A whole IPv6 packet at out[oo]: header (src -> dst, hop limit hlim) and an error
    quoting inv[io:io+ilen], at most ERR_MAX_LEN bytes with its checksum. Returns its
    length."""
    m = write_error(out, oo + ip6.HDR_LEN, typ, code, param, inv, io, ilen,
                    ERR_MAX_LEN - ip6.HDR_LEN)
    ip6.write_header(out, oo, 0, 0, m, ip6.NH_ICMPV6, hlim, src, dst)
    fill_checksum(out, oo, oo + ip6.HDR_LEN, m)
    return ip6.HDR_LEN + m


def fill_checksum(b, ip_off, o, n):
    """The ICMPv6 checksum of b[o:o+n] under the pseudo-header of the IPv6 header at
    b[ip_off] (RFC 4443 2.3)."""
    b[o + 2] = 0
    b[o + 3] = 0
    s = ~csum(b, o, n, ip6.pseudo_sum(b, ip_off, ip6.NH_ICMPV6, n)) & 0xFFFF
    b[o + 2] = s >> 8
    b[o + 3] = s & 0xFF


def checksum_ok(b, ip_off, o, n):
    return csum(b, o, n, ip6.pseudo_sum(b, ip_off, ip6.NH_ICMPV6, n)) == 0xFFFF


# ---- echo ------------------------------------------------------------------------------------
def echo_reply_in_place(b, ip_off, o, src, so, hlim):
    """Turn the Echo Request at b[o] (IPv6 header at b[ip_off]) into its Echo Reply where it
    lies (RFC 4443 4.2): the addresses swapped - or, with src not None, the source taken
    from src[so:] (a request to a multicast address is answered from one of ours, RFC 4443
    2.2) - hop limit hlim, type 129. The checksum is updated incrementally (RFC 1624): a
    swap leaves the pseudo-header's sum as it was; only the type and a new source count."""
    d = ip_off + ip6.DST
    s = ip_off + ip6.SRC
    c = (b[o + 2] << 8) | b[o + 3]
    c = update16(c, ECHO_REQUEST << 8, ECHO_REPLY << 8)
    i = 0
    while i < 16:
        t = b[d + i]
        b[d + i] = b[s + i]
        b[s + i] = t
        i += 1
    if src is not None:
        i = 0
        while i < 16:
            c = update16(c, (b[s + i] << 8) | b[s + i + 1], (src[so + i] << 8) | src[so + i + 1])
            b[s + i] = src[so + i]
            b[s + i + 1] = src[so + i + 1]
            i += 2
    b[o] = ECHO_REPLY
    b[o + 2] = c >> 8
    b[o + 3] = c & 0xFF
    b[ip_off + ip6.HOP_LIMIT] = hlim


# ---- Neighbor Discovery ----------------------------------------------------------------------
def nd_options_start(typ):
    if typ == ROUTER_SOLICIT:
        return RS_LEN
    if typ == ROUTER_ADVERT:
        return RA_LEN
    if typ == NEIGHBOR_SOLICIT or typ == NEIGHBOR_ADVERT:
        return NS_LEN
    if typ == REDIRECT:
        return REDIRECT_LEN
    return -1


def options_valid(b, p, end):
    """Every option has a non-zero length and fits (RFC 4861 4.6)."""
    while p < end:
        if p + 2 > end:
            return False
        ln = b[p + 1] << 3
        if ln == 0 or p + ln > end:
            return False
        p += ln
    return True


def find_option(b, p, end, otype):
    """The offset of the first option of type otype in b[p:end] (validated), or -1."""
    while p + 2 <= end:
        ln = b[p + 1] << 3
        if ln == 0:
            return -1
        if b[p] == otype:
            return p
        p += ln
    return -1


def next_option(b, p):
    return p + (b[p + 1] << 3)


def _mcast(b, o):
    return b[o] == 0xFF


def _unspec(b, o):
    i = 0
    while i < 16:
        if b[o + i]:
            return False
        i += 1
    return True


def nd_check(b, ip_off, o, n):
    """RFC 4861 validity checks (6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1) of the ND message of n
    bytes at b[o] inside the IPv6 packet at b[ip_off] (checksum checked by the caller):
    None, or the name of the drop counter."""
    typ = b[o]
    if b[ip_off + ip6.HOP_LIMIT] != ND_HOP_LIMIT:
        return "rx_nd_hop_limit"
    if b[o + 1] != 0:
        return "rx_nd_bad_code"
    start = nd_options_start(typ)
    if start < 0 or n < start:
        return "rx_nd_short"
    if not options_valid(b, o + start, o + n):
        return "rx_nd_bad_option"
    src = ip_off + ip6.SRC
    dst = ip_off + ip6.DST
    if typ == NEIGHBOR_SOLICIT or typ == NEIGHBOR_ADVERT:
        if _mcast(b, o + ND_TARGET):
            return "rx_nd_bad_target"
    if typ == NEIGHBOR_SOLICIT and _unspec(b, src):
        # DAD probe: to a solicited-node address, no source link-layer option (7.1.1)
        if not (b[dst] == 0xFF and b[dst + 1] == 0x02 and b[dst + 11] == 1 and
                b[dst + 12] == 0xFF):
            return "rx_nd_bad_dest"
        if find_option(b, o + start, o + n, OPT_SLLA) >= 0:
            return "rx_nd_bad_option"
    if typ == NEIGHBOR_ADVERT and _mcast(b, dst) and (b[o + NA_FLAGS] & NA_FLAG_SOLICITED):
        return "rx_nd_bad_flags"
    if typ == ROUTER_ADVERT or typ == REDIRECT:
        # 6.1.2 / 8.1: from a link-local address
        if not (b[src] == 0xFE and (b[src + 1] & 0xC0) == 0x80):
            return "rx_nd_bad_source"
    if typ == REDIRECT and _mcast(b, o + REDIRECT_DEST):
        return "rx_nd_bad_dest"
    if typ == ROUTER_SOLICIT and _unspec(b, src) and \
            find_option(b, o + start, o + n, OPT_SLLA) >= 0:
        return "rx_nd_bad_option"
    return None


def redirect_check(b, ip_off, o, n, first_hop, fo):
    """RFC 4861 8.1, beyond nd_check: a Redirect is taken only from the router we now use
    as first hop for its destination (first_hop[fo:], from the route or destination
    cache), and its target is a link-local address (a router) or the destination itself
    (on-link). None or the drop counter's name."""
    s = ip_off + ip6.SRC
    i = 0
    while i < 16:
        if b[s + i] != first_hop[fo + i]:
            return "rx_redirect_not_first_hop"
        i += 1
    t = o + ND_TARGET
    if b[t] == 0xFE and (b[t + 1] & 0xC0) == 0x80:
        return None
    i = 0
    while i < 16:
        if b[t + i] != b[o + REDIRECT_DEST + i]:
            return "rx_redirect_bad_target"
        i += 1
    return None


def write_lla_option(b, p, otype, mac):
    """A source/target link-layer address option for a 6-byte MAC: 8 bytes."""
    b[p] = otype
    b[p + 1] = 1
    i = 0
    while i < 6:
        b[p + 2 + i] = mac[i]
        i += 1
    return 8


def _target(b, o, target):
    i = 0
    while i < 16:
        b[o + ND_TARGET + i] = target[i]
        i += 1


def write_ns(b, o, target, slla):
    """A Neighbor Solicitation for target; slla (our MAC) None for a DAD probe. Returns
    its length; checksum left to fill_checksum."""
    b[o] = NEIGHBOR_SOLICIT
    b[o + 1] = 0
    put32(b, o + 2, 0)
    b[o + 6] = 0
    b[o + 7] = 0
    _target(b, o, target)
    if slla is None:
        return NS_LEN
    return NS_LEN + write_lla_option(b, o + NS_LEN, OPT_SLLA, slla)


def write_na(b, o, flags, target, tlla):
    b[o] = NEIGHBOR_ADVERT
    b[o + 1] = 0
    b[o + 2] = 0
    b[o + 3] = 0
    put32(b, o + NA_FLAGS, flags << 24)
    _target(b, o, target)
    if tlla is None:
        return NA_LEN
    return NA_LEN + write_lla_option(b, o + NA_LEN, OPT_TLLA, tlla)


def write_rs(b, o, slla):
    b[o] = ROUTER_SOLICIT
    b[o + 1] = 0
    put32(b, o + 2, 0)
    b[o + 6] = 0
    b[o + 7] = 0
    if slla is None:
        return RS_LEN
    return RS_LEN + write_lla_option(b, o + RS_LEN, OPT_SLLA, slla)


def write_ra(b, o, cur_hlim, flags, router_lifetime, reachable, retrans):
    """The fixed part of a Router Advertisement (options follow at o + RA_LEN)."""
    b[o] = ROUTER_ADVERT
    b[o + 1] = 0
    b[o + 2] = 0
    b[o + 3] = 0
    b[o + RA_CUR_HOP_LIMIT] = cur_hlim
    b[o + RA_FLAGS] = flags
    b[o + RA_ROUTER_LIFETIME] = (router_lifetime >> 8) & 0xFF
    b[o + RA_ROUTER_LIFETIME + 1] = router_lifetime & 0xFF
    put32(b, o + RA_REACHABLE_TIME, reachable)
    put32(b, o + RA_RETRANS_TIMER, retrans)
    return RA_LEN


def write_prefix_option(b, p, prefix, plen, flags, valid, preferred):
    b[p] = OPT_PREFIX_INFO
    b[p + 1] = 4
    b[p + PI_PREFIX_LEN] = plen
    b[p + PI_FLAGS] = flags
    put32(b, p + PI_VALID, valid)
    put32(b, p + PI_PREFERRED, preferred)
    put32(b, p + 12, 0)
    i = 0
    while i < 16:
        b[p + PI_PREFIX + i] = prefix[i]
        i += 1
    return PI_LEN


def write_rdnss_option(b, p, lifetime, addrs):
    """A Recursive DNS Server option (RFC 8106 5.1) listing the 16-byte addresses."""
    n = len(addrs)
    b[p] = OPT_RDNSS
    b[p + 1] = 1 + 2 * n
    b[p + 2] = 0
    b[p + 3] = 0
    put32(b, p + RDNSS_LIFETIME, lifetime)
    k = 0
    while k < n:
        i = 0
        while i < 16:
            b[p + RDNSS_ADDRS + 16 * k + i] = addrs[k][i]
            i += 1
        k += 1
    return 8 + 16 * n


def write_route_option(b, p, prefix, plen, prf, lifetime):
    """A Route Information option (RFC 4191 2.3) of the shortest length for plen."""
    ln = 1 if plen == 0 else (2 if plen <= 64 else 3)
    b[p] = OPT_ROUTE_INFO
    b[p + 1] = ln
    b[p + RIO_PREFIX_LEN] = plen
    b[p + RIO_FLAGS] = (prf & 3) << 3
    put32(b, p + RIO_LIFETIME, lifetime)
    i = 0
    while i < (ln - 1) * 8:
        b[p + RIO_PREFIX + i] = prefix[i]
        i += 1
    return ln * 8


def write_mtu_option(b, p, mtu):
    b[p] = OPT_MTU
    b[p + 1] = 1
    b[p + 2] = 0
    b[p + 3] = 0
    put32(b, p + MTU_VALUE, mtu)
    return MTU_OPT_LEN


# ---- MLD -------------------------------------------------------------------------------------
def mld_query_version(n):
    """RFC 3810 8.1: a 24-byte query is MLDv1, 28 bytes or more MLDv2, anything else is
    ignored (0)."""
    if n == MLD_V1_LEN:
        return 1
    if n >= MLD_V2_QUERY_MIN:
        return 2
    return 0


def mld_max_resp_ms(b, o, version):
    """Maximum Response Delay in ms (RFC 3810 5.1.3: codes from 32768 are a floating point
    mantissa/exponent; MLDv1, RFC 2710 3.4: plain ms)."""
    c = (b[o + MLD_MAX_RESP] << 8) | b[o + MLD_MAX_RESP + 1]
    if version == 1 or c < 32768:
        return c
    return ((c & 0x0FFF) | 0x1000) << (((c >> 12) & 0x7) + 3)


def mld_query_sources(b, o):
    return (b[o + MLD_NSRC] << 8) | b[o + MLD_NSRC + 1]


def write_mld2_report_header(b, o, nrecords):
    """A Version 2 Multicast Listener Report's 8-byte header (RFC 3810 5.2)."""
    b[o] = MLD_REPORT_V2
    b[o + 1] = 0
    b[o + 2] = 0
    b[o + 3] = 0
    b[o + 4] = 0
    b[o + 5] = 0
    b[o + 6] = (nrecords >> 8) & 0xFF
    b[o + 7] = nrecords & 0xFF
    return 8


def write_mld2_record(b, p, rtype, group, go):
    """A Multicast Address Record without sources or auxiliary data (RFC 3810 5.2.4):
    MODE_IS_EXCLUDE / CHANGE_TO_EXCLUDE with no sources is "every source" (a join),
    CHANGE_TO_INCLUDE with none a leave."""
    b[p] = rtype
    b[p + 1] = 0
    b[p + 2] = 0
    b[p + 3] = 0
    i = 0
    while i < 16:
        b[p + 4 + i] = group[go + i]
        i += 1
    return MLD2_REC_LEN


def write_mld1(b, o, typ, group, go):
    """An MLDv1 Report or Done (RFC 2710 3) for hosts in version 1 compatibility mode."""
    b[o] = typ
    b[o + 1] = 0
    b[o + 2] = 0
    b[o + 3] = 0
    put32(b, o + 4, 0)
    i = 0
    while i < 16:
        b[o + MLD_ADDR + i] = group[go + i]
        i += 1
    return MLD_V1_LEN
