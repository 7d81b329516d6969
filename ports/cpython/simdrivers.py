"""`ustack up --driver ...` for links other than a plain TAP. Each builds the real driver on top
of a virtual device (or a real kernel interface) whose other side reaches the Linux kernel
through the TAP named by --tap, so the same flags and tests work for every driver:

    sim-usb-ecm / sim-usb-ncm   UsbEcm/UsbNcm over pyusb -> in-process virtual CDC device -> TAP
    sim-enc28j60 / sim-w5500    the SPI chip driver -> register-level virtual chip -> TAP
    slip-pty                    SlipLink over a pty -> SLIP/Ethernet proxy (answers ARP) -> TAP
    afpacket                    AF_PACKET on one end of a veth pair; --tap names the other end
"""
import atexit
import pty
import tty

from ustack.hal.afpacket import AfPacket
from ustack.hal.tap import Tap


class Bridged:
    """The stack's driver, plus a device whose wire side is joined to a TAP. Frames the TAP
    delivers are pushed into the device when the stack polls; frames the device puts on its
    wire go straight to the TAP."""

    def __init__(self, driver, tap, wire_rx, after_send=None, burst=1 << 30):
        self.driver = driver
        self.burst = burst  # frames moved per pump: a serial line must be read between frames
        self.tap = tap
        self.wire_rx = wire_rx
        self.after_send = after_send
        self.mac = driver.mac
        self.mtu = driver.mtu
        self.buf = bytearray(65536)
        self.bridged_in = 0

    def _pump(self):
        tap = self.tap
        k = self.burst
        while k:
            k -= 1
            n = tap.recv_into(self.buf)
            if not n:
                break
            self.bridged_in += 1
            self.wire_rx(bytes(self.buf[:n]))

    def recv_into(self, buf):
        self._pump()
        return self.driver.recv_into(buf)

    def send(self, buf, n):
        ok = self.driver.send(buf, n)
        if self.after_send is not None:
            self.after_send()
        return ok

    def poll_obj(self):
        return self.tap.fd

    def service(self):
        self._pump()
        self.driver.service()
        if self.after_send is not None:
            self.after_send()

    def link_up(self):
        return self.driver.link_up()

    def close(self):
        try:
            self.driver.close()
        finally:
            self.tap.close()

    def __getattr__(self, name):
        return getattr(self.driver, name)


def _tap_out(tap):
    return lambda frame: tap.send(frame, len(frame))


def usb(kind, tap, mac):
    from ustack.hal.sim.usb_backend import SimBackend
    from ustack.hal.sim.usb_cdc import CdcEcmDevice, CdcNcmDevice
    from ustack.hal.usb_cdc import find_nic
    if kind == "sim-usb-ecm":
        from ustack.hal.usb_ecm import UsbEcm as Driver
        model = CdcEcmDevice(mac=mac)
    else:
        from ustack.hal.usb_ncm import UsbNcm as Driver
        model = CdcNcmDevice(mac=mac)
    be = SimBackend()
    be.add(model)
    dev = find_nic(backend=be, vid=model.vid, pid=model.pid)
    drv = Driver(dev)
    model.on_wire_tx = _tap_out(tap)
    b = Bridged(drv, tap, model.wire_rx)
    b.model = model
    return b


def spi(kind, tap, mac):
    if kind == "sim-enc28j60":
        from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
        from ustack.hal.enc28j60 import Enc28j60 as Driver
    else:
        from ustack.hal.sim.w5500 import W5500Sim as Chip
        from ustack.hal.w5500 import W5500 as Driver
    chip = Chip()
    chip.on_wire_tx = _tap_out(tap)
    drv = Driver(chip, None, None, mac=mac)
    b = Bridged(drv, tap, chip.wire_rx)
    b.chip = chip
    return b


