"""The DHCPv4 client (RFC 2131/2132, RFC 5227 probes), fed frames built by hand on a virtual
clock: every state transition, and every malformed or hostile message counted and dropped."""
import struct

import pytest

from ustack.core.stack import Stack
from tests import frames as F
from tests.feed import FeedDriver

CLIENT_MAC = F.STACK_MAC
SERVER_MAC = F.HOST_MAC
SERVER = bytes([192, 0, 2, 1])
OFFERED = bytes([192, 0, 2, 50])
BCAST = b"\xff\xff\xff\xff"
ZERO = b"\x00\x00\x00\x00"
MAGIC = b"\x63\x82\x53\x63"


def opt(code, data):
    return bytes([code, len(data)]) + data


def u32(v):
    return struct.pack("!I", v)


def lease_opts(lease=3600, t1=None, t2=None):
    o = opt(1, b"\xff\xff\xff\x00") + opt(3, SERVER) + opt(6, bytes([192, 0, 2, 53]) +
                                                          bytes([192, 0, 2, 54])) + \
        opt(15, b"example.org") + opt(26, struct.pack("!H", 1400)) + opt(51, u32(lease))
    if t1 is not None:
        o += opt(58, u32(t1))
    if t2 is not None:
        o += opt(59, u32(t2))
    return o


def bootp(xid, mtype, yiaddr=OFFERED, options=None, op=2, chaddr=CLIENT_MAC, htype=1, hlen=6,
          magic=MAGIC, server_id=SERVER, sname=b"", filef=b"", end=True):
    h = struct.pack("!BBBB4sHH4s4s4s4s", op, htype, hlen, 0, xid, 0, 0, ZERO, yiaddr, ZERO,
                    ZERO) + chaddr + bytes(16 - len(chaddr))
    h += sname + bytes(64 - len(sname)) + filef + bytes(128 - len(filef)) + magic
    o = b""
    if mtype is not None:
        o += opt(53, bytes([mtype]))
    if server_id is not None:
        o += opt(54, server_id)
    if options is not None:
        o += options
    if end:
        o += b"\xff"
    return h + o


def from_server(payload, dst_ip=BCAST, sport=67, dport=68, src_ip=SERVER):
    dst_mac = b"\xff" * 6 if dst_ip == BCAST else CLIENT_MAC
    return F.eth(dst_mac, SERVER_MAC, 0x0800,
                 F.ipv4(src_ip, dst_ip, 17, F.udp(src_ip, dst_ip, sport, dport, payload)))


class Sent:
    """One message the client sent, parsed."""

    def __init__(self, frame):
        self.eth_dst = frame[0:6]
        ihl = (frame[14] & 15) * 4
        self.src = frame[26:30]
        self.dst = frame[30:34]
        u = 14 + ihl
        self.sport, self.dport = struct.unpack("!HH", frame[u:u + 4])
        m = frame[u + 8:]
        self.op = m[0]
        self.xid = m[4:8]
        self.secs = struct.unpack("!H", m[8:10])[0]
        self.ciaddr = m[12:16]
        self.chaddr = m[28:34]
        self.magic = m[236:240]
        self.length = len(m)
        self.opts = {}
        i = 240
        while i < len(m) and m[i] != 255:
            if m[i] == 0:
                i += 1
                continue
            self.opts[m[i]] = m[i + 2:i + 2 + m[i + 1]]
            i += 2 + m[i + 1]
        self.type = self.opts[53][0]


class Client:
    """A stack with one unconfigured interface whose DHCP client has just sent DISCOVER."""

    def __init__(self, config=None, features=None, **kw):
        cfg = {"DHCP_ARP_PROBES": 0}
        if config:
            cfg.update(config)
        self.drv = FeedDriver()
        self.t = 1000
        self.stack = Stack(cfg, features=features) if features else Stack(cfg)
        self.stack.clock = lambda: self.t
        self.iface = self.stack.add_interface("eth0", self.drv)
        self.stack.poll(self.t)
        self.dhcp = self.stack.start_dhcp(self.iface, **kw)

    def frames(self):
        out = self.drv.tx[:]
        self.drv.tx.clear()
        return out

    def sent(self):
        """The DHCP messages sent since last asked (ARP frames left out)."""
        out = [Sent(f) for f in self.frames() if f[12:14] == b"\x08\x00"]
        if out:
            self.last = out[-1]
        return out

    def feed(self, frame):
        self.drv.rx.append(bytes(frame))
        self.stack.poll(self.t)

    def advance(self, ms):
        end = self.t + ms
        while self.t < end:
            self.t += 10
            self.stack.poll(self.t)

    def stats(self):
        return dict(self.dhcp.stats.nonzero())

    def offer(self):
        self.sent()
        d = self.last
        self.feed(from_server(bootp(d.xid, 2)))
        return self.sent()[-1]

    def bind(self, lease=3600, t1=None, t2=None):
        req = self.offer()
        self.feed(from_server(bootp(req.xid, 5, options=lease_opts(lease, t1, t2))))
        return req


