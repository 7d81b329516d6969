"""A `network`-style NIC over ustack: what MicroPython code expects from `network.LAN` /
`network.WIZNET5K`, with ustack doing all of IP (the chip runs MACRAW, or the link is the
unix port's StreamLink to the TAP bridge).

    import network
    nic = network.WIZNET5K(spi, Pin(17), Pin(20))     # a board: hal/w5500.py on the SPI bus
    nic = network.LAN()                               # unix port: the link `ustack run` gives
    nic.active(True)
    nic.ifconfig(("192.0.2.2", "255.255.255.0", "192.0.2.1", "0.0.0.0"))
    nic.isconnected(), nic.config("mac"), nic.status(), nic.ipconfig("addr4")

`import network` resolves here when ports/micropython/shadow is first on sys.path (see
usock.py). The socket facade uses the NIC activated last (`default_stack()`): MicroPython's
`socket` module has no stack argument, so one NIC serves it, as on a board with one chip.

Blocking socket calls drive the stack: `active(True)` installs a waiter that polls the stack
and sleeps on the link's poll object (or 1 ms on a link without one) until the socket is
ready, a timer is due or the timeout ends. `poll()` drives it once (for a loop of your own).
"""
import sys

from ustack.ports.micropython import compat

# status() values: the ones the rp2/cyw43 `network` module uses
STAT_IDLE = 0          # not active
STAT_CONNECTING = 1    # active, link down or no address yet
STAT_GOT_IP = 3        # active, link up, address set

WAIT_MAX_MS = 50       # longest sleep of a blocked call between two polls
EXIT_LINGER_MS = 5000  # at the program's end, the longest wait for data and FINs to go out

_default = []          # the NIC the socket facade uses (the last one activated)
_exit_hook = []        # [True] once at_exit is registered (MicroPython keeps one atexit)


def default_stack():
    """The stack of the NIC activated last; OSError(ENODEV) before any."""
    for nic in _default:
        if nic.stack is not None:
            return nic.stack
    raise OSError(19, "no active network interface (network.LAN().active(True))")


def _mask(prefix):
    m = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF if prefix else 0
    return "%d.%d.%d.%d" % (m >> 24, (m >> 16) & 0xFF, (m >> 8) & 0xFF, m & 0xFF)


def _prefix(mask):
    from ustack.core.wire import ipv4 as ip4
    b = ip4.aton(mask)
    m = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    p = 0
    while p < 32 and m & (0x80000000 >> p):
        p += 1
    if (m << p) & 0xFFFFFFFF:
        raise ValueError("netmask %r is not contiguous" % (mask,))
    return p


