"""IPv6 addresses (core/addr6.py): text forms (RFC 4291 2.2, RFC 5952), interface
identifiers (modified EUI-64, RFC 7217), solicited-node and multicast MAC mapping, scopes,
RFC 6724 source address selection. tests/property/test_ipv6_oracles.py compares the text
forms with CPython's socket.inet_pton/inet_ntop on random addresses too."""
import hashlib

import pytest

from ustack.core import addr6
from ustack.core.addr6 import pton, ntop


@pytest.mark.parametrize("text,hexval", [
    ("::", "00" * 16),
    ("::1", "00" * 15 + "01"),
    ("1::", "0001" + "00" * 14),
    ("2001:db8::1", "20010db8" + "00" * 11 + "01"),
    ("2001:DB8:0:0:8:800:200C:417A", "20010db80000000000080800200c417a"),
    ("1:2:3:4:5:6:7:8", "00010002000300040005000600070008"),
    ("1:2:3:4:5:6:7::", "00010002000300040005000600070000"),
    ("::1:2:3:4:5:6:7", "00000001000200030004000500060007"),
    ("::0:0:0:0:0:0:0", "00" * 16),
    ("::ffff:192.0.2.1", "00" * 10 + "ffffc0000201"),
    ("::192.0.2.1", "00" * 12 + "c0000201"),
    ("1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"),
    ("fe80::0001", "fe80" + "00" * 13 + "01"),
])
def test_text_to_bytes(text, hexval):
    assert pton(text).hex() == hexval


@pytest.mark.parametrize("text", [
    "", ":", ":::", "1::2::3", ":1::", "1:::2", "00000::", "1:2:3:4:5:6:7:8::",
    "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::1.2.3", "1.2.3.4", "::01.2.3.4",
    "::256.1.1.1", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", " ::1", "::1 ", "fe80::1%eth0",
    "::g", "1:2:3:4:5:6:7::1", "::0:0:0:0:0:0:0:0", "1.2.3.4::", "::+1",
])
def test_text_rejected_like_inet_pton(text):
    with pytest.raises(OSError):
        pton(text)


@pytest.mark.parametrize("hexval,text", [
    ("00" * 16, "::"),
    ("00" * 15 + "01", "::1"),
    ("0001" + "00" * 14, "1::"),
    ("20010db8000000010000000000000001", "2001:db8:0:1::1"),
    ("20010db8000000000001000000000001", "2001:db8::1:0:0:1"),   # first of equal runs
    ("20010db8000100000000000100000001", "2001:db8:1::1:0:1"),  # RFC 5952 4.2.2: one 0
    ("20010db80000000100000000000000ff", "2001:db8:0:1::ff"),
    ("00" * 10 + "ffffc0000201", "::ffff:192.0.2.1"),
    ("00" * 12 + "c0000201", "::192.0.2.1"),
    ("fe8000000000000000ff00fffe000001", "fe80::ff:ff:fe00:1"),
    ("00010002000300040005000600070008", "1:2:3:4:5:6:7:8"),
])
def test_bytes_to_text_rfc5952(hexval, text):
    assert ntop(bytes.fromhex(hexval)) == text
    assert pton(text).hex() == hexval


def test_ntop_at_an_offset():
    b = b"xx" + pton("2001:db8::7")
    assert ntop(b, 2) == "2001:db8::7"


def test_zone_split_and_prefix_parse():
    assert addr6.split_zone("fe80::1%eth0") == ("fe80::1", "eth0")
    assert addr6.split_zone("2001:db8::1") == ("2001:db8::1", None)
    with pytest.raises(OSError):
        addr6.split_zone("fe80::1%")
    assert addr6.parse_cidr("2001:db8::2/64") == (pton("2001:db8::2"), 64)
    assert addr6.parse_cidr("2001:db8::2") == (pton("2001:db8::2"), 128)
    with pytest.raises(ValueError):
        addr6.parse_cidr("2001:db8::2/129")


def test_modified_eui64_from_a_mac():
    """RFC 4291 appendix A: 34-56-78-9A-BC-DE gives 3656:78FF:FE9A:BCDE."""
    out = bytearray(8)
    addr6.eui64_iid(bytes.fromhex("3456789abcde"), out, 0)
    assert out.hex() == "365678fffe9abcde"
    assert ntop(addr6.link_local_from_mac(b"\x02\x00\x00\x00\x00\x01")) == "fe80::ff:fe00:1"
    assert addr6.link_local(out) == pton("fe80::3656:78ff:fe9a:bcde")


