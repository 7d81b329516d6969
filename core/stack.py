"""Stack: configuration, interfaces, protocols and the poll loop. Everything hangs off one
instance (no module state), so two stacks live in one process.

    st = Stack({"PBUF_COUNT": 32})
    st.add_interface("eth0", driver, ip="192.0.2.2", prefix=24, gateway="192.0.2.1")
    s = st.socket(AF_INET, SOCK_DGRAM)
    next_deadline = st.poll(now_ms)

Threading rule: one thread (or task) drives the stack at a time. The CPython port enforces it
with a lock around every call; MicroPython ports drive it from one loop.
"""
from ustack.core.compat import EPROTONOSUPPORT, ESOCKTNOSUPPORT, EMFILE, EADDRNOTAVAIL, oserror, \
    EAFNOSUPPORT, \
    xorshift32
from ustack.core.config import make_config, is_int
from ustack.core.buf import Pool
from ustack.core.iface import Interface, CAP_TSO4, CAP_TSO6, CAP_GRO, CAP_GSO_SOFT
from ustack.core.route import RouteTable, SRC_CONNECTED, SRC_STATIC
from ustack.core.net.ip import IP, AF_INET
from ustack.core.ipv4 import IPv4, L2_RESERVE
from ustack.core.icmp import ICMP
from ustack.core.udp import UDP, UdpSocket
from ustack.core.wire import ipv4 as ip4
from ustack.core import socket as so
from ustack.core.stats import Counters
from ustack.core import clock
from ustack.core import loop

# An exception escaping a protocol handler is a bug, never a normal drop: counted, logged,
# its buffers reclaimed (Stack._recover). A timer run that raised is retried this much later.
STACK_COUNTERS = ("exceptions", "reclaimed")
TIMER_RETRY_MS = 1000
LOG_BYTES = 32  # how much of a failed frame the log line shows


MIN_MTU = 68  # RFC 791: "Every internet module must be able to forward a datagram of 68 octets"


def check_addr(what, v):
    """An IPv4 address as 4 bytes, from '192.0.2.1' or 4 bytes; ValueError naming `what`."""
    if isinstance(v, (bytes, bytearray)) and len(v) == 4:
        return bytes(v)
    if isinstance(v, str):
        try:
            return ip4.aton(v)
        except ValueError:
            pass
    raise ValueError("%s must be an IPv4 address like '192.0.2.1', got %r" % (what, v))


def check_prefix(what, p):
    if not is_int(p) or not 0 <= p <= 32:
        raise ValueError("%s must be an int in 0..32, got %r" % (what, p))


def check_mac(what, m):
    if isinstance(m, str):
        try:
            from ustack.core.wire.ethernet import parse_mac
            m = parse_mac(m)
        except ValueError:
            pass
    if isinstance(m, (bytes, bytearray)) and (len(m) == 6 or len(m) == 0):
        return bytes(m)  # six bytes, or none for a link without MAC addresses (SLIP)
    raise ValueError("%s must be like '02:00:00:00:00:01' (or 6 bytes), got %r" % (what, m))


