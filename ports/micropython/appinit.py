"""What the MicroPython application (app.py) runs once, at start: its settings, the driver,
the stack, the services, the `up` line. App imports this module for that and, on MicroPython,
forgets it again (core/compat.forget), so its bytecode goes back to the heap - on a 32-bit
board about 5 KB (benchmarks/memory.md). The settings are described in app.py."""
import sys

from ustack.ports.micropython import compat
from ustack.core import socket as so
from ustack.ports.micropython.app import UdpService

SETTINGS = ("NAME", "DRIVER", "LINK", "IP", "GATEWAY", "MAC", "MTU", "CONFIG", "FEATURES",
            "SERVE", "BUS", "PINS", "STATS_INTERVAL", "CONTROL_PORT", "DURATION", "TCP_PREALLOC",
            "HTTP_ROOT", "SERVE_CONNS", "SERVE_BACKLOG", "SEED", "DNS", "DHCP", "DHCP_HOSTNAME",
            "CONTROL_PEER", "DHCP_LEASE_FILE", "IP6", "LINKS")
DEFAULTS = {
    "NAME": "?", "DRIVER": "streamlink", "LINK": "unix:/tmp/ustack.sock",
    "IP": "192.0.2.2/24", "GATEWAY": None, "MAC": "02:00:00:00:00:02", "MTU": 1500,
    "CONFIG": {}, "FEATURES": ("tcp",), "SERVE": "", "BUS": {}, "PINS": {},
    "STATS_INTERVAL": 0, "CONTROL_PORT": 0, "DURATION": 0, "TCP_PREALLOC": None,
    "HTTP_ROOT": None, "SERVE_CONNS": None, "SERVE_BACKLOG": None,
    "SEED": None,  # an int makes every "random" choice repeatable (tests comparing runtimes)
    "DNS": (),     # name servers (IPv4 addresses) for getaddrinfo, asked in order
    "DHCP": False,  # True: lease the address from DHCP (core/dhcp.py) instead of IP/GATEWAY
    "DHCP_HOSTNAME": None,  # the host name option (RFC 2132 3.14) DHCP requests carry
    "CONTROL_PEER": None,   # the address Control answers (None: any)
    "DHCP_LEASE_FILE": None,  # a file remembering the lease: INIT-REBOOT from it (RFC 2131 3.2)
    "IP6": (),     # IPv6 addresses of eth0 ('ADDR/PREFIX'), besides its link-local one
    "LINKS": (),   # eth1, eth2, ...: {"LINK", "IP", "MAC", "MTU", "IP6"} each
}
PORTS = {"echo": 7, "discard": 9, "chargen": 19, "http": 80}

def settings_from(board, argv=()):
    s = dict(DEFAULTS)
    if board is not None:
        for k in SETTINGS:
            if hasattr(board, k):
                s[k] = getattr(board, k)
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--settings":
            import json
            with open(argv[i + 1]) as f:
                extra = json.load(f)
            for k in extra:
                s[k] = extra[k]
            i += 2
            continue
        if "=" in a:
            k, v = a.split("=", 1)
            try:
                v = int(v)
            except ValueError:
                pass
            s[k] = v
        i += 1
    return s


def parse_mac(m):
    if isinstance(m, (bytes, bytearray)):
        return bytes(m)
    return bytes(int(p, 16) for p in m.replace("-", ":").split(":"))


