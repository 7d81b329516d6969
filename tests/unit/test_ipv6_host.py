"""IPv6 host details (issue 9): the passive side's MSS from the IPv6 link MTU an RA taught
(RFC 4861 6.3.4, RFC 9293 3.7.1: MTU - 60), a SLAAC address whose DAD fails removed (RFC
4862 5.4.5) while a configured one stays marked, and a removed address leaving its
solicited-node group (RFC 4861 7.2.1, RFC 3810 6.1) unless another address shares it."""
import struct

from ustack.core import socket as so
from ustack.core import addr6
from ustack.core.wire import ipv6 as w
from ustack.core.wire import icmp6 as wi
from tests.twostack import MAC_A
from tests.unit.test_ipv6_two_stacks import Bench6, GA, GB
from tests.unit.test_ipv6_router_discovery import RMAC, ra_with

SYN = 0x02
ACK = 0x10


def tcp6_frames(frames, flags):
    """The IPv6 TCP segments among frames whose flags are exactly flags."""
    return [f for f in frames if f[12:14] == b"\x86\xdd" and f[20] == w.NH_TCP and
            f[54 + 13] & 0x3F == flags]


def mss_option(f, l4=54):
    """The MSS option's value in the TCP segment at f[l4] (RFC 9293 3.2), or None."""
    end = l4 + ((f[l4 + 12] >> 4) << 2)
    p = l4 + 20
    while p < end:
        k = f[p]
        if k == 0:
            break
        if k == 1:
            p += 1
            continue
        if k == 2:
            return (f[p + 2] << 8) | f[p + 3]
        p += f[p + 1]
    return None


def captured(stack):
    """Every frame stack sends from now on."""
    out = []
    stack.capture = lambda iface, buf, n, tx: tx and out.append(bytes(buf[:n]))
    return out


def ra_mtu(bench, mtu):
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", mtu=mtu)
    router.send(f, len(f))
    bench.run(5)
    return router


def connect(bench, c, addr):
    c.setblocking(False)
    c.connect_ex(addr)
    assert bench.until(lambda: c.tcb is not None and c.tcb.state >= 4)


# ---- 1. the passive side's MSS from the family's MTU -----------------------------------------
def test_syn_ack_advertises_the_ra_mtu_less_60_and_the_passive_mss_follows():
    bench = Bench6()
    ra_mtu(bench, 1400)
    assert bench.ia.mtu6 == 1400 and bench.ia.mtu == 1500
    ls = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    ls.setblocking(False)
    out = captured(bench.a)
    c = bench.b.socket(so.AF_INET6, so.SOCK_STREAM)
    connect(bench, c, (GA, 80))
    synack = tcp6_frames(out, SYN | ACK)
    assert [mss_option(f) for f in synack] == [1340]      # 1400 - 40 - 20, not 1440
    assert bench.until(lambda: ls.readable())
    s, _ = ls.accept()
    assert s.tcb.mss <= 1340 - 12                         # its segments fit the RA's MTU
    s.send(b"x" * 5000)
    bench.run(20)
    assert max(len(f) - 14 for f in tcp6_frames(out, ACK) + tcp6_frames(out, ACK | 0x08)) \
        <= 1400


def csum16(data):
    if len(data) & 1:
        data += b"\0"
    s = sum((data[i] << 8) | data[i + 1] for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn6(src, dst, sport, dport, dst_mac, src_mac=RMAC):
    """A TCP SYN (MSS 1440) over IPv6 in an Ethernet frame, checksums right."""
    t = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 6 << 4, SYN, 65535, 0, 0))
    t += bytes([2, 4, 0x05, 0xA0])
    s, d = addr6.pton(src), addr6.pton(dst)
    c = csum16(s + d + struct.pack("!IxxxB", len(t), w.NH_TCP) + bytes(t))
    t[16:18] = struct.pack("!H", c)
    ip = struct.pack("!IHBB", 6 << 28, len(t), w.NH_TCP, 64) + s + d
    return dst_mac + src_mac + b"\x86\xdd" + ip + bytes(t)


def test_syn_cookie_answer_advertises_the_ra_mtu_less_60():
    bench = Bench6({"TCP_MAX_CONNS": 4, "TCP_SYN_QUEUE": 1})
    router = ra_mtu(bench, 1400)
    peer = "2001:db8::99"
    bench.ia.nd.add_static(addr6.pton(peer), RMAC)
    ls = bench.a.socket(so.AF_INET6, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    out = captured(bench.a)
    for port in (40000, 40001):     # the first holds the one half-open slot: a cookie next
        f = syn6(peer, GA, port, 80, MAC_A)
        router.send(f, len(f))
        bench.run(2)
    assert bench.a.tcp.stats.syn_queue_full == 1
    synack = tcp6_frames(out, SYN | ACK)
    assert len(synack) == 2
    assert [mss_option(f) for f in synack] == [1340, 1340]


def test_ipv4_syn_ack_keeps_the_links_mtu_when_an_ra_lowers_ipv6s():
    bench = Bench6()
    ra_mtu(bench, 1400)
    ls = bench.a.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 80))
    ls.listen(4)
    out = captured(bench.a)
    c = bench.b.socket(so.AF_INET, so.SOCK_STREAM)
    connect(bench, c, ("192.0.2.10", 80))
    synack = [f for f in out if f[12:14] == b"\x08\x00" and f[23] == 6 and
              f[34 + 13] & 0x3F == SYN | ACK]
    assert [mss_option(f, 34) for f in synack] == [1460]