@pytest.fixture
def c():
    cl = Client()
    yield cl
    assert cl.stack.pool.full(), "a packet buffer leaked"


# ---- the exchange --------------------------------------------------------------------------
def test_discover_is_a_broadcast_from_0_0_0_0_with_client_id_and_parameter_list(c):
    d = c.sent()[0]
    assert d.type == 1 and d.op == 1
    assert d.eth_dst == b"\xff" * 6 and d.src == ZERO and d.dst == BCAST
    assert (d.sport, d.dport) == (68, 67)
    assert d.chaddr == CLIENT_MAC and d.magic == MAGIC
    assert d.opts[61] == b"\x01" + CLIENT_MAC            # RFC 2132 9.14
    for code in (1, 3, 6, 15, 26, 51, 58, 59):
        assert code in d.opts[55]
    assert d.length >= 300                                # RFC 1542 2.1
    assert c.dhcp.state_name() == "selecting"


def test_host_name_is_sent_when_given():
    cl = Client(hostname="board7")
    assert cl.sent()[0].opts[12] == b"board7"


def test_offer_is_answered_by_a_broadcast_request_naming_server_and_address(c):
    r = c.offer()
    assert r.type == 3 and r.dst == BCAST and r.src == ZERO
    assert r.opts[50] == OFFERED and r.opts[54] == SERVER
    assert r.ciaddr == ZERO                               # RFC 2131 4.3.2: SELECTING
    assert c.dhcp.state_name() == "requesting" and c.stats()["offers"] == 1


def test_ack_binds_address_with_mask_router_dns_domain_and_mtu(c):
    c.bind()
    st = c.stack
    assert c.dhcp.state_name() == "bound" and c.iface.ip == OFFERED
    assert c.iface.prefix == 24 and c.iface.gateway == SERVER
    r = st.routes.lookup(bytes([198, 51, 100, 1]), 0)   # default route via the router
    assert r >= 0 and st.routes.source[r] == "dhcp"      # `ustack route`: proto dhcp
    assert c.iface.mtu == 1400
    lease = c.dhcp.lease()
    assert lease["ip"] == "192.0.2.50" and lease["router"] == "192.0.2.1"
    assert lease["dns"] == ["192.0.2.53", "192.0.2.54"] and lease["domain"] == "example.org"
    assert (lease["lease_s"], lease["t1_s"], lease["t2_s"]) == (3600, 1800, 3150)
    assert c.stats()["leases"] == 1
    assert st.counters()["dhcp.leases"] == 1
    # bound: the address announces itself (RFC 5227 2.3)
    arps = [f for f in c.frames() if f[12:14] == b"\x08\x06"]
    assert arps and arps[0][28:32] == OFFERED


def test_name_servers_and_domain_from_the_lease_feed_the_resolver(c):
    """RFC 2132 3.8/3.17: the lease's DNS servers and domain become the stub resolver's
    servers and search domain, unless the application set its own servers first."""
    c.bind()
    assert c.stack.dns.servers == [bytes([192, 0, 2, 53]), bytes([192, 0, 2, 54])]
    assert c.stack.dns.search == "example.org"


def test_name_servers_set_by_the_application_win_over_the_lease():
    cl = Client()
    cl.stack.dns.set_servers(["203.0.113.53"])
    cl.bind()
    assert cl.stack.dns.servers == [bytes([203, 0, 113, 53])]


def test_bound_stack_answers_udp_on_its_new_address(c):
    c.bind()
    s = c.stack.socket(2, 2)
    s.bind(("", 7))
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.feed(F.eth(CLIENT_MAC, SERVER_MAC, 0x0800,
                 F.ipv4(SERVER, OFFERED, 17, F.udp(SERVER, OFFERED, 4000, 7, b"hi"))))
    assert s.recvfrom(10) == (b"hi", ("192.0.2.1", 4000))
    s.close()


