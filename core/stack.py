"""Stack: configuration, interfaces, protocols and the poll loop. Everything hangs off one
instance (no module state), so two stacks live in one process.

    st = Stack({"PBUF_COUNT": 32})
    st.add_interface("eth0", driver, ip="192.0.2.2", prefix=24, gateway="192.0.2.1")
    s = st.socket(AF_INET, SOCK_DGRAM)
    next_deadline = st.poll(now_ms)

Threading rule: one thread (or task) drives the stack at a time. The CPython port enforces it
with a lock around every call; MicroPython ports drive it from one loop.
"""
from ustack.core.compat import EPROTONOSUPPORT, ESOCKTNOSUPPORT, EMFILE, oserror
from ustack.core.config import make_config
from ustack.core.buf import Pool
from ustack.core.iface import Interface
from ustack.core.route import RouteTable
from ustack.core.ipv4 import IPv4
from ustack.core.icmp import ICMP
from ustack.core.udp import UDP, UdpSocket
from ustack.core.wire import ipv4 as ip4
from ustack.core import socket as so
from ustack.core import clock


class Stack:
    def __init__(self, config=None, features=None):
        self.config = make_config(config)
        cfg = self.config
        self.pool = Pool(cfg["PBUF_COUNT"], cfg["PBUF_SIZE"])
        self.now = 0
        self.next_timer = 0
        self.kicked = False
        self.ifaces = []
        self.routes = RouteTable(cfg["ROUTE_ENTRIES"])
        self._rand = 0x2545F491
        self.capture = None       # capture(iface, buf, n, outgoing): taps every frame
        self.filter = None        # filter(in_iface, out_iface, buf, off, n) -> bool (forwarding)
        self.filter_out = None    # filter_out(iface, buf, off, n) -> bool (local output)
        self.raw_sockets = []
        self.multicast_groups = []
        self.ipv4 = IPv4(self)
        self.icmp = ICMP(self)
        self.udp = UDP(self)
        self.tcp = None
        self.sockets = []
        features = features if features is not None else ("tcp",)
        if "tcp" in features:
            try:
                from ustack.core.tcp.proto import TCP
                self.tcp = TCP(self)
            except ImportError:
                self.tcp = None
        self.clock = clock.now_ms
        self.waiter = None        # port hook: waiter(ready, timeout_s) -> bool
        self.notifier = None      # port hook: called when socket readiness changed
        self.fileno_hook = None
        self.idle = clock.sleep_ms
        self.owner_check = None   # port hook: True when the caller may drive the stack

    # ---- buffers --------------------------------------------------------------------------
    def alloc(self):
        return self.pool.alloc()

    def free(self, pb):
        if pb.index >= 0:
            self.pool.free(pb)
        else:
            pb.in_use = False  # reassembly slot or scratch buffer

    # ---- configuration --------------------------------------------------------------------
    def add_interface(self, name, driver, ip=None, prefix=24, gateway=None, mac=None, mtu=None):
        """The seed's interface_config_t: name, MAC, address/prefix, gateway."""
        if isinstance(mac, str):
            from ustack.core.wire.ethernet import parse_mac
            mac = parse_mac(mac)
        iface = Interface(self, name, driver, None, prefix, None, mac, mtu)
        self.ifaces.append(iface)
        if ip is not None:
            if isinstance(ip, str) and "/" in ip:
                a, p = ip4.parse_cidr(ip)
                self.set_address(iface, a, p, gateway)
            else:
                self.set_address(iface, ip, prefix, gateway)
        iface.up = True
        if iface.arp is not None and self.config["ARP_GRATUITOUS"] and iface.ip[0]:
            iface.arp.announce()
        return iface

    def set_address(self, iface, ip, prefix, gateway=None):
        self.routes.remove_iface(iface)
        iface.set_address(ip, prefix, gateway)
        if iface.ip[0]:
            self.routes.add(iface.net, prefix, None, iface)
        if gateway:
            self.routes.add(ip4.ANY, 0, gateway, iface)

    def add_route(self, net, prefix, gateway=None, iface=None, metric=0):
        if iface is None:
            if gateway is None:
                raise ValueError("a route needs a gateway or an interface")
            r = self.routes.lookup(ip4.aton(gateway), 0)
            if r < 0:
                raise oserror(101)
            iface = self.routes.iface[r]
        elif isinstance(iface, str):
            iface = self.iface(iface)
        return self.routes.add(net, prefix, gateway, iface, metric)

    def iface(self, name):
        for i in self.ifaces:
            if i.name == name:
                return i
        raise KeyError(name)

    # ---- address helpers ------------------------------------------------------------------
    def local_iface(self, b, o=0):
        """The interface owning the address at b[o], or None."""
        for i in self.ifaces:
            if i.is_local(b, o) and i.ip[0]:
                return i
        return None

    def is_broadcast(self, a):
        if a[0] == 255 and a[1] == 255 and a[2] == 255 and a[3] == 255:
            return True
        for i in self.ifaces:
            if i._is_bcast_at(a, 0):
                return True
        return False

    def source_for(self, dst):
        r = self.routes.lookup(dst, 0)
        if r < 0:
            return None
        return self.routes.iface[r].ip

    def multicast_member(self, b, o):
        for g in self.multicast_groups:
            if g[0] == b[o] and g[1] == b[o + 1] and g[2] == b[o + 2] and g[3] == b[o + 3]:
                return True
        return False

    def raw_input(self, iface, pb, off, ihl, tot):
        """Hand a copy to raw sockets of that protocol; True if any took it."""
        if not self.raw_sockets:
            return False
        took = False
        proto = pb.buf[off + 9]
        for s in self.raw_sockets:
            if s.proto == proto or s.proto == 0 or s.proto == 255:  # 0/255: every protocol
                took = s._deliver(pb, off, tot) or took
        return took

    def random16(self):
        # xorshift32: ephemeral port start and ICMP ids; not for security (ISNs use RFC 6528)
        x = self._rand
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rand = x
        return x & 0xFFFF

    def seed(self, entropy):
        self._rand = (entropy & 0xFFFFFFFF) or 0x2545F491

    # ---- sockets --------------------------------------------------------------------------
    def socket(self, family=so.AF_INET, type=so.SOCK_STREAM, proto=0):
        if len(self.sockets) >= self.config["SOCKETS"]:
            raise oserror(EMFILE)
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
        if s in self.sockets:
            self.sockets.remove(s)
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
        pool = self.pool
        for iface in self.ifaces:
            drv = iface.driver
            drv.service()
            k = 0
            while k < batch:
                pb = pool.alloc()
                if pb is None:
                    iface.stats.tx_no_buffer += 1
                    break
                n = drv.recv_into(pb.buf)
                if not n:
                    pool.free(pb)
                    break
                if self.capture is not None:
                    self.capture(iface, pb.buf, n, False)
                iface.input(pb, n)
                k += 1
            if k == batch:
                iface.stats.rx_budget_hit += 1
        if self.next_timer and now >= self.next_timer:
            self._run_timers(now)
        return self.next_timer

    def _run_timers(self, now):
        nxt = 0
        for iface in self.ifaces:
            if iface.arp is not None:
                d = iface.arp.tick(now)
                if d and (nxt == 0 or d < nxt):
                    nxt = d
        d = self.ipv4.reass.tick(now)
        if d and (nxt == 0 or d < nxt):
            nxt = d
        if self.tcp is not None:
            d = self.tcp.tick(now)
            if d and (nxt == 0 or d < nxt):
                nxt = d
        self.next_timer = nxt

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
    def counters(self):
        """{'ip.rx_packets': n, ...}: every non-zero counter."""
        out = {}
        for pre, c in (("ip", self.ipv4.stats), ("icmp", self.icmp.stats),
                       ("udp", self.udp.stats), ("reass", self.ipv4.reass.stats)):
            for k, v in c.nonzero():
                out[pre + "." + k] = v
        if self.tcp is not None:
            for k, v in self.tcp.stats.nonzero():
                out["tcp." + k] = v
        for i in self.ifaces:
            for k, v in i.stats.nonzero():
                out[i.name + "." + k] = v
            if i.arp is not None:
                for k, v in i.arp.stats.nonzero():
                    out[i.name + ".arp." + k] = v
        out["pbuf.free"] = self.pool.nfree
        out["pbuf.count"] = self.pool.count
        if self.pool.alloc_fail:
            out["pbuf.alloc_fail"] = self.pool.alloc_fail
        return out

    def close(self):
        for s in list(self.sockets):
            s.close()
        for i in self.ifaces:
            i.driver.close()
