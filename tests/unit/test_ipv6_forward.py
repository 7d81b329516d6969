"""IPv6 forwarding (RFC 8200 3, RFC 4443 3), Redirects for both families (RFC 4861 8.2,
RFC 1812 5.2.7.2) and routes from Router Advertisement Route Information options (RFC 4191)
on the in-memory wire with a virtual clock (issues 9 and 14).

Topology: host A (2001:db8:1::a, 192.0.2.10) - router R (2001:db8:1::1 / 2001:db8:2::1,
192.0.2.1 / 198.51.100.1, config IP_FORWARD) - host B (2001:db8:2::b, 198.51.100.11); a
raw port on each wire sees every frame and sends crafted ones. C (2001:db8:1::c,
192.0.2.12) is a second router on A's link for the redirect tests."""
import pytest

from ustack.core import addr6
from ustack.core import socket as so
from ustack.core.route import SRC_RA, SRC_STATIC
from ustack.core.stack import Stack
from ustack.core.wire import icmp4
from ustack.core.wire import icmp6 as wi
from ustack.core.wire import ipv6 as w
from ustack.hal.loopback import Wire

MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"
MAC_C = b"\x02\x00\x00\x00\x00\x0c"
MAC_R1 = b"\x02\x00\x00\x00\x00\x01"
MAC_R2 = b"\x02\x00\x00\x00\x00\x02"
MAC_X = b"\x02\x00\x00\x00\x00\x99"      # a raw port: sends crafted frames, sees all
GA, GB, GC = "2001:db8:1::a", "2001:db8:2::b", "2001:db8:1::c"
R1, R2 = "2001:db8:1::1", "2001:db8:2::1"
LL_R1 = "fe80::ff:fe00:1"                # R's link-local on A's link (modified EUI-64)
LL_C = "fe80::ff:fe00:c"


class Net:
    """A - R - B (and C beside A) on two wires; every stack on one virtual clock; DAD run."""

    def __init__(self, forward=True, mtu2=1500, with_c=False, config=None):
        self.t = 1000
        self.w1 = Wire()
        self.w2 = Wire()
        self.x1 = self.w1.port(MAC_X)
        self.x2 = self.w2.port(MAC_X)
        self.seen1 = []
        self.seen2 = []
        cfg = {"IPV6": True}
        cfg.update(config or {})
        rcfg = dict(cfg, IP_FORWARD=forward)
        self.stacks = []
        self.a = self._stack(cfg)
        self.r = self._stack(rcfg)
        self.b = self._stack(cfg)
        self.ia = self.a.add_interface("a0", self.w1.port(MAC_A), ip="192.0.2.10/24",
                                       gateway="192.0.2.1")
        self.r1 = self.r.add_interface("r1", self.w1.port(MAC_R1), ip="192.0.2.1/24")
        self.r2 = self.r.add_interface("r2", self.w2.port(MAC_R2, mtu2), ip="198.51.100.1/24",
                                       mtu=mtu2)
        self.ib = self.b.add_interface("b0", self.w2.port(MAC_B), ip="198.51.100.11/24",
                                       gateway="198.51.100.1")
        self.a.add_address6(self.ia, GA + "/64")
        self.b.add_address6(self.ib, GB + "/64")
        self.r.add_address6(self.r1, R1 + "/64")
        self.r.add_address6(self.r2, R2 + "/64")
        self.a.routes6.add(addr6.ANY, 0, addr6.pton(LL_R1), self.ia)
        self.b.routes6.add(addr6.ANY, 0, addr6.pton(R2), self.ib)
        self.c = None
        if with_c:
            self.c = self._stack(cfg)
            self.ic = self.c.add_interface("c0", self.w1.port(MAC_C), ip="192.0.2.12/24")
            self.c.add_address6(self.ic, GC + "/64")
        self.run(3000)
        self.drain()

    def _stack(self, cfg):
        s = Stack(cfg)
        s.clock = lambda: self.t
        s.now = self.t
        self.stacks.append(s)
        return s

    def run(self, ms):
        end = self.t + ms
        while self.t < end:
            self.t += 1
            for s in self.stacks:
                s.poll(self.t)
            self._listen()

    def _listen(self):
        buf = bytearray(1600)
        for port, seen in ((self.x1, self.seen1), (self.x2, self.seen2)):
            while True:
                n = port.recv_into(buf)
                if not n:
                    break
                seen.append(bytes(buf[:n]))

    def drain(self):
        self.seen1 = []
        self.seen2 = []
        self._listen()
        self.seen1 = []
        self.seen2 = []

    def icmp6_to(self, seen, mac, typ):
        """The ICMPv6 messages of type typ in frames to mac (without extension headers)."""
        return [f for f in seen if f[0:6] == mac and f[12:14] == b"\x86\xdd" and
                f[20] == w.NH_ICMPV6 and f[54] == typ]

    def no_leaks(self):
        for s in self.stacks:
            assert s.stats.exceptions == 0
            assert s.pool.full(), "packet buffers leaked"