class Stack:
    def __init__(self, config=None, features=None):
        self.config = make_config(config)
        cfg = self.config
        self.pool = Pool(cfg["PBUF_COUNT"], cfg["PBUF_SIZE"], cfg["PBUF_RESERVE_TX"],
                         cfg["SOCK_QUEUE_PBUFS"])
        self.now = 0
        self.next_timer = 0
        self.kicked = False
        self.ifaces = []
        self.routes = RouteTable(cfg["ROUTE_ENTRIES"])
        self._rand = 0x2545F491
        self.capture = None       # capture(iface, buf, n, outgoing): taps every frame
        self.filter = None        # filter(in_iface, out_iface, buf, off, n) -> bool (forwarding)
        self.filter_out = None    # filter_out(iface, buf, off, n) -> bool (local output)
        self.filter_in = None     # filter_in(iface, buf, off, n) -> bool (local delivery)
        self.packet_filter = None  # core/filter.py's Filter (it sets the three hooks)
        self.offload = None       # core/offload.py, with the first driver that has offloads
        self.raw_sockets = []
        self.raw_stats = None     # core/raw.py's counters, made with the first raw socket
        self.multicast_groups = []
        self.clock = clock.now_ms  # before the protocols: TCP's ISN key may need it (no urandom)
        self.ip = IP(self, L2_RESERVE)  # the family-neutral network layer (core/net/ip.py)
        self.ipv4 = IPv4(self)
        self.ip.v4 = self.ipv4
        self.icmp = ICMP(self)
        self.routes6 = None       # IPv6's routing table (16-byte addresses)
        self.ipv6 = None          # core/ipv6.py and core/icmp6.py when config IPV6 is on
        self.icmp6 = None
        if cfg["IPV6"]:
            from ustack.core.ipv6 import IPv6
            from ustack.core.icmp6 import ICMPv6
            self.routes6 = RouteTable(cfg["ROUTE_ENTRIES"], 16)
            self.ipv6 = IPv6(self)
            self.ip.v6 = self.ipv6
            self.icmp6 = ICMPv6(self)
        self.udp = UDP(self)
        self.rip = None           # core/rip.py's RIPv2 speaker when config RIP is on
        self.ripng = None         # core/ripng.py's RIPng speaker when config RIPNG is on
        self.tcp = None
        self.dhcp = None          # core/dhcp.py's client, made by start_dhcp()
        self.sockets = []
        features = features if features is not None else ("tcp",)
        if "tcp" in features:
            try:
                from ustack.core.tcp.proto import TCP
                self.tcp = TCP(self)
            except ImportError:
                self.tcp = None
        self.waiter = None        # port hook: waiter(ready, timeout_s) -> bool
        self.notifier = None      # port hook: called when socket readiness changed
        self.fileno_hook = None
        self.idle = clock.sleep_ms
        self.owner_check = None   # port hook: True when the caller may drive the stack
        # port hook: called by poll() once the burst it read is processed, before that
        # burst's ACKs go out (TCP.flush_acks) and before the timers: services that answer
        # there send their replies with those ACKs on them (RFC 1122 4.2.3.2), not after a
        # pure ACK of their own. Also once the poll's first frame is handled, before the
        # next read: a lone request is answered first (then at the end only if more came)
        self.burst_hook = None
        self.timers_ran = False   # the last poll() ran the timers (ports: hooks again after)
        self.log = print          # port hook: log(line), one line per exception caught in poll
        self.stats = Counters(STACK_COUNTERS)
        self._dns = None           # the DNS stub resolver, made at first use (self.dns)
        self._dns_from_dhcp = False
        # "lo" (core/loop.py): not in self.ifaces, which lists links (the ports wait on
        # their drivers, and ifaces[0] is "the" link); None when config LOOPBACK is off
        self.loop = loop.make(self, L2_RESERVE)
        if cfg["RIP"]:
            try:
                from ustack.core.rip import Rip, RIP2_GROUP
            except ImportError:
                raise ValueError("config: RIP needs the rip feature (core/rip.py)")
            self.rip = Rip(self)
            self.multicast_groups.append(RIP2_GROUP)  # RFC 2453 4.5: 224.0.0.9
            self.timer_at(1)  # the first poll asks the neighbours for their tables
        if cfg["RIPNG"]:
            if self.ipv6 is None:
                raise ValueError("config: RIPNG needs IPV6")
            try:
                from ustack.core.ripng import RipNg
            except ImportError:
                raise ValueError("config: RIPNG needs the ripng feature (core/ripng.py)")
            self.ripng = RipNg(self)   # joins ff02::9 on each IPv6 link (RFC 2080 2.5.1)
            self.timer_at(1)
        if cfg["FILTER"]:
            try:
                from ustack.core import filter as pf
            except ImportError:
                raise ValueError("config: FILTER needs the filter feature (core/filter.py)")
            pf.install(self, cfg["FILTER"])

    @property
    def dns(self):
        """The DNS stub resolver (core/dns.py): stack.dns.set_servers([...]), .resolve(name).
        Imported at first use, so a board whose build leaves core/dns.py out pays nothing."""
        if self._dns is None:
            from ustack.core.dns import Resolver
            self._dns = Resolver(self)
        return self._dns

    # ---- buffers --------------------------------------------------------------------------
    def alloc(self):
        return self.pool.alloc()

    def free(self, pb):
        if pb.index >= 0:
            self.pool.free(pb)
        else:
            pb.in_use = False  # reassembly slot or scratch buffer

    # ---- configuration --------------------------------------------------------------------
    def add_interface(self, name, driver, ip=None, prefix=24, gateway=None, mac=None, mtu=None,
                      vlan=None):
        """The seed's interface_config_t: name, MAC, address/prefix, gateway. vlan: the
        802.1Q VLAN ID this interface sends and accepts tagged (None: config ETH_VLAN). Every
        argument is checked first (ValueError naming it); nothing is added when one is wrong."""
        if not isinstance(name, str) or not name:
            raise ValueError("add_interface: name must be a non-empty string, got %r" % (name,))
        for i in self.ifaces + ([self.loop] if self.loop is not None else []):
            if i.name == name:
                raise ValueError("add_interface: an interface named %r exists" % (name,))
        if driver is None or not callable(getattr(driver, "recv_into", None)) or \
                not callable(getattr(driver, "send", None)):
            raise ValueError("add_interface: driver must have recv_into() and send(), got %r"
                             % (driver,))
        if isinstance(ip, str) and "/" in ip:
            try:
                ip, prefix = ip4.parse_cidr(ip)
            except ValueError:
                raise ValueError("add_interface: ip must be like '192.0.2.2/24', got %r" % (ip,))
        if ip is not None:
            ip = check_addr("add_interface: ip", ip)
        check_prefix("add_interface: prefix", prefix)
        if gateway is not None:
            gateway = check_addr("add_interface: gateway", gateway)
        if mac is not None:
            mac = check_mac("add_interface: mac", mac)
        mtu = self._check_mtu(driver, mtu)
        if vlan is not None and (not isinstance(vlan, int) or isinstance(vlan, bool)
                                 or not 0 <= vlan <= 4094):
            raise ValueError("add_interface: vlan must be 0..4094, got %r" % (vlan,))
        iface = Interface(self, name, driver, None, prefix, None, mac, mtu, vlan)
        if iface.caps & (CAP_TSO4 | CAP_TSO6 | CAP_GRO | CAP_GSO_SOFT) and self.pool.large == 0:
            from ustack.core import offload   # never on an MCU (no driver has caps there)
            self.offload = offload
            self.pool.add_large(self.config["OFFLOAD_BUFS"])  # 64 KB segments in and out
        if iface.caps & (CAP_TSO4 | CAP_TSO6 | CAP_GRO):
            # (software GSO keeps the board's buffers: its frames leave one at a time)
            tcp = self.tcp
            if tcp is not None:  # new connections' buffers: more than one TSO segment
                b = self.config["OFFLOAD_TCP_BUF"]
                if tcp.snd_buf < b:
                    tcp.snd_buf = b
                if tcp.rcv_buf < b:
                    tcp.rcv_buf = b
        self.ifaces.append(iface)
        if ip is not None:
            self.set_address(iface, ip, prefix, gateway)
        iface.up = True
        if self.ipv6 is not None:
            self.ipv6.attach(iface)   # its link-local address, under DAD
        if iface.arp is not None and self.config["ARP_GRATUITOUS"] and iface.ip[0]:
            iface.arp.announce()
        return iface

    def _check_mtu(self, driver, mtu):
        """RFC 791: every link carries a 68-byte datagram unfragmented (below that,
        fragmentation has no room for 8 bytes of payload and never ends); above what a
        packet buffer holds behind the link header, frames cannot be built. A driver's own
        MTU larger than that is clamped to it (the stack never sends more)."""
        top = self.config["PBUF_SIZE"] - L2_RESERVE
        if mtu is None:
            m = getattr(driver, "mtu", 1500)
            if not is_int(m) or m < MIN_MTU:
                raise ValueError("add_interface: the driver's mtu must be an int >= %d, got %r"
                                 % (MIN_MTU, m))
            return m if m <= top else top
        if not is_int(mtu) or not MIN_MTU <= mtu <= top:
            raise ValueError("add_interface: mtu must be an int in %d..%d (RFC 791 minimum; "
                             "PBUF_SIZE - %d), got %r" % (MIN_MTU, top, L2_RESERVE, mtu))
        return mtu

    def set_address(self, iface, ip, prefix, gateway=None, source=SRC_STATIC):
        ip = check_addr("set_address: ip", ip)
        check_prefix("set_address: prefix", prefix)
        if gateway is not None:
            gateway = check_addr("set_address: gateway", gateway)
        self.routes.remove_iface(iface)
        iface.set_address(ip, prefix, gateway)
        if iface.ip[0]:
            self.routes.add(iface.net, prefix, None, iface, 0, SRC_CONNECTED)
        if gateway:
            self.routes.add(ip4.ANY, 0, gateway, iface, 0, source)

    def remove_address(self, iface):
        """The address leaves the interface (its routes with it) and every socket bound to it
        learns (EADDRNOTAVAIL), as when Linux deletes an address under a bound socket."""
        a = bytes(iface.ip)
        self.set_address(iface, ip4.ANY, 0)
        for s in self.udp.sockets:
            if s.local_ip == a:
                s.so_error = EADDRNOTAVAIL
                s._event()
        if self.tcp is not None:
            for t in list(self.tcp.conns):
                if t.local_ip == a:
                    self.tcp.drop(t, EADDRNOTAVAIL)

    def add_route(self, net, prefix, gateway=None, iface=None, metric=0):
        net = check_addr("add_route: net", net)
        check_prefix("add_route: prefix", prefix)
        if gateway is not None:
            gateway = check_addr("add_route: gateway", gateway)
        if not is_int(metric) or metric < 0:
            raise ValueError("add_route: metric must be an int >= 0, got %r" % (metric,))
        if iface is None:
            if gateway is None:
                raise ValueError("a route needs a gateway or an interface")
            r = self.routes.lookup(gateway, 0)
            if r < 0:
                raise oserror(101)
            iface = self.routes.iface[r]
        elif isinstance(iface, str):
            name = iface
            iface = None
            for i in self.ifaces:
                if i.name == name:
                    iface = i
            if iface is None:
                raise ValueError("add_route: no interface named %r" % (name,))
        return self.routes.add(net, prefix, gateway, iface, metric)

    def _dhcp_changed(self, client):
        """A lease came (or went): its name servers and domain (RFC 2132 3.8, 3.17) become
        the resolver's, unless the application chose servers itself. A port wanting to know
        too wraps this hook rather than replacing it."""
        lease = client.lease()
        servers = client.dns_servers()
        if lease is None or not servers:
            return  # the address went: the servers stay until a new lease names others
        try:
            dns = self.dns
        except ImportError:
            return  # a board built without core/dns.py
        if dns.servers and not self._dns_from_dhcp:
            return
        dom = lease.get("domain")
        try:
            dns.set_servers(servers, search=dom or None)
        except ValueError:
            return  # a server's odd domain option: keep what we had
        self._dns_from_dhcp = True

    def start_dhcp(self, iface, hostname=None, client_id=None, remembered=None):
        """Lease iface's address from DHCP (core/dhcp.py): the client starts at once (poll
        drives it); `remembered`, a previous lease's address, starts with INIT-REBOOT."""
        if isinstance(iface, str):
            iface = self.iface(iface)
        if self.dhcp is not None:
            raise ValueError("start_dhcp: a DHCP client runs already (on %s)"
                             % self.dhcp.iface.name)
        from ustack.core.dhcp import DhcpClient
        c = DhcpClient(self, iface, hostname, client_id, remembered)
        c.on_change = self._dhcp_changed
        self.dhcp = c
        if self.now == 0:
            self.now = self.clock()
        c.start(self.now)
        return c

    def add_address6(self, iface, addr):
        """An IPv6 address 'ADDR/PREFIX' (or 16 bytes and a /128) on iface, tentative until
        DAD ends (RFC 4862 5.4); its connected route with it. Needs config IPV6."""
        if self.ipv6 is None:
            raise ValueError("add_address6: IPv6 is off (config IPV6)")
        from ustack.core import addr6
        if isinstance(addr, str):
            try:
                a, plen = addr6.parse_cidr(addr)
            except (ValueError, OSError):
                raise ValueError("add_address6: must be like '2001:db8::2/64', got %r" % (addr,))
        else:
            a, plen = bytes(addr), 128
        if addr6.is_multicast(a, 0) or addr6.is_unspecified(a, 0):
            raise ValueError("add_address6: %r is no unicast address" % (addr,))
        return self.ipv6.add_address(iface, a, plen)

    def iface(self, name):
        for i in self.ifaces:
            if i.name == name:
                return i
        if self.loop is not None and name == self.loop.name:
            return self.loop
        raise KeyError(name)

    # ---- address helpers ------------------------------------------------------------------
    def local_iface(self, b, o=0):
        """The interface owning the address at b[o], or None. All of 127.0.0.0/8 belongs
        to "lo" (RFC 1122 3.2.1.3 (g)), as on Linux."""
        for i in self.ifaces:
            if i.is_local(b, o) and i.ip[0]:
                return i
        if b[o] == 127 and self.loop is not None:
            return self.loop
        return None

    def routes_for(self, family):
        """The routing table of an address family (one per family): IPv4's is self.routes;
        None for a family this stack does not carry (IPv6's table comes with IPv6)."""
        if family == AF_INET:
            return self.routes
        return self.routes6

    def route_out(self, b, o=0):
        """The interface a datagram to the address at b[o] leaves by, its next hop written
        to routes.nexthop; None without a route. 127/8 and our own addresses go through
        "lo" and never reach a link (nor ARP for our own address); with LOOPBACK off they
        have no route. Allocates nothing."""
        if b[o] == 127 or self.local_iface(b, o) is not None:
            lo = self.loop
            if lo is not None:
                nh = self.routes.nexthop
                nh[0] = b[o]
                nh[1] = b[o + 1]
                nh[2] = b[o + 2]
                nh[3] = b[o + 3]
            return lo
        r = self.routes.lookup(b, o)
        if r < 0:
            return None
        return self.routes.iface[r]

    def source_for_iface(self, iface, dst):
        """The source address for dst leaving by iface: its address, except over "lo" to
        one of our own addresses, where the destination is the source (Linux's choice, so
        a connection to ourselves names the same address at both ends). IPv6: RFC 6724 5's
        choice (:: when there is none)."""
        if len(dst) != 4:
            v6 = self.ipv6
            k = v6.source_for(dst, 0, iface) if v6 is not None else -1
            return v6.addrs[k] if k >= 0 else so.ANY6
        if iface is self.loop and dst[0] != 127:
            return dst  # not copied: output writes it into the header at once
        return iface.ip

    def is_broadcast(self, a):
        if len(a) != 4:
            return False  # IPv6 has no broadcast (RFC 4291 2)
        if a[0] == 255 and a[1] == 255 and a[2] == 255 and a[3] == 255:
            return True
        for i in self.ifaces:
            if i._is_bcast_at(a, 0):
                return True
        return False

    def source_for(self, dst):
        i = self.route_out(dst, 0) if len(dst) == 4 else self.ip.route_out(dst, 0, len(dst))
        if i is None:
            return None
        src = bytes(self.source_for_iface(i, dst))
        return None if src == so.ANY6 else src

    def multicast_member(self, b, o):
        for g in self.multicast_groups:
            if g[0] == b[o] and g[1] == b[o + 1] and g[2] == b[o + 2] and g[3] == b[o + 3]:
                return True
        return False

    def raw_input(self, pb, m):
        """Hand a copy of the datagram m describes (core/net/ip.py Meta) to raw sockets of
        its protocol; True if any took it."""
        if not self.raw_sockets:
            return False
        took = False
        proto = m.proto
        for s in self.raw_sockets:
            if s.proto == proto or s.proto == 0 or s.proto == 255:  # 0/255: every protocol
                took = s._deliver(pb, m) or took
        return took

    def random16(self):
        # ephemeral port start and ICMP ids; not for security (ISNs use RFC 6528)
        x = xorshift32(self._rand)
        self._rand = x
        return x & 0xFFFF

    def seed(self, entropy):
        self._rand = (entropy & 0xFFFFFFFF) or 0x2545F491

    # ---- sockets --------------------------------------------------------------------------
    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM, proto=0):
        if len(self.sockets) >= self.config["SOCKETS"]:
            raise oserror(EMFILE)
        if family == so.AF_INET6 and (self.ipv6 is None or (type == so.SOCK_RAW and
                                                            proto != so.IPPROTO_ICMPV6)):
            raise oserror(EAFNOSUPPORT)  # config IPV6 off; raw IPv6: ICMPv6 only
        if type == so.SOCK_DGRAM:
            s = UdpSocket(self, family, type, proto)
        elif type == so.SOCK_STREAM:
            if self.tcp is None:
                raise oserror(EPROTONOSUPPORT)
            s = self.tcp.socket(family, type, proto)
        elif type == so.SOCK_RAW:
            from ustack.core.raw import RawSocket
            s = RawSocket(self, family, type, proto)
        else:
            raise oserror(ESOCKTNOSUPPORT)
        self.sockets.append(s)
        return s

    def _release_socket(self, s):
        so.remove_newest(self.sockets, s)  # one walk from the newest end (issue 13)
        self.udp.unbind(s)
        if s in self.raw_sockets:
            self.raw_sockets.remove(s)

    def wait(self, ready, timeout):
        if ready():
            return True
        if self.waiter is not None:
            return self.waiter(ready, timeout)
        return self.run_until(ready, timeout)

    def notify(self):
        if self.notifier is not None:
            self.notifier()

    def fileno(self, s):
        if self.fileno_hook is None:
            raise oserror(95)  # EOPNOTSUPP: no port gives this socket a file descriptor
        return self.fileno_hook(s)

    # ---- time -----------------------------------------------------------------------------
    def timer_at(self, t):
        if self.next_timer == 0 or t < self.next_timer:
            self.next_timer = t
            self.kicked = True

    def poll(self, now):
        """Drain received frames, run due timers. Returns the next deadline in ms (0 = none
        pending; the caller may wait for I/O as long as it likes)."""
        if self.owner_check is not None and not self.owner_check():
            raise RuntimeError("ustack: poll() without the runner's lock: one thread drives the stack")
        self.now = now
        batch = self.config["RX_BATCH"]
        if self.tcp is not None:
            self.tcp.cookies_left = self.tcp.cookie_budget  # SYN cookies this poll may send
            self.tcp.bursting = True  # reads' window updates wait for flush_acks
        pool = self.pool
        hook = self.burst_hook
        ran = False   # the hook ran after the poll's first frame
        fresh = 0     # frames handled since the hook last ran
        for iface in self.ifaces:
            drv = iface.driver
            drv.service()
            k = 0
            while k < batch:
                ep = pool.new_epoch()  # what this frame's handlers take (see _recover)
                pb = pool.alloc_rx()
                if pb is None:
                    # the frame stays in the driver (or its ring) until buffers come back
                    iface.stats.rx_no_buffer += 1
                    break
                if iface.caps & CAP_GRO:
                    pb = self.offload.recv_large(iface, pb)  # a super-frame: a large buffer
                    n = pb.n
                else:
                    n = drv.recv_into(pb.buf)
                if not n:
                    pool.free(pb)
                    break
                if self.capture is not None:
                    self.capture(iface, pb.buf, n, False)
                try:
                    iface.input(pb, n)
                except MemoryError:
                    raise  # the heap (locked, or gone): the port's loop decides
                except Exception as e:
                    self._recover(e, "input on " + iface.name, pb, n, ep)
                k += 1
                fresh += 1
                if not ran and hook is not None:
                    # the poll's first frame answered before the driver is asked for the
                    # next (a system call on a TAP): a lone request's reply goes out first
                    # (issue 13); the rest of a burst is answered at its end, below
                    ran = True
                    fresh = 0
                    hook()
            if k == batch:
                iface.stats.rx_budget_hit += 1
        lo = self.loop
        if lo is not None and lo.loop.head is not None:
            self._loop_input(lo, batch)
            fresh += 1
        if hook is not None and (fresh or not ran):
            hook()
        tcp = self.tcp
        if tcp is not None:
            tcp.bursting = False
            if tcp.ack_q:
                tcp.flush_acks()  # the burst is read: one ACK each (RFC 5681 4.2)
        self.timers_ran = False
        if self.next_timer and now >= self.next_timer:
            self.timers_ran = True
            self._run_timers(now)
        if lo is not None and lo.loop.head is not None:
            self.timer_at(now if now > 0 else 1)  # more wait on lo: poll again at once
        return self.next_timer

    def deliver_local(self):
        """Deliver what waits on "lo" now, from a socket call's thread (holding the port's
        lock, after the call): what a program sent to itself is in the receiver's queue when
        the call returns, as on Linux, whose loopback delivers before send() returns (a
        select() right after it sees the peer readable). The replies this causes (ACKs) are
        delivered too, at most 4 x LOOPBACK_QUEUE packets. True when anything was."""
        lo = self.loop
        if lo is None or lo.loop.head is None:
            return False
        drv = lo.loop
        budget = 4 * drv.limit
        while drv.head is not None and budget > 0:
            k = drv.count
            self._loop_input(lo, k)
            tcp = self.tcp
            if tcp is not None and tcp.ack_q:
                tcp.flush_acks()  # the ACKs are delivered by the next round
            budget -= k
        return True

    def _loop_input(self, lo, batch):
        """Deliver what waits on "lo", as received: at most RX_BATCH, and only what was
        queued before this poll (replies they cause wait for the next one)."""
        drv = lo.loop
        k = drv.count
        if k > batch:
            k = batch
        pool = self.pool
        while k > 0:
            ep = pool.new_epoch()
            pb = drv.take()
            n = pb.n
            pb.epoch = ep  # now this frame's buffer, as if just received (see _recover)
            if self.capture is not None:
                self.capture(lo, pb.buf, n, False)
            try:
                lo.input(pb, n)
            except MemoryError:
                raise
            except Exception as e:
                self._recover(e, "input on " + lo.name, pb, n, ep)
            k -= 1

    def _run_timers(self, now):
        # Cleared first: a tick may arm another protocol's timer (timer_at), e.g. a reassembly
        # timeout's ICMP error queued behind ARP; overwriting next_timer afterwards lost it.
        self.next_timer = 0
        for iface in self.ifaces:
            if iface.arp is not None:
                self._tick(iface.arp, now, iface)
        self._tick(self.ipv4.reass, now, None)
        if self.dhcp is not None:
            self._tick(self.dhcp, now, None)
        if self.tcp is not None:
            self._tick(self.tcp, now, None)
        if self.ipv6 is not None:
            self._tick(self.ipv6, now, None)
        if self.rip is not None:
            self._tick(self.rip, now, None)
        if self.ripng is not None:
            self._tick(self.ripng, now, None)

    def _tick(self, proto, now, iface):
        """One protocol's timers, guarded like a frame; its next deadline merged in."""
        ep = self.pool.new_epoch()
        try:
            d = proto.tick(now)
        except MemoryError:
            raise
        except Exception as e:
            what = "timers of " + type(proto).__name__
            if iface is not None:
                what += " on " + iface.name
            self._recover(e, what, None, 0, ep)
            d = now + TIMER_RETRY_MS  # its deadlines are unknown: look again later
        if d and (self.next_timer == 0 or d < self.next_timer):
            self.next_timer = d

    # ---- surviving a handler's exception --------------------------------------------------
    def _recover(self, e, what, pb, n, epoch):
        """A handler raised (a bug): count it, log one line with the frame's first bytes,
        give back every buffer taken since `epoch` that no queue holds (the frame's own
        included) and any finished reassembly slot nobody queued, and carry on."""
        self.stats.exceptions += 1
        line = "ustack: exception in %s: %s: %s" % (what, type(e).__name__, e)
        if pb is not None:
            m = n if n < LOG_BYTES else LOG_BYTES
            line += "; frame[%d] %s" % (n, "".join(["%02x" % x for x in pb.buf[0:m]]))
        held = self._held()
        k = self.pool.reclaim(epoch, held)
        for s in self.ipv4.reass.slots:
            if s.in_use and s not in held:
                s.in_use = False
                k += 1
        if self.ipv6 is not None:
            for s in self.ipv6.reass.slots:
                if s.in_use and s not in held:
                    s.in_use = False
                    k += 1
        for big in (self.ipv4.big, self.ipv6.big if self.ipv6 is not None else None):
            # the scratch datagrams for fragmenting; never queued
            if big is not None and big.in_use:
                big.in_use = False
                k += 1
        self.stats.reclaimed += k
        if self.log is not None:
            self.log(line.replace("\n", " "))  # one line, whatever the message holds

    def poll_failed(self, e):
        """For a port's loop when poll() itself raised (a driver, a hook): the same count,
        line and reclaim, for the frame or timer run that was under way (the pool's current
        epoch). Call it from the driving thread, before anything else uses the stack."""
        self._recover(e, "poll", None, 0, self.pool.epoch)

    def _held(self):
        """Every buffer an owner keeps between polls: the receive queues of sockets (UDP,
        raw: chains through pb.next) and the packets ARP and the IPv6 neighbour caches hold
        for resolution. An owner that
        keeps buffers must be listed here, or a handler's exception would reclaim them."""
        held = []
        limit = self.pool.count + len(self.ipv4.reass.slots)  # a broken chain cannot loop
        for group in (self.sockets, self.udp.sockets, self.raw_sockets):
            for s in group:
                pb = getattr(s, "qhead", None)
                k = 0
                while pb is not None and k < limit:
                    if pb not in held:
                        held.append(pb)
                    pb = pb.next
                    k += 1
        for i in self.ifaces:
            if i.arp is not None:
                for pb in i.arp.pending:
                    k = 0
                    while pb is not None and k < limit:  # the whole chain, not its head
                        held.append(pb)
                        pb = pb.next
                        k += 1
            if i.nd is not None:
                for pb in i.nd.pending:   # IPv6's: one datagram per unresolved neighbour
                    if pb is not None:
                        held.append(pb)
        if self.loop is not None:
            self.loop.loop.held(held)
        return held

    def run_until(self, ready, timeout=None):
        """Drive the stack from this thread until ready() or timeout seconds pass."""
        start = self.clock()
        limit = -1 if timeout is None else int(timeout * 1000)
        while True:
            now = self.clock()
            nd = self.poll(now)
            if ready():
                return True
            el = now - start
            if limit >= 0 and el >= limit:
                return False
            w = 2
            if nd and nd - now < w:
                w = nd - now if nd > now else 0
            if w:
                self.idle(w)

    def run_for(self, ms):
        end = self.clock() + ms
        self.run_until(lambda: self.clock() >= end, None)

    def ping(self, dst, count=1, size=56, interval_ms=1000, timeout_ms=1000):
        """Send count echo requests and collect replies; returns the Pinger (rtts, sent,
        received). Drives the stack through wait()."""
        p = self.icmp.pinger(dst, size)
        try:
            for seq in range(count):
                t0 = self.clock()
                p.send(seq, self.now if self.waiter else t0)
                want = seq + 1
                self.wait(lambda: p.received >= want, timeout_ms / 1000.0)
                if seq + 1 < count:
                    rest = interval_ms - (self.clock() - t0)
                    if rest > 0:
                        self.wait(lambda: False, rest / 1000.0)
        finally:
            p.close()
        return p

    # ---- reporting ------------------------------------------------------------------------
    def counter_groups(self):
        """[(prefix, counters), ...]: every counter group of the stack, the one list both the
        exit counters and the control channel's `stats` read."""
        g = [("stack", self.stats), ("ip", self.ipv4.stats), ("icmp", self.icmp.stats),
             ("udp", self.udp.stats), ("reass", self.ipv4.reass.stats),
             ("pmtu", self.ip.pmtu.stats)]
        if self.tcp is not None:
            g.append(("tcp", self.tcp.stats))
        if self.dhcp is not None:
            g.append(("dhcp", self.dhcp.stats))
        if self.ipv6 is not None:
            g.append(("ip6", self.ipv6.stats))
            g.append(("icmp6", self.icmp6.stats))
            g.append(("dad", self.ipv6.dad.stats))
            g.append(("reass6", self.ipv6.reass.stats))
            for i in self.ifaces:
                if i.nd is not None:
                    g.append((i.name + ".nd", i.nd.stats))
                    g.append((i.name + ".mld", i.mld.stats))
                    g.append((i.name + ".slaac", i.slaac.stats))
        if self.raw_stats is not None:
            g.append(("raw", self.raw_stats))
        if self._dns is not None:
            g.append(("dns", self._dns.stats))
        if self.packet_filter is not None:
            g.append(("filter", self.packet_filter.stats))
        if self.rip is not None:
            g.append(("rip", self.rip.stats))
        if self.ripng is not None:
            g.append(("ripng", self.ripng.stats))
        for i in (self.ifaces + [self.loop]) if self.loop is not None else self.ifaces:
            g.append((i.name, i.stats))
            if i.arp is not None:
                g.append((i.name + ".arp", i.arp.stats))
        return g

    def counters(self):
        """{'ip.rx_packets': n, ...}: every non-zero counter."""
        out = {}
        for pre, c in self.counter_groups():
            for k, v in c.nonzero():
                out[pre + "." + k] = v
        out["pbuf.free"] = self.pool.nfree
        pool = self.pool
        out["pbuf.count"] = pool.count
        out["pbuf.low_water"] = pool.low_water
        if pool.large:
            out["pbuf.large"] = pool.large
            out["pbuf.large_free"] = pool.nlarge
            if pool.large_fail:
                out["pbuf.large_fail"] = pool.large_fail
        out["pbuf.queued"] = pool.queued
        if pool.alloc_fail:
            out["pbuf.alloc_fail"] = pool.alloc_fail
        if pool.rx_reserve_hit:
            out["pbuf.rx_reserve_hit"] = pool.rx_reserve_hit
        if pool.queue_cap_hit:
            out["pbuf.queue_cap_hit"] = pool.queue_cap_hit
        return out

    def drop_pending(self):
        """Packets still waiting for a neighbour's address are dropped and counted
        (pending_dropped, pending_evicted): the exit counters show every buffer back."""
        for i in self.ifaces:
            if i.arp is not None:
                i.arp.drop_pending()
            if i.nd is not None:
                i.nd.drop_pending()

    def close(self):
        if self.dhcp is not None:
            self.dhcp.release()  # RFC 2131 3.1 (8): a leased address is given back
        for s in list(self.sockets):
            s.close()
        for i in self.ifaces:
            i.driver.close()
        if self.loop is not None:
            self.loop.driver.close()
