"""Shared by the examples: bring the stack up on a TAP (the seed's interface_config_t)."""
import argparse

from ustack.ports.cpython.host import open_stack


def stack_from_args(description, extra=None):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--tap", default="ustack0")
    ap.add_argument("--ip", default="192.0.2.2/24", help="address/prefix")
    ap.add_argument("--gateway", default=None)
    ap.add_argument("--mac", default="02:00:00:00:00:02")
    ap.add_argument("--host-ip", default=None, help="configure the kernel side of the TAP")
    if extra:
        extra(ap)
    a = ap.parse_args()
    net = open_stack(tap=a.tap, ip=a.ip, gateway=a.gateway, mac=a.mac, host_ip=a.host_ip)
    return net, a