def send6(stack, dst, n=16, hlim=0, proto=58):
    """An Echo Request of n bytes (or any message with proto) from stack's IPv6 layer."""
    v6 = stack.ipv6
    pb = v6.alloc_tx()
    b = pb.buf
    o = pb.off
    b[o] = wi.ECHO_REQUEST
    for i in range(1, n):
        b[o + i] = 0
    b[o + 5] = 7
    pb.n = n
    return v6.output(pb, proto, None, addr6.pton(dst), 2 if proto == 58 else -1, hlim)


def frame6(src_mac, dst_mac, src, dst, hlim=64, payload=b"\x80\x00\x00\x00\x00\x07\x00\x01"):
    """A whole Ethernet frame carrying an IPv6 datagram (ICMPv6 with a valid checksum)."""
    b = bytearray(14 + 40 + len(payload))
    b[0:6] = dst_mac
    b[6:12] = src_mac
    b[12:14] = b"\x86\xdd"
    b[54:] = payload
    w.write_header(b, 14, 0, 0, len(payload), w.NH_ICMPV6, hlim, addr6.pton(src),
                   addr6.pton(dst))
    wi.fill_checksum(b, 14, 54, len(payload))
    return b


def test_a_datagram_crosses_the_router_with_its_hop_limit_one_lower():
    net = Net()
    before = net.a.icmp6.stats.rx_echo_reply
    assert send6(net.a, GB, hlim=9) == 0
    net.run(50)
    assert net.a.icmp6.stats.rx_echo_reply == before + 1      # B's reply came back through R
    req = net.icmp6_to(net.seen2, MAC_B, wi.ECHO_REQUEST)
    assert len(req) == 1 and req[0][21] == 8                    # hop limit 9 - 1
    assert req[0][6:12] == MAC_R2
    st = net.r.ipv6.stats
    assert st.fwd_packets == 2 and net.r.icmp6.stats.rx_echo_request == 0   # both ways
    net.no_leaks()


def test_hop_limit_one_ends_at_the_router_with_time_exceeded_from_its_address():
    net = Net()
    assert send6(net.a, GB, hlim=1) == 0
    net.run(50)
    te = net.icmp6_to(net.seen1, MAC_A, wi.TIME_EXCEEDED)
    assert len(te) == 1 and te[0][55] == wi.HOP_LIMIT_EXCEEDED
    assert te[0][22:38] == addr6.pton(R1)                       # traceroute sees R's address
    assert te[0][54 + 8 + 24:54 + 8 + 40] == addr6.pton(GB)     # the quoted datagram
    assert net.r.ipv6.stats.fwd_hop_limit == 1 and net.r.ipv6.stats.fwd_packets == 0
    assert net.icmp6_to(net.seen2, MAC_B, wi.ECHO_REQUEST) == []
    net.no_leaks()


def test_no_route_is_destination_unreachable_code_0():
    net = Net()
    assert send6(net.a, "2001:db8:77::1") == 0
    net.run(50)
    du = net.icmp6_to(net.seen1, MAC_A, wi.DEST_UNREACH)
    assert len(du) == 1 and du[0][55] == wi.NO_ROUTE
    assert net.r.ipv6.stats.fwd_no_route == 1
    net.no_leaks()


def test_a_datagram_over_the_egress_mtu_gets_packet_too_big_and_a_learns_the_path_mtu():
    net = Net(mtu2=1280)
    send6(net.a, GB)      # R resolves B (its neighbour cache holds one packet meanwhile)
    net.run(50)
    net.drain()
    s = net.a.socket(so.AF_INET6, so.SOCK_DGRAM)
    s.sendto(b"x" * 1300, (GB, 9))                               # 1348 bytes: fits A's link
    net.run(50)
    ptb = net.icmp6_to(net.seen1, MAC_A, wi.PACKET_TOO_BIG)
    assert len(ptb) == 1 and wi.get32(ptb[0], 54 + 4) == 1280   # the egress link's MTU
    assert net.r.ipv6.stats.fwd_too_big == 1
    assert net.icmp6_to(net.seen2, MAC_B, 0) == [] and not [
        f for f in net.seen2 if f[0:6] == MAC_B and f[20] == w.NH_UDP]   # never fragmented
    assert net.a.ip.path_mtu(addr6.pton(GB), 0, 16, 1500) == 1280
    s.sendto(b"x" * 1300, (GB, 9))                               # now in fragments
    net.run(50)
    frags = [f for f in net.seen2 if f[0:6] == MAC_B and f[20] == w.NH_FRAGMENT]
    assert len(frags) == 2 and all(len(f) - 14 <= 1280 for f in frags)
    s.close()
    net.no_leaks()