class NIC:
    """Common part: a driver factory, the address settings, the stack once active."""

    def __init__(self, make_driver, mac=None, ip=None, gateway=None, mtu=1500, config=None,
                 features=None):
        from ustack.ports.micropython.app import appinit_call
        self._make_driver = make_driver
        self._mac = appinit_call("parse_mac", mac) if mac is not None else None
        self._ip = None
        self._prefix = 24
        self._gw = None
        self._dns = "0.0.0.0"
        self._mtu = mtu
        self._config = config
        self._features = features
        self.driver = None
        self.stack = None
        self.iface = None
        self._poller = None
        self._busy = True
        self._dhcp = False  # ifconfig('dhcp') / ipconfig(dhcp4=True): core/dhcp.py leases it
        if ip:
            self._set_cidr(ip)
        if gateway:
            self._gw = gateway

    def _set_cidr(self, ip):
        if "/" in ip:
            a, p = ip.split("/", 1)
            self._ip, self._prefix = a, int(p)
        else:
            self._ip = ip

    # ---- network.AbstractNIC ---------------------------------------------------------------
    def active(self, on=None):
        if on is None:
            return self.stack is not None
        if on and self.stack is None:
            self._start()
        elif not on and self.stack is not None:
            self._stop()
        return None

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def status(self, param=None):
        if param is not None:
            raise ValueError("unknown status param %r" % (param,))
        if self.stack is None:
            return STAT_IDLE
        up = getattr(self.driver, "link_up", None)
        if (up is None or up()) and self.iface.ip[0]:
            return STAT_GOT_IP
        return STAT_CONNECTING

    def _lease(self):
        d = self.stack.dhcp if self.stack is not None else None
        return d.lease() if d is not None else None

    def _use_dhcp(self, on):
        """Lease the address (RFC 2131, core/dhcp.py), or stop doing so (the lease is
        released and the address goes)."""
        if on:
            self._dhcp = True
            self._ip = None
            if self.stack is not None:
                if self.iface.ip[0]:
                    self.stack.remove_address(self.iface)  # the static one goes (as a port's)
                if self.stack.dhcp is None:
                    self.stack.start_dhcp(self.iface)
        elif self._dhcp:
            self._dhcp = False
            if self.stack is not None and self.stack.dhcp is not None:
                self.stack.dhcp.release()
                self.stack.dhcp = None

    def ifconfig(self, cfg=None):
        """(ip, netmask, gateway, dns) strings; given a 4-tuple, set them; 'dhcp': lease
        them (isconnected() once bound)."""
        if cfg is None:
            if self._dhcp:
                le = self._lease()
                if le is None:
                    return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
                return (le["ip"], _mask(le["prefix"]), le["router"] or "0.0.0.0",
                        le["dns"][0] if le["dns"] else "0.0.0.0")
            return (self._ip or "0.0.0.0", _mask(self._prefix), self._gw or "0.0.0.0",
                    self._dns)
        if cfg == "dhcp":
            self._use_dhcp(True)
            return None
        if not isinstance(cfg, (tuple, list)) or len(cfg) != 4:
            raise ValueError("ifconfig takes (ip, netmask, gateway, dns) or 'dhcp'")
        self._use_dhcp(False)
        ip, mask, gw, dns = cfg
        self._ip = ip
        self._prefix = _prefix(mask)
        self._gw = gw if gw and gw != "0.0.0.0" else None
        self._dns = dns
        self._apply()

    def ipconfig(self, *args, **kw):
        """The newer API: ipconfig('addr4') -> (ip, netmask), 'gw4', 'dhcp4', 'has_dhcp4';
        ipconfig(addr4='192.0.2.2/24', gw4='192.0.2.1') sets them."""
        if args:
            if len(args) != 1 or kw:
                raise TypeError("ipconfig: one key to read, or keywords to set")
            k = args[0]
            if self._dhcp and (k == "addr4" or k == "gw4"):
                le = self._lease()
                if k == "gw4":
                    return (le["router"] if le is not None else None) or "0.0.0.0"
                return (le["ip"], _mask(le["prefix"])) if le is not None else \
                    ("0.0.0.0", "0.0.0.0")
            if k == "addr4":
                return (self._ip or "0.0.0.0", _mask(self._prefix))
            if k == "gw4":
                return self._gw or "0.0.0.0"
            if k == "dhcp4":
                return self._dhcp
            if k == "has_dhcp4":
                return self._dhcp and self._lease() is not None
            if k in ("autoconf6", "has_autoconf6"):
                return False
            raise ValueError("unknown ipconfig key %r" % (k,))
        for k in kw:
            v = kw[k]
            if k == "addr4":
                self._use_dhcp(False)
                if isinstance(v, (tuple, list)):
                    self._ip = v[0]
                    self._prefix = _prefix(v[1])
                else:
                    self._set_cidr(v)
            elif k == "gw4":
                self._gw = v if v and v != "0.0.0.0" else None
            elif k == "dhcp4":
                self._use_dhcp(bool(v))
            else:
                raise ValueError("unknown ipconfig key %r" % (k,))
        self._apply()

    def config(self, *args, **kw):
        """config('mac') -> 6 bytes, config('mtu'); config(mac=..., mtu=...) before
        active(True)."""
        if args:
            if len(args) != 1 or kw:
                raise TypeError("config: one key to read, or keywords to set")
            k = args[0]
            if k == "mac":
                if self.iface is not None:
                    return bytes(self.iface.mac)
                return self._mac
            if k == "mtu":
                return self.iface.mtu if self.iface is not None else self._mtu
            raise ValueError("unknown config param %r" % (k,))
        for k in kw:
            if self.stack is not None:
                raise OSError(16, "config(%s=...) only while inactive" % k)  # EBUSY
            if k == "mac":
                from ustack.ports.micropython.app import appinit_call
                self._mac = appinit_call("parse_mac", kw[k])
            elif k == "mtu":
                self._mtu = kw[k]
            else:
                raise ValueError("unknown config param %r" % (k,))

    # ---- ustack ----------------------------------------------------------------------------
    def poll(self):
        """Drive the stack once: frames in, timers; returns the next deadline (ms, 0 none)."""
        return drive(self.stack)

    def _start(self):
        from ustack.core.stack import Stack
        from ustack.ports.micropython import app
        if self._mac is None:
            self._mac = b"\x02\x00\x00\x00\x00\x02"
        drv = self._make_driver(self._mac)
        st = Stack(self._config or None, features=tuple(self._features or ("tcp",)))
        seed = app.appinit_call("_entropy", 4)
        st.seed((seed[0] << 24) | (seed[1] << 16) | (seed[2] << 8) | seed[3])
        if st.tcp is not None and hasattr(st.tcp, "set_secret"):
            st.tcp.set_secret(app.appinit_call("_entropy", 16))
        self.driver = drv
        self.stack = st
        self.iface = st.add_interface("eth0", drv, ip="0.0.0.0", prefix=self._prefix,
                                      mtu=self._mtu)
        o = drv.poll_obj() if hasattr(drv, "poll_obj") else None
        self._busy = o is None
        if o is not None:
            self._poller = compat.Poller()
            self._poller.register(o, compat.POLLIN)
        st.waiter = self._wait
        if self._dhcp:
            st.start_dhcp(self.iface)
        else:
            self._apply()
        if self in _default:
            _default.remove(self)
        _default.insert(0, self)
        if not _exit_hook:
            _exit_hook.append(True)
            _register_exit(at_exit)

    def _stop(self):
        st = self.stack
        self.stack = None
        if self in _default:
            _default.remove(self)
        try:
            st.close()  # closes its sockets and the driver
        finally:
            self.driver = None
            self.iface = None
            self._poller = None

    def _apply(self):
        if self.stack is None:
            return
        if self._dns and self._dns != "0.0.0.0":
            self.stack.dns.set_servers([self._dns])  # getaddrinfo's name server
        if self._ip is None:
            return
        self.stack.set_address(self.iface, self._ip, self._prefix, self._gw)

    def linger(self, ms=EXIT_LINGER_MS):
        """What an OS does when a process ends: close every socket still open (FIN after
        its data), then drive the stack until each connection has delivered its data and
        had its FIN acknowledged, or ms have passed. True when all went out."""
        st = self.stack
        if st is None:
            return True
        for s in list(st.sockets):
            try:
                s.close()
            except OSError:
                pass
        tcp = st.tcp
        if tcp is None:
            return True
        try:
            if self._wait(lambda: not tcp.closing(), ms / 1000):
                return True
        except OSError:
            return False  # the link went away: nothing more can go out
        tcp.abort_closing()  # given up: the peers are told (RST), as host.finish_closing does
        drive(st)  # the RSTs leave now
        return False

    def _wait(self, ready, timeout):
        """Stack.waiter: drive the stack in this (the only) thread until ready() or the
        timeout (seconds, None = forever)."""
        from ustack.core import clock
        st = self.stack
        start = clock.now_ms()
        limit = -1 if timeout is None else int(timeout * 1000)
        while True:
            now = clock.now_ms()
            nd = drive(st, now)
            if ready():
                return True
            if getattr(self.driver, "eof", False):
                raise OSError(100, "network is down (the link closed)")  # ENETDOWN
            w = WAIT_MAX_MS
            if limit >= 0:
                left = limit - (now - start)
                if left <= 0:
                    return False
                if left < w:
                    w = left
            if nd:
                d = nd - clock.now_ms()
                if d < w:
                    w = d if d > 0 else 0
            if self._busy:
                compat.sleep_ms(1 if w else 0)
            elif w:
                self._poller.wait(w)


