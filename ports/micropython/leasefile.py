"""The remembered DHCP lease (`ustack up --dhcp --dhcp-lease-file PATH`, the board setting
DHCP_LEASE_FILE); MicroPython and CPython alike.

RFC 2131 3.2: a client that remembers an address whose lease has not expired starts in
INIT-REBOOT - one REQUEST for that address, no DISCOVER - instead of INIT. The file is one
JSON object, written each time a lease is bound or renewed:

    {"ip": "192.0.2.50", "expires": 1765000000, "server": "192.0.2.1", "lease_s": 120}

`expires` is the lease's end in seconds since the epoch (null for an infinite lease). A NAKed
or expired lease removes the file (core/dhcp.py forgets the address then); RELEASE on
shutdown keeps it, so the next start asks for the same address again. A board without a
real-time clock cannot tell an expired lease: it asks for the address once, and the server's
NAK (or its silence, core/dhcp.py REBOOT_TRIES) sends it back to DISCOVER.
"""
import json
import os
import time

from ustack.core import dhcp
from ustack.core.wire import ipv4 as ip4


def load(path, now=None):
    """The remembered address (text) when PATH holds a lease that has not expired, else
    None (no file, an unreadable one, an expired lease)."""
    try:
        with open(path) as f:
            rec = json.load(f)
        ip = rec["ip"]
        exp = rec.get("expires")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        a = ip4.aton(ip)
    except (ValueError, TypeError, AttributeError):
        return None
    if not dhcp.host_addr_ok(a, 0):
        return None
    if exp is not None:
        if not isinstance(exp, (int, float)) or exp <= (time.time() if now is None else now):
            return None
    return ip


def save(path, lease, now=None):
    now = time.time() if now is None else now
    rem = lease.get("remaining_s")
    rec = {"ip": lease["ip"], "expires": None if rem is None else int(now + rem),
           "server": lease["server"], "lease_s": lease["lease_s"]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
        f.write("\n")
    try:
        os.rename(tmp, path)  # never a half-written file after a crash (POSIX: replaces)
    except OSError:
        _remove(path)  # a board's FAT will not rename over a file
        os.rename(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass  # there was none


def follow(client, path):
    """Keep PATH in step with the client: wraps its on_change hook (stack._dhcp_changed)."""
    inner = client.on_change

    def on_change(c):
        if inner is not None:
            inner(c)
        lease = c.lease()
        try:
            if lease is not None:
                save(path, lease)
            elif not c.have_remembered:
                _remove(path)
        except OSError as e:
            c.stack.log("ustack: --dhcp-lease-file %s: %s" % (path, e))
    client.on_change = on_change