def test_offer_unicast_to_the_offered_address_is_accepted(c):
    d = c.sent()[0]
    c.feed(from_server(bootp(d.xid, 2), dst_ip=OFFERED))
    assert c.dhcp.state_name() == "requesting"


# ---- RFC 5227 probe and DECLINE --------------------------------------------------------------
def test_offered_address_is_probed_three_times_before_use():
    cl = Client({"DHCP_ARP_PROBES": 3})
    cl.bind()
    assert cl.dhcp.state_name() == "probing" and cl.iface.ip == ZERO
    cl.advance(3 * 2000 + 2000)
    probes = [f for f in cl.frames() if f[12:14] == b"\x08\x06" and f[28:32] == ZERO]
    assert len(probes) == 3
    for p in probes:
        assert p[38:42] == OFFERED and p[22:28] == CLIENT_MAC  # target: the address
    assert cl.dhcp.state_name() == "bound" and cl.iface.ip == OFFERED


@pytest.mark.parametrize("who", ["owner_replies", "other_prober"])
def test_conflict_while_probing_declines_and_restarts_after_ten_seconds(who):
    cl = Client({"DHCP_ARP_PROBES": 3})
    cl.bind()
    other = bytes.fromhex("02000000ee01")
    if who == "owner_replies":
        a = F.arp(2, other, OFFERED, CLIENT_MAC, ZERO)
    else:
        a = F.arp(1, other, ZERO, b"\0" * 6, OFFERED)
    cl.frames()
    cl.feed(F.eth(b"\xff" * 6, other, 0x0806, a))
    d = cl.sent()
    assert len(d) == 1 and d[0].type == 4               # DECLINE
    assert d[0].opts[50] == OFFERED and d[0].opts[54] == SERVER and d[0].src == ZERO
    assert cl.stats()["conflicts"] == 1 and cl.iface.ip == ZERO
    cl.advance(9900)
    assert cl.sent() == []
    cl.advance(200)
    assert [m.type for m in cl.sent()] == [1]           # RFC 2131 3.1.5: DISCOVER again


def test_our_own_probe_echoed_back_is_no_conflict():
    cl = Client({"DHCP_ARP_PROBES": 2})
    cl.bind()
    probe = [f for f in cl.frames() if f[12:14] == b"\x08\x06"][0]
    cl.feed(probe)
    assert "conflicts" not in cl.stats()
    cl.advance(5000)
    assert cl.dhcp.state_name() == "bound"


# ---- lease timers ---------------------------------------------------------------------------
def test_renewing_at_t1_is_unicast_to_the_server_and_an_ack_extends_the_lease(c):
    c.bind(lease=100)
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.frames()
    c.advance(49000)
    assert c.sent() == []
    c.advance(1100)
    r = c.sent()
    assert len(r) == 1 and r[0].type == 3 and c.dhcp.state_name() == "renewing"
    assert r[0].dst == SERVER and r[0].src == OFFERED and r[0].ciaddr == OFFERED
    assert 50 not in r[0].opts and 54 not in r[0].opts  # RFC 2131 4.3.2: RENEWING
    c.feed(from_server(bootp(r[0].xid, 5, options=lease_opts(100)), dst_ip=OFFERED))
    assert c.dhcp.state_name() == "bound" and c.stats()["renewed"] == 1
    c.advance(49000)
    assert c.sent() == [] and c.iface.ip == OFFERED      # the new T1 is 50 s after the ACK


def test_rebinding_at_t2_is_broadcast_and_an_ack_from_any_server_keeps_the_address(c):
    c.bind(lease=100)
    c.frames()
    c.advance(87600)
    msgs = c.sent()
    assert c.dhcp.state_name() == "rebinding"
    r = msgs[-1]
    assert r.type == 3 and r.dst == BCAST and r.src == OFFERED and r.ciaddr == OFFERED
    other = bytes([192, 0, 2, 9])
    c.feed(from_server(bootp(r.xid, 5, options=lease_opts(100), server_id=other),
                       src_ip=other, dst_ip=OFFERED))
    assert c.dhcp.state_name() == "bound" and c.stats()["rebound"] == 1
    assert c.dhcp.lease()["server"] == "192.0.2.9"


def test_retransmissions_while_renewing_wait_half_the_time_left_but_at_least_the_minimum():
    cl = Client({"DHCP_RENEW_MIN_MS": 10000})
    cl.bind(lease=1000)                                   # T1 500 s, T2 875 s
    cl.iface.arp.add_static(SERVER, SERVER_MAC)
    cl.frames()
    cl.advance(500000 + 10)
    assert len(cl.sent()) == 1
    cl.advance(187500 - 100)
    assert cl.sent() == []
    cl.advance(200)
    assert len(cl.sent()) == 1                            # (875 - 500) / 2 s later