class LAN(NIC):
    """`network.LAN()`. On the unix port the link is the StreamLink of the TAP bridge:
    its settings (LINK, IP, GATEWAY, MAC, MTU, CONFIG, FEATURES, as app.py names them) come
    from the JSON file named by $USTACK_MPY_SETTINGS (what `python -m
    ustack.ports.micropython.runtime run` writes), else from board_cfg.py, else the
    defaults. Keywords override them. On a board, LAN(board=board_cfg) builds the board's
    driver (BUS/PINS/DRIVER) as app.py does."""

    def __init__(self, id=0, board=None, **kw):
        from ustack.ports.micropython import app
        if board is None:
            board = _settings_module()
        s = app.appinit_call("settings_from", board)
        path = _getenv("USTACK_MPY_SETTINGS")
        if path:
            s = app.appinit_call("settings_from", board, ["--settings", path])
        for k in kw:
            s[k.upper()] = kw[k]
        self.settings = s

        def make(mac):
            return app.appinit_call("make_driver", s, mac)
        NIC.__init__(self, make, mac=s["MAC"], ip=s["IP"], gateway=s["GATEWAY"], mtu=s["MTU"],
                     config=s["CONFIG"], features=s["FEATURES"])
        if s.get("DNS"):
            self._dns = s["DNS"][0]  # the board's name server, as ifconfig() shows it