def test_link_local_source_or_destination_is_beyond_scope_and_never_forwarded():
    net = Net()
    f = frame6(MAC_X, MAC_R1, "fe80::99", GB)
    net.x1.send(f, len(f))
    f = frame6(MAC_X, MAC_R1, "2001:db8:1::99", "fe80::b")
    net.x1.send(f, len(f))
    net.run(50)
    st = net.r.ipv6.stats
    assert st.fwd_beyond_scope == 2 and st.fwd_packets == 0
    du = [x for x in net.icmp6_to(net.seen1, MAC_X, wi.DEST_UNREACH)]
    # the one to the global source goes out at once (its neighbour is resolved by ND
    # first: the raw port does not answer, so count what R sent instead)
    assert net.r.icmp6.stats.tx_errors == 2
    assert all(x[55] == wi.BEYOND_SCOPE for x in du)
    assert net.seen2 == [] or not net.icmp6_to(net.seen2, MAC_B, wi.ECHO_REQUEST)
    net.run(4000)     # ND for the raw port gives up: its pending errors are dropped
    net.no_leaks()


def test_unspecified_loopback_and_multicast_sources_are_dropped_and_counted():
    net = Net()
    for src in ("::", "::1"):
        f = frame6(MAC_X, MAC_R1, src, GB)
        net.x1.send(f, len(f))
    f = frame6(MAC_X, MAC_R1, GA, "::1")
    net.x1.send(f, len(f))
    net.run(50)
    st = net.r.ipv6.stats
    assert st.fwd_bad_src == 2 and st.fwd_martian == 1 and st.fwd_packets == 0
    assert net.r.icmp6.stats.tx_errors == 0
    net.no_leaks()


def test_multicast_beyond_the_link_is_not_forwarded():
    net = Net()
    f = frame6(MAC_X, b"\x33\x33\x00\x00\x01\x01", GA, "ff0e::101")
    net.x1.send(f, len(f))
    net.run(50)
    assert net.r.ipv6.stats.fwd_multicast == 1 and net.r.ipv6.stats.fwd_packets == 0
    assert not [x for x in net.seen2 if x[12:14] == b"\x86\xdd" and x[38] == 0xFF and
                x[39] == 0x0E]
    net.no_leaks()


def test_a_unicast_datagram_in_a_link_multicast_frame_is_not_forwarded():
    net = Net()
    f = frame6(MAC_X, b"\x33\x33\x00\x00\x00\x01", GA, GB)
    net.x1.send(f, len(f))
    net.run(50)
    assert net.r.ipv6.stats.fwd_link_mcast == 1 and net.r.ipv6.stats.fwd_packets == 0
    net.no_leaks()


def test_nd_failure_on_the_egress_link_is_address_unreachable_code_3():
    net = Net()
    assert send6(net.a, "2001:db8:2::77") == 0
    net.run(5000)      # three solicitations a second apart, then the entry gives up
    du = net.icmp6_to(net.seen1, MAC_A, wi.DEST_UNREACH)
    assert len(du) == 1 and du[0][55] == wi.ADDR_UNREACH
    assert du[0][54 + 8 + 24:54 + 8 + 40] == addr6.pton("2001:db8:2::77")
    assert net.r.ipv6.stats.fwd_addr_unreach == 1
    net.no_leaks()


def test_a_host_does_not_forward():
    net = Net(forward=False)
    before = net.r.ipv6.stats.rx_not_for_us
    assert send6(net.a, GB) == 0
    net.run(50)
    assert net.r.ipv6.stats.rx_not_for_us == before + 1 and net.r.ipv6.stats.fwd_packets == 0
    assert net.icmp6_to(net.seen2, MAC_B, wi.ECHO_REQUEST) == []
    net.no_leaks()


def test_the_forward_filter_hook_sees_both_links_and_can_drop():
    net = Net()
    calls = []

    def hook(in_if, out_if, b, off, n):
        calls.append((in_if.name, out_if.name, b[off] >> 4, n))
        return False
    net.r.filter = hook
    assert send6(net.a, GB, n=24) == 0
    net.run(50)
    assert calls == [("r1", "r2", 6, 64)]
    assert net.r.ipv6.stats.fwd_filtered == 1 and net.r.ipv6.stats.fwd_packets == 0
    net.no_leaks()


