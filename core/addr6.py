"""IPv6 addresses (RFC 4291): text forms, interface identifiers, derived multicast
addresses, scopes and source address selection (RFC 6724).

Text <-> bytes (pton/ntop/split_zone) and the IID makers run on setup paths and may
allocate; they raise OSError like socket.inet_pton does. Everything taking (buf, offset)
pairs (eq16, prefix_eq, common_prefix_len, scope, is_*, solicited_node, mcast_mac,
select_source) allocates nothing, for the per-packet path.
"""
from ustack.core.compat import const, EINVAL

ANY = b"\x00" * 16
LOOPBACK = b"\x00" * 15 + b"\x01"
ALL_NODES = b"\xff\x02" + b"\x00" * 13 + b"\x01"          # ff02::1 (RFC 4291 2.7.1)
ALL_ROUTERS = b"\xff\x02" + b"\x00" * 13 + b"\x02"        # ff02::2
ALL_MLDV2_ROUTERS = b"\xff\x02" + b"\x00" * 13 + b"\x16"  # ff02::16 (RFC 3810 5.2.14)
LINK_LOCAL_PREFIX = b"\xfe\x80" + b"\x00" * 6             # fe80::/64 (RFC 4291 2.5.6)

# scopes (RFC 4291 2.7 multicast scop values; RFC 6724 3.1 for unicast)
SCOPE_INTERFACE = const(0x1)
SCOPE_LINK = const(0x2)
SCOPE_ADMIN = const(0x4)
SCOPE_SITE = const(0x5)
SCOPE_ORG = const(0x8)
SCOPE_GLOBAL = const(0xE)

# candidate source address flags (RFC 4862 5.5.4, RFC 4429 optimistic)
ADDR_TENTATIVE = const(1)
ADDR_DEPRECATED = const(2)
ADDR_DUPLICATE = const(4)
ADDR_OPTIMISTIC = const(8)

_HEX = "0123456789abcdef"
_BAD = "illegal IP address string passed to inet_pton"


def _bad():
    return OSError(EINVAL, _BAD)


# ---- text forms (setup paths) ----------------------------------------------------------------
def _hex_group(g):
    if not 1 <= len(g) <= 4:
        raise _bad()
    v = 0
    for c in g.lower():
        k = _HEX.find(c)
        if k < 0:
            raise _bad()
        v = (v << 4) | k
    return v


def _dotted_quad(s, out):
    """Four decimal octets with no leading zeros (as glibc's inet_pton4), appended as two
    16-bit words."""
    parts = s.split(".")
    if len(parts) != 4:
        raise _bad()
    v = []
    for p in parts:
        if not 1 <= len(p) <= 3 or (len(p) > 1 and p[0] == "0"):
            raise _bad()
        for c in p:
            if not "0" <= c <= "9":
                raise _bad()
        n = int(p)
        if n > 255:
            raise _bad()
        v.append(n)
    out.append((v[0] << 8) | v[1])
    out.append((v[2] << 8) | v[3])


def _groups(s, v4_allowed, out):
    if not s:
        return
    gs = s.split(":")
    last = len(gs) - 1
    for i in range(len(gs)):
        g = gs[i]
        if i == last and v4_allowed and "." in g:
            _dotted_quad(g, out)
        else:
            out.append(_hex_group(g))


def pton(s):
    """'2001:db8::1' -> 16 bytes; every RFC 4291 2.2 form ('::' once, a trailing dotted
    IPv4 part); no zone (see split_zone). OSError on anything inet_pton rejects."""
    if not isinstance(s, str) or not s:
        raise _bad()
    dc = s.find("::")
    head = []
    tail = []
    if dc >= 0:
        if s.find("::", dc + 1) >= 0:   # at most one '::' (RFC 4291 2.2 item 2)
            raise _bad()
        right = s[dc + 2:]
        if right.startswith(":"):
            raise _bad()
        _groups(s[:dc], False, head)
        _groups(right, True, tail)
        if len(head) + len(tail) > 7:   # '::' stands for at least one group
            raise _bad()
        words = head + [0] * (8 - len(head) - len(tail)) + tail
    else:
        _groups(s, True, head)
        if len(head) != 8:
            raise _bad()
        words = head
    out = bytearray(16)
    for i in range(8):
        out[2 * i] = words[i] >> 8
        out[2 * i + 1] = words[i] & 0xFF
    return bytes(out)


def ntop(b, o=0):
    """16 bytes -> RFC 5952 text: lower case, no leading zeros, the longest run of two or
    more zero groups (the first of equals) as '::'; ::ffff:a.b.c.d and ::a.b.c.d with a
    dotted IPv4 tail (the form glibc's inet_ntop writes)."""
    w = [(b[o + 2 * i] << 8) | b[o + 2 * i + 1] for i in range(8)]
    best = -1
    blen = 0
    i = 0
    while i < 8:
        if w[i] == 0:
            j = i
            while j < 8 and w[j] == 0:
                j += 1
            if j - i > blen:
                best = i
                blen = j - i
            i = j
        else:
            i += 1
    if blen < 2:
        best = -1
        blen = 0
    if best == 0 and (blen == 6 or (blen == 5 and w[5] == 0xFFFF)):
        return ("::ffff:" if blen == 5 else "::") + "%d.%d.%d.%d" % (
            b[o + 12], b[o + 13], b[o + 14], b[o + 15])
    parts = []
    i = 0
    while i < 8:
        if i == best:
            parts.append("" if i else ":")
            i += blen
            if i == 8:
                parts.append("")
            continue
        parts.append("%x" % w[i])
        i += 1
    return ":".join(parts)