class WIZNET5K(NIC):
    """`network.WIZNET5K(spi, pin_cs, pin_rst)`: a W5500 in MACRAW mode (hal/w5500.py);
    spi is a configured machine.SPI, pin_cs an output Pin, pin_rst a Pin or None; pin_int
    (keyword) the chip's INTn for an interrupt-driven poll."""

    def __init__(self, spi, pin_cs, pin_rst=None, pin_int=None, mac=None, **kw):
        def make(m):
            from ustack.hal.spi import MachineSpi
            from ustack.hal.w5500 import W5500
            return W5500(MachineSpi(spi, pin_cs), pin_int, pin_rst, mac=m)
        NIC.__init__(self, make, mac=mac or b"\x02\x08\xdc\x00\x00\x02", **kw)


class ENC28J60(NIC):
    """A Microchip ENC28J60 on SPI (hal/enc28j60.py): ENC28J60(spi, pin_cs, pin_int=None,
    pin_rst=None)."""

    def __init__(self, spi, pin_cs, pin_int=None, pin_rst=None, mac=None, **kw):
        def make(m):
            from ustack.hal.spi import MachineSpi
            from ustack.hal.enc28j60 import Enc28j60
            return Enc28j60(MachineSpi(spi, pin_cs), pin_int, pin_rst, mac=m)
        NIC.__init__(self, make, mac=mac, **kw)


def drive(st, now=None):
    """st.poll(now), for every caller that drives the stack on the program's behalf (a
    blocking call, a select/asyncio poll of a socket): an exception from a driver or a hook
    is the stack's to count and recover from (Stack.poll_failed: stack.exceptions, one log
    line, the frame's buffers back), as app.py's loop does; the program's call goes on."""
    from ustack.core import clock
    try:
        return st.poll(clock.now_ms() if now is None else now)
    except Exception as e:
        st.poll_failed(e)
        return st.next_timer


def at_exit():
    """The program ended (sys.atexit): the unix port's stack stops with it, and no one
    drives it any more. Deliver what the program wrote first (NIC.linger), as an OS or a
    board's lwIP, which run on their own, would."""
    for nic in list(_default):
        nic.linger()


def _register_exit(fn):
    if hasattr(sys, "atexit"):
        sys.atexit(fn)  # MicroPython: one function, replacing any earlier one
    else:
        import atexit
        atexit.register(fn)


def _getenv(name):
    try:
        import os
        return os.getenv(name)
    except (ImportError, AttributeError):
        return None


def _settings_module():
    if "board_cfg" in sys.modules:
        return sys.modules["board_cfg"]
    try:
        import board_cfg
        return board_cfg
    except ImportError:
        return None