def test_a_router_takes_no_router_advertisements_and_solicits_none():
    net = Net()
    assert net.r.counters().get("r1.slaac.rs_sent", 0) == 0
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:ff::", 48, 0, 30)],
                       lifetime=1800)
    net.x1.send(ra, len(ra))
    net.run(50)
    assert net.r.icmp6.stats.rx_ra_forwarding == 1
    rt = net.r.routes6
    assert rt.find(addr6.pton("2001:db8:ff::"), 48) < 0 and rt.find(addr6.ANY, 0) < 0
    # its Neighbor Advertisements say it is a router (RFC 4861 7.2.4)
    net.a.ifaces[0].nd.remove(addr6.pton(LL_R1))
    net.drain()
    send6(net.a, GB)
    net.run(50)
    na = [x for x in net.seen1 if x[6:12] == MAC_R1 and x[20] == w.NH_ICMPV6 and
          x[54] == wi.NEIGHBOR_ADVERT]
    assert na and all(x[54 + 4] & wi.NA_FLAG_ROUTER for x in na)
    net.no_leaks()


# ---- redirects ----------------------------------------------------------------------------
def test_ipv6_redirect_names_the_better_router_and_the_datagram_still_goes():
    net = Net(with_c=True)
    net.r.routes6.add(addr6.pton("2001:db8:5::"), 64, addr6.pton(LL_C), net.r1)
    assert send6(net.a, "2001:db8:5::1") == 0
    net.run(50)
    rd = net.icmp6_to(net.seen1, MAC_A, wi.REDIRECT)
    assert len(rd) == 1
    f = rd[0]
    assert f[21] == 255                                   # RFC 4861 8.2: hop limit 255
    assert f[22:38] == addr6.pton(LL_R1)                  # from R's link-local address
    assert f[38:54] == addr6.pton(GA)
    assert f[54 + 8:54 + 24] == addr6.pton(LL_C)          # target: the better first hop
    assert f[54 + 24:54 + 40] == addr6.pton("2001:db8:5::1")
    assert wi.checksum_ok(f, 14, 54, len(f) - 54)
    # the redirected header option (C's link-layer address is not known yet)
    p = 54 + wi.REDIRECT_LEN
    assert f[p] == wi.OPT_REDIRECTED_HDR and f[p + 8 + 24:p + 8 + 40] == \
        addr6.pton("2001:db8:5::1")
    assert f[p + 1] * 8 == len(f) - p and len(f) - 14 <= 1280
    assert wi.nd_check(f, 14, 54, len(f) - 54) is None    # a host's checks pass
    assert net.a.icmp6.stats.rx_ignored == 1              # (ustack as a host ignores it)
    # the datagram itself went on to C, and A heard nothing else
    assert net.r.ipv6.stats.fwd_packets == 1 and net.r.icmp6.stats.tx_redirects == 1
    fwd = [x for x in net.seen1 if x[0:6] == MAC_C and x[6:12] == MAC_R1 and
           x[20] == w.NH_ICMPV6 and x[54] == wi.ECHO_REQUEST]
    assert len(fwd) == 1
    assert net.c.ipv6.stats.rx_not_for_us >= 1
    # once R has resolved C, the Redirect carries C's link-layer address (RFC 4861 8.2)
    net.run(2000)
    net.drain()
    send6(net.a, "2001:db8:5::1", n=1400)
    net.run(50)
    rd = net.icmp6_to(net.seen1, MAC_A, wi.REDIRECT)
    assert len(rd) == 1
    f = rd[0]
    p = 54 + wi.REDIRECT_LEN
    assert f[p] == wi.OPT_TLLA and f[p + 2:p + 8] == MAC_C
    assert f[p + 8] == wi.OPT_REDIRECTED_HDR
    assert len(f) - 14 <= 1280 and f[p + 9] * 8 == len(f) - p - 8   # the quote cut to fit
    net.no_leaks()


def test_ipv6_redirects_are_rate_limited_and_not_sent_to_off_link_sources():
    net = Net(with_c=True)
    net.r.routes6.add(addr6.pton("2001:db8:5::"), 64, addr6.pton(LL_C), net.r1)
    send6(net.a, GB)      # A resolves R first (its neighbour cache holds one packet)
    net.run(2000)         # the error bucket full again
    for _ in range(30):
        send6(net.a, "2001:db8:5::1")
    net.run(5)
    st = net.r.icmp6.stats
    assert st.tx_redirects == 10 and st.tx_error_rate_limited == 20   # RFC 4861 8.2
    assert net.r.ipv6.stats.fwd_packets == 32
    # a source that is no neighbour on that link (B, by its own route) hears no Redirect
    net.r.routes6.add(addr6.pton("2001:db8:6::"), 64, addr6.pton(LL_C), net.r1)
    net.run(2000)
    before = st.tx_redirects
    f = frame6(MAC_X, MAC_R1, "2001:db8:9::1", "2001:db8:6::1")
    net.r.routes6.add(addr6.pton("2001:db8:9::"), 64, addr6.pton(R2), net.r2)
    net.x1.send(f, len(f))
    net.run(50)
    assert st.tx_redirects == before and net.r.ipv6.stats.fwd_packets == 33
    net.no_leaks()


