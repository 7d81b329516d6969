"""Frames per second through each driver and its virtual device (`invoke bench`), written to
benchmarks/drivers.md; with root, TAP and AF_PACKET against the kernel too. The in-memory
wire (hal/loopback.py) is the baseline of the same run: the cost of the Driver interface
alone. SPI rows also say how many chip-select transactions
and bytes one frame costs, which is what bounds a real chip: at S Hz of SPI clock a frame of
B bus bytes cannot go faster than S / 8 / B frames/s. The portable drivers (ENC28J60, W5500)
are measured under the MicroPython unix port too.

    python -m benchmarks.drivers [--count N] [--out FILE]
"""
import argparse
import os
import platform
import pty
import subprocess
import sys
import time
import tty

from benchmarks.driver_rates import SIZES, rates, spi_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPI_HZ = 20000000  # both chips' usual SPI clock on a board (ENC28J60 max 20 MHz)


def loopback(size, count):
    from ustack.hal.loopback import Wire
    w = Wire()
    drv = w.port(b"\x02\x00\x00\x00\x00\x02")
    far = w.port(b"\x02\x00\x00\x00\x00\x01")
    return rates(drv, lambda f: far.send(f, len(f)), far.recv_into, size, count)


def usb(kind, size, count):
    from ustack.hal.sim.usb_backend import SimBackend
    from ustack.hal.sim.usb_cdc import CdcEcmDevice, CdcNcmDevice
    from ustack.hal.usb_cdc import find_nic
    if kind == "usb-ecm":
        from ustack.hal.usb_ecm import UsbEcm as Driver
        model = CdcEcmDevice()
    else:
        from ustack.hal.usb_ncm import UsbNcm as Driver
        model = CdcNcmDevice()
    be = SimBackend()
    be.add(model)
    drv = Driver(find_nic(backend=be, vid=model.vid, pid=model.pid))
    out = []

    def drain(buf):
        if not out:
            return 0
        f = out.pop(0)
        buf[:len(f)] = f
        return len(f)
    model.on_wire_tx = out.append
    try:
        return rates(drv, model.wire_rx, drain, size, count, service=drv.service)
    finally:
        drv.close()


def slip(size, count):
    """SlipLink to SlipLink over a pty pair (the frame is an IP packet: SLIP is L3)."""
    from ustack.hal.slip import FdUart, SlipLink
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    ours = SlipLink(FdUart(m, own=True))
    far = SlipLink(FdUart(s, own=True))
    size = min(size, 1500)
    try:
        return rates(ours, lambda f: far.send(f, len(f)), far.recv_into, size, count)
    finally:
        ours.close()
        far.close()


def kernel_rows_here(count):
    """TAP and AF_PACKET against the kernel; run inside a throwaway netns (kernel_rows). The
    far side is an AF_PACKET socket on the kernel's end: on the TAP's netdev, or on the other
    end of a veth pair."""
    from ustack.hal.afpacket import AfPacket
    from ustack.hal.tap import Tap

    def ip(*a):
        subprocess.run(["ip"] + list(a), check=True, capture_output=True)
    subprocess.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True)
    rows = []

    def measure_pair(name, drv, far, note):
        for size in SIZES:
            rx, tx = rates(drv, lambda f: far.send(f, len(f)), far.recv_into, size, count)
            rows.append((name, size, rx, tx, note))
        far.close()
        drv.close()
    tap = Tap("ubt0")
    ip("link", "set", "ubt0", "up")
    measure_pair("tap (Linux TAP)", tap, AfPacket("ubt0"), "far side: AF_PACKET on the TAP netdev")
    ip("link", "add", "uba0", "type", "veth", "peer", "name", "ubb0")
    ip("link", "set", "uba0", "up")
    ip("link", "set", "ubb0", "up")
    # a veth passes frames only once both ends have carrier (set asynchronously): a frame
    # sent before that is dropped, and the bench would call it lost
    end = time.monotonic() + 5
    while time.monotonic() < end and not all(
            open("/sys/class/net/%s/operstate" % n).read().strip() == "up" for n in ("uba0", "ubb0")):
        time.sleep(0.01)
    measure_pair("afpacket (veth pair)", AfPacket("uba0"), AfPacket("ubb0"),
                 "far side: AF_PACKET on the peer")
    return rows