def test_rfc7217_iid_is_sha256_of_the_parameters_low_64_bits():
    prefix = pton("2001:db8:1:2::")
    secret = bytes(range(16))
    want = hashlib.sha256(prefix[:8] + b"eth0" + b"net" + b"\x00" + secret).digest()[24:]
    assert addr6.stable_iid(prefix, "eth0", b"net", 0, secret) == want


def test_rfc7217_iid_is_stable_and_changes_with_each_parameter():
    p = pton("2001:db8:1:2::")
    k = b"\x00" * 16
    iid = addr6.stable_iid(p, "eth0", b"", 0, k)
    assert iid.hex() == "0bd5b585f5ac7a9a"                  # frozen: the layout must not move
    assert addr6.stable_iid(p, "eth0", b"", 0, k) == iid
    assert addr6.stable_iid(p, "eth0", b"", 1, k).hex() == "e2309140a3e7605f"
    assert addr6.stable_iid(pton("2001:db8:1:3::"), "eth0", b"", 0, k) != iid
    assert addr6.stable_iid(p, "eth1", b"", 0, k) != iid
    assert addr6.stable_iid(p, "eth0", b"", 0, b"\x01" * 16) != iid
    # only the prefix's 64 bits count
    assert addr6.stable_iid(pton("2001:db8:1:2::99"), "eth0", b"", 0, k) == iid


def test_reserved_iids():
    """RFC 5453: never formed."""
    for h in ("0000000000000000", "02005efffe000000", "02005efffe005212",
              "02005efffe005214", "fdffffffffffff80", "fdffffffffffffff"):
        assert addr6.iid_reserved(bytes.fromhex(h), 0), h
    for h in ("02005efffe005213", "fdffffffffffff7f", "0000000000000001"):
        assert not addr6.iid_reserved(bytes.fromhex(h), 0), h


def test_solicited_node_and_multicast_mac():
    out = bytearray(16)
    addr6.solicited_node(pton("2001:db8::4:1234:5678"), 0, out, 0)
    assert ntop(out) == "ff02::1:ff34:5678"
    assert addr6.is_solicited_node(out, 0)
    assert not addr6.is_solicited_node(pton("ff02::1"), 0)
    mac = bytearray(6)
    addr6.mcast_mac(out, 0, mac, 0)
    assert mac.hex() == "3333ff345678"
    addr6.mcast_mac(addr6.ALL_NODES, 0, mac, 0)
    assert mac.hex() == "333300000001"


def test_classification_and_scope():
    assert addr6.is_unspecified(addr6.ANY, 0) and addr6.is_loopback(addr6.LOOPBACK, 0)
    assert addr6.is_link_local(pton("fe80::1"), 0) and addr6.is_link_local(pton("febf::1"), 0)
    assert not addr6.is_link_local(pton("fec0::1"), 0)
    assert addr6.is_ula(pton("fd00::1"), 0) and addr6.is_ula(pton("fc00::1"), 0)
    assert addr6.is_v4mapped(pton("::ffff:192.0.2.1"), 0)
    assert addr6.is_multicast(pton("ff05::2"), 0)
    assert addr6.scope(pton("ff05::2"), 0) == addr6.SCOPE_SITE
    assert addr6.scope(pton("ff02::1"), 0) == addr6.SCOPE_LINK
    assert addr6.scope(pton("ff0e::1"), 0) == addr6.SCOPE_GLOBAL
    assert addr6.scope(pton("fe80::1"), 0) == addr6.SCOPE_LINK
    assert addr6.scope(addr6.LOOPBACK, 0) == addr6.SCOPE_LINK
    assert addr6.scope(pton("fd00::1"), 0) == addr6.SCOPE_GLOBAL
    assert addr6.scope(pton("2001:db8::1"), 0) == addr6.SCOPE_GLOBAL


