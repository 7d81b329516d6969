"""Shared by the examples: bring the stack up on a TAP (the seed's interface_config_t)."""
import argparse
import os
import sys

from ustack.ports.cpython import cli
from ustack.ports.cpython.host import open_stack


def stack_from_args(description, extra=None):
    prog = os.path.basename(sys.argv[0])
    ap = cli.one_line_errors(argparse.ArgumentParser(description=description), prog)
    ap.add_argument("--tap", default="ustack0")
    ap.add_argument("--ip", default="192.0.2.2/24", help="address/prefix")
    ap.add_argument("--gateway", default=None)
    ap.add_argument("--mac", default="02:00:00:00:00:02")
    ap.add_argument("--host-ip", default=None, help="configure the kernel side of the TAP")
    if extra:
        extra(ap)
    a = ap.parse_args()
    # `ustack up`'s checks of the same flags: one line naming the flag, nothing made
    flags = argparse.Namespace(board="pc_tap", driver=None, config=[], mtu=None, tap=a.tap,
                               ip=a.ip, gateway=a.gateway, mac=a.mac, host_ip=a.host_ip)
    try:
        cli.check_link(cli.resolve(flags))
        if getattr(a, "port", None) is not None and not 0 < a.port < 65536:
            cli.refuse("--port", a.port, "a TCP/UDP port, 1..65535")
        if getattr(a, "count", None) is not None and a.count < 0:
            cli.refuse("--count", a.count, "0 (no limit) or more")
        if getattr(a, "interval", None) is not None:
            cli.check_seconds("--interval", a.interval)
    except SystemExit as e:
        raise cli.reword(e, prog)
    try:
        net = open_stack(tap=a.tap, ip=a.ip, gateway=a.gateway, mac=a.mac, host_ip=a.host_ip)
    except OSError as e:  # the kernel refused the link: its one line
        raise SystemExit("%s: %s" % (prog, e))
    return net, a
