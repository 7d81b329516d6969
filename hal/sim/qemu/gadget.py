"""Guest side: a configfs USB gadget on dummy_udc (the kernel's own ECM/NCM/EEM/RNDIS
function drivers), plus tiny network helpers. Runs inside the QEMU guest of guest.py as root
(the host root is read-only there; configfs, sysfs and devtmpfs are mounted by the init).

    g = Gadget("ncm", host_addr="02:00:00:00:00:99")
    g.create()                        # binds to dummy_udc.0; the host side enumerates it
    ifname = g.ifname                 # "usb0": the gadget's kernel netdev
    ip_addr(ifname, "192.0.2.1/24")
    ...
    g.remove()
"""
import os
import shutil
import subprocess
import time

CONFIGFS = "/sys/kernel/config/usb_gadget"
FUNCTIONS = {"ecm": "ecm", "ncm": "ncm", "eem": "eem", "rndis": "rndis", "subset": "geth"}


def _w(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _r(path):
    with open(path) as f:
        return f.read().strip()


class Gadget:
    def __init__(self, kind="ecm", name="ustack", vid=0x1D6B, pid=0x0104, instance="usb0",
                 dev_addr="02:00:00:00:00:01", host_addr="02:00:00:00:00:99", udc=None,
                 manufacturer="ustack", product=None, serial="0123456789"):
        if kind not in FUNCTIONS:
            raise ValueError("unknown gadget function %r" % kind)
        self.kind = kind
        self.base = os.path.join(CONFIGFS, name)
        self.vid = vid
        self.pid = pid
        self.func = "%s.%s" % (FUNCTIONS[kind], instance)
        self.dev_addr = dev_addr
        self.host_addr = host_addr
        self.udc = udc
        self.manufacturer = manufacturer
        self.product = product or "ustack %s gadget" % kind.upper()
        self.serial = serial
        self.created = False

    @staticmethod
    def udcs():
        try:
            return sorted(os.listdir("/sys/class/udc"))
        except OSError:
            return []

    def create(self):
        if not os.path.isdir(CONFIGFS):
            raise RuntimeError("%s missing: configfs/libcomposite not loaded" % CONFIGFS)
        udcs = self.udcs()
        udc = self.udc or (udcs[0] if udcs else None)
        if udc is None:
            raise RuntimeError("no UDC (dummy_hcd not loaded?)")
        b = self.base
        os.mkdir(b)
        self.created = True
        _w(b + "/idVendor", "0x%04x" % self.vid)
        _w(b + "/idProduct", "0x%04x" % self.pid)
        _w(b + "/bcdDevice", "0x0100")
        _w(b + "/bcdUSB", "0x0200")
        os.makedirs(b + "/strings/0x409")
        _w(b + "/strings/0x409/manufacturer", self.manufacturer)
        _w(b + "/strings/0x409/product", self.product)
        _w(b + "/strings/0x409/serialnumber", self.serial)
        os.makedirs(b + "/configs/c.1/strings/0x409")
        _w(b + "/configs/c.1/strings/0x409/configuration", self.kind.upper())
        _w(b + "/configs/c.1/MaxPower", "120")
        f = b + "/functions/" + self.func
        os.mkdir(f)
        if self.dev_addr and os.path.exists(f + "/dev_addr"):
            _w(f + "/dev_addr", self.dev_addr)
        if self.host_addr and os.path.exists(f + "/host_addr"):
            _w(f + "/host_addr", self.host_addr)
        os.symlink(f, b + "/configs/c.1/" + self.func)
        _w(b + "/UDC", udc)
        self.udc = udc
        return self

    @property
    def ifname(self):
        return _r(self.base + "/functions/" + self.func + "/ifname")

    def remove(self):
        if not self.created:
            return
        b = self.base
        try:
            _w(b + "/UDC", "\n")
        except OSError:
            pass
        for p in (b + "/configs/c.1/" + self.func,):
            if os.path.islink(p):
                os.unlink(p)
        for d in (b + "/configs/c.1/strings/0x409", b + "/configs/c.1", b + "/functions/" + self.func,
                  b + "/strings/0x409", b):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.created = False


def _ip_cmd():
    ip = shutil.which("ip")
    if ip:
        return [ip]
    bb = shutil.which("busybox")
    if bb:
        return [bb, "ip"]
    raise RuntimeError("no ip command")


def ip(*args):
    r = subprocess.run(_ip_cmd() + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def ip_addr(ifname, cidr):
    ip("addr", "add", cidr, "dev", ifname)
    ip("link", "set", ifname, "up")


def netdev_stats(ifname):
    d = "/sys/class/net/%s/statistics" % ifname
    return {k: int(_r(os.path.join(d, k))) for k in os.listdir(d)}


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def usb_driver_of(vid, pid, ifnum=0):
    """Name of the kernel driver bound to interface ifnum of the device vid:pid, or None."""
    root = "/sys/bus/usb/devices"
    for d in os.listdir(root):
        p = os.path.join(root, d)
        try:
            if int(_r(p + "/idVendor"), 16) != vid or int(_r(p + "/idProduct"), 16) != pid:
                continue
        except (OSError, ValueError):
            continue
        for sub in os.listdir(root):
            if not sub.startswith(d + ":"):
                continue
            q = os.path.join(root, sub)
            try:
                if int(_r(q + "/bInterfaceNumber"), 16) != ifnum:
                    continue
            except (OSError, ValueError):
                continue
            drv = q + "/driver"
            return os.path.basename(os.readlink(drv)) if os.path.islink(drv) else None
    return None
