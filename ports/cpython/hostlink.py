"""The kernel's side of ustack's links, through netlink (pyroute2) instead of shelling out to
`ip`: the address, MTU and state of the TAP's host end (--host-ip), the veth pair of
--driver afpacket. CPython on Linux only; needs CAP_NET_ADMIN. What ustack makes it removes
(the veth pair; a host address added to a persistent TAP); what it did not make it never
deletes.

    with Netlink() as nl:
        nl.add_veth("ustk0", "ustk0p", peer_mac=b"\\x02\\0\\0\\0\\0\\x02", mtu=1500)
        nl.configure("ustk0", "192.0.2.1/24", 1500)     # address replaced, MTU set, up
        nl.delete("ustk0")                               # the pair and its address go

Every failure is a HostError whose message is one line naming the interface (or route) and
the cause, the kernel's errno mapped to what a user does about it (`MESSAGES`). Interface
names are checked before the kernel sees them: TUNSETIFF cuts a long name to 15 bytes
silently, so a too-long --tap would make a TAP of another name.
"""
import errno
import socket
import struct

IFNAMSIZ = 16  # linux/if.h: a name is at most 15 bytes and its NUL
IFF_UP = 0x1   # linux/if.h

# the kernel's errno -> the one line a user needs (%(name)s: the interface concerned)
# (tests/interop/test_hostlink.py meets each for real); any other: strerror and the number
MESSAGES = {
    errno.EEXIST: "interface %(name)s already exists",
    errno.EPERM: "needs root (CAP_NET_ADMIN)",
    errno.ENODEV: "no interface %(name)s",
    errno.ERANGE: "interface name %(name)r is longer than 15 characters (IFNAMSIZ)",
    errno.EADDRNOTAVAIL: "no such address on %(name)s",
}

# <linux/sockios.h>, <linux/ethtool.h>: legacy "set TX checksumming" (ethtool -K IF tx off)
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x00000017

IFA_F_NODAD = 0x02   # linux/if_addr.h: no duplicate address detection for this address


class HostError(Exception):
    """One line for the user: what could not be done to the host's interfaces, and why."""


def check_ifname(name, flag="--tap"):
    """An interface name the kernel takes as it is (dev_valid_name): 1..15 bytes, no '/',
    ':' or white space, not '.' or '..'."""
    if not isinstance(name, str) or not name:
        raise HostError("%s: give an interface name" % flag)
    if len(name.encode()) >= IFNAMSIZ:
        raise HostError("%s %s: longer than %d characters (IFNAMSIZ)" % (flag, name,
                                                                        IFNAMSIZ - 1))
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise HostError("%s %r: not an interface name (no '/', ':' or spaces)" % (flag, name))
    return name


def explain(e, name, what=None):
    """The HostError for an OSError/NetlinkError `e` met while doing `what` to `name`."""
    code = getattr(e, "code", None) or getattr(e, "errno", None) or 0
    msg = MESSAGES.get(code)
    why = msg % {"name": name} if msg else "%s (errno %d)" % (
        getattr(e, "strerror", None) or (e.args[1] if len(e.args) > 1 else e), code)
    return HostError("%s: %s" % (what, why) if what else why)