def split_zone(s):
    """'fe80::1%eth0' -> ('fe80::1', 'eth0'); no '%': (s, None) (RFC 4007 section 11)."""
    k = s.find("%")
    if k < 0:
        return s, None
    if k == len(s) - 1:
        raise _bad()
    return s[:k], s[k + 1:]


def parse_cidr(s):
    """'2001:db8::2/64' -> (16 bytes, 64); no prefix length: 128."""
    k = s.find("/")
    if k < 0:
        return pton(s), 128
    p = s[k + 1:]
    if not p or not p.isdigit() or int(p) > 128:
        raise ValueError("bad prefix length in %r" % (s,))
    return pton(s[:k]), int(p)


# ---- interface identifiers --------------------------------------------------------------------
def eui64_iid(mac, out, oo):
    """RFC 4291 appendix A: the modified EUI-64 IID of a 48-bit MAC into out[oo:oo+8]:
    the universal/local bit inverted, ff:fe in the middle."""
    out[oo] = mac[0] ^ 0x02
    out[oo + 1] = mac[1]
    out[oo + 2] = mac[2]
    out[oo + 3] = 0xFF
    out[oo + 4] = 0xFE
    out[oo + 5] = mac[3]
    out[oo + 6] = mac[4]
    out[oo + 7] = mac[5]


def link_local(iid):
    """fe80::/64 + an 8-byte IID (RFC 4862 section 5.3)."""
    return LINK_LOCAL_PREFIX + bytes(iid)


def link_local_from_mac(mac):
    out = bytearray(16)
    out[0] = 0xFE
    out[1] = 0x80
    eui64_iid(mac, out, 8)
    return bytes(out)


def stable_iid(prefix, net_iface, network_id, dad_counter, secret_key):
    """RFC 7217 section 5: RID = F(Prefix, Net_Iface, Network_ID, DAD_Counter, secret_key)
    with F = SHA-256 over their concatenation (prefix: its 8 bytes; net_iface, network_id,
    secret_key: bytes or str; dad_counter: one byte), the IID its 64 least significant
    bits. The caller retries with dad_counter + 1 when iid_reserved() says so (section 5
    step 3) or DAD fails (section 6)."""
    import hashlib
    h = hashlib.sha256()
    h.update(bytes(prefix[0:8]))
    h.update(_bytes(net_iface))
    h.update(_bytes(network_id))
    h.update(bytes((dad_counter & 0xFF,)))
    h.update(_bytes(secret_key))
    return h.digest()[24:32]


def _bytes(v):
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


def iid_reserved(b, o):
    """RFC 5453: IIDs never formed - all zeros (subnet-router anycast, RFC 4291 2.6.1),
    0200:5EFF:FE00:0000-5212 and 0200:5EFF:FE00:5214-FFFF, FDFF:FFFF:FFFF:FF80-FF
    (reserved subnet anycast, RFC 2526)."""
    z = True
    i = 0
    while i < 8:
        if b[o + i]:
            z = False
        i += 1
    if z:
        return True
    if b[o] == 0x02 and b[o + 1] == 0x00 and b[o + 2] == 0x5E and b[o + 3] == 0xFF and \
            b[o + 4] == 0xFE and b[o + 5] == 0x00:
        v = (b[o + 6] << 8) | b[o + 7]
        return v != 0x5213
    if b[o] == 0xFD and b[o + 1] == 0xFF and b[o + 2] == 0xFF and b[o + 3] == 0xFF and \
            b[o + 4] == 0xFF and b[o + 5] == 0xFF and b[o + 6] == 0xFF:
        return b[o + 7] >= 0x80
    return False


# ---- derived addresses (allocation-free) ------------------------------------------------------
def solicited_node(a, ao, out, oo):
    """ff02::1:ffXX:XXXX from the low 24 bits of a (RFC 4291 2.7.1)."""
    i = 0
    while i < 16:
        out[oo + i] = 0
        i += 1
    out[oo] = 0xFF
    out[oo + 1] = 0x02
    out[oo + 11] = 0x01
    out[oo + 12] = 0xFF
    out[oo + 13] = a[ao + 13]
    out[oo + 14] = a[ao + 14]
    out[oo + 15] = a[ao + 15]


def mcast_mac(a, ao, out, oo):
    """33:33 and the low 32 bits of a multicast address (RFC 2464 section 7)."""
    out[oo] = 0x33
    out[oo + 1] = 0x33
    out[oo + 2] = a[ao + 12]
    out[oo + 3] = a[ao + 13]
    out[oo + 4] = a[ao + 14]
    out[oo + 5] = a[ao + 15]