class SlipProxy:
    """The far end of a SLIP line, joined to an Ethernet TAP: answers ARP for the stack's
    address with its own MAC (proxy ARP) and carries IPv4 between the two."""

    def __init__(self, link, tap, mac, stack_ip):
        self.link = link
        self.tap = tap
        self.mac = mac
        self.ip = stack_ip
        self.host_mac = b"\xff" * 6
        self.buf = bytearray(65536)

    def from_tap(self, f):
        if len(f) < 14:
            return
        et = (f[12] << 8) | f[13]
        if et == 0x0806 and len(f) >= 42 and f[20:22] == b"\x00\x01" and f[38:42] == self.ip:
            self.host_mac = f[6:12]
            rep = f[6:12] + self.mac + b"\x08\x06" + f[14:20] + b"\x00\x02" + self.mac + \
                self.ip + f[22:28] + f[28:32]
            self.tap.send(rep, len(rep))
        elif et == 0x0800 and (f[0:6] == self.mac or f[0] & 1):
            self.host_mac = f[6:12]
            pkt = f[14:]
            self.link.send(pkt, len(pkt))

    def drain(self):
        while True:
            n = self.link.recv_into(self.buf)
            if not n:
                return
            fr = self.host_mac + self.mac + b"\x08\x00" + bytes(self.buf[:n])
            self.tap.send(fr, len(fr))


def slip(tap, mac, stack_ip):
    from ustack.hal.slip import SlipLink, FdUart
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    ours = SlipLink(FdUart(m, own=True))
    far = SlipLink(FdUart(s, own=True))
    proxy = SlipProxy(far, tap, mac, stack_ip)
    # one frame per pump: a pty holds only a few KB, and both ends are served by this thread
    b = Bridged(ours, tap, proxy.from_tap, after_send=proxy.drain, burst=1)
    b.proxy = proxy
    return b


class OwnedVeth(AfPacket):
    """AF_PACKET on the peer end of the veth pair `ustack up` made; closing it deletes the pair
    (and with it the host address on its host end). Only afpacket() below makes one, so
    ustack never deletes an interface it did not create."""

    def __init__(self, peer, made):
        AfPacket.__init__(self, peer)
        self.made = made   # the host end; None once deleted

    def close(self):
        try:
            AfPacket.close(self)
        finally:
            name, self.made = self.made, None
            if name is not None:
                from ustack.ports.cpython import hostlink
                with hostlink.Netlink() as nl:
                    nl.delete(name)


def afpacket(name, mac, mtu=None):
    """A veth pair NAME <-> NAMEp made here (refused, never replaced, when either name is
    taken), AF_PACKET on NAMEp; NAME is the host end --host-ip configures."""
    from ustack.ports.cpython import hostlink
    peer = name + "p"
    if len(peer.encode()) >= hostlink.IFNAMSIZ:
        raise hostlink.HostError("--tap %s: --driver afpacket names its veth pair %s and %sp: "
                                 "at most %d characters" % (name, name, name,
                                                            hostlink.IFNAMSIZ - 2))
    with hostlink.Netlink() as nl:
        for n in (name, peer):
            if nl.exists(n):
                raise hostlink.HostError(
                    "--tap %s: interface %s already exists; --driver afpacket makes its own "
                    "veth pair (%s, %s) and deletes nothing it did not make: name another "
                    "--tap (or remove %s yourself)" % (name, n, name, peer, n))
        nl.add_veth(name, peer, peer_mac=mac, mtu=mtu)
        try:
            # veth hands AF_PACKET the kernel's frames with checksums left to "hardware"
            # (offload): make the kernel finish them, as a real NIC's wire would carry them
            hostlink.tx_checksum_off(name)
            hostlink.ipv6_off(peer)  # no IPv6 chatter on the stack's end
            drv = OwnedVeth(peer, name)
        except BaseException:
            nl.delete(name)
            raise
    # a program that dies of an exception before it closes its link deletes the pair too
    atexit.register(drv.close)
    return drv


def make(kind, r, mac):
    if kind == "afpacket":
        return afpacket(r["tap"], mac, r["mtu"])
    if kind in ("sim-usb-ecm", "sim-usb-ncm"):
        # the virtual USB devices are usbip device models: checked before the TAP is made
        from ustack.ports.cpython.hwdrivers import need
        need("usbip.device", "--driver " + kind)
    tap = Tap(r["tap"], mac=b"\x02\x00\x00\x00\xfe\xfe", mtu=r["mtu"])
    if kind in ("sim-usb-ecm", "sim-usb-ncm"):
        return usb(kind, tap, mac)
    if kind in ("sim-enc28j60", "sim-w5500"):
        return spi(kind, tap, mac)
    if kind == "slip-pty":
        from ustack.core.wire import ipv4 as ip4
        a, _ = ip4.parse_cidr(r["ip"])
        return slip(tap, mac, a)
    raise SystemExit("ustack: unknown driver %r" % (kind,))
