"""Real hardware on a PC, selected by the board config: USB-Ethernet dongles through pyusb
(libusb), and SPI Ethernet chips through an FT232H (pyftdi) or Linux spidev.

    DRIVER = "usb-ecm" | "usb-ncm" | "usb"     USB = {"vid": 0x0bda, "pid": 0x8153} or {"bus": 1, "address": 7}
    DRIVER = "enc28j60" | "w5500"             BUS = {"kind": "ftdi", "url": "ftdi://ftdi:232h/1", "cs": 0,
                                                      "freq": 12e6, "mode": 0}
                                                 or {"kind": "spidev", "bus": 0, "dev": 0, "freq": 20e6}
                                              PINS = {"int": None, "rst": None}  (FT232H GPIO numbers)
Each maker takes injectable factories so tests build the same objects over simulators.
A module a board needs that is not installed ends the run in one line naming the board and
the pip extra that brings it (`need`)."""
import importlib

USB_KINDS = ("usb", "usb-ecm", "usb-ncm")
SPI_KINDS = ("enc28j60", "w5500")

# optional module -> what to pip install (the extras of pyproject.toml; pyusb is a dependency)
PIP_NAMES = {"pyftdi": "'ustack[ftdi]'", "spidev": "'ustack[spidev]'", "usbip": "'ustack[sim]'",
             "usb": "pyusb"}
DIST_NAMES = {"usb": "pyusb"}  # import name -> the name pip knows it by


def need(module, who):
    """Import `module` for `who` (the flag that asked for it, e.g. "--board rpi_spidev_w5500"),
    or end in one line naming the distribution and the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        dist = DIST_NAMES.get(top, top)
        missing = getattr(e, "name", None) or ""
        why = "" if missing.split(".")[0] == top else " (%s)" % (e,)  # its own import failed
        raise SystemExit("ustack: %s needs %s%s: pip install %s" % (who, dist, why, PIP_NAMES[top]))


def board_flag(board):
    """How the user named the board: its NAME, else its module's name."""
    return "--board %s" % (getattr(board, "NAME", None) or
                           getattr(board, "__name__", "?").split(".")[-1],)


def usb_driver(board, mac=None, backend=None):
    need("usb.core", board_flag(board))
    from ustack.hal.usb_cdc import find_nic, open_nic
    sel = dict(getattr(board, "USB", None) or {})
    if backend is None:
        try:
            import libusb_package
            backend = libusb_package.get_libusb1_backend()
        except ImportError:
            backend = None  # pyusb's default search
    dev = find_nic(backend=backend, vid=sel.get("vid"), pid=sel.get("pid"),
                   bus=sel.get("bus"), address=sel.get("address"))
    if dev is None:
        raise SystemExit("ustack: no CDC-ECM/NCM USB device matches %r" % (sel,))
    kind = getattr(board, "DRIVER", "usb")
    if kind == "usb-ecm":
        from ustack.hal.usb_ecm import UsbEcm
        return UsbEcm(dev)
    if kind == "usb-ncm":
        from ustack.hal.usb_ncm import UsbNcm
        return UsbNcm(dev)
    return open_nic(dev)


def spi_bus(bus, ftdi_controller=None, spidev_module=None, who="--board"):
    """An SpiBus from a board's BUS dict (plus the FT232H GPIO controller, or None)."""
    from ustack.hal.spi import FtdiSpi, SpidevSpi
    kind = bus.get("kind")
    if kind == "ftdi":
        if ftdi_controller is None:
            SpiController = need("pyftdi.spi", who).SpiController
            ftdi_controller = SpiController(cs_count=bus.get("cs", 0) + 1)
            ftdi_controller.configure(bus.get("url", "ftdi://ftdi:232h/1"))
        port = ftdi_controller.get_port(cs=bus.get("cs", 0), freq=bus.get("freq", 12e6),
                                        mode=bus.get("mode", 0))
        return FtdiSpi(port), ftdi_controller
    if kind == "spidev":
        if spidev_module is None:
            spidev_module = need("spidev", who)
        dev = spidev_module.SpiDev()
        dev.open(bus.get("bus", 0), bus.get("dev", 0))
        dev.max_speed_hz = int(bus.get("freq", 10e6))
        dev.mode = bus.get("mode", 0)
        return SpidevSpi(dev), None
    raise SystemExit("ustack: unknown SPI bus kind %r (ftdi or spidev)" % (kind,))


def spi_driver(board, mac, ftdi_controller=None, spidev_module=None):
    from ustack.hal.spi import FtdiGpioPin
    sb, ctl = spi_bus(dict(getattr(board, "BUS", {})), ftdi_controller, spidev_module,
                      board_flag(board))
    pins = dict(getattr(board, "PINS", None) or {})
    irq = rst = None
    if ctl is not None and hasattr(ctl, "get_gpio"):
        gpio = ctl.get_gpio()
        if pins.get("int") is not None:
            irq = FtdiGpioPin(gpio, pins["int"])
        if pins.get("rst") is not None:
            rst = FtdiGpioPin(gpio, pins["rst"], output=True)
    kind = getattr(board, "DRIVER")
    if kind == "enc28j60":
        from ustack.hal.enc28j60 import Enc28j60 as Driver
    else:
        from ustack.hal.w5500 import W5500 as Driver
    return Driver(sb, irq, rst, mac=mac)