def test_ipv6_no_redirect_when_the_better_hop_is_known_only_by_a_global_address():
    net = Net(with_c=True)
    net.r.routes6.add(addr6.pton("2001:db8:5::"), 64, addr6.pton(GC), net.r1)
    send6(net.a, "2001:db8:5::1")
    net.run(50)
    assert net.r.icmp6.stats.tx_redirects == 0 and net.r.ipv6.stats.fwd_packets == 1
    # to a neighbour on that link itself: the target is the destination (RFC 4861 8.2)
    net.a.routes6.add(addr6.pton(GC), 128, addr6.pton(LL_R1), net.ia)
    send6(net.a, GC)
    net.run(50)
    rd = net.icmp6_to(net.seen1, MAC_A, wi.REDIRECT)
    # (A's own ND answers to C follow its /128 route through R too: redirected alike)
    assert rd and all(f[54 + 8:54 + 24] == addr6.pton(GC) == f[54 + 24:54 + 40] for f in rd)
    net.run(4000)     # C's answer to A waits for its neighbour entry until ND settles
    net.no_leaks()


def test_ipv4_redirect_from_the_router_names_the_gateway_and_the_datagram_still_goes():
    net = Net(with_c=True)
    net.r.add_route("203.0.113.0", 24, "192.0.2.12")
    s = net.a.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"hello", ("203.0.113.5", 9))
    net.run(50)
    rd = [f for f in net.seen1 if f[0:6] == MAC_A and f[12:14] == b"\x08\x00" and
          f[23] == 1 and f[34] == icmp4.REDIRECT]
    assert len(rd) == 1
    f = rd[0]
    assert f[35] == 1                                     # code 1: for the host (RFC 1812)
    assert f[26:30] == bytes([192, 0, 2, 1])              # from the address A sent to
    assert f[38:42] == bytes([192, 0, 2, 12])             # the better gateway
    assert f[42 + 16:42 + 20] == bytes([203, 0, 113, 5])  # the quoted datagram
    assert net.r.icmp.stats.tx_redirects == 1 and net.r.icmp.stats.tx_errors == 0
    assert net.a.icmp.stats.rx_redirects_ignored == 1
    assert net.r.ipv4.stats.fwd_packets == 1
    fwd = [x for x in net.seen1 if x[0:6] == MAC_C and x[6:12] == MAC_R1 and
           x[12:14] == b"\x08\x00" and x[23] == 17]
    assert len(fwd) == 1 and fwd[0][22] == 63             # forwarded, TTL 64 - 1
    assert net.c.ipv4.stats.fwd_disabled == 1             # C (a host) got it
    # forwarded to the other link: no redirect
    s.sendto(b"hello", ("198.51.100.11", 9))
    net.run(50)
    # (B's port unreachable back to A crosses R too)
    assert net.r.icmp.stats.tx_redirects == 1 and net.r.ipv4.stats.fwd_packets == 3
    s.close()
    net.no_leaks()


def test_ipv4_redirects_share_the_error_rate_limit():
    net = Net(with_c=True, config={"ICMP_BURST": 3, "ICMP_RATE_MS": 1000})
    net.r.add_route("203.0.113.0", 24, "192.0.2.12")
    s = net.a.socket(so.AF_INET, so.SOCK_DGRAM)
    s.sendto(b"x", ("198.51.100.11", 9))     # A resolves R first (ARP holds one packet)
    net.run(3000)
    for _ in range(8):
        s.sendto(b"x", ("203.0.113.5", 9))
    net.run(20)
    assert net.r.icmp.stats.tx_redirects == 3 and net.r.icmp.stats.tx_rate_limited == 5
    assert net.r.ipv4.stats.fwd_packets == 8 + 2     # and the first, and B's port unreachable
    s.close()
    net.no_leaks()


