"""DHCPv4 client (RFC 2131, options RFC 2132, address probe RFC 5227).

One client per stack, on one interface (`Stack.start_dhcp`). States (RFC 2131 figure 5):

    INIT -> SELECTING -(OFFER)-> REQUESTING -(ACK)-> PROBING -> BOUND -(T1)-> RENEWING
    -(T2)-> REBINDING -(expiry)-> INIT;  INIT_REBOOT (a remembered address) -(ACK)-> PROBING;
    NAK -> INIT;  conflict while PROBING -> DECLINE, 10 s, INIT;  release() -> STOPPED.

Messages are built in a packet buffer and parsed in place: the option scanner records where
each option it needs starts (ints), and the lease's values are copied into preallocated
buffers, so a running client allocates nothing. Every message that is not the answer we wait
for is dropped with its own counter (DHCP_COUNTERS), before it changes any state.

Retransmissions back off exponentially with +-1 s of randomness (RFC 2131 4.1): 4, 8, 16, 32,
then 64 s. The address is probed with ARP before use (RFC 2131 4.4.1, RFC 5227 2.1.1) and
announced once bound. At lease expiry the address goes away: every UDP socket bound to it
gets EADDRNOTAVAIL as its pending error (a blocked receive wakes with it), TCP connections
from it end with EADDRNOTAVAIL; after that, as on Linux (measured), sending from it is
ENETUNREACH and binding to it EADDRNOTAVAIL. A lease runs from its exchange's first REQUEST
(RFC 2131 4.4.1). INIT-REBOOT gives up after REBOOT_TRIES unanswered REQUESTs.
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.wire import dhcp as w
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire import arp as wa
from ustack.core.wire import ethernet as eth
from ustack.core.wire import fields
from ustack.core.route import SRC_DHCP

DHCP_COUNTERS = (
    "tx_discover", "tx_request", "tx_decline", "tx_release", "tx_no_buffer", "tx_probes",
    "retransmits", "offers", "acks", "naks", "leases", "renewed", "rebound", "expired",
    "conflicts", "reboot_failed",
    # drops, each its own reason
    "rx_bad_port", "rx_too_short", "rx_not_reply", "rx_bad_htype", "rx_bad_xid",
    "rx_bad_chaddr", "rx_bad_magic", "rx_bad_options", "rx_bad_option_len",
    "rx_bad_overload", "rx_no_type", "rx_unexpected", "rx_wrong_server", "rx_bad_yiaddr",
    "rx_no_server_id", "rx_no_lease", "rx_bad_mask",
    # an option of an accepted ACK left unused
    "domain_ignored",
)

STOPPED = const(0)
INIT = const(1)
SELECTING = const(2)
REQUESTING = const(3)
PROBING = const(4)
BOUND = const(5)
RENEWING = const(6)
REBINDING = const(7)
INIT_REBOOT = const(8)
DECLINED = const(9)

STATE_NAMES = ("stopped", "init", "selecting", "requesting", "probing", "bound", "renewing",
               "rebinding", "init-reboot", "declined")

RETRY_JITTER_MS = const(1000)   # RFC 2131 4.1: "randomized by the value of a uniform random
                                # number chosen from the range -1 to +1"
REQUEST_TRIES = const(4)        # REQUESTING: then back to INIT (RFC 2131 3.1.5)
REBOOT_TRIES = const(2)         # INIT-REBOOT: a server that does not know the address may stay
                                # silent (RFC 2131 3.2 step 4 leaves the wait to the client):
                                # INIT after 4 + 8 s, as dhclient's 10 s reboot timeout
DECLINE_WAIT_MS = const(10000)  # RFC 2131 3.1.5: wait at least ten seconds after DECLINE
PROBE_MIN_MS = const(1000)      # RFC 5227 1.1
PROBE_MAX_MS = const(2000)
ANNOUNCE_WAIT_MS = const(2000)
INFINITE = 0xFFFFFFFF           # RFC 2131 3.3: an infinite lease
LEASE_MAX_S = const(1000000)    # longer leases are renewed as if this long (small-int ms)
DNS_MAX = const(3)              # DNS servers kept (RFC 2132 3.8 lists any number)
DOMAIN_MAX = const(64)          # domain name bytes kept; a longer one is ignored
HOSTNAME_MAX = const(63)        # RFC 1035 label limit for the host name we send
CLIENT_ID_MAX = const(32)
ZERO_MAC = b"\x00\x00\x00\x00\x00\x00"


def mask_prefix(b, o):
    """The prefix length of the contiguous mask at b[o:o+4], or -1."""
    n = 0
    i = 0
    ended = False
    while i < 4:
        v = b[o + i]
        k = 7
        while k >= 0:
            if v & (1 << k):
                if ended:
                    return -1
                n += 1
            else:
                ended = True
            k -= 1
        i += 1
    return n


def name_ok(b, o, n):
    """b[o:o+n] is a dotted host name: labels of 1..63 letters, digits, '-' or '_' (RFC 1123
    2.1; '_' as resolvers accept it), one trailing dot allowed."""
    if n < 1:
        return False
    if b[o + n - 1] == 0x2E:
        n -= 1
    ln = 0
    i = 0
    while i < n:
        c = b[o + i]
        if c == 0x2E:
            if ln == 0:
                return False
            ln = 0
        elif (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 0x2D or c == 0x5F:
            ln += 1
            if ln > 63:
                return False
        else:
            return False
        i += 1
    return ln > 0


def check_hostname(hostname):
    """The host name option's value (RFC 2132 3.14) as bytes; ValueError naming the rule."""
    if isinstance(hostname, str):
        try:
            hostname = hostname.encode()
        except UnicodeError:
            hostname = b"\xff"
    if not 1 <= len(hostname) <= HOSTNAME_MAX or not name_ok(hostname, 0, len(hostname)):
        raise ValueError("dhcp: hostname must be 1..%d letters, digits, '-' or '.', got %r"
                         % (HOSTNAME_MAX, hostname))
    return bytes(hostname)