def test_a_packet_too_big_above_the_ra_mtu_lowers_nothing():
    """learn_pmtu compares with the family's link MTU: 1450 is no news on a 1400 link."""
    bench = Bench6()
    ra_mtu(bench, 1400)
    assert bench.a.ip.learn_pmtu(addr6.pton(GB), 0, 16, 1450) == 0
    assert bench.a.ip.learn_pmtu(addr6.pton(GB), 0, 16, 1300) == 1300


# ---- 2. DAD failure ------------------------------------------------------------------------
SLAAC_A = "2001:db8:5::ff:fe00:a"   # the RA's prefix and MAC_A's modified EUI-64


def test_a_slaac_address_whose_dad_fails_is_removed_and_counted():
    bench = Bench6()
    bench.b.add_address6(bench.ib, SLAAC_A + "/64")      # B holds it already
    bench.run(3000)
    ra_mtu(bench, 0)                                      # the RA: A forms SLAAC_A
    assert (SLAAC_A, 128, "tentative") in bench.a.ipv6.addresses()
    bench.run(3000)
    assert [a for a in bench.a.ipv6.addresses() if a[0] == SLAAC_A] == []
    st = bench.a.ipv6.stats
    assert st.addr_duplicate == 1 and st.addr_dad_removed == 1
    assert bench.a.ipv6.dad.stats.dad_duplicates == 1
    # never a source: A talks to B from its link-local address... or not at all
    k = bench.a.ipv6.source_for(addr6.pton("2001:db8:5::b"), 0, bench.ia)
    assert k < 0 or addr6.ntop(bench.a.ipv6.addrs[k]) != SLAAC_A
    # and its solicited-node group went with it (ff02::1:ff00:a stays: the others need it)
    assert bench.ia.mld.is_member(addr6.pton("ff02::1:ff00:a"))


def test_a_configured_address_whose_dad_fails_stays_marked_counted_logged_and_unused():
    bench = Bench6()
    logs = []
    bench.b.log = logs.append
    bench.b.add_address6(bench.ib, GA + "/64")           # A's address: A defends it
    bench.run(3000)
    assert (GA, 64, "duplicate") in bench.b.ipv6.addresses()
    assert bench.b.ipv6.stats.addr_duplicate == 1
    assert bench.b.ipv6.stats.addr_dad_removed == 0
    assert any(GA in m and "duplicate" in m for m in logs)
    assert bench.b.ipv6.local_iface(addr6.pton(GA), 0) is None
    # an NS for it from A is not answered by B (only A answers)
    before = bench.b.icmp6.stats.tx_na
    bench.a.icmp6.send_ns(bench.ia, addr6.pton(GA), None, True)
    bench.run(10)
    assert bench.b.icmp6.stats.tx_na == before


# ---- 3. removal leaves the solicited-node group ---------------------------------------------
def mld_records(frames):
    """(record type, group) of every MLDv2 report record in frames."""
    out = []
    for f in frames:
        if f[12:14] != b"\x86\xdd" or f[14 + 24:14 + 40] != addr6.ALL_MLDV2_ROUTERS:
            continue
        m = 14 + 48
        if f[m] != 143:
            continue
        n = (f[m + 6] << 8) | f[m + 7]
        p = m + 8
        for _ in range(n):
            out.append((f[p], addr6.ntop(f[p + 4:p + 20])))
            p += 20 + 4 * ((f[p + 2] << 8) | f[p + 3]) + 4 * f[p + 1]
    return out


def ns_answered(bench, target):
    """Does A answer B's solicitation for target (B's own NS, to the solicited-node group)?"""
    before = bench.a.icmp6.stats.tx_na
    bench.b.icmp6.send_ns(bench.ib, addr6.pton(target), None, True)
    bench.run(10)
    return bench.a.icmp6.stats.tx_na > before