def test_compare_without_slices():
    b = b"abc" + pton("2001:db8::1")
    assert addr6.eq16(b, 3, pton("2001:db8::1"), 0)
    assert not addr6.eq16(b, 3, pton("2001:db8::2"), 0)
    assert addr6.common_prefix_len(pton("2001:db8::1"), 0, pton("2001:db8::2"), 0) == 126
    assert addr6.common_prefix_len(b, 3, pton("2001:db8::1"), 0) == 128
    assert addr6.common_prefix_len(pton("8000::"), 0, addr6.ANY, 0) == 0
    assert addr6.prefix_eq(pton("2001:db8:1::5"), 0, pton("2001:db8:1::"), 0, 64)
    assert not addr6.prefix_eq(pton("2001:db8:2::5"), 0, pton("2001:db8:1::"), 0, 64)
    d = bytearray(18)
    addr6.copy16(d, 2, b, 3)
    assert bytes(d[2:]) == pton("2001:db8::1")


# ---- RFC 6724 source address selection ------------------------------------------------------
def select(dst, cands, out_iface=0):
    """cands: (text, flags, iface, prefix length) tuples."""
    addrs = [pton(c[0]) for c in cands]
    flags = [c[1] for c in cands]
    ifaces = [c[2] for c in cands]
    plens = [c[3] for c in cands]
    i = addr6.select_source(pton(dst), 0, addrs, flags, ifaces, plens, len(cands), out_iface)
    return cands[i][0] if i >= 0 else None


GLOBAL = ("2001:db8:1::1", 0, 0, 64)
LINKLOCAL = ("fe80::1", 0, 0, 64)


def test_rule_1_prefer_the_destination_itself():
    assert select("2001:db8:1::2", [GLOBAL, ("2001:db8:1::2", addr6.ADDR_DEPRECATED, 0, 64)]) \
        == "2001:db8:1::2"


def test_rule_2_prefer_appropriate_scope():
    """RFC 6724 10.2 examples."""
    assert select("2001:db8:1::2", [LINKLOCAL, GLOBAL]) == "2001:db8:1::1"
    assert select("ff05::1", [LINKLOCAL, GLOBAL]) == "2001:db8:1::1"
    assert select("fe80::2", [GLOBAL, LINKLOCAL]) == "fe80::1"
    assert select("ff02::1", [GLOBAL, LINKLOCAL]) == "fe80::1"


def test_rule_3_avoid_deprecated_and_optimistic():
    dep = ("2001:db8:1::3", addr6.ADDR_DEPRECATED, 0, 64)
    assert select("2001:db8:1::2", [dep, ("2001:db8:1::4", 0, 0, 64)]) == "2001:db8:1::4"
    opt = ("2001:db8:1::5", addr6.ADDR_TENTATIVE | addr6.ADDR_OPTIMISTIC, 0, 64)
    assert select("2001:db8:1::2", [opt, ("2001:db8:1::4", 0, 0, 64)]) == "2001:db8:1::4"
    assert select("2001:db8:1::2", [opt]) == "2001:db8:1::5"
    # a deprecated address still beats one of too small a scope
    assert select("2001:db8:1::2", [LINKLOCAL, dep]) == "2001:db8:1::3"


def test_rule_5_prefer_the_outgoing_interface():
    a = ("2001:db8:1::1", 0, 1, 64)
    b = ("2001:db8:1::9", 0, 2, 64)
    assert select("2001:db8:7::2", [a, b], out_iface=2) == "2001:db8:1::9"
    assert select("2001:db8:7::2", [a, b], out_iface=1) == "2001:db8:1::1"


def test_rule_8_longest_matching_prefix_up_to_the_prefix_length():
    a = ("2001:db8:1::1", 0, 0, 64)
    b = ("2001:db8:3::1", 0, 0, 64)
    assert select("2001:db8:3::2", [a, b]) == "2001:db8:3::1"
    # beyond the candidate's prefix the interface identifier does not count
    c = ("2001:db8:3::2:1", 0, 0, 64)
    assert select("2001:db8:3::2:2", [b, c]) == "2001:db8:3::1"


def test_tentative_and_duplicate_addresses_never_qualify():
    t = ("2001:db8:1::7", addr6.ADDR_TENTATIVE, 0, 64)
    d = ("2001:db8:1::8", addr6.ADDR_DUPLICATE, 0, 64)
    assert select("2001:db8:1::7", [t, d]) is None
    assert select("2001:db8:1::7", [t, d, LINKLOCAL]) == "fe80::1"
    assert select("2001:db8:1::7", []) is None