def test_a_lease_counts_from_the_first_request_of_its_exchange_rfc_2131_4_4_1():
    # "the sum of the time at which the original request was sent and the duration of the
    # lease": a renewal answered only after 20 s of retransmissions is 20 s shorter
    cl = Client({"DHCP_RENEW_MIN_MS": 1000})
    cl.bind(lease=100)                                    # T1 50 s, T2 87.5 s
    bound = cl.t
    cl.iface.arp.add_static(SERVER, SERVER_MAC)
    cl.frames()
    cl.advance(50000 + 10)
    assert len(cl.sent()) == 1                            # the original REQUEST, at T1
    cl.advance(20000)
    r = cl.sent()[-1]                                     # a retransmission
    cl.feed(from_server(bootp(r.xid, 5, options=lease_opts(100)), dst_ip=OFFERED))
    assert cl.stats()["renewed"] == 1
    assert cl.dhcp.lease()["remaining_s"] == (bound + 50000 + 100000 - cl.t) // 1000
    assert cl.dhcp.lease()["remaining_s"] < 81


def test_server_t1_t2_options_are_used(c):
    c.bind(lease=100, t1=10, t2=20)
    assert (c.dhcp.t1_s, c.dhcp.t2_s) == (10, 20)


def test_lease_expiry_removes_the_address_and_bound_sockets_get_an_error(c):
    c.bind(lease=100)
    s = c.stack.socket(2, 2)
    s.bind(("192.0.2.50", 5000))
    s.setblocking(False)
    c.advance(100000 + 20)
    assert c.stats()["expired"] == 1 and c.iface.ip == ZERO
    assert c.stack.routes.lookup(bytes([198, 51, 100, 1]), 0) < 0
    assert c.iface.mtu == 1500                            # the option's MTU went with it
    with pytest.raises(OSError) as e:
        s.recv(10)
    assert e.value.args[0] == 99                          # EADDRNOTAVAIL
    s.close()
    assert c.dhcp.state_name() == "selecting"             # and it starts over
    assert c.sent()[-1].type == 1


def test_after_expiry_a_socket_on_the_old_address_sends_nothing_from_it(c):
    # Linux, measured in a namespace: once an address is deleted, sendto from a socket bound
    # to it fails with ENETUNREACH and bind to it with EADDRNOTAVAIL. The stack must never
    # send from an address that is no longer its own (it may be the next client's lease).
    c.bind(lease=100)
    s = c.stack.socket(2, 2)
    s.bind(("192.0.2.50", 5000))
    c.advance(100000 + 20)
    d = c.sent()[-1]
    other = bytes([192, 0, 2, 51])
    c.feed(from_server(bootp(d.xid, 2, yiaddr=other)))
    r = c.sent()[-1]
    c.feed(from_server(bootp(r.xid, 5, yiaddr=other, options=lease_opts())))
    assert c.iface.ip == other and c.stats()["leases"] == 2
    c.frames()
    with pytest.raises(OSError) as e:
        s.sendto(b"x", ("192.0.2.7", 9))
    assert e.value.args[0] == 101                          # ENETUNREACH, as Linux
    assert [f for f in c.frames() if f[12:14] == b"\x08\x00" and f[26:30] == OFFERED] == []
    t = c.stack.socket(2, 2)
    with pytest.raises(OSError) as e:
        t.bind(("192.0.2.50", 0))
    assert e.value.args[0] == 99                           # EADDRNOTAVAIL, as Linux
    s.close()
    t.close()


def expire_and_lease_another(c):
    """The lease on OFFERED ends; the next one is 192.0.2.51 (same subnet, same router)."""
    c.advance(100000 + 20)
    d = c.sent()[-1]
    other = bytes([192, 0, 2, 51])
    c.feed(from_server(bootp(d.xid, 2, yiaddr=other)))
    r = c.sent()[-1]
    c.feed(from_server(bootp(r.xid, 5, yiaddr=other, options=lease_opts())))
    assert c.iface.ip == other
    c.frames()


