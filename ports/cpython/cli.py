"""`ustack` command line. `ustack up` runs the stack as a long-lived process:

    ustack up --tap ustack0 --ip 192.0.2.2/24 --host-ip 192.0.2.1/24 --serve echo,discard

It prints one line starting with `ready ` once the stack answers, and its counters when it
stops (SIGINT/SIGTERM). Flags override the board's values (--board, default pc_tap).
"""
import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time

DRIVERS = ("tap", "sim-enc28j60", "sim-w5500", "sim-usb-ecm", "sim-usb-ncm", "slip-pty", "afpacket",
           "usb", "usb-ecm", "usb-ncm", "enc28j60", "w5500")
RUNTIMES = ("cpython", "micropython")


def load_board(name):
    try:
        return importlib.import_module("ustack.boards." + name)
    except ImportError as e:
        raise SystemExit("ustack: unknown board %r (%s)" % (name, e))


def board_value(board, key, default=None):
    return getattr(board, key, default)


def parse_config(items):
    out = {}
    for it in items or ():
        if "=" not in it:
            raise SystemExit("ustack: --config wants KEY=VALUE, got %r" % (it,))
        k, v = it.split("=", 1)
        try:
            v = int(v)
        except ValueError:
            if v.lower() in ("true", "false"):
                v = v.lower() == "true"
        out[k] = v
    return out


def build_parser():
    p = argparse.ArgumentParser(prog="ustack", description="ustack: a portable TCP/IP stack in Python")
    sub = p.add_subparsers(dest="cmd")
    link = argparse.ArgumentParser(add_help=False)  # the flags `up` and `run` share
    link.add_argument("--board", default="pc_tap", help="board config in ustack.boards (default pc_tap)")
    link.add_argument("--driver", choices=DRIVERS, default=None,
                     help="link driver (default: the board's; tap). sim-* run a virtual device whose "
                          "wire is bridged to the TAP; usb*, enc28j60, w5500 drive real hardware "
                          "named by the board (USB/BUS/PINS)")
    link.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                     help="run the core under CPython (default) or the MicroPython unix port "
                          "behind a TAP bridge")
    link.add_argument("--tap", default=None, help="TAP device name (default: the board's, ustack0)")
    link.add_argument("--ip", default=None, help="the stack's address/prefix, e.g. 192.0.2.2/24")
    link.add_argument("--gateway", default=None, help="default gateway address")
    link.add_argument("--dhcp", action="store_true", default=None,
                      help="lease the address (and router, DNS servers) from DHCP instead of --ip")
    link.add_argument("--mac", default=None, help="the stack's MAC, e.g. 02:00:00:00:00:02")
    link.add_argument("--host-ip", default=None,
                     help="configure the kernel side of the TAP with this address/prefix and bring "
                          "it up (needs CAP_NET_ADMIN), so one command gives a reachable host")
    link.add_argument("--serve", default="",
                     help="comma-separated built-in services: echo (7), discard (9) over UDP and "
                          "TCP; chargen (19), http (80) over TCP")
    link.add_argument("--http-root", default=None, help="directory served by the http service")
    link.add_argument("--pcap", default=None, help="write every frame in and out to this pcap file")
    link.add_argument("--stats-interval", type=float, default=0,
                     help="print counters every S seconds (0 = only at exit)")
    link.add_argument("--config", action="append", metavar="KEY=VALUE",
                     help="override a core config value (see ustack.core.config), repeatable")
    link.add_argument("--duration", type=float, default=0,
                     help="stop by itself after S seconds (0 = run until signalled)")
    link.add_argument("--mtu", type=int, default=None, help="link MTU (default 1500)")
    link.add_argument("--dns", action="append", metavar="SERVER",
                     help="a DNS server (IPv4 address) for getaddrinfo/gethostbyname, repeatable "
                          "(at most 3, asked in order); the search domain is --config "
                          "DNS_SEARCH=example.com")
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
                                     "-c code). The 'ready' line and counters go to stderr.")
    run.add_argument("prog", nargs=argparse.REMAINDER, help="-- python prog.py [args]")
    ping = sub.add_parser("ping", help="bring the stack up and ping an address from it")
    ping.add_argument("dest")
    ping.add_argument("-c", "--count", type=int, default=4)
    ping.add_argument("-s", "--size", type=int, default=56)
    ping.add_argument("-i", "--interval", type=float, default=1.0)
    for a in ("--board", "--tap", "--ip", "--gateway", "--mac", "--host-ip", "--pcap"):
        ping.add_argument(a, default=None if a != "--board" else "pc_tap")
    sub.add_parser("info", help="print version, runtime and whether the core is compiled")
    add_control_parsers(sub)
    return p