def make_driver(s, mac):
    """The link named by DRIVER, on the board's bus and pins."""
    kind = s["DRIVER"]
    mtu = s["MTU"]
    if kind == "streamlink":
        from ustack.ports.micropython.streamlink import StreamLink
        link = StreamLink.connect(s["LINK"], mac, mtu)
        # the LINKS' streams, each connected in turn: the runtime accepts them in this order
        s["_more"] = [StreamLink.connect(d["LINK"], parse_mac(d["MAC"]), d.get("MTU") or 1500)
                      for d in s.get("LINKS") or ()]
        return link
    if kind in ("sim-enc28j60", "sim-w5500"):
        # the real SPI driver on its virtual chip, the chip's wire on the StreamLink
        from ustack.ports.micropython.streamlink import StreamLink
        from ustack.ports.micropython.simlink import SimChip
        return SimChip(kind, StreamLink.connect(s["LINK"], mac, mtu), mac, mtu)
    if kind == "slip-pty":
        from ustack.ports.micropython.simlink import slip_pty
        return slip_pty(s["LINK"], mtu)
    bus = s["BUS"] or {}
    pins = s["PINS"] or {}
    if kind in ("enc28j60", "w5500"):
        from machine import SPI, Pin
        from ustack.hal.spi import MachineSpi
        spi = SPI(bus["id"], baudrate=bus["baudrate"], polarity=0, phase=0,
                  sck=Pin(bus["sck"]), mosi=Pin(bus["mosi"]), miso=Pin(bus["miso"]))
        cs = Pin(bus["cs"], Pin.OUT, value=1)
        sb = MachineSpi(spi, cs)
        irq = Pin(pins["int"], Pin.IN, Pin.PULL_UP) if pins.get("int") is not None else None
        rst = Pin(pins["rst"], Pin.OUT, value=1) if pins.get("rst") is not None else None
        if kind == "enc28j60":
            from ustack.hal.enc28j60 import Enc28j60
            return Enc28j60(sb, irq, rst, mac=mac)
        try:
            from ustack.hal.w5500 import W5500
        except ImportError:
            raise OSError("driver w5500 (hal/w5500.py) is not in this build yet")
        return W5500(sb, irq, rst, mac=mac)
    raise ValueError("unknown DRIVER %r" % (kind,))


def make_stack(s, driver):
    from ustack.core.stack import Stack
    from ustack.core.wire import ipv4 as ip4
    st = Stack(s["CONFIG"] or None, features=tuple(s["FEATURES"] or ()))
    if s.get("SEED") is not None:
        x = s["SEED"] & 0xFFFFFFFF
        seed = bytes(((x >> 24) & 0xFF, (x >> 16) & 0xFF, (x >> 8) & 0xFF, x & 0xFF))
        secret = seed * 4
    else:
        seed = _entropy(4)
        secret = _entropy(16)
    st.seed((seed[0] << 24) | (seed[1] << 16) | (seed[2] << 8) | seed[3])
    if st.tcp is not None and hasattr(st.tcp, "set_secret"):
        st.tcp.set_secret(secret)
    if s.get("DHCP"):
        iface = st.add_interface("eth0", driver, mtu=s["MTU"])
        add_ip6(st, iface, s.get("IP6"))
        if s.get("DNS"):
            st.dns.set_servers(s["DNS"])  # chosen by the user: they win over the lease's
        path = s.get("DHCP_LEASE_FILE")
        try:
            if path:
                from ustack.ports.micropython import leasefile
                c = st.start_dhcp(iface, hostname=s.get("DHCP_HOSTNAME"),
                                  remembered=leasefile.load(path))
                leasefile.follow(c, path)
            else:
                st.start_dhcp(iface, hostname=s.get("DHCP_HOSTNAME"))
        except ImportError:
            raise ValueError("DHCP = True: core/dhcp.py is not on this board (build it with "
                             "the setting, or 'dhcp' in FEATURES)")
        return st
    a, p = ip4.parse_cidr(s["IP"]) if "/" in s["IP"] else (ip4.aton(s["IP"]), 24)
    iface = st.add_interface("eth0", driver, ip=a, prefix=p, gateway=s["GATEWAY"], mtu=s["MTU"])
    add_ip6(st, iface, s.get("IP6"))
    links = s.get("LINKS") or ()
    more = s.get("_more") or ()
    if len(more) != len(links):
        raise ValueError("LINKS: %d links need DRIVER streamlink (one stream each)" % len(links))
    for n in range(len(links)):
        d = links[n]
        a, p = ip4.parse_cidr(d["IP"])
        i = st.add_interface("eth%d" % (n + 1), more[n], ip=a, prefix=p, mtu=d.get("MTU") or 1500)
        add_ip6(st, i, d.get("IP6"))
    if s.get("DNS"):
        st.dns.set_servers(s["DNS"])  # name servers for socket.getaddrinfo (--dns, DNS)
    return st


def add_ip6(st, iface, addrs):
    if addrs and st.ipv6 is None:
        raise ValueError("IP6 needs config IPV6 (and the ipv6 feature's modules)")
    for v in addrs or ():
        st.add_address6(iface, v)


def lease_fields(lease):
    """The `up` line's lease part (the same fields as `ustack up --dhcp`'s ready line)."""
    return " dhcp=%s lease=%ss router=%s dns=%s domain=%s" % (
        lease["server"], lease["lease_s"], lease["router"] or "-",
        ",".join(lease["dns"]) or "-", lease["domain"] or "-")