# ---- RFC 4191 Route Information options ------------------------------------------------------
def router_advert(mac, src, routes=(), lifetime=0, raw_opts=b""):
    """A Router Advertisement from src (link-local) to ff02::1 with a source link-layer
    option and a Route Information option per (prefix, plen, prf, lifetime) in routes; raw
    option bytes appended as they are."""
    b = bytearray(14 + 40 + 16 + 8 + 24 * len(routes) + len(raw_opts))
    b[0:6] = b"\x33\x33\x00\x00\x00\x01"
    b[6:12] = mac
    b[12:14] = b"\x86\xdd"
    o = 54
    n = wi.write_ra(b, o, 64, 0, lifetime, 0, 0)
    n += wi.write_lla_option(b, o + n, wi.OPT_SLLA, mac)
    for prefix, plen, prf, life in routes:
        n += wi.write_route_option(b, o + n, addr6.pton(prefix), plen, prf, life)
    b[o + n:o + n + len(raw_opts)] = raw_opts
    n += len(raw_opts)
    w.write_header(b, 14, 0, 0, n, w.NH_ICMPV6, 255, addr6.pton(src), addr6.ALL_NODES)
    wi.fill_checksum(b, 14, o, n)
    return b[:o + n]


def host_net():
    """A host (A) with a router's raw port beside it on one wire."""
    net = Net()
    return net, net.a, net.x1


def routes(stack):
    rt = stack.routes6
    return [(addr6.ntop(rt.net[i]), rt.prefix[i], addr6.ntop(rt.gw[i]) if rt.gw[i] else None,
             rt.metric[i], rt.source[i]) for i in range(rt.count)]


def test_route_information_installs_a_route_via_the_router_then_lifetime_0_withdraws_it():
    net, a, x = host_net()
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:ff::", 48, 0, 30)])
    x.send(ra, len(ra))
    net.run(10)
    assert ("2001:db8:ff::", 48, "fe80::99", 1, SRC_RA) in routes(a)   # medium: metric 1
    assert a.counters()["a0.slaac.routes_added"] == 1
    # traffic to that prefix goes to the router (its MAC, after ND)
    net.drain()
    send6(a, "2001:db8:ff::1")
    net.run(5)
    out = [f for f in net.seen1 if f[12:14] == b"\x86\xdd" and
           f[38:54] == addr6.pton("2001:db8:ff::1")]
    assert len(out) == 1 and out[0][0:6] == MAC_X     # the RA's source link-layer address
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:ff::", 48, 0, 0)])
    x.send(ra, len(ra))
    net.run(10)
    assert [r for r in routes(a) if r[0] == "2001:db8:ff::"] == []
    assert a.counters()["a0.slaac.routes_removed"] == 1
    net.run(4000)
    net.no_leaks()


def test_route_information_expires_with_its_lifetime_and_keeps_its_preference():
    net, a, x = host_net()
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:ff::", 48, 1, 2),
                                                  ("2001:db8:fe::", 64, 3, 60)])
    x.send(ra, len(ra))
    net.run(10)
    r = routes(a)
    assert ("2001:db8:ff::", 48, "fe80::99", 0, SRC_RA) in r      # high
    assert ("2001:db8:fe::", 64, "fe80::99", 2, SRC_RA) in r      # low
    net.run(2100)
    assert [r for r in routes(a) if r[0] == "2001:db8:ff::"] == []
    assert [r for r in routes(a) if r[0] == "2001:db8:fe::"]
    net.no_leaks()


def test_a_route_option_never_replaces_a_connected_or_static_route_nor_a_better_router():
    net, a, x = host_net()
    a.routes6.add(addr6.pton("2001:db8:7::"), 48, addr6.pton("fe80::7"), net.ia, 0, SRC_STATIC)
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:1::", 64, 1, 30),
                                                  ("2001:db8:7::", 48, 1, 30),
                                                  ("2001:db8:8::", 48, 1, 30)])
    x.send(ra, len(ra))
    net.run(10)
    r = routes(a)
    assert ("2001:db8:1::", 64, None, 0, "connected") in r
    assert ("2001:db8:7::", 48, "fe80::7", 0, SRC_STATIC) in r
    assert a.counters()["a0.slaac.routes_shadowed"] == 2
    # a second router's low-preference route to the same prefix loses to the high one
    ra = router_advert(MAC_X, "fe80::98", routes=[("2001:db8:8::", 48, 3, 30)])
    x.send(ra, len(ra))
    net.run(10)
    assert ("2001:db8:8::", 48, "fe80::99", 0, SRC_RA) in routes(a)
    # the loser withdrawing its own does not take the winner's away
    ra = router_advert(MAC_X, "fe80::98", routes=[("2001:db8:8::", 48, 3, 0)])
    x.send(ra, len(ra))
    net.run(10)
    assert ("2001:db8:8::", 48, "fe80::99", 0, SRC_RA) in routes(a)
    net.no_leaks()