def test_after_expiry_a_tcp_socket_bound_to_the_old_address_cannot_connect_from_it(c):
    # Linux, measured: connect() from an address deleted under the bound socket is
    # ENETUNREACH; no SYN may leave from an address that is no longer ours
    c.bind(lease=100)
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    s = c.stack.socket(2, 1)
    s.bind(("192.0.2.50", 0))
    s.setblocking(False)
    expire_and_lease_another(c)
    assert s.connect_ex(("192.0.2.1", 80)) == 101
    assert [f for f in c.frames() if f[12:14] == b"\x08\x00" and f[26:30] == OFFERED] == []
    s.close()


def test_after_expiry_a_raw_socket_bound_to_the_old_address_sends_nothing_from_it():
    cl = Client(features=("tcp", "raw"))
    cl.bind(lease=100)
    cl.iface.arp.add_static(SERVER, SERVER_MAC)
    s = cl.stack.socket(2, 3, 253)                        # SOCK_RAW, experimental protocol
    s.bind(("192.0.2.50", 0))
    expire_and_lease_another(cl)
    with pytest.raises(OSError) as e:
        s.sendto(b"x", ("192.0.2.1", 0))
    assert e.value.args[0] == 101
    assert [f for f in cl.frames() if f[12:14] == b"\x08\x00" and f[26:30] == OFFERED] == []
    s.close()


def test_expiry_and_nak_forget_the_remembered_address_release_keeps_it():
    # RFC 2131 3.2 / 4.4.6: INIT-REBOOT asks again for an address whose lease is still
    # valid; a NAKed or expired one is forgotten (a port's lease file follows have_remembered)
    cl = Client()
    cl.bind(lease=100)
    assert cl.dhcp.have_remembered
    cl.advance(100000 + 20)
    assert cl.stats()["expired"] == 1 and not cl.dhcp.have_remembered
    cl = Client()
    cl.bind(lease=100)
    cl.iface.arp.add_static(SERVER, SERVER_MAC)
    cl.advance(50100)
    r = cl.sent()[-1]
    cl.feed(from_server(bootp(r.xid, 6, yiaddr=ZERO)))
    assert cl.stats()["naks"] == 1 and not cl.dhcp.have_remembered
    cl = Client()
    cl.bind(lease=100)
    cl.dhcp.release()
    assert cl.dhcp.have_remembered and cl.dhcp.remembered == OFFERED


@pytest.mark.parametrize("dom,want", [(b"example.org\x00", "example.org"),
                                      (b"example.org\x00\x00", "example.org"),
                                      (b"ex\xffample.org", None), (b"bad name", None),
                                      (b"a..b", None), (b"\x00", None)])
def test_odd_domain_option_is_trimmed_or_ignored_and_the_name_servers_still_apply(dom, want):
    # RFC 2132 2: "the receiver ... MUST be prepared to delete trailing nulls"; a domain
    # that is no host name is not used as the search domain, the name servers still are
    cl = Client()
    r = cl.offer()
    o = opt(1, b"\xff\xff\xff\x00") + opt(6, bytes([192, 0, 2, 53])) + opt(15, dom) + \
        opt(51, u32(3600))
    cl.feed(from_server(bootp(r.xid, 5, options=o)))
    assert cl.dhcp.bound()
    assert cl.dhcp.lease()["domain"] == want
    assert cl.stack.dns.servers == [bytes([192, 0, 2, 53])]
    assert cl.stack.dns.search == (want or "")
    assert ("domain_ignored" in cl.stats()) == (want is None)


def test_nak_while_renewing_drops_the_address_and_restarts(c):
    c.bind(lease=100)
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.advance(50100)
    r = c.sent()[-1]
    c.feed(from_server(bootp(r.xid, 6, yiaddr=ZERO), dst_ip=BCAST))
    assert c.stats()["naks"] == 1 and c.iface.ip == ZERO
    assert c.sent()[-1].type == 1 and c.dhcp.state_name() == "selecting"


def test_nak_while_requesting_restarts_with_a_new_transaction(c):
    first = c.sent()[0].xid
    r = c.offer()
    c.feed(from_server(bootp(r.xid, 6, yiaddr=ZERO)))
    d = c.sent()[-1]
    assert d.type == 1 and d.xid != first and c.stats()["naks"] == 1


def test_release_on_close_gives_the_lease_back(c):
    c.bind()
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.frames()
    c.stack.close()
    r = c.sent()
    assert len(r) == 1 and r[0].type == 7 and r[0].dst == SERVER and r[0].ciaddr == OFFERED
    assert r[0].opts[54] == SERVER
    assert c.iface.ip == ZERO and c.dhcp.state_name() == "stopped"


