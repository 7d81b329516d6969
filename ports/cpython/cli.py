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
    up = sub.add_parser("up", help="run the stack as a long-lived process",
                        description="Run the stack on a link until SIGINT/SIGTERM. Prints 'ready ...' "
                                    "when it answers and its counters when it stops.")
    up.add_argument("--board", default="pc_tap", help="board config in ustack.boards (default pc_tap)")
    up.add_argument("--driver", choices=DRIVERS, default=None,
                    help="link driver (default: the board's; tap). sim-* run a virtual device whose "
                         "wire is bridged to the TAP; usb*, enc28j60, w5500 drive real hardware "
                         "named by the board (USB/BUS/PINS)")
    up.add_argument("--runtime", choices=RUNTIMES, default="cpython",
                    help="run the core under CPython (default) or the MicroPython unix port "
                         "behind a TAP bridge")
    up.add_argument("--tap", default=None, help="TAP device name (default: the board's, ustack0)")
    up.add_argument("--ip", default=None, help="the stack's address/prefix, e.g. 192.0.2.2/24")
    up.add_argument("--gateway", default=None, help="default gateway address")
    up.add_argument("--mac", default=None, help="the stack's MAC, e.g. 02:00:00:00:00:02")
    up.add_argument("--host-ip", default=None,
                    help="configure the kernel side of the TAP with this address/prefix and bring "
                         "it up (needs CAP_NET_ADMIN), so one command gives a reachable host")
    up.add_argument("--serve", default="",
                    help="comma-separated built-in services: echo (7), discard (9) over UDP and "
                         "TCP; chargen (19), http (80) over TCP")
    up.add_argument("--http-root", default=None, help="directory served by the http service")
    up.add_argument("--pcap", default=None, help="write every frame in and out to this pcap file")
    up.add_argument("--stats-interval", type=float, default=0,
                    help="print counters every S seconds (0 = only at exit)")
    up.add_argument("--config", action="append", metavar="KEY=VALUE",
                    help="override a core config value (see ustack.core.config), repeatable")
    up.add_argument("--duration", type=float, default=0,
                    help="stop by itself after S seconds (0 = run until signalled)")
    up.add_argument("--mtu", type=int, default=None, help="link MTU (default 1500)")
    up.add_argument("--json", action="store_true", help="print the exit counters as one JSON line")
    ping = sub.add_parser("ping", help="bring the stack up and ping an address from it")
    ping.add_argument("dest")
    ping.add_argument("-c", "--count", type=int, default=4)
    ping.add_argument("-s", "--size", type=int, default=56)
    ping.add_argument("-i", "--interval", type=float, default=1.0)
    for a in ("--board", "--tap", "--ip", "--gateway", "--mac", "--host-ip", "--pcap"):
        ping.add_argument(a, default=None if a != "--board" else "pc_tap")
    sub.add_parser("info", help="print version, runtime and whether the core is compiled")
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


def resolve(args):
    """Merge board values with flags."""
    board = load_board(args.board)
    cfg = dict(board_value(board, "CONFIG", {}) or {})
    cfg.update(parse_config(getattr(args, "config", None)))
    return {
        "board": board,
        "driver": getattr(args, "driver", None) or board_value(board, "DRIVER", "tap"),
        "tap": args.tap or board_value(board, "TAP", "ustack0"),
        # a multi-queue TAP keeps the flows we talk to apart from a flood (hal/tap.py)
        "tap_queues": board_value(board, "TAP_QUEUES", 8),
        "ip": args.ip or board_value(board, "IP", "192.0.2.2/24"),
        "gateway": args.gateway or board_value(board, "GATEWAY"),
        "mac": args.mac or board_value(board, "MAC", "02:00:00:00:00:02"),
        "host_ip": args.host_ip or board_value(board, "HOST_IP"),
        "mtu": getattr(args, "mtu", None) or 1500,
        "config": cfg,
        "features": board_value(board, "FEATURES", ("tcp",)),
    }


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