def host_addr_ok(b, o):
    """A unicast host address: not 0/8, loopback, class D/E or limited broadcast."""
    a = b[o]
    return a != 0 and a != 127 and a < 224


class DhcpClient:
    def __init__(self, stack, iface, hostname=None, client_id=None, remembered=None):
        if iface.l2 != 1 or iface.arp is None:
            raise ValueError("dhcp: interface %s has no Ethernet MAC (DHCP needs chaddr)"
                             % iface.name)
        self.stack = stack
        self.iface = iface
        cfg = stack.config
        self.retry_ms = cfg["DHCP_RETRY_MS"]
        self.retry_max_ms = cfg["DHCP_RETRY_MAX_MS"]
        self.renew_min_ms = cfg["DHCP_RENEW_MIN_MS"]
        self.probes = cfg["DHCP_ARP_PROBES"]
        self.stats = Counters(DHCP_COUNTERS)
        if hostname is not None:
            hostname = check_hostname(hostname)
        self.hostname = hostname
        if client_id is None:
            client_id = b"\x01" + iface.mac  # RFC 2132 9.14: type 1 (Ethernet) + MAC
        elif isinstance(client_id, str):
            client_id = client_id.encode()
        if not 2 <= len(client_id) <= CLIENT_ID_MAX:
            raise ValueError("dhcp: client_id must be 2..%d bytes" % CLIENT_ID_MAX)
        self.client_id = bytes(client_id)
        self.state = STOPPED
        self.xid = bytearray(4)
        self.deadline = 0
        self.tries = 0
        self.started = 0            # when this exchange began (the secs field)
        self.req_at = 0             # when its first REQUEST left: the lease counts from it
        self.offered = bytearray(4)  # OFFER's yiaddr, then the address being probed
        self.server = bytearray(4)   # server identifier (option 54)
        self.addr = bytearray(4)     # the leased address (while BOUND/RENEWING/REBINDING)
        self.have_addr = False
        self.remembered = bytearray(4)
        self.have_remembered = False
        if remembered is not None:
            fields.copy(self.remembered, 0, ip4.aton(remembered), 0, 4)
            self.have_remembered = True
        # the lease (copied from the ACK)
        self.prefix = 0
        self.router = bytearray(4)
        self.have_router = False
        self.dns = bytearray(4 * DNS_MAX)
        self.ndns = 0
        self.domain = bytearray(DOMAIN_MAX)
        self.ndomain = 0
        self.mtu = 0
        self.lease_s = 0
        self.t1_s = 0
        self.t2_s = 0
        self.bound_at = 0
        self.t1_at = 0
        self.t2_at = 0
        self.expire_at = 0
        self.orig_mtu = iface.mtu
        self.on_change = None  # port hook: on_change(client) when an address comes or goes
        #                        (or a remembered one is forgotten: have_remembered False)
        # option offsets found by _scan (-1: absent)
        self.o_type = -1
        self.o_server = -1
        self.o_lease = -1
        self.o_t1 = -1
        self.o_t2 = -1
        self.o_mask = -1
        self.o_router = -1
        self.n_router = 0
        self.o_dns = -1
        self.n_dns = 0
        self.o_domain = -1
        self.n_domain = 0
        self.o_mtu = -1
        self.o_overload = -1

    # ---- control --------------------------------------------------------------------------
    def start(self, now):
        self.started = now
        if self.have_remembered:
            # RFC 2131 3.2: INIT-REBOOT asks for the remembered address, no server id
            self.state = INIT_REBOOT
            self._new_xid()
            self.tries = 0
            self.req_at = now
            self._send_request(now)
        else:
            self._init(now)

    def release(self):
        """RFC 2131 3.1 (8): give the lease back (on shutdown) and stop."""
        if self.have_addr:
            self._send(w.RELEASE, self.stack.now)
            self._drop_address()
        self.state = STOPPED
        self.deadline = 0

    def bound(self):
        return self.state == BOUND or self.state == RENEWING or self.state == REBINDING

    def state_name(self):
        return STATE_NAMES[self.state]

    def lease(self):
        """The current lease as a dict (None when there is none): for `ready` lines, tools
        and a remembered lease (INIT-REBOOT)."""
        if not self.have_addr:
            return None
        now = self.stack.now
        return {
            "ip": ip4.ntoa(self.addr, 0), "prefix": self.prefix,
            "router": ip4.ntoa(self.router, 0) if self.have_router else None,
            "dns": [ip4.ntoa(self.dns, 4 * i) for i in range(self.ndns)],
            "domain": bytes(self.domain[0:self.ndomain]).decode() if self.ndomain else None,
            "server": ip4.ntoa(self.server, 0), "mtu": self.mtu or None,
            "lease_s": self.lease_s, "t1_s": self.t1_s, "t2_s": self.t2_s,
            "remaining_s": (self.expire_at - now) // 1000 if self.expire_at else None,
            "state": self.state_name(),
        }

    def dns_servers(self):
        return [ip4.ntoa(self.dns, 4 * i) for i in range(self.ndns)]

    # ---- timers ---------------------------------------------------------------------------
    def tick(self, now):
        """Retransmit or move on when a deadline passed. Returns the next deadline (0: none)."""
        d = self.deadline
        if d == 0 or now < d:
            return d
        s = self.state
        if s == SELECTING:
            self.stats.retransmits += 1
            self._send(w.DISCOVER, now)
            self._backoff(now)
        elif s == REQUESTING or s == INIT_REBOOT:
            if self.tries >= (REBOOT_TRIES if s == INIT_REBOOT else REQUEST_TRIES):
                if s == INIT_REBOOT:
                    self.stats.reboot_failed += 1
                    self.have_remembered = False
                self._init(now)
            else:
                self.stats.retransmits += 1
                self._send_request(now)
        elif s == PROBING:
            if self.tries < self.probes:
                self._probe(now)
            else:
                self._bind(now)
        elif s == BOUND or s == RENEWING or s == REBINDING:
            self._lease_timer(now)
        elif s == DECLINED or s == INIT:
            self._init(now)
        return self.deadline

    def _arm(self, t):
        if t < 1:
            t = 1
        self.deadline = t
        self.stack.timer_at(t)

    def _backoff(self, now):
        """RFC 2131 4.1: 4 s, doubling up to 64 s, each +-1 s at random."""
        d = self.retry_ms << self.tries if self.tries < 16 else self.retry_max_ms
        if d > self.retry_max_ms:
            d = self.retry_max_ms
        d += (self.stack.random16() % (2 * RETRY_JITTER_MS + 1)) - RETRY_JITTER_MS
        if d < 1:
            d = 1
        self.tries += 1
        self._arm(now + d)

    def _init(self, now):
        """INIT: a new transaction, DISCOVER, SELECTING."""
        self.state = SELECTING
        self.started = now
        self.tries = 0
        self._new_xid()
        self._send(w.DISCOVER, now)
        self._backoff(now)

    def _send_request(self, now):
        self._send(w.REQUEST, now)
        self._backoff(now)

    def _lease_timer(self, now):
        """RFC 2131 4.4.5: at T1 unicast REQUESTs to the server (RENEWING); at T2 broadcast
        ones (REBINDING); each retransmitted after half the time left until the next step,
        but no sooner than DHCP_RENEW_MIN_MS; at expiry the address is gone."""
        if self.expire_at and now >= self.expire_at:
            self.stats.expired += 1
            self.have_remembered = False  # RFC 2131 3.2: only an unexpired lease is reused
            self._drop_address()
            self._init(now)
            return
        if now >= self.t2_at:
            if self.state != REBINDING:
                self.state = REBINDING
                self._new_xid()
                self.started = now
                self.req_at = now
            end = self.expire_at
        elif now >= self.t1_at:
            if self.state != RENEWING:
                self.state = RENEWING
                self._new_xid()
                self.started = now
                self.req_at = now
            end = self.t2_at
        else:
            self._arm(self.t1_at)
            return
        self._send(w.REQUEST, now)
        wait = (end - now) // 2
        if wait < self.renew_min_ms:
            wait = end - now
        self._arm(now + wait)

    # ---- output ---------------------------------------------------------------------------
    def _new_xid(self):
        r = self.stack.random16()
        self.xid[0] = r >> 8
        self.xid[1] = r & 0xFF
        r = self.stack.random16()
        self.xid[2] = r >> 8
        self.xid[3] = r & 0xFF

    def _send(self, mtype, now):
        """Build and send one client message (RFC 2131 table 5)."""
        stack = self.stack
        iface = self.iface
        st = self.stats
        pb = stack.ipv4.alloc_tx()
        if pb is None:
            st.tx_no_buffer += 1
            return
        b = pb.buf
        o = pb.off
        m = o + 8
        i = m
        end = m + w.MIN_LEN
        while i < end:
            b[i] = 0
            i += 1
        b[m + w.OP] = w.BOOTREQUEST
        b[m + w.HTYPE] = w.HTYPE_ETHERNET
        b[m + w.HLEN] = 6
        fields.copy(b, m + w.XID, self.xid, 0, 4)
        s = self.state
        if mtype != w.DECLINE and mtype != w.RELEASE:
            secs = (now - self.started) // 1000
            fields.put16(b, m + w.SECS, secs if secs < 0xFFFF else 0xFFFF)
        renewing = (mtype == w.REQUEST and (s == RENEWING or s == REBINDING))
        if renewing or mtype == w.RELEASE:
            fields.copy(b, m + w.CIADDR, self.addr, 0, 4)  # RFC 2131 4.3.2, 4.4.6
        fields.copy(b, m + w.CHADDR, iface.mac, 0, 6)
        fields.copy(b, m + w.MAGIC, w.MAGIC_COOKIE, 0, 4)
        p = m + w.OPTIONS
        p = w.put_opt1(b, p, w.OPT_MSG_TYPE, mtype)
        p = w.put_opt(b, p, w.OPT_CLIENT_ID, self.client_id, len(self.client_id))
        if mtype == w.REQUEST and s == REQUESTING:
            p = w.put_opt(b, p, w.OPT_REQUESTED_IP, self.offered, 4)
            p = w.put_opt(b, p, w.OPT_SERVER_ID, self.server, 4)
        elif mtype == w.REQUEST and s == INIT_REBOOT:
            p = w.put_opt(b, p, w.OPT_REQUESTED_IP, self.remembered, 4)
        elif mtype == w.DECLINE:
            p = w.put_opt(b, p, w.OPT_REQUESTED_IP, self.offered, 4)
            p = w.put_opt(b, p, w.OPT_SERVER_ID, self.server, 4)
        elif mtype == w.RELEASE:
            p = w.put_opt(b, p, w.OPT_SERVER_ID, self.server, 4)
        if mtype == w.DISCOVER or mtype == w.REQUEST:
            if self.hostname is not None:
                p = w.put_opt(b, p, w.OPT_HOST_NAME, self.hostname, len(self.hostname))
            p = w.put_opt(b, p, w.OPT_PARAM_LIST, w.PARAMS, len(w.PARAMS))
        b[p] = w.OPT_END
        p += 1
        n = p - m
        if n < w.MIN_LEN:
            n = w.MIN_LEN
        # UDP header (the checksum is filled by ipv4.output)
        fields.put16(b, o, w.CLIENT_PORT)
        fields.put16(b, o + 2, w.SERVER_PORT)
        fields.put16(b, o + 4, n + 8)
        b[o + 6] = 0
        b[o + 7] = 0
        pb.n = n + 8
        if mtype == w.DISCOVER:
            st.tx_discover += 1
        elif mtype == w.REQUEST:
            st.tx_request += 1
        elif mtype == w.DECLINE:
            st.tx_decline += 1
        else:
            st.tx_release += 1
        if (renewing and s == RENEWING) or (mtype == w.RELEASE and
                                            iface.arp.lookup(self.server) is not None):
            # RFC 2131 4.4.5 / 4.4.6: unicast to the server, from our address, routed. A
            # RELEASE to a server we never resolved is broadcast: the address is gone before
            # an ARP reply could come back.
            stack.ipv4.output(pb, ip4.PROTO_UDP, self.addr, self.server, csum_off=6)
        else:
            # broadcast from 0.0.0.0 (our address while REBINDING), out of this interface
            stack.ipv4.output(pb, ip4.PROTO_UDP, self.addr if renewing or
                              mtype == w.RELEASE else ip4.ANY,
                              ip4.BROADCAST, csum_off=6, iface=iface)

    def _probe(self, now):
        """RFC 5227 2.1.1: an ARP request for the address, sender IP all zeros."""
        iface = self.iface
        pb = self.stack.alloc()
        if pb is None:
            self.stats.tx_no_buffer += 1
        else:
            b = pb.buf
            eth.write_header(b, 0, eth.BROADCAST, iface.mac, eth.ETH_P_ARP)
            wa.write(b, eth.HDR_LEN, wa.OP_REQUEST, iface.mac, ip4.ANY, ZERO_MAC, self.offered)
            pb.off = 0
            pb.n = eth.HDR_LEN + wa.LEN
            self.stats.tx_probes += 1
            iface.transmit(pb)
        self.tries += 1
        if self.tries < self.probes:
            d = PROBE_MIN_MS + self.stack.random16() % (PROBE_MAX_MS - PROBE_MIN_MS + 1)
        else:
            d = ANNOUNCE_WAIT_MS
        self._arm(now + d)

    # ---- input ----------------------------------------------------------------------------
    def arp_input(self, b, off):
        """ARP seen on our interface while PROBING (called by the ARP cache): RFC 5227 2.1.1 -
        a packet whose sender is the address, or another host's probe for it, is a
        conflict: DECLINE and start over after DECLINE_WAIT_MS."""
        if self.state != PROBING:
            return
        mac = self.iface.mac
        if fields.eq(b, off + wa.SHA, mac, 6):
            return  # our own probe looped back
        a = self.offered
        conflict = fields.eq(b, off + wa.SPA, a, 4)
        if not conflict and fields.get16(b, off + wa.OPER) == wa.OP_REQUEST:
            conflict = b[off + wa.SPA] == 0 and b[off + wa.SPA + 1] == 0 and \
                b[off + wa.SPA + 2] == 0 and b[off + wa.SPA + 3] == 0 and \
                fields.eq(b, off + wa.TPA, a, 4)
        if not conflict:
            return
        now = self.stack.now
        self.stats.conflicts += 1
        self._send(w.DECLINE, now)
        self.state = DECLINED
        self._arm(now + DECLINE_WAIT_MS)

    def input(self, iface, b, m, n, sport):
        """One UDP datagram to port 68 (payload b[m:m+n], from port sport). The caller frees
        the buffer."""
        st = self.stats
        if sport != w.SERVER_PORT:
            st.rx_bad_port += 1
            return
        if n < w.OPTIONS:
            st.rx_too_short += 1
            return
        if b[m + w.OP] != w.BOOTREPLY:
            st.rx_not_reply += 1
            return
        if b[m + w.HTYPE] != w.HTYPE_ETHERNET or b[m + w.HLEN] != 6:
            st.rx_bad_htype += 1
            return
        s = self.state
        if s == STOPPED or s == BOUND or s == DECLINED or s == PROBING or s == INIT or \
                not fields.eq(b, m + w.XID, self.xid, 4):
            st.rx_bad_xid += 1  # no transaction of ours waits for this one
            return
        if not fields.eq(b, m + w.CHADDR, iface.mac, 6):
            st.rx_bad_chaddr += 1
            return
        if not fields.eq(b, m + w.MAGIC, w.MAGIC_COOKIE, 4):
            st.rx_bad_magic += 1
            return
        self.o_type = self.o_server = self.o_lease = self.o_t1 = self.o_t2 = -1
        self.o_mask = self.o_router = self.o_dns = self.o_domain = self.o_mtu = -1
        self.o_overload = -1
        if not self._scan(b, m + w.OPTIONS, m + n, True):
            return
        if self.o_overload >= 0:
            # RFC 2132 9.3: options continue in the file (1), sname (2) or both (3) fields
            ov = b[self.o_overload]
            if ov < 1 or ov > 3:
                st.rx_bad_overload += 1
                return
            if ov & 1 and not self._scan(b, m + w.FILE, m + w.FILE + w.FILE_LEN, False):
                return
            if ov & 2 and not self._scan(b, m + w.SNAME, m + w.SNAME + w.SNAME_LEN, False):
                return
        if self.o_type < 0:
            st.rx_no_type += 1
            return
        t = b[self.o_type]
        now = self.stack.now
        if t == w.OFFER:
            if s != SELECTING:
                st.rx_unexpected += 1
                return
            if not self._check_reply(b, m, True):
                return
            st.offers += 1
            fields.copy(self.offered, 0, b, m + w.YIADDR, 4)
            fields.copy(self.server, 0, b, self.o_server, 4)
            self.state = REQUESTING
            self.tries = 0
            self.req_at = now
            self._send_request(now)
        elif t == w.ACK:
            if s == SELECTING:
                st.rx_unexpected += 1
                return
            if s == REQUESTING and self.o_server >= 0 and \
                    not fields.eq(b, self.o_server, self.server, 4):
                st.rx_wrong_server += 1
                return
            if not self._check_reply(b, m, s == INIT_REBOOT):
                return
            if self.o_lease < 0:
                st.rx_no_lease += 1  # RFC 2131 table 3: an ACK to a REQUEST MUST carry one
                return
            if (s == RENEWING or s == REBINDING) and not fields.eq(b, m + w.YIADDR,
                                                                   self.addr, 4):
                st.rx_bad_yiaddr += 1
                return
            if self.o_mask >= 0 and mask_prefix(b, self.o_mask) < 1:
                st.rx_bad_mask += 1
                return
            st.acks += 1
            if self.o_server >= 0:
                fields.copy(self.server, 0, b, self.o_server, 4)
            self._take_lease(b, m, now)
            if s == RENEWING or s == REBINDING:
                if s == RENEWING:
                    st.renewed += 1
                else:
                    st.rebound += 1
                self.state = BOUND
                self._apply()
                self._arm_lease()
                self._changed()
                return
            fields.copy(self.offered, 0, b, m + w.YIADDR, 4)
            self.state = PROBING
            self.tries = 0
            if self.probes:
                self._probe(now)
            else:
                self._bind(now)
        elif t == w.NAK:
            if s == SELECTING:
                st.rx_unexpected += 1
                return
            if s == REQUESTING and (self.o_server < 0 or
                                    not fields.eq(b, self.o_server, self.server, 4)):
                st.rx_wrong_server += 1  # RFC 2131 4.3.2: another server's NAK is not ours
                return
            st.naks += 1
            self.have_remembered = False  # RFC 2131 3.1 (5): the address is not ours to ask for
            if self.have_addr:
                self._drop_address()
            else:
                self._changed()  # INIT-REBOOT NAKed: a port's remembered lease goes too
            self._init(now)
        else:
            st.rx_unexpected += 1

    def _check_reply(self, b, m, need_server):
        """An OFFER's or ACK's address and server identifier are usable."""
        if not host_addr_ok(b, m + w.YIADDR):
            self.stats.rx_bad_yiaddr += 1
            return False
        if need_server and self.o_server < 0:
            self.stats.rx_no_server_id += 1  # RFC 2131 table 3: MUST in OFFER and ACK
            return False
        return True

    def _scan(self, b, i, end, top):
        """Record where the options we use start, between b[i] and b[end]. False (counted)
        when an option runs past the end, has a length its type forbids, or an overload
        option sits inside the overloaded fields (RFC 2132 9.3)."""
        st = self.stats
        while i < end:
            c = b[i]
            if c == w.OPT_PAD:
                i += 1
                continue
            if c == w.OPT_END:
                return True
            if i + 1 >= end:
                st.rx_bad_options += 1
                return False
            ln = b[i + 1]
            v = i + 2
            if v + ln > end:
                st.rx_bad_options += 1  # truncated: the option overflows its field
                return False
            bad = False
            if c == w.OPT_MSG_TYPE:
                bad = ln != 1
                self.o_type = v
            elif c == w.OPT_SERVER_ID:
                bad = ln != 4
                self.o_server = v
            elif c == w.OPT_LEASE_TIME:
                bad = ln != 4
                self.o_lease = v
            elif c == w.OPT_RENEWAL_T1:
                bad = ln != 4
                self.o_t1 = v
            elif c == w.OPT_REBINDING_T2:
                bad = ln != 4
                self.o_t2 = v
            elif c == w.OPT_SUBNET_MASK:
                bad = ln != 4
                self.o_mask = v
            elif c == w.OPT_ROUTER:
                bad = ln < 4 or ln & 3
                self.o_router = v
                self.n_router = ln
            elif c == w.OPT_DNS:
                bad = ln < 4 or ln & 3
                self.o_dns = v
                self.n_dns = ln
            elif c == w.OPT_DOMAIN_NAME:
                bad = ln < 1
                self.o_domain = v
                self.n_domain = ln
            elif c == w.OPT_MTU:
                bad = ln != 2
                self.o_mtu = v
            elif c == w.OPT_OVERLOAD:
                if not top:
                    st.rx_bad_overload += 1
                    return False
                bad = ln != 1
                self.o_overload = v
            if bad:
                st.rx_bad_option_len += 1
                return False
            i = v + ln
        return True  # no END: the field ended (a missing END is tolerated, as by Linux)

    # ---- the lease ------------------------------------------------------------------------
    def _take_lease(self, b, m, now):
        """Copy the ACK's values into the client's own buffers."""
        lease = fields.get32(b, self.o_lease)
        if self.o_mask >= 0:
            self.prefix = mask_prefix(b, self.o_mask)
        else:
            a = b[m + w.YIADDR]  # RFC 1122 3.3.1.1 absent a mask: the class's own
            self.prefix = 8 if a < 128 else (16 if a < 192 else 24)
        self.have_router = False
        if self.o_router >= 0 and host_addr_ok(b, self.o_router):
            fields.copy(self.router, 0, b, self.o_router, 4)  # the first, most preferred
            self.have_router = True
        self.ndns = 0
        if self.o_dns >= 0:
            k = self.n_dns >> 2
            if k > DNS_MAX:
                k = DNS_MAX
            fields.copy(self.dns, 0, b, self.o_dns, 4 * k)
            self.ndns = k
        self.ndomain = 0
        if self.o_domain >= 0:
            k = self.n_domain
            # RFC 2132 2: NVT ASCII "SHOULD NOT include a trailing NULL; however, the receiver
            # ... MUST be prepared to delete trailing nulls"
            while k and b[self.o_domain + k - 1] == 0:
                k -= 1
            if k <= DOMAIN_MAX and name_ok(b, self.o_domain, k):
                fields.copy(self.domain, 0, b, self.o_domain, k)
                self.ndomain = k
            else:
                self.stats.domain_ignored += 1  # no search domain rather than a wrong one
        self.mtu = 0
        if self.o_mtu >= 0:
            mtu = fields.get16(b, self.o_mtu)
            if mtu >= 68:  # RFC 2132 5.1: the minimum legal value is 68
                self.mtu = mtu
        infinite = lease == INFINITE
        if lease > LEASE_MAX_S:
            lease = LEASE_MAX_S
        if lease < 1:
            lease = 1
        # RFC 2131 4.4.5: T1 0.5 and T2 0.875 of the lease unless the server says otherwise
        t2 = lease * 7 // 8
        if self.o_t2 >= 0:
            v = fields.get32(b, self.o_t2)
            if v < lease:
                t2 = v
        t1 = lease // 2
        if self.o_t1 >= 0:
            v = fields.get32(b, self.o_t1)
            if v < lease:
                t1 = v
        if t1 > t2:
            t1 = t2
        self.lease_s = INFINITE if infinite else lease
        self.t1_s = t1
        self.t2_s = t2
        self.bound_at = now
        # RFC 2131 4.4.1: the lease runs from "the time at which the original request was
        # sent", not from this ACK (a retransmission may be what the server answered)
        base = self.req_at if 0 < self.req_at <= now else now
        self.t1_at = base + t1 * 1000
        self.t2_at = base + t2 * 1000
        self.expire_at = 0 if infinite else base + lease * 1000

    def _arm_lease(self):
        """BOUND: wake at T1 - or never, for an infinite lease (RFC 2131 3.3: nothing to
        renew, nothing expires)."""
        if self.expire_at == 0:
            self.deadline = 0
        else:
            self._arm(self.t1_at)

    def _bind(self, now):
        """The probe found nobody: take the address (RFC 2131 3.1 (5)) and announce it."""
        fields.copy(self.addr, 0, self.offered, 0, 4)
        self.have_addr = True
        fields.copy(self.remembered, 0, self.offered, 0, 4)
        self.have_remembered = True
        self.state = BOUND
        self.stats.leases += 1
        self._apply()
        if self.stack.config["ARP_GRATUITOUS"]:
            self.iface.arp.announce()  # RFC 5227 2.3
        self._arm_lease()
        self._changed()

    def _apply(self):
        iface = self.iface
        stack = self.stack
        old = iface.ip
        gw = self.router if self.have_router else None
        if gw is not None and not self._on_link(gw):
            gw = None  # a router off the leased subnet cannot be a next hop
        if not fields.eq(old, 0, self.addr, 4) or iface.prefix != self.prefix or \
                (gw is None) != (iface.gateway is None) or \
                (gw is not None and not fields.eq(iface.gateway, 0, gw, 4)):
            stack.set_address(iface, bytes(self.addr), self.prefix,
                              bytes(gw) if gw is not None else None, SRC_DHCP)
        if self.mtu:
            iface.mtu = self.mtu if self.mtu < self.orig_mtu else self.orig_mtu

    def _on_link(self, a):
        mask = ip4.prefix_mask(self.prefix)
        i = 0
        while i < 4:
            if (a[i] & mask[i]) != (self.addr[i] & mask[i]):
                return False
            i += 1
        return True

    def _drop_address(self):
        """The lease is gone: the address leaves the interface and every socket bound to it
        learns (EADDRNOTAVAIL): Stack.remove_address, as when Linux deletes an address."""
        if not self.have_addr:
            return
        self.have_addr = False
        self.stack.remove_address(self.iface)
        self.iface.mtu = self.orig_mtu  # RFC 2132 5.1: the leased MTU went with the lease
        self._changed()

    def _changed(self):
        if self.on_change is not None:
            self.on_change(self)