def test_release_to_an_unresolved_server_is_broadcast(c):
    c.bind()
    c.frames()
    c.dhcp.release()
    r = c.sent()
    assert len(r) == 1 and r[0].type == 7 and r[0].dst == BCAST


# ---- INIT-REBOOT ----------------------------------------------------------------------------
def test_init_reboot_requests_the_remembered_address_without_server_id():
    cl = Client(remembered="192.0.2.50")
    r = cl.sent()[0]
    assert r.type == 3 and r.opts[50] == OFFERED and 54 not in r.opts and r.ciaddr == ZERO
    assert cl.dhcp.state_name() == "init-reboot"
    cl.feed(from_server(bootp(r.xid, 5, options=lease_opts())))
    assert cl.dhcp.state_name() == "bound" and cl.iface.ip == OFFERED


def test_init_reboot_nak_falls_back_to_discover():
    cl = Client(remembered="192.0.2.50")
    r = cl.sent()[0]
    cl.feed(from_server(bootp(r.xid, 6, yiaddr=ZERO)))
    assert cl.sent()[-1].type == 1 and cl.dhcp.state_name() == "selecting"


def test_init_reboot_without_answer_falls_back_to_discover():
    cl = Client(remembered="192.0.2.50")
    cl.advance(4 * 64000)
    assert cl.stats()["reboot_failed"] == 1
    assert cl.sent()[-1].type == 1


def test_init_reboot_unanswered_falls_back_to_discover_within_about_twelve_seconds():
    # a server that does not know the remembered address may stay silent (Kea unless
    # authoritative): RFC 2131 3.2 leaves the wait to the client; two REQUESTs (4 s + 8 s,
    # each +-1 s) and then INIT, not a minute of waiting at every start
    cl = Client(remembered="192.0.2.50")
    assert cl.sent()[0].type == 3
    t0 = cl.t
    while not [m for m in cl.sent() if m.type == 1]:
        cl.advance(100)
        assert cl.t - t0 < 15000, "still no DISCOVER"
    assert cl.t - t0 >= 10000 and cl.stats()["reboot_failed"] == 1
    assert cl.stats()["tx_request"] == 2


# ---- backoff --------------------------------------------------------------------------------
def test_discover_backs_off_exponentially_with_one_second_of_randomness(c):
    times = []
    c.frames()
    t0 = c.t
    for _ in range(7):
        while not c.drv.tx:
            c.advance(10)
        times.append(c.t - t0)
        t0 = c.t
        c.frames()
    for got, want in zip(times, (4000, 8000, 16000, 32000, 64000, 64000, 64000)):
        assert want - 1000 <= got <= want + 1010
    assert c.sent() == [] and c.stats()["retransmits"] == 7


def test_the_lease_is_kept_in_fixed_room_three_name_servers_and_a_64_byte_domain():
    # fixed memory: DNS_MAX servers (resolv.conf's MAXNS) and DOMAIN_MAX domain bytes are
    # kept; more servers are cut, a longer domain is not used
    from ustack.core import dhcp
    cl = Client()
    r = cl.offer()
    five = b"".join(bytes([192, 0, 2, 60 + i]) for i in range(5))
    long_dom = (b"a" * 40 + b".") * 2 + b"org"
    o = opt(1, b"\xff\xff\xff\x00") + opt(6, five) + opt(15, long_dom) + opt(51, u32(3600))
    cl.feed(from_server(bootp(r.xid, 5, options=o)))
    lease = cl.dhcp.lease()
    assert lease["dns"] == ["192.0.2.60", "192.0.2.61", "192.0.2.62"] and dhcp.DNS_MAX == 3
    assert lease["domain"] is None and cl.stats()["domain_ignored"] == 1
    assert len(long_dom) > dhcp.DOMAIN_MAX == 64


def test_backoff_is_random_per_client_on_both_sides_of_the_nominal_delay():
    # RFC 2131 4.1: each delay "randomized by ... a uniform random number chosen from the
    # range -1 to +1" second, so that clients started together do not retry together
    firsts = []
    for seed in range(1, 13):
        cl = Client()
        cl.stack.seed(seed * 7919)
        cl.dhcp.start(cl.t)  # a fresh transaction under this seed
        cl.frames()
        t0 = cl.t
        while not cl.drv.tx:
            cl.advance(10)
        firsts.append(cl.t - t0)
    assert all(3000 <= d <= 5010 for d in firsts), firsts
    assert len(set(firsts)) >= 6, firsts
    assert min(firsts) < 4000 < max(firsts), firsts