def eq16(a, ao, b, bo):
    i = 0
    while i < 16:
        if a[ao + i] != b[bo + i]:
            return False
        i += 1
    return True


def copy16(dst, do, src, so):
    i = 0
    while i < 16:
        dst[do + i] = src[so + i]
        i += 1


def common_prefix_len(a, ao, b, bo):
    """Leading bits a and b share (0..128)."""
    i = 0
    while i < 16:
        x = a[ao + i] ^ b[bo + i]
        if x:
            n = i * 8
            while not (x & 0x80):
                x <<= 1
                n += 1
            return n
        i += 1
    return 128


def prefix_eq(a, ao, b, bo, plen):
    return common_prefix_len(a, ao, b, bo) >= plen


# ---- classification (RFC 4291 2.4) ------------------------------------------------------------
def is_unspecified(b, o):
    i = 0
    while i < 16:
        if b[o + i]:
            return False
        i += 1
    return True


def is_loopback(b, o):
    i = 0
    while i < 15:
        if b[o + i]:
            return False
        i += 1
    return b[o + 15] == 1


def is_multicast(b, o):
    return b[o] == 0xFF


def is_link_local(b, o):
    """fe80::/10 unicast."""
    return b[o] == 0xFE and (b[o + 1] & 0xC0) == 0x80


def is_ula(b, o):
    """fc00::/7 unique local (RFC 4193)."""
    return (b[o] & 0xFE) == 0xFC


def is_v4mapped(b, o):
    i = 0
    while i < 10:
        if b[o + i]:
            return False
        i += 1
    return b[o + 10] == 0xFF and b[o + 11] == 0xFF


def is_solicited_node(b, o):
    return b[o] == 0xFF and b[o + 1] == 0x02 and b[o + 11] == 0x01 and b[o + 12] == 0xFF and \
        is_zero(b, o + 2, 9)


def is_zero(b, o, n):
    i = 0
    while i < n:
        if b[o + i]:
            return False
        i += 1
    return True


def scope(b, o):
    """RFC 6724 section 3.1: a multicast address's scop field; link-local and loopback
    unicast are link scope, everything else (ULA too) global."""
    if b[o] == 0xFF:
        return b[o + 1] & 0x0F
    if is_link_local(b, o) or is_loopback(b, o):
        return SCOPE_LINK
    if b[o] == 0xFE and (b[o + 1] & 0xC0) == 0xC0:
        return SCOPE_SITE   # deprecated site-local fec0::/10 (RFC 3879)
    return SCOPE_GLOBAL


# ---- source address selection (RFC 6724 section 5) -------------------------------------------
def select_source(dst, do, addrs, flags, ifaces, plens, n, out_iface):
    """The index of the best source among the first n candidates for destination dst[do:],
    or -1: addrs[i] 16 bytes, flags[i] ADDR_* bits, ifaces[i] its interface, plens[i] its
    prefix length. Tentative and duplicate addresses never qualify (RFC 4862 5.4); then
    rules 1 (the destination itself), 2 (appropriate scope), 3 (avoid deprecated),
    5 (the outgoing interface), 8 (longest matching prefix, at most the candidate's
    prefix length) decide, the first candidate winning ties."""
    best = -1
    dscope = scope(dst, do)
    i = 0
    while i < n:
        f = flags[i]
        usable = not (f & ADDR_DUPLICATE) and (not (f & ADDR_TENTATIVE) or
                                               (f & ADDR_OPTIMISTIC))
        if usable and (best < 0 or _better(i, best, dst, do, dscope, addrs, flags, ifaces,
                                           plens, out_iface)):
            best = i
        i += 1
    return best


def _better(a, b, dst, do, dscope, addrs, flags, ifaces, plens, out_iface):
    """RFC 6724 section 5: is candidate a preferred over b?"""
    sa = addrs[a]
    sb = addrs[b]
    # rule 1: prefer the same address
    ea = eq16(sa, 0, dst, do)
    if ea != eq16(sb, 0, dst, do):
        return ea
    # rule 2: prefer appropriate scope
    ca = scope(sa, 0)
    cb = scope(sb, 0)
    if ca < cb:
        return ca >= dscope
    if cb < ca:
        return cb < dscope
    # rule 3: avoid deprecated addresses (RFC 4429 3.1: optimistic ones count as such)
    da = flags[a] & (ADDR_DEPRECATED | ADDR_OPTIMISTIC)
    db = flags[b] & (ADDR_DEPRECATED | ADDR_OPTIMISTIC)
    if da != db:
        return not da
    # rule 5: prefer the outgoing interface
    ia = ifaces[a] == out_iface
    if ia != (ifaces[b] == out_iface):
        return ia
    # rule 8: longest matching prefix
    la = common_prefix_len(sa, 0, dst, do)
    if la > plens[a]:
        la = plens[a]
    lb = common_prefix_len(sb, 0, dst, do)
    if lb > plens[b]:
        lb = plens[b]
    return la > lb
