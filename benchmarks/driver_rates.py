"""Frames per second through a driver and its virtual device, no stack in between.

Portable (CPython and MicroPython): `rates(drv, inject, drain, ...)` pushes frames in from the
device's wire and reads them with the driver (RX), then sends with the driver and drains the
device's wire (TX), lock-step one frame at a time, and checks every frame byte for byte by a
sum. `spi_rows()` runs it for the ENC28J60 and W5500 drivers on their register-level virtual
chips (both MicroPython-safe); benchmarks/drivers.py adds the CPython-only devices.

    micropython -c "from benchmarks.driver_rates import main; main()"   # from a staged tree
"""
try:
    from time import ticks_us, ticks_diff
except ImportError:  # CPython
    from time import perf_counter as _pc

    def ticks_us():
        return int(_pc() * 1000000)

    def ticks_diff(a, b):
        return a - b


SIZES = (64, 1514)
LOST_US = 1000000  # a frame not there after 1000 polls and this long is lost


class CountingBus:
    """An SpiBus in front of another: counts chip-select transactions, bytes clocked and the
    time spent inside the bus (the virtual chip), so the driver's own share can be told."""

    def __init__(self, bus):
        self.bus = bus
        self.transactions = 0
        self.bytes = 0
        self.us = 0

    def xfer(self, header, rx=None, tx=None, n=-1):
        if n < 0:
            n = len(rx) if rx is not None else (len(tx) if tx is not None else 0)
        self.transactions += 1
        self.bytes += len(header) + n
        t = ticks_us()
        r = self.bus.xfer(header, rx, tx, n)
        self.us += ticks_diff(ticks_us(), t)
        return r

    def close(self):
        self.bus.close()


def _frame(size, seed):
    f = bytearray(size)
    for i in range(6):
        f[i] = 0xFF  # broadcast: every receive filter passes it
    f[6] = 0x02
    f[12] = 0x08
    f[13] = 0x00
    for i in range(14, size):
        f[i] = (i * 7 + seed) & 0xFF
    return f


def _sum(b, n):
    s = 0
    for i in range(0, n, 97):
        s += b[i] * (i + 1)
    return s + n


def _take(get, service, buf, size, want, way, k):
    """Poll get(buf) (after service(), if any) until the frame is there; check it. Returns
    the microseconds the check took (part of the run's time that is not the driver's)."""
    n = 0
    spins = 0
    start = 0
    while not n:
        if service is not None:
            service()
        n = get(buf)
        spins += 1
        if spins == 1000:  # slow to come (a kernel's veth on a busy machine): time it
            start = ticks_us()
        elif spins > 1000 and ticks_diff(ticks_us(), start) > LOST_US:
            raise RuntimeError("%s frame %d lost" % (way, k))
    t = ticks_us()
    ok = n >= size and _sum(buf, size) == want
    us = ticks_diff(ticks_us(), t)
    if not ok:
        raise RuntimeError("%s frame %d differs (%d bytes)" % (way, k, n))
    return us


def rates(drv, inject, drain, size, count, service=None):
    """-> (rx frames/s, tx frames/s), after a warm-up of count // 10 frames each way.
    inject(frame) puts a frame on the device's wire; drain(buf) -> n pops one frame the
    device transmitted (0 when none)."""
    if count >= 10:
        _rates(drv, inject, drain, size, count // 10, service)
    return _rates(drv, inject, drain, size, count, service)


def _rates(drv, inject, drain, size, count, service):
    rx_us, tx_us, _ = _run(drv, inject, drain, size, count, service)
    return count * 1000000 // rx_us, count * 1000000 // tx_us


def _run(drv, inject, drain, size, count, service):
    """-> (RX us, TX us, us of those spent checking frames), all of one run."""
    frame = _frame(size, 3)
    want = _sum(frame, size)
    buf = bytearray(2048)
    check_us = 0
    # RX: wire -> device -> driver
    t0 = ticks_us()
    for k in range(count):
        inject(frame)
        check_us += _take(drv.recv_into, None, buf, size, want, "RX", k)
    rx_us = max(ticks_diff(ticks_us(), t0), 1)
    # TX: driver -> device -> wire
    t0 = ticks_us()
    for k in range(count):
        if not drv.send(frame, size):
            raise RuntimeError("TX frame %d refused" % k)
        check_us += _take(drain, service, buf, size, want, "TX", k)
    tx_us = max(ticks_diff(ticks_us(), t0), 1)
    return rx_us, tx_us, check_us


def spi_device(kind):
    """(driver, counting bus, inject, drain) for 'enc28j60' or 'w5500' on its virtual chip;
    bus.us accumulates the time spent in the chip model (SPI side and wire side)."""
    if kind == "enc28j60":
        from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
        from ustack.hal.enc28j60 import Enc28j60 as Driver
    else:
        from ustack.hal.sim.w5500 import W5500Sim as Chip
        from ustack.hal.w5500 import W5500 as Driver
    chip = Chip()  # pull mode: transmitted frames wait in the chip's wire queue
    bus = CountingBus(chip)
    drv = Driver(bus, None, None, mac=b"\x02\x00\x00\x00\x00\x02")

    def inject(frame):  # the chip's wire side counts as chip time too
        t = ticks_us()
        r = chip.wire_rx(frame)
        bus.us += ticks_diff(ticks_us(), t)
        return r

    def drain(buf):
        t = ticks_us()
        n = chip.wire_tx_into(buf)
        bus.us += ticks_diff(ticks_us(), t)
        return n
    return drv, bus, inject, drain


def spi_rows(count=2000):
    """Rows for the SPI chips: (device, size, rx/s, tx/s, transactions/frame, bytes/frame,
    driver us/frame). The last is the time outside the virtual chip and the harness's frame
    check: what the driver costs the CPU per frame, each way averaged, before the SPI clock
    is counted. All three times come from the same run, the chip's and the check's being
    parts of it, so a stall of the machine is charged to one of them and the driver's share
    cannot come out negative (a baseline measured apart from the run could)."""
    rows = []
    for kind in ("enc28j60", "w5500"):
        for size in SIZES:
            drv, bus, inject, drain = spi_device(kind)
            rates(drv, inject, drain, size, count // 10 + 1, service=drv.service)  # warm-up
            t0, b0, u0 = bus.transactions, bus.bytes, bus.us
            rx_us, tx_us, check_us = _run(drv, inject, drain, size, count, drv.service)
            frames = 2 * count
            tr = (bus.transactions - t0) / frames
            by = (bus.bytes - b0) / frames
            drv_us = (rx_us + tx_us - (bus.us - u0) - check_us) / frames
            rows.append((kind, size, count * 1000000 // rx_us, count * 1000000 // tx_us,
                         tr, by, drv_us))
            drv.close()
    return rows


def main(count=2000):
    """Print the SPI rows, one `row ...` line each (the harness reads them)."""
    for r in spi_rows(count):
        print("row %s %d %d %d %.1f %.1f %.1f" % r)