def kernel_rows(count):
    """The TAP and AF_PACKET rows, measured in a namespace made for it (None without root)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return None
    from tests.netns import Netns
    ns = Netns("drvbench")
    try:
        r = ns.run([sys.executable, "-m", "benchmarks.drivers", "--kernel-rows-here",
                    "--count", str(count)], timeout=600)
    finally:
        ns.close()
    rows = []
    for line in r.stdout.splitlines():
        if line.startswith("krow\t"):
            _, dev, size, rx, tx, note = line.split("\t")
            rows.append((dev, int(size), int(rx), int(tx), note))
    if not rows:
        raise RuntimeError("kernel driver bench failed: %s" % (r.stdout + r.stderr)[-2000:])
    return rows


def micropython_spi_rows(count):
    """The SPI rows measured inside the MicroPython unix port (None when it is missing)."""
    try:
        from ustack.ports.micropython.stage import micropython_exe, stage_lib
        exe = micropython_exe()
    except (ImportError, FileNotFoundError):
        return None
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        stage_lib(d)
        os.symlink(os.path.join(ROOT, "benchmarks"), os.path.join(d, "benchmarks"))
        r = subprocess.run([exe, "-c", "import sys; sys.path.insert(0, '%s')\n"
                            "from benchmarks.driver_rates import main; main(%d)" % (d, count)],
                           capture_output=True, text=True, timeout=600, cwd=d)
    rows = []
    for line in r.stdout.splitlines():
        p = line.split()
        if p and p[0] == "row":
            rows.append((p[1], int(p[2]), int(p[3]), int(p[4]), float(p[5]), float(p[6]),
                         float(p[7])))
    if not rows:
        raise RuntimeError("micropython driver bench failed: %s" % (r.stdout + r.stderr)[-2000:])
    return rows


def measure(count):
    """-> list of (device, size, rx/s, tx/s, note) for every device, CPython first."""
    rows = []
    for size in SIZES:
        rx, tx = loopback(size, count)
        rows.append(("loopback (baseline)", size, rx, tx, "in-memory wire"))
    for kind, size, rx, tx, tr, by, drv_us in spi_rows(count):
        rows.append(("%s (virtual chip)" % kind, size, rx, tx,
                     "%.1f SPI transactions, %d bus bytes a frame (at most %d frames/s at 20 MHz); "
                     "driver %.1f us a frame" % (tr, by, SPI_HZ // 8 // by, drv_us)))
    for kind in ("usb-ecm", "usb-ncm"):
        for size in SIZES:
            rx, tx = usb(kind, size, count)
            rows.append(("%s (virtual CDC device, pyusb)" % kind, size, rx, tx,
                         "in-process pyusb backend"))
    for size in SIZES:
        rx, tx = slip(size, count)
        rows.append(("slip (pty pair)", min(size, 1500), rx, tx, "both ends SlipLink"))
    rows += kernel_rows(count) or []
    return rows


def render(rows, mp_rows, count):
    import ustack
    base = {r[1]: r for r in rows if r[0].startswith("loopback")}
    out = ["# ustack drivers: frames per second through each virtual device", "",
           "Measured %s on %s, %d cores; CPython %s, core %s. Each driver moves %d frames "
           "each way, lock-step (one frame in flight), every frame checked against what was "
           "sent. RX = the device's wire to `recv_into`, TX = `send` to the device's wire. "
           "Ratio = frames/s against the in-memory wire of the same run (RX+TX summed). The TAP "
           "and AF_PACKET rows run against the kernel in a throwaway namespace, and each frame "
           "there also costs the far side's own socket call. "
           "Regenerate with `python -m benchmarks.drivers`." % (
               time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count() or 1,
               platform.python_version(), "Cython-compiled" if ustack.compiled else "pure Python",
               count), "",
           "| device | frame (B) | RX frames/s | TX frames/s | vs loopback | notes |",
           "|---|---|---|---|---|---|"]
    for dev, size, rx, tx, note in rows:
        b = base.get(size) or base.get(1514)
        ratio = (rx + tx) / max(b[2] + b[3], 1)
        out.append("| %s | %d | %d | %d | %.3f | %s |" % (dev, size, rx, tx, ratio, note))
    if mp_rows:
        out += ["", "The same SPI drivers and virtual chips inside the MicroPython unix port:", "",
                "| device | frame (B) | RX frames/s | TX frames/s | SPI transactions/frame "
                "| bus bytes/frame | driver us/frame |",
                "|---|---|---|---|---|---|---|"]
        for kind, size, rx, tx, tr, by, drv_us in mp_rows:
            out.append("| %s (virtual chip) | %d | %d | %d | %.1f | %d | %.1f |"
                       % (kind, size, rx, tx, tr, by, drv_us))
        out += ["", "Driver us/frame is the time outside the virtual chip (the chip model's "
                "own time is subtracted): what the driver costs the CPU per frame, before the "
                "SPI clock. Frames/s include the model, which a real board does not run."]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "drivers.md"))
    ap.add_argument("--no-micropython", action="store_true")
    ap.add_argument("--readme", action="store_true", help="also show the results in README.md (between its markers)")
    ap.add_argument("--kernel-rows-here", action="store_true",
                    help="only the TAP/AF_PACKET rows, in this (throwaway) namespace")
    a = ap.parse_args()
    if a.kernel_rows_here:
        for r in kernel_rows_here(a.count):
            print("krow\t%s\t%d\t%d\t%d\t%s" % r)
        return
    rows = measure(a.count)
    mp_rows = None if a.no_micropython else micropython_spi_rows(a.count)
    text = render(rows, mp_rows, a.count)
    from benchmarks.bench import publish
    publish(text, a.out, "drivers" if a.readme else None)


if __name__ == "__main__":
    main()