def _entropy(n):
    try:
        import os
        return bytes(os.urandom(n))
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import random
        return bytes(random.getrandbits(8) for _ in range(n))
    except ImportError:
        t = compat.ticks_us()
        return bytes((t >> (i % 4 * 8)) & 0xFF for i in range(n))

def serve_limits(st, s):
    """(connections served at once, listen backlog) for each TCP service. The backlog, unless
    set, grows with the heap: established connections waiting to be accepted hold their
    rings, so it is what half the free heap holds in rings (at least the connections served,
    at most TCP_BACKLOG). A burst of clients then completes its handshakes at once instead of
    waiting for SYN retransmissions (1, 3, 7, ... s)."""
    if st.tcp is None:
        return 0, 0
    cfg = st.config
    conns = s.get("SERVE_CONNS") or min(cfg["TCP_MAX_CONNS"], 4)
    backlog = s.get("SERVE_BACKLOG")
    if not backlog:
        backlog = conns
        try:
            import gc
            gc.collect()
        except ImportError:
            pass
        free = compat.mem_info().get("free")
        if free:
            fit = free // 2 // (cfg["TCP_SND_BUF"] + cfg["TCP_RCV_BUF"]) - conns
            if fit > backlog:
                backlog = min(fit, cfg["TCP_BACKLOG"])
    return conns, backlog


def start_services(app, names):
    started = []
    st = app.stack
    conns, backlog = serve_limits(st, app.s)
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in PORTS:
            raise ValueError("unknown service %r" % (name,))
        if name in ("echo", "discard"):
            app.services.append(UdpService(st, PORTS[name], name == "echo"))
            started.append("udp/" + name)
            if st.ipv6 is not None:  # the same service over IPv6 (a socket of its own)
                app.services.append(UdpService(st, PORTS[name], name == "echo",
                                               family=so.AF_INET6))
        if st.tcp is not None:
            try:
                from ustack.ports.micropython import tcpserv
            except ImportError:
                continue
            svc = tcpserv.make(st, name, PORTS[name], root=app.s.get("HTTP_ROOT"),
                               max_conns=conns, backlog=backlog)
            if svc is not None:
                app.services.append(svc)
                started.append("tcp/" + name)
    return started


def setup(app, settings, driver=None):
    """App's start, first half: the driver (`driver`, else make_driver) and the stack."""
    app.mac = parse_mac(settings["MAC"])
    app.driver = driver if driver is not None else make_driver(settings, app.mac)
    app.stack = make_stack(settings, app.driver)


def serve(app, settings):
    """App's start, second half (after the TCP rings): polling the links, the services."""
    app.link_up = getattr(app.driver, "link_up", None)  # None: a driver that cannot tell
    # a driver that holds received frames the poller cannot see (a virtual chip)
    app.rx_pending = getattr(app.driver, "rx_pending", None)
    for iface in app.stack.ifaces:
        o = iface.driver.poll_obj()
        if o is None:
            app.busy_poll = True
        else:
            app.poller.register(o, compat.POLLIN)
    serve = settings["SERVE"]
    if isinstance(serve, str):
        serve = serve.split(",")
    app.stack.log = app.say
    app.started = start_services(app, serve)
    cp = settings["CONTROL_PORT"]
    if cp:
        # a test and `ustack up` service: its own module, not on a board that has none
        from ustack.ports.micropython.control import Control
        app.services.append(Control(app, cp, settings.get("CONTROL_PEER")))


def say_up(app):
    """The `up` line, once the stack is configured (with DHCP: bound)."""
    from ustack.core.wire import ipv4 as ip4
    st = app.stack
    iface = st.ifaces[0]
    d = st.dhcp
    v6 = ""
    if st.ipv6 is not None:  # the fields of the CPython runtime's ready line
        v6 = " ip6=" + ",".join("%s/%d%s" % (a, p, "!dup" if f == "duplicate" else "")
                                for a, p, f in st.ipv6.addresses())
    links = "".join(" %s=%s/%d" % (i.name, ip4.ntoa(i.ip), i.prefix) for i in st.ifaces[1:])
    app.say("up name=%s ip=%s/%d mac=%s serve=%s runtime=%s%s%s%s" % (
        app.s["NAME"], ip4.ntoa(iface.ip), iface.prefix,
        ":".join("%02x" % x for x in iface.mac), ",".join(app.started) or "-",
        sys.implementation.name, lease_fields(d.lease()) if d is not None else "", v6,
        links))
