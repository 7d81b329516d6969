"""Real-hardware boards build the right driver stack: USB dongles found by VID:PID through
pyusb (here over the simulated backend), SPI chips through an FT232H or spidev (here over
recording fakes of pyftdi/py-spidev wired to the virtual chips)."""
import types

import pytest

from ustack.boards import load
from ustack.ports.cpython import hwdrivers
from tests.sim.test_spi_bus import FakeSpiPort, FakeGpioPort, FakeSpiDev


class FakeController:
    def __init__(self, chip):
        self.port = FakeSpiPort(chip)
        self.gpio = FakeGpioPort()

    def get_port(self, cs, freq, mode):
        self.args = (cs, freq, mode)
        return self.port

    def get_gpio(self):
        return self.gpio


def assert_frame_each_way(drv, chip, mac):
    """driver -> bus adapter fake -> virtual chip -> wire, and back, byte for byte."""
    sent = []
    chip.on_wire_tx = sent.append
    frame = b"\xff" * 6 + mac + b"\x08\x00" + bytes(range(200))
    assert drv.send(frame, len(frame))
    for _ in range(20):
        drv.service()
        if sent:
            break
    assert sent and sent[0][:len(frame)] == frame
    chip.wire_rx(mac + b"\x02\x00\x00\x00\x00\x01\x08\x00" + bytes(range(100)))
    buf = bytearray(1600)
    n = 0
    for _ in range(20):
        drv.service()
        n = drv.recv_into(buf)
        if n:
            break
    assert n == 114 and bytes(buf[:6]) == mac and bytes(buf[14:114]) == bytes(range(100))


@pytest.mark.parametrize("name", ["pc_ft232h_enc28j60", "pc_ft232h_w5500"])
def test_ft232h_boards_build_a_working_chip_driver(name):
    board = load(name)
    if board.DRIVER == "enc28j60":
        from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
    else:
        from ustack.hal.sim.w5500 import W5500Sim as Chip
    chip = Chip()
    ctl = FakeController(chip)
    drv = hwdrivers.spi_driver(board, b"\x02\x00\x00\x00\x00\x12", ftdi_controller=ctl)
    assert ctl.args == (0, 12_000_000, 0)
    assert_frame_each_way(drv, chip, b"\x02\x00\x00\x00\x00\x12")


def test_spidev_board_builds_a_working_w5500_driver():
    """rpi_spidev_w5500: /dev/spidev0.0 opened at the board's speed and mode, and the W5500
    driver moves a frame each way through py-spidev (one xfer2 per transaction) to the chip."""
    from ustack.hal.sim import w5500 as S
    chip = S.W5500Sim()
    devs = []

    class SpiDev(FakeSpiDev):
        def __init__(self):
            FakeSpiDev.__init__(self, chip)
            devs.append(self)

        def open(self, bus, dev):
            self.opened = (bus, dev)
    board = load("rpi_spidev_w5500")
    mac = b"\x02\x00\x00\x00\x00\x13"
    drv = hwdrivers.spi_driver(board, mac, spidev_module=types.SimpleNamespace(SpiDev=SpiDev))
    dev = devs[0]
    assert dev.opened == (0, 0) and dev.max_speed_hz == 20_000_000 and dev.mode == 0
    assert len(dev.calls) == chip.spi_transactions > 0    # one CS assertion per transaction
    assert bytes(chip.common[S.SHAR:S.SHAR + 6]) == mac   # SHAR programmed through spidev
    assert_frame_each_way(drv, chip, mac)


@pytest.mark.parametrize("name,model", [("pc_usb_ecm", "CdcEcmDevice"), ("pc_usb_ncm", "CdcNcmDevice")])
def test_usb_boards_find_the_dongle_and_pick_its_class(name, model):
    from ustack.hal.sim import usb_cdc
    from ustack.hal.sim.usb_backend import SimBackend
    m = getattr(usb_cdc, model)()
    be = SimBackend()
    be.add(m)
    board = types.SimpleNamespace(**{k: getattr(load(name), k) for k in ("DRIVER", "USB")})
    board.USB = {"vid": m.vid, "pid": m.pid}
    drv = hwdrivers.usb_driver(board, backend=be)
    assert type(drv).__name__ == ("UsbEcm" if "ecm" in name else "UsbNcm")
    assert drv.mac == m.mac
    drv.close()


def test_usb_board_picks_the_dongle_at_its_bus_and_address():
    """Two identical dongles (same VID:PID): the board's bus/address chooses between them."""
    from ustack.hal.sim import usb_cdc
    from ustack.hal.sim.usb_backend import SimBackend
    a = usb_cdc.CdcEcmDevice(mac=b"\x02\x00\x00\x00\x00\xa1")
    b = usb_cdc.CdcEcmDevice(mac=b"\x02\x00\x00\x00\x00\xb2")
    be = SimBackend()
    be.add(a, bus=1, address=4)
    be.add(b, bus=2, address=7)
    for sel, want in (({"bus": 2, "address": 7}, b.mac), ({"bus": 1, "address": 4}, a.mac),
                      ({"vid": b.vid, "pid": b.pid, "bus": 2}, b.mac)):
        drv = hwdrivers.usb_driver(types.SimpleNamespace(DRIVER="usb", USB=sel), backend=be)
        assert drv.mac == want, sel
        drv.close()
    with pytest.raises(SystemExit):
        hwdrivers.usb_driver(types.SimpleNamespace(DRIVER="usb", USB={"bus": 2, "address": 4}),
                             backend=be)


def test_usb_board_without_a_matching_dongle_says_so():
    from ustack.hal.sim.usb_backend import SimBackend
    board = types.SimpleNamespace(DRIVER="usb", USB={"vid": 0x1234, "pid": 0x5678})
    with pytest.raises(SystemExit) as e:
        hwdrivers.usb_driver(board, backend=SimBackend())
    assert "no CDC-ECM/NCM USB device" in str(e.value)