class Netlink:
    """One rtnetlink socket (pyroute2.IPRoute) in the current network namespace."""

    def __init__(self):
        try:
            from pyroute2 import IPRoute
        except ImportError:
            raise HostError("configuring the host's interfaces needs pyroute2 "
                            "(pip install pyroute2)")
        try:
            self.ipr = IPRoute()
        except OSError as e:
            raise explain(e, "netlink", "cannot open a netlink socket")

    def close(self):
        self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _do(self, what, name, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except (OSError, ValueError) as e:
            raise explain(e, name, what)
        except Exception as e:  # pyroute2's NetlinkError is not an OSError on every version
            if getattr(e, "code", None) is None:
                raise
            raise explain(e, name, what)

    def index(self, name):
        """The interface's index; HostError 'no interface NAME' when there is none."""
        check_ifname(name, "interface")
        found = self._do(None, name, self.ipr.link_lookup, ifname=name)
        if not found:
            raise HostError(MESSAGES[errno.ENODEV] % {"name": name})
        return found[0]

    def exists(self, name):
        return bool(self._do(None, name, self.ipr.link_lookup, ifname=name))

    def configure(self, name, host_ip=None, mtu=None):
        """The host end of a link: MTU, address and up, each changed only when it is not so
        already (a TAP an administrator prepared then needs no CAP_NET_ADMIN). True when it
        added an address that was not there."""
        i = self.index(name)
        link = self._do(None, name, self.ipr.get_links, i)[0]
        if mtu and link.get_attr("IFLA_MTU") != mtu:
            self._do("cannot set MTU %d on %s" % (mtu, name), name,
                     self.ipr.link, "set", index=i, mtu=mtu)
        added = False
        if host_ip:
            a, p = _cidr(host_ip)
            added = "%s/%d" % (a, p) not in self.addrs(name)
            if added:
                self._do("cannot add %s to %s" % (host_ip, name), name,
                         self.ipr.addr, "replace", index=i, address=a, prefixlen=p)
        if not link["flags"] & IFF_UP:
            self._do("cannot bring %s up" % name, name,
                     self.ipr.link, "set", index=i, state="up")
        return added

    def del_addr(self, name, host_ip):
        a, p = _cidr(host_ip)
        kw = {"family": socket.AF_INET6} if ":" in a else {}
        self._do("cannot remove %s from %s" % (host_ip, name), name,
                 self.ipr.addr, "del", index=self.index(name), address=a, prefixlen=p, **kw)

    def configure6(self, name, host_ip6):
        """An IPv6 address/prefix on the host end (`ip -6 addr replace`); the link comes up
        with configure(). True when it added one that was not there."""
        a, p = _cidr(host_ip6)
        i = self.index(name)
        have = ["%s/%d" % (m.get_attr("IFA_ADDRESS"), m["prefixlen"]) for m in
                self._do(None, name, self.ipr.get_addr, index=i, family=socket.AF_INET6)]
        if "%s/%d" % (a, p) in have:
            return False
        # without DAD (IFA_F_NODAD, `ip addr add ... nodad`): the stack runs its own DAD on
        # its addresses, and the kernel's must be usable at `ready` (a tentative one is no
        # source: its first packets would leave from another address, RFC 4862 5.4)
        self._do("cannot add %s to %s" % (host_ip6, name), name, self.ipr.addr, "replace",
                 index=i, address=a, prefixlen=p, family=socket.AF_INET6, flags=IFA_F_NODAD)
        return True

    def addrs(self, name):
        """The IPv4 addresses on `name` as 'A/P' strings."""
        out = []
        for m in self._do(None, name, self.ipr.get_addr, index=self.index(name),
                          family=socket.AF_INET):
            out.append("%s/%d" % (m.get_attr("IFA_ADDRESS"), m["prefixlen"]))
        return out

    def add_veth(self, name, peer, peer_mac=None, mtu=None):
        """A veth pair `name` <-> `peer` (both checked first), the peer end up."""
        check_ifname(name, "interface")
        check_ifname(peer, "interface")
        pk = {"ifname": peer}
        if peer_mac:
            pk["address"] = ":".join("%02x" % b for b in peer_mac)
        kw = {"ifname": name, "kind": "veth", "peer": pk}
        if mtu:
            kw["mtu"] = mtu
            pk["mtu"] = mtu
        taken = peer if self.exists(peer) else name
        self._do("cannot create the veth pair %s/%s" % (name, peer), taken,
                 self.ipr.link, "add", **kw)
        self._do("cannot bring %s up" % peer, peer,
                 self.ipr.link, "set", index=self.index(peer), state="up")

    def delete(self, name):
        """Delete the interface (a veth: both ends, and the addresses on them). False when it
        was gone already."""
        found = self._do(None, name, self.ipr.link_lookup, ifname=name)
        if not found:
            return False
        self._do("cannot delete %s" % name, name, self.ipr.link, "del", index=found[0])
        return True



def _cidr(s):
    if "/" not in s:
        raise HostError("%s: give the prefix too, e.g. %s/24" % (s, s))
    a, p = s.split("/", 1)
    return a, int(p)


def configure(name, host_ip=None, mtu=None):
    """The host end of a TAP or veth: address replaced, MTU set, up (what `ip addr replace`
    and `ip link set ... up` did). True when it added an address that was not there."""
    with Netlink() as nl:
        return nl.configure(name, host_ip, mtu)


def configure6(name, host_ip6):
    """The host end's IPv6 address (Netlink.configure6)."""
    with Netlink() as nl:
        return nl.configure6(name, host_ip6)


def exists(name):
    with Netlink() as nl:
        return nl.exists(name)


def remove_on_close(drv, name, host_ip):
    """drv.close() takes host_ip off `name` too: an interface ustack did not make (a
    persistent TAP, `ip tuntap add`) outlives it, and is left as it was found."""
    import atexit
    close = drv.close
    left = [host_ip]

    def remove():
        if left:
            del left[:]
            try:
                with Netlink() as nl:
                    nl.del_addr(name, host_ip)
            except HostError:
                pass  # the interface or the address went already

    def close_and_remove():
        try:
            close()
        finally:
            remove()
    drv.close = close_and_remove
    atexit.register(remove)  # also when the program dies before it closes its link


def tx_checksum_off(name):
    """`ethtool -K NAME tx off`: a veth leaves the checksums of the kernel's frames to the
    "hardware", so AF_PACKET on its peer would see them unfinished; this makes the kernel
    finish them as a real NIC's wire carries them. False when the device refused."""
    import ctypes
    import fcntl
    val = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    ifr = struct.pack("16sP", name.encode(), ctypes.addressof(val)).ljust(40, b"\0")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
        return True
    except OSError:
        return False
    finally:
        s.close()


def ipv6_off(name):
    """No IPv6 chatter (router solicitations, MLD, DAD) from the kernel on this interface."""
    try:
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % name, "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


def explain_open(e, kind, name):
    """One line for a link that would not open: the TAP's TUNSETIFF (or the veth's socket)."""
    if e.errno == errno.EINVAL and kind == "tap":
        try:
            with Netlink() as nl:
                if nl.exists(name):
                    return "interface %s exists and is not a TAP (name another --tap)" % name
        except HostError:
            pass
    if e.errno == errno.EBUSY and kind == "tap":
        return "TAP %s is in use by another process" % name
    if e.errno in (errno.EPERM, errno.EACCES):
        return "cannot open the %s link %r: needs root (CAP_NET_ADMIN)" % (kind, name)
    return "cannot open the %s link %r: %s" % (kind, name, e.strerror or e)