def host_setup(tap, host_ip, mtu):
    """Configure the kernel side of the TAP (address, MTU, up)."""
    cmds = [["ip", "link", "set", "dev", tap, "up"]]
    if mtu:
        cmds.insert(0, ["ip", "link", "set", "dev", tap, "mtu", str(mtu)])
    if host_ip:
        cmds.insert(0, ["ip", "addr", "replace", host_ip, "dev", tap])
    for c in cmds:
        r = subprocess.run(c, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("ustack: %s failed: %s" % (" ".join(c), r.stderr.strip()))


def check_flags(r, flags_cfg):
    """Refuse a bad configuration before anything (TAP, namespace, child) is made: one line
    naming the flag (or the board) and the rule, exit status 1."""
    from ustack.core import config
    from ustack.core import stack
    from ustack.core.wire import ipv4 as ip4
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
        raise SystemExit("ustack: --config (with board %s): %s" % (r["board"].__name__.split(".")[-1],
                                                                   _bare(e)))
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
    try:
        ip4.parse_cidr(r["ip"])
    except ValueError:
        raise SystemExit("ustack: --ip %s: not an address/prefix like 192.0.2.2/24" % (r["ip"],))
    from ustack.core import dns
    try:
        dns.check_servers(r.get("dns") or [])
    except ValueError as e:
        raise SystemExit("ustack: --dns %s: %s" % (" ".join(map(str, r["dns"])),
                                                   str(e)[5:]))
    from ustack.ports.cpython.services import PORTS  # the same names on both runtimes
    for name in r["serve"].split(","):
        name = name.strip()
        if name and name not in PORTS:
            raise SystemExit("ustack: --serve %s: no such service (known: %s)"
                             % (name, ", ".join(sorted(PORTS))))
    for flag, key, check in (("--gateway", "gateway", stack.check_addr),
                             ("--mac", "mac", stack.check_mac)):
        if r[key] is not None:
            try:
                check(flag, r[key])
            except ValueError as e:
                raise SystemExit("ustack: %s" % (e,))


def _bare(e):
    m = str(e)
    return m[8:] if m.startswith("config: ") else m


def resolve(args):
    """Merge board values with flags, and check them (check_flags)."""
    board = load_board(args.board)
    cfg = dict(board_value(board, "CONFIG", {}) or {})
    flags_cfg = parse_config(getattr(args, "config", None))
    cfg.update(flags_cfg)
    mtu = getattr(args, "mtu", None)
    r = {
        "board": board,
        "driver": getattr(args, "driver", None) or board_value(board, "DRIVER", "tap"),
        "tap": args.tap or board_value(board, "TAP", "ustack0"),
        # a multi-queue TAP keeps the flows we talk to apart from a flood (hal/tap.py)
        "tap_queues": board_value(board, "TAP_QUEUES", 8),
        "ip": args.ip or board_value(board, "IP", "192.0.2.2/24"),
        "ip_flag": getattr(args, "ip", None),
        "dhcp": bool(getattr(args, "dhcp", None) or board_value(board, "DHCP", False)),
        "dhcp_hostname": board_value(board, "DHCP_HOSTNAME"),
        "gateway": args.gateway or board_value(board, "GATEWAY"),
        "mac": args.mac or board_value(board, "MAC", "02:00:00:00:00:02"),
        "host_ip": args.host_ip or board_value(board, "HOST_IP"),
        "mtu": mtu if mtu is not None else 1500,
        "config": cfg,
        "features": board_value(board, "FEATURES", ("tcp",)),
        "dns": getattr(args, "dns", None) or list(board_value(board, "DNS", ()) or ()),
        "serve": getattr(args, "serve", None) or "",
    }
    check_flags(r, flags_cfg)
    return r


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
    if kind == "tap":
        from ustack.hal.tap import Tap
        drv = Tap(r["tap"], mac=mac, mtu=r["mtu"], queues=r["tap_queues"])
    else:
        from ustack.ports.cpython import simdrivers
        drv = simdrivers.make(kind, r, mac)
    host_setup(r["tap"], r["host_ip"], r["mtu"])
    if pcap:
        from ustack.hal.pcap import Pcap
        drv = Pcap(drv, pcap)
    return drv


def open_driver(r, pcap=None):
    """make_driver, with OS errors turned into one clear line instead of a traceback."""
    try:
        return make_driver(r, pcap)
    except OSError as e:
        hint = " (needs root or CAP_NET_ADMIN)" if e.errno in (1, 13) else ""
        raise SystemExit("ustack: cannot open the %s link %r: %s%s" % (
            r["driver"], r["tap"], e.strerror or e, hint))


def log_line(line):
    """The stack's log hook (an exception caught in poll): stderr, stdout keeps its lines."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


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
        st.start_dhcp(iface, hostname=r.get("dhcp_hostname"))
        return st
    a, p = ip4.parse_cidr(r["ip"])
    st.add_interface("eth0", drv, ip=a, prefix=p, gateway=r["gateway"], mtu=r["mtu"])
    if r.get("dns"):
        st.dns.set_servers(r["dns"])
    return st


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


def cmd_up(args):
    if args.runtime == "micropython":
        from ustack.ports.micropython import runtime as mpr
        return mpr.run_up(args)
    import ustack
    from ustack.ports.cpython.runner import Runner
    from ustack.ports.cpython import services
    from ustack.ports.cpython import ctlcli
    r = resolve(args)
    check_up_flags(args)
    control = ctlcli.open_control(args, r)  # before the link: a name in use is refused first
    try:
        drv = open_driver(r, args.pcap)
    except BaseException:
        if control is not None:
            control.close()
        raise
    st = make_stack(r, drv)
    runner = Runner(st)
    started = services.start(runner, args.serve.split(","), args.http_root) if args.serve else []
    stop = []    # plain flags: a signal handler must not take locks the main thread may hold
    status = []

    def on_signal(signum, frame):
        stop.append(signum)

    def on_status(signum, frame):
        status.append(signum)
    # SIGHUP (the terminal went away) ends the run like SIGTERM, counters printed
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGUSR1, on_status)
    runner.start()
    if control is not None:
        control.attach(runner)
    iface = st.ifaces[0]
    from ustack.core.wire import ipv4 as ip4
    from ustack.core.wire.ethernet import mac_str
    t0 = time.monotonic()
    extra = ""
    if st.dhcp is not None:
        lease = wait_for_lease(st, runner.lock, lambda: stop or (
            args.duration and time.monotonic() - t0 >= args.duration))
        if lease is not None:
            extra = " " + lease_str(lease)
    if st.dhcp is None or extra:
        print("ready driver=%s tap=%s ip=%s/%d mac=%s runtime=cpython compiled=%s serve=%s "
              "name=%s%s" % (
                  r["driver"], r["tap"], ip4.ntoa(iface.ip), iface.prefix, mac_str(iface.mac),
                  ustack.compiled, ",".join(started) or "-", control.name if control else "-",
                  extra), flush=True)
    last = t0
    sampler = ctlcli.StatsLine(st, t0)
    try:
        while not stop:
            time.sleep(0.1)
            now = time.monotonic()
            if status:
                del status[:]
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
            print_counters(st, args.json)
            st.close()
    return 0


def check_up_flags(args):
    """`ustack up`'s own flags: one line naming the flag, before anything is made."""
    for flag, v in (("--stats-interval", args.stats_interval), ("--duration", args.duration)):
        if not v >= 0 or v == float("inf"):
            raise SystemExit("ustack: %s %s: seconds, 0 or more" % (flag, v))


# RFC 791: a datagram is at most 65535 bytes; less the 20-byte IPv4 and 8-byte ICMP headers
ICMP4_MAX_PAYLOAD = 65535 - 20 - 8


def check_ping_args(args):
    """One line naming the flag, as the kernel's ping does, before any link is opened."""
    from ustack.core.wire import ipv4 as ip4
    try:
        ip4.aton(args.dest)
    except ValueError:
        raise SystemExit("ustack ping: %s: not an IPv4 address (ping takes no names yet)"
                         % (args.dest,))
    if not 0 <= args.size <= ICMP4_MAX_PAYLOAD:
        raise SystemExit("ustack ping: -s/--size %d out of range: 0 to %d (the largest ICMP "
                         "payload over IPv4)" % (args.size, ICMP4_MAX_PAYLOAD))
    if args.count < 1:
        raise SystemExit("ustack ping: -c/--count %d: at least 1 packet" % args.count)
    if args.interval < 0:
        raise SystemExit("ustack ping: -i/--interval %g: not negative" % args.interval)


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


def cmd_ping(args):
    check_ping_args(args)
    from ustack.ports.cpython.runner import Runner
    r = resolve(args)
    drv = open_driver(r, args.pcap)
    st = make_stack(r, drv)
    runner = Runner(st)
    arrived = {}  # seq -> perf_counter() of the poll that took its reply in

    def on_poll():  # under the lock, right after each poll: the reply's arrival time
        if p.received != seen[0]:
            seen[0] = p.received
            arrived[last_seq[0]] = time.perf_counter()
    with runner.lock:
        p = st.icmp.pinger(args.dest, args.size)
    seen = [0]
    last_seq = [-1]
    runner.hooks.append(on_poll)
    runner.start()
    rtts = []
    t_start = time.monotonic()
    try:
        print("PING %s %d(%d) bytes of data." % (args.dest, args.size, args.size + 28), flush=True)
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
        pass  # Ctrl-C ends the run with the summary, as Linux's ping does
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
    r = resolve(args)
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
    sys.stderr.write("ready driver=%s tap=%s ip=%s/%d runtime=cpython compiled=%s serve=%s%s\n" % (
        r["driver"], r["tap"], ip4.ntoa(iface.ip), iface.prefix, ustack.compiled,
        ",".join(started) or "-", extra))
    sys.stderr.flush()
    code = 0
    try:
        _run_program(prog)
        for t in threading.enumerate():  # as the interpreter does at exit: non-daemon threads
            if t is not threading.current_thread() and not t.daemon and t is not host.runner.thread:
                t.join()
    except SystemExit as e:
        code = e.code
    finally:
        socketmod.unpatch()
        host.runner.stop()
        with host.lock:
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


CONTROL_CMDS = ("addr", "route", "neigh", "ss", "stats", "capture", "config")


def cmd_control(args):
    from ustack.ports.cpython import ctlcli
    return ctlcli.run(args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
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