def rio(ln, plen, flags=0, lifetime=30, body=None):
    """A raw Route Information option: length field ln (units of 8), prefix length plen."""
    o = bytearray(8 + (body if body is not None else max(0, ln - 1) * 8))
    o[0] = wi.OPT_ROUTE_INFO
    o[1] = ln
    o[2] = plen
    o[3] = flags
    o[4:8] = lifetime.to_bytes(4, "big")
    for i in range(8, len(o)):
        o[i] = 0x20 if i == 8 else (0x01 if i == 9 else 0x0d if i == 10 else 0xb8 if i == 11
                                    else 0)
    return bytes(o)


@pytest.mark.parametrize("opt, counter", [
    (rio(3, 129), "a0.slaac.route_bad_option"),          # prefix length > 128
    (rio(2, 65), "a0.slaac.route_bad_option"),           # longer than the option holds
    (rio(1, 8), "a0.slaac.route_bad_option"),            # a prefix but no prefix field
    (rio(4, 48), "a0.slaac.route_bad_option"),           # length 4: not 1..3 (RFC 4191 2.3)
    (rio(2, 48, flags=0x10), "a0.slaac.route_bad_option"),   # Prf 10: reserved
    (rio(0, 48, body=8), "icmp6.rx_nd_bad_option"),      # length 0: the whole RA is invalid
    (rio(3, 48, body=8), "icmp6.rx_nd_bad_option"),      # truncated: runs past the message
])
def test_malformed_route_options_are_counted_and_dropped_without_exceptions(opt, counter):
    net, a, x = host_net()
    before = dict(a.counters())
    ra = router_advert(MAC_X, "fe80::99", raw_opts=opt)
    x.send(ra, len(ra))
    net.run(10)
    c = a.counters()
    assert c.get(counter, 0) == before.get(counter, 0) + 1
    assert c.get("a0.slaac.routes_added", 0) == 0
    assert [r for r in routes(a) if r[4] == SRC_RA and r[1] != 0] == []
    assert a.stats.exceptions == 0
    net.no_leaks()


def test_route_options_beyond_the_table_bounds_are_counted():
    net = Net()
    a, x = net.a, net.x1
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:%x::" % (0x10 + k), 48, 0, 30)
                                                  for k in range(6)])
    x.send(ra, len(ra))
    net.run(10)
    c = a.counters()
    # SLAAC_ROUTES (4, core/slaac.py) routes from RAs at once
    assert c["a0.slaac.routes_added"] == 4 and c["a0.slaac.route_table_full"] == 2
    assert len([r for r in routes(a) if r[4] == SRC_RA and r[1] == 48]) == 4
    # the routing table's own bound (ROUTE_ENTRIES) is counted too, not raised
    net2 = Net(config={"ROUTE_ENTRIES": 4})
    ra = router_advert(MAC_X, "fe80::99", routes=[("2001:db8:%x::" % (0x10 + k), 48, 0, 30)
                                                  for k in range(4)])
    net2.x1.send(ra, len(ra))
    net2.run(10)
    assert net2.a.routes6.count == 4
    assert net2.a.counters()["a0.slaac.route_table_full"] >= 1
    assert net2.a.stats.exceptions == 0


# ---- IPv6 routes over the control channel (`ustack route -6`, route add/del) ---------------
def test_ipv6_routes_are_shown_added_and_deleted_over_the_control_channel():
    import json
    from ustack.core import ctl
    net = Net()
    srv = ctl.Server(net.r)

    def ask(op, **args):
        return json.loads(srv.handle_line(ctl.request(op, **args)))

    rows = ask("route", family=6)["data"]
    assert {"dst": "2001:db8:1::", "prefix": 64, "via": None, "dev": "r1", "metric": 0,
            "proto": "connected", "src": None} in rows
    assert [r for r in ask("route")["data"] if ":" in r["dst"]] == []   # IPv4's table alone
    r = ask("route.add", dst="2001:db8:5::/64", via=LL_C, dev="r1")
    assert r["ok"] and {"dst": "2001:db8:5::", "prefix": 64, "via": LL_C, "dev": "r1",
                        "metric": 0, "proto": "static", "src": None} in r["data"]
    r = ask("route.add", dst="2001:db8:6::/64", via=GB)      # a global gateway: its link
    assert r["ok"] and [x for x in r["data"] if x["dst"] == "2001:db8:6::"][0]["dev"] == "r2"
    for args, words in (
            ({"dst": "2001:db8:7::/64", "via": "fe80::9"}, "link-local: name the interface"),
            ({"dst": "2001:db8:7::1/64", "via": GB}, "host bits set"),
            ({"dst": "2001:db8:7::/129", "via": GB}, "not an IPv6 prefix"),
            ({"dst": "2001:db8:7::/64", "via": "2001:db8:9::1"}, "not on a connected network"),
            ({"dst": "2001:db8:7::/64", "via": "nonsense:"}, "not an IPv6 address"),
            ({"dst": "2001:db8:1::/64", "via": GB}, "connected route")):
        r = ask("route.add", **args)
        assert not r["ok"] and words in r["error"], (args, r)
    r = ask("route.del", dst="2001:db8:5::/64")
    assert r["ok"] and not [x for x in r["data"] if x["dst"] == "2001:db8:5::"]
    r = ask("route.del", dst="2001:db8:5::/64")
    assert not r["ok"] and "no route" in r["error"]
    assert srv.stats.failed >= 1 and net.r.stats.exceptions == 0


