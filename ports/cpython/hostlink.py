"""The kernel's side of ustack's links, through rtnetlink on a plain socket instead of shelling
out to `ip`: the address, MTU and state of the TAP's host end (--host-ip), the veth pair of
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
import os
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


# rtnetlink (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h,
# linux/veth.h): the few messages ustack sends, spoken on a plain socket. pyroute2 did this
# before, but importing it mapped about 22 MB into every `ustack up` (sqlite3, ssl, asyncio,
# its whole package): half the idle stack's RSS (issue 13)
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFINFO = "=BxHiII"   # struct ifinfomsg: family, type, index, flags, change
IFADDR = "=BBBBI"    # struct ifaddrmsg: family, prefixlen, flags, scope, index
NLHDR = "=IHHII"     # struct nlmsghdr: length, type, flags, sequence, port


def _attr(kind, data):
    """One rtattr, padded to 4 bytes."""
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n & 3)


def _attrs(b, o):
    """The rtattrs of b[o:] as {type: bytes} (the last of a type wins)."""
    out = {}
    while o + 4 <= len(b):
        n, kind = struct.unpack_from("=HH", b, o)
        if n < 4:
            break
        out[kind & 0x3FFF] = b[o + 4:o + n]
        o += (n + 3) & ~3
    return out


def _name(name):
    return name.encode() + b"\0"


class Netlink:
    """One rtnetlink socket in the current network namespace."""

    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self.sock.bind((0, 0))
            self.sock.settimeout(10)   # a kernel that never answers: an error, not a hang
        except OSError as e:
            raise explain(e, "netlink", "cannot open a netlink socket")
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _do(self, what, name, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except (OSError, ValueError) as e:
            raise explain(e, name, what)

    def request(self, kind, flags, body):
        """Send one request; the messages answering it as (type, payload), up to its ACK
        (or a dump's end). The kernel's refusal: OSError with its errno."""
        self.seq += 1
        seq = self.seq
        self.sock.send(struct.pack(NLHDR, 16 + len(body), kind, NLM_F_REQUEST | flags, seq, 0)
                       + body)
        out = []
        while True:
            b = self.sock.recv(65536)
            o = 0
            while o + 16 <= len(b):
                n, t, _, s, _ = struct.unpack_from(NLHDR, b, o)
                if n < 16:
                    return out
                payload = b[o + 16:o + n]
                o += (n + 3) & ~3
                if s != seq:
                    continue
                if t == NLMSG_DONE:
                    return out
                if t == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                    return out
                out.append((t, payload))

    def new_link(self, name, kind, flags=NLM_F_CREATE | NLM_F_EXCL, extra=b""):
        """A new interface `name` of link kind `kind` (`ip link add NAME type KIND`)."""
        info = _attr(IFLA_INFO_KIND, kind.encode()) + extra
        self.request(RTM_NEWLINK, NLM_F_ACK | flags, struct.pack(IFINFO, 0, 0, 0, 0, 0) +
                     _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_LINKINFO, info))

    def set_link(self, index, mtu=None, up=False):
        attrs = _attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""
        self.request(RTM_NEWLINK, NLM_F_ACK, struct.pack(
            IFINFO, 0, 0, index, IFF_UP if up else 0, IFF_UP if up else 0) + attrs)

    def link(self, index=0, name=None):
        """(flags, mtu) of the interface with this index (or name)."""
        body = struct.pack(IFINFO, 0, 0, index, 0, 0)
        if name is not None:
            body += _attr(IFLA_IFNAME, _name(name))
        for t, p in self.request(RTM_GETLINK, NLM_F_ACK, body):
            if t == RTM_NEWLINK:
                _, _, i, flags, _ = struct.unpack_from(IFINFO, p)
                mtu = _attrs(p, 16).get(IFLA_MTU)
                return i, flags, struct.unpack("=I", mtu)[0] if mtu else 0
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def _lookup(self, name):
        """The interface's index, 0 when there is none."""
        check_ifname(name, "interface")
        try:
            return self.link(name=name)[0]
        except OSError as e:
            if e.errno == errno.ENODEV:
                return 0
            raise

    def index(self, name):
        """The interface's index; HostError 'no interface NAME' when there is none."""
        i = self._do(None, name, self._lookup, name)
        if not i:
            raise HostError(MESSAGES[errno.ENODEV] % {"name": name})
        return i

    def exists(self, name):
        return bool(self._do(None, name, self._lookup, name))

    def _addr(self, kind, flags, index, a, p, family, aflags=0):
        raw = socket.inet_pton(family, a)
        self.request(kind, NLM_F_ACK | flags, struct.pack(IFADDR, family, p, aflags, 0, index)
                     + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw))

    def _addrs(self, index, family):
        """The addresses of `family` on the interface as 'A/P' strings."""
        out = []
        for t, p in self.request(RTM_GETADDR, NLM_F_DUMP, struct.pack(IFADDR, family, 0, 0, 0,
                                                                       0)):
            if t != RTM_NEWADDR:
                continue
            fam, plen, _, _, i = struct.unpack_from(IFADDR, p)
            a = _attrs(p, 8)
            raw = a.get(IFA_ADDRESS) or a.get(IFA_LOCAL)
            if i == index and fam == family and raw:
                out.append("%s/%d" % (socket.inet_ntop(family, raw), plen))
        return out

    def configure(self, name, host_ip=None, mtu=None):
        """The host end of a link: MTU, address and up, each changed only when it is not so
        already (a TAP an administrator prepared then needs no CAP_NET_ADMIN). True when it
        added an address that was not there."""
        i = self.index(name)
        _, flags, have_mtu = self._do(None, name, self.link, i)
        if mtu and have_mtu != mtu:
            self._do("cannot set MTU %d on %s" % (mtu, name), name, self.set_link, i, mtu)
        added = False
        if host_ip:
            a, p = _cidr(host_ip)
            added = "%s/%d" % (a, p) not in self.addrs(name)
            if added:
                self._do("cannot add %s to %s" % (host_ip, name), name, self._addr,
                         RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, i, a, p, socket.AF_INET)
        if not flags & IFF_UP:
            self._do("cannot bring %s up" % name, name, self.set_link, i, None, True)
        return added

    def del_addr(self, name, host_ip):
        a, p = _cidr(host_ip)
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        self._do("cannot remove %s from %s" % (host_ip, name), name, self._addr, RTM_DELADDR,
                 0, self.index(name), a, p, fam)

    def configure6(self, name, host_ip6):
        """An IPv6 address/prefix on the host end (`ip -6 addr replace`); the link comes up
        with configure(). True when it added one that was not there."""
        a, p = _cidr(host_ip6)
        i = self.index(name)
        try:
            want = "%s/%d" % (socket.inet_ntop(socket.AF_INET6, socket.inet_pton(
                socket.AF_INET6, a)), p)   # as the kernel's list spells it
        except (OSError, ValueError):
            raise HostError("cannot add %s to %s: not an IPv6 address" % (host_ip6, name))
        if want in self._do(None, name, self._addrs, i, socket.AF_INET6):
            return False
        # without DAD (IFA_F_NODAD, `ip addr add ... nodad`): the stack runs its own DAD on
        # its addresses, and the kernel's must be usable at `ready` (a tentative one is no
        # source: its first packets would leave from another address, RFC 4862 5.4)
        self._do("cannot add %s to %s" % (host_ip6, name), name, self._addr, RTM_NEWADDR,
                 NLM_F_CREATE | NLM_F_REPLACE, i, a, p, socket.AF_INET6, IFA_F_NODAD)
        return True

    def addrs(self, name):
        """The IPv4 addresses on `name` as 'A/P' strings."""
        return self._do(None, name, self._addrs, self.index(name), socket.AF_INET)

    def add_veth(self, name, peer, peer_mac=None, mtu=None):
        """A veth pair `name` <-> `peer` (both checked first), the peer end up."""
        check_ifname(name, "interface")
        check_ifname(peer, "interface")
        pa = _attr(IFLA_IFNAME, _name(peer))
        if peer_mac:
            pa += _attr(IFLA_ADDRESS, bytes(peer_mac))
        if mtu:
            pa += _attr(IFLA_MTU, struct.pack("=I", mtu))
        data = _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, struct.pack(
            IFINFO, 0, 0, 0, 0, 0) + pa))
        taken = peer if self.exists(peer) else name
        self._do("cannot create the veth pair %s/%s" % (name, peer), taken,
                 self._new_veth, name, mtu, data)
        self._do("cannot bring %s up" % peer, peer, self.set_link, self.index(peer), None,
                 True)

    def _new_veth(self, name, mtu, data):
        body = struct.pack(IFINFO, 0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name))
        if mtu:
            body += _attr(IFLA_MTU, struct.pack("=I", mtu))
        body += _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"veth") + data)
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def delete(self, name):
        """Delete the interface (a veth: both ends, and the addresses on them). False when it
        was gone already."""
        i = self._do(None, name, self._lookup, name)
        if not i:
            return False
        self._do("cannot delete %s" % name, name, self.request, RTM_DELLINK, NLM_F_ACK,
                 struct.pack(IFINFO, 0, 0, i, 0, 0))
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