def make_stack(r, drv):
    from ustack.core.stack import Stack
    from ustack.core.wire import ipv4 as ip4
    st = Stack(r["config"], features=r["features"])
    st.seed(int.from_bytes(os.urandom(4), "big"))
    if st.tcp is not None and hasattr(st.tcp, "set_secret"):
        st.tcp.set_secret(os.urandom(16))
    a, p = ip4.parse_cidr(r["ip"])
    st.add_interface("eth0", drv, ip=a, prefix=p, gateway=r["gateway"], mtu=r["mtu"])
    return st


def print_counters(st, as_json=False, out=sys.stdout):
    c = st.counters()
    for i in st.ifaces:
        rep = getattr(i.driver, "report", None)  # the link's own figures (hal/tap.py: drops
        if rep is not None:                      # at the TAP's queues)
            rep(c)
    if as_json:
        out.write("counters " + json.dumps(c, sort_keys=True) + "\n")
    else:
        out.write("counters:\n")
        for k in sorted(c):
            out.write("  %-32s %d\n" % (k, c[k]))
    out.flush()


def cmd_up(args):
    if args.runtime == "micropython":
        from ustack.ports.micropython import runtime as mpr
        return mpr.run_up(args)
    import ustack
    from ustack.ports.cpython.runner import Runner
    from ustack.ports.cpython import services
    r = resolve(args)
    drv = open_driver(r, args.pcap)
    st = make_stack(r, drv)
    runner = Runner(st)
    started = services.start(runner, args.serve.split(","), args.http_root) if args.serve else []
    stop = []  # a plain flag: a signal handler must not take locks the main thread may hold

    def on_signal(signum, frame):
        stop.append(signum)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    runner.start()
    iface = st.ifaces[0]
    from ustack.core.wire import ipv4 as ip4
    from ustack.core.wire.ethernet import mac_str
    print("ready driver=%s tap=%s ip=%s/%d mac=%s runtime=cpython compiled=%s serve=%s" % (
        r["driver"], r["tap"], ip4.ntoa(iface.ip), iface.prefix, mac_str(iface.mac),
        ustack.compiled, ",".join(started) or "-"), flush=True)
    t0 = time.monotonic()
    last = t0
    try:
        while not stop:
            time.sleep(0.1)
            now = time.monotonic()
            if args.duration and now - t0 >= args.duration:
                break
            if args.stats_interval and now - last >= args.stats_interval:
                last = now
                with runner.lock:
                    print_counters(st, True)
    finally:
        runner.stop()
        with runner.lock:
            print_counters(st, args.json)
            st.close()
    return 0


def cmd_ping(args):
    from ustack.ports.cpython.runner import Runner
    r = resolve(args)
    drv = open_driver(r, args.pcap)
    st = make_stack(r, drv)
    runner = Runner(st).start()
    try:
        time.sleep(0.05)
        with runner.lock:
            p = st.icmp.pinger(args.dest, args.size)
        print("PING %s %d bytes of data" % (args.dest, args.size), flush=True)
        for seq in range(args.count):
            t0 = time.monotonic()
            with runner.lock:
                p.send(seq, st.now)
                want = p.received + 1
                ok = st.wait(lambda: p.received >= want, 2.0)
            if ok:
                print("reply from %s: icmp_seq=%d time=%d ms" % (args.dest, seq, p.rtts[-1]), flush=True)
            else:
                print("no reply for icmp_seq=%d" % seq, flush=True)
            rest = args.interval - (time.monotonic() - t0)
            if rest > 0 and seq + 1 < args.count:
                time.sleep(rest)
        print("%d packets transmitted, %d received" % (p.sent, p.received))
        return 0 if p.received else 1
    finally:
        runner.stop()
        st.close()


def cmd_info():
    import ustack
    print("ustack %s python=%s compiled=%s" % (ustack.__version__, sys.version.split()[0], ustack.compiled))
    return 0


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.cmd == "up":
        return cmd_up(args)
    if args.cmd == "ping":
        return cmd_ping(args)
    if args.cmd == "info":
        return cmd_info()
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