def test_ipv4_link_local_sources_and_destinations_are_not_forwarded_either():
    """The same rule for IPv4 (RFC 3927 7): 169.254/16 never crosses a router."""
    from ustack.core.wire import ipv4 as ip4w
    net = Net()
    for src, dst in (("169.254.7.7", "198.51.100.11"), ("192.0.2.10", "169.254.9.9")):
        b = bytearray(14 + 28)
        b[0:6] = MAC_R1
        b[6:12] = MAC_X
        b[12:14] = b"\x08\x00"
        ip4w.write_header(b, 14, 28, 1, 0, 64, 17, ip4w.aton(src), ip4w.aton(dst))
        b[34:42] = b"\x00\x07\x00\x09\x00\x08\x00\x00"
        net.x1.send(b, len(b))
    net.r.routes.add("169.254.0.0", 16, "198.51.100.11", net.r2)   # even with a route
    net.run(50)
    assert net.r.ipv4.stats.fwd_link_local == 2 and net.r.ipv4.stats.fwd_packets == 0
    assert [f for f in net.seen2 if f[12:14] == b"\x08\x00" and f[23] == 17] == []
    net.no_leaks()


def test_mangled_datagrams_through_a_forwarding_stack_raise_nothing_and_leak_nothing():
    """Every byte of a datagram in transit flipped, lengths cut and grown: the router drops,
    answers or forwards each, never raises, and gets every buffer back."""
    import random
    rnd = random.Random(9)
    net = Net(with_c=True)
    net.r.routes6.add(addr6.pton("2001:db8:5::"), 64, addr6.pton(LL_C), net.r1)
    good = frame6(MAC_X, MAC_R1, GA, GB, payload=bytes(range(64)))
    good2 = frame6(MAC_X, MAC_R1, GA, "2001:db8:5::1", hlim=2, payload=b"\x80" + bytes(40))
    for k in range(1500):
        f = bytearray(good if k & 1 else good2)
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(14, len(f))
            f[i] = rnd.randrange(256)
        if k % 7 == 0:
            f = f[:rnd.randrange(14, len(f))]
        elif k % 11 == 0:
            f += bytes(rnd.randrange(1, 40))
        net.x1.send(f, len(f))
        if k % 50 == 0:
            net.run(3)
    net.run(5000)
    assert net.r.stats.exceptions == 0
    assert net.r.ipv6.stats.fwd_packets > 100
    net.no_leaks()


def test_a_datagram_waiting_for_nd_survives_a_handler_exception_in_the_same_frame():
    """A forwarded datagram waits in the egress neighbour cache (RFC 4861 7.2.2) in the very
    buffer it arrived in. A handler that raises later in that frame must not have the stack
    take that buffer back (Stack._recover) while the cache still holds it: it goes out once
    resolution ends, and nothing is freed twice."""
    net = Net()
    r6 = net.r.ipv6
    real = r6.send_to
    logs = []
    net.r.log = logs.append

    armed = [True]

    def send_then_raise(iface, pb, nh, rc=None):
        real(iface, pb, nh, rc)
        if armed[0] and r6.stats.fwd_packets:    # the forwarded datagram, not the NS
            armed[0] = False
            raise RuntimeError("a bug after the datagram was queued")
    r6.send_to = send_then_raise
    send6(net.a, GB)
    net.run(2)
    del r6.send_to
    assert net.r.stats.exceptions == 1 and logs
    assert net.r.pool.nfree == net.r.pool.count - 1       # the cache still holds it
    net.run(50)
    assert net.icmp6_to(net.seen2, MAC_B, wi.ECHO_REQUEST)   # sent once resolved
    assert net.a.icmp6.stats.rx_echo_reply == 1
    assert net.r.stats.exceptions == 1
    for s in net.stacks:
        assert s.pool.full()