def test_a_removed_address_leaves_its_group_and_its_ns_go_unanswered():
    bench = Bench6()
    bench.a.add_address6(bench.ia, "2001:db8::c/64")
    bench.run(3000)
    assert ns_answered(bench, "2001:db8::c")
    group = addr6.pton("ff02::1:ff00:c")
    assert bench.ia.mld.is_member(group)
    out = captured(bench.a)
    assert bench.a.ipv6.remove_address(addr6.pton("2001:db8::c"), 0)
    bench.run(3000)
    assert not bench.ia.mld.is_member(group)
    # RFC 3810 6.1: CHANGE_TO_INCLUDE {} for the group, Robustness (2) times
    assert mld_records(out).count((wi.CHANGE_TO_INCLUDE, "ff02::1:ff00:c")) == 2
    assert not ns_answered(bench, "2001:db8::c")
    assert bench.a.icmp6.stats.rx_ns_not_ours + bench.a.ipv6.stats.rx_not_for_us >= 1
    assert bench.a.ipv6.stats.addr_removed == 1
    # its connected route went with it; the link-local and GA are untouched
    assert ns_answered(bench, GA)


def test_a_group_another_address_shares_is_kept():
    bench = Bench6()
    bench.a.add_address6(bench.ia, "2001:db8:7::a/64")   # ends like GA: ff02::1:ff00:a
    bench.run(3000)
    out = captured(bench.a)
    assert bench.a.ipv6.remove_address(addr6.pton("2001:db8:7::a"), 0)
    bench.run(3000)
    assert bench.ia.mld.is_member(addr6.pton("ff02::1:ff00:a"))
    assert [r for r in mld_records(out) if r[0] == wi.CHANGE_TO_INCLUDE] == []
    assert ns_answered(bench, GA)
    assert not ns_answered(bench, "2001:db8:7::a")


def test_adding_an_address_twice_then_removing_it_leaves_the_group():
    bench = Bench6()
    bench.a.add_address6(bench.ia, "2001:db8::c/64")
    bench.a.add_address6(bench.ia, "2001:db8::c/64")     # the same again: one join
    bench.run(3000)
    bench.a.ipv6.remove_address(addr6.pton("2001:db8::c"), 0)
    bench.run(10)
    assert not bench.ia.mld.is_member(addr6.pton("ff02::1:ff00:c"))


def test_removing_a_tentative_address_stops_its_dad():
    bench = Bench6()
    bench.a.add_address6(bench.ia, "2001:db8::c/64")
    assert bench.a.ipv6.dad.is_tentative(addr6.pton("2001:db8::c"))
    bench.a.ipv6.remove_address(addr6.pton("2001:db8::c"), 0)
    assert not bench.a.ipv6.dad.is_tentative(addr6.pton("2001:db8::c"))
    before = bench.a.ipv6.dad.stats.dad_succeeded
    bench.run(3000)
    assert bench.a.ipv6.dad.stats.dad_succeeded == before
    assert [a for a in bench.a.ipv6.addresses() if a[0] == "2001:db8::c"] == []


def test_removing_a_configured_address_removes_its_connected_route_only():
    bench = Bench6()
    rt = bench.a.routes6
    bench.a.add_address6(bench.ia, "2001:db8:9::a/64")
    assert rt.find(addr6.pton("2001:db8:9::"), 64) >= 0
    bench.a.ipv6.remove_address(addr6.pton("2001:db8:9::a"), 0)
    assert rt.find(addr6.pton("2001:db8:9::"), 64) < 0
    assert rt.find(addr6.pton("2001:db8::"), 64) >= 0      # GA's stays


# ---- the control channel: ustack addr add/del for IPv6 ----------------------------------------
def ctl_do(stack, op, **args):
    import json
    from ustack.core import ctl
    return json.loads(ctl.Server(stack).handle_line(ctl.request(op, **args)))


def test_addr_add_and_del_take_ipv6_addresses_through_the_control_channel():
    bench = Bench6()
    r = ctl_do(bench.a, "addr.add", ip="2001:db8::c/64", dev="a0")
    assert r["ok"], r
    assert ["2001:db8::c", 64, "tentative"] in r["data"][0]["ip6"]
    bench.run(3000)
    assert ns_answered(bench, "2001:db8::c")
    r = ctl_do(bench.a, "addr.add", ip="2001:db8::c/64", dev="a0")
    assert not r["ok"] and "already" in r["error"]
    r = ctl_do(bench.a, "addr.del", ip="2001:db8::c/64", dev="a0")
    assert r["ok"], r
    assert [a for a in r["data"][0]["ip6"] if a[0] == "2001:db8::c"] == []
    assert not bench.ia.mld.is_member(addr6.pton("ff02::1:ff00:c"))
    assert not ns_answered(bench, "2001:db8::c")
    r = ctl_do(bench.a, "addr.del", ip="2001:db8::c/64", dev="a0")
    assert not r["ok"] and "not on a0" in r["error"]
    r = ctl_do(bench.a, "addr.add", ip="ff02::1/64", dev="a0")
    assert not r["ok"] and "unicast" in r["error"]