def test_requesting_gives_up_after_four_requests_and_discovers_again(c):
    c.offer()
    types = []
    for _ in range(5):
        while not c.drv.tx:
            c.advance(100)
        types += [m.type for m in c.sent()]
    assert types == [3, 3, 3, 1, 1]


def test_secs_counts_from_the_start_of_the_exchange(c):
    c.advance(4 * 1000 + 1100)
    assert c.sent()[-1].secs >= 3


# ---- malformed and hostile messages ---------------------------------------------------------
def good(xid):
    return bootp(xid, 2)


BAD = {
    "rx_bad_port": lambda x: from_server(good(x), sport=6767),
    "rx_too_short": lambda x: from_server(good(x)[0:239]),
    "rx_not_reply": lambda x: from_server(bootp(x, 2, op=1)),
    "rx_bad_htype": lambda x: from_server(bootp(x, 2, hlen=8)),
    "rx_bad_xid": lambda x: from_server(good(bytes([x[0] ^ 1]) + x[1:])),
    "rx_bad_chaddr": lambda x: from_server(bootp(x, 2, chaddr=bytes.fromhex("02000000ee01"))),
    "rx_bad_magic": lambda x: from_server(bootp(x, 2, magic=b"\x63\x82\x53\x64")),
    "rx_bad_options": lambda x: from_server(bootp(x, 2, options=b"\x03\x08\xc0\x00\x02",
                                                  end=False)),
    "rx_bad_option_len": lambda x: from_server(bootp(x, 2, options=opt(51, b"\x00\x10"))),
    "rx_bad_overload": lambda x: from_server(bootp(x, 2, options=opt(52, b"\x07"))),
    "rx_no_type": lambda x: from_server(bootp(x, None)),
    "rx_unexpected": lambda x: from_server(bootp(x, 5, options=opt(51, u32(60)))),
    "rx_bad_yiaddr": lambda x: from_server(bootp(x, 2, yiaddr=bytes([224, 0, 0, 5]))),
    "rx_no_server_id": lambda x: from_server(bootp(x, 2, server_id=None)),
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_bad_offer_is_counted_and_dropped(c, reason):
    d = c.sent()[0]
    c.feed(BAD[reason](d.xid))
    assert c.stats() == {"tx_discover": 1, reason: 1}
    assert c.dhcp.state_name() == "selecting" and c.sent() == []


def test_overload_inside_the_overloaded_field_is_refused(c):
    d = c.sent()[0]
    c.feed(from_server(bootp(d.xid, 2, options=opt(52, b"\x01"),
                             filef=opt(52, b"\x01") + b"\xff")))
    assert c.stats()["rx_bad_overload"] == 1 and c.dhcp.state_name() == "selecting"


def test_options_overloaded_into_the_file_field_are_read(c):
    d = c.sent()[0]
    c.feed(from_server(bootp(d.xid, None, server_id=None, options=opt(52, b"\x01"),
                             filef=opt(53, b"\x02") + opt(54, SERVER) + b"\xff")))
    assert c.dhcp.state_name() == "requesting" and c.sent()[-1].opts[54] == SERVER


def test_ack_from_another_server_while_requesting_is_dropped(c):
    r = c.offer()
    c.feed(from_server(bootp(r.xid, 5, options=lease_opts(), server_id=bytes([192, 0, 2, 9]))))
    assert c.stats()["rx_wrong_server"] == 1 and c.dhcp.state_name() == "requesting"


def test_nak_from_another_server_while_requesting_is_dropped(c):
    r = c.offer()
    c.feed(from_server(bootp(r.xid, 6, yiaddr=ZERO, server_id=bytes([192, 0, 2, 9]))))
    assert c.stats()["rx_wrong_server"] == 1 and c.dhcp.state_name() == "requesting"


def test_ack_without_lease_time_is_dropped(c):
    r = c.offer()
    c.feed(from_server(bootp(r.xid, 5)))
    assert c.stats()["rx_no_lease"] == 1 and c.iface.ip == ZERO


def test_ack_with_a_non_contiguous_mask_is_dropped(c):
    r = c.offer()
    c.feed(from_server(bootp(r.xid, 5, options=opt(1, b"\xff\x00\xff\x00") + opt(51, u32(60)))))
    assert c.stats()["rx_bad_mask"] == 1 and c.iface.ip == ZERO


def test_renewal_ack_for_another_address_is_dropped(c):
    c.bind(lease=100)
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.advance(50100)
    r = c.sent()[-1]
    c.feed(from_server(bootp(r.xid, 5, yiaddr=bytes([192, 0, 2, 77]), options=lease_opts(100)),
                       dst_ip=OFFERED))
    assert c.stats()["rx_bad_yiaddr"] == 1 and c.dhcp.state_name() == "renewing"


def test_a_reply_while_bound_is_dropped(c):
    r = c.bind()
    c.feed(from_server(bootp(r.xid, 5, options=lease_opts()), dst_ip=OFFERED))
    assert c.stats()["rx_bad_xid"] == 1 and c.stats()["acks"] == 1


def test_random_garbage_on_port_68_never_raises(c):
    d = c.sent()[0]
    base = bytearray(bootp(d.xid, 2, options=lease_opts()))
    seed = 7
    for k in range(300):
        m = bytearray(base)
        for _ in range(6):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            i = 240 + seed % (len(m) - 240)
            m[i] = (seed >> 8) & 0xFF
        c.feed(from_server(bytes(m[0:240 + (seed >> 3) % (len(m) - 239)])))
    assert c.stack.stats.exceptions == 0


def test_without_a_client_port_68_is_an_ordinary_udp_port():
    st = Stack()
    drv = FeedDriver()
    st.add_interface("eth0", drv, ip="192.0.2.2/24")
    s = st.socket(2, 2)
    s.bind(("", 68))
    drv.rx.append(F.udp_frame(68, b"x", sport=67))
    st.poll(1)
    assert s.recv(4) == b"x"
    s.close()


def test_dhcp_config_keys_are_checked():
    with pytest.raises(ValueError):
        Stack({"DHCP_RETRY_MS": 8000, "DHCP_RETRY_MAX_MS": 4000})
    with pytest.raises(ValueError):
        Stack({"DHCP_ARP_PROBES": -1})


def test_while_unconfigured_only_udp_is_taken_no_echo_or_tcp_is_answered():
    # RFC 1122 3.2.1.3: a host without an address may only use 0.0.0.0 "as a source address
    # ... as part of an initialization procedure": it must not answer for an address it is
    # still probing (RFC 5227 2.1.1) or any other one
    cl = Client({"DHCP_ARP_PROBES": 3})
    cl.bind()
    cl.frames()
    cl.feed(F.eth(CLIENT_MAC, SERVER_MAC, 0x0800,
                  F.ipv4(SERVER, OFFERED, 1, F.icmp_echo(1, 1, b"probe?"))))
    cl.feed(F.eth(CLIENT_MAC, SERVER_MAC, 0x0800,
                  F.ipv4(SERVER, bytes([192, 0, 2, 99]), 6,
                         F.tcp(SERVER, bytes([192, 0, 2, 99]), 4000, 80, 1, 0, 0x02))))
    assert [f for f in cl.frames() if f[12:14] == b"\x08\x00"] == []
    assert cl.stack.ipv4.stats.rx_unconfigured == 2
    assert cl.stack.pool.full()


def test_an_infinite_lease_is_never_renewed_and_never_expires(c):
    c.bind(lease=0xFFFFFFFF)
    c.frames()
    assert c.dhcp.state_name() == "bound" and c.dhcp.deadline == 0
    c.advance(20000)
    assert c.sent() == [] and c.dhcp.lease()["remaining_s"] is None
    assert c.stack.next_timer == 0 or c.stack.next_timer > c.t


def test_lease_expiry_ends_tcp_connections_from_the_address_with_an_error(c):
    c.bind(lease=100)
    c.iface.arp.add_static(SERVER, SERVER_MAC)
    c.frames()
    s = c.stack.socket(2, 1)
    s.setblocking(False)
    s.connect_ex(("192.0.2.1", 80))
    syn = [f for f in c.frames() if f[12:14] == b"\x08\x00" and f[23] == 6][0]
    sport, = struct.unpack("!H", syn[34:36])
    isn, = struct.unpack("!I", syn[38:42])
    c.feed(F.eth(CLIENT_MAC, SERVER_MAC, 0x0800,
                 F.ipv4(SERVER, OFFERED, 6, F.tcp(SERVER, OFFERED, 80, sport, 5000, isn + 1,
                                                  0x12, options=bytes([2, 4, 5, 0xB4])))))
    s.send(b"x")                                           # established
    c.advance(100000 + 20)
    assert c.stats()["expired"] == 1
    with pytest.raises(OSError) as e:
        s.send(b"y")
    assert e.value.args[0] == 99                           # EADDRNOTAVAIL
    s.close()
