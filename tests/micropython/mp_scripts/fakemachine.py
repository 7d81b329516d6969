"""A stand-in for MicroPython's `machine` (SPI and Pin) that wires a board's bus and pins to
a virtual chip from hal/sim, so appinit.make_driver builds a board's real driver stack
(MachineSpi + Enc28j60/W5500 driver) on the unix port. Install with
`sys.modules["machine"] = fakemachine` and `attach(chip, board.BUS, board.PINS)`.

Like the real thing for what MachineSpi uses: SPI.write(buf), SPI.readinto(buf, write),
SPI.write_readinto(w, r); Pin(id, mode, pull, value=...).value([v]). Nothing allocates."""

_chip = None
_bus = None
_pins = None


def attach(chip, bus, pins):
    global _chip, _bus, _pins
    _chip = chip
    _bus = bus
    _pins = pins


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.v = 1 if value is None else value
        self.role = None
        if _bus is not None and id == _bus.get("cs"):
            self.role = "cs"
        elif _pins is not None and id == _pins.get("int"):
            self.role = "int"
        elif _pins is not None and id == _pins.get("rst"):
            self.role = "rst"
        if value is not None:
            self.value(value)

    def value(self, v=None):
        role = self.role
        if v is None:
            if role == "int":
                return _chip.int_pin.value()
            return self.v
        v = 1 if v else 0
        if role == "cs":
            if v == 0 and self.v == 1:
                _chip.cs_low()
            elif v == 1 and self.v == 0:
                _chip.cs_high()
        elif role == "rst":
            _chip.reset_pin.value(v)
        self.v = v
        return None

    def __call__(self, v=None):
        return self.value(v)

    def irq(self, handler=None, trigger=0):
        return None


class SPI:
    MSB = 0

    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        if _bus is None or id != _bus.get("id"):
            raise ValueError("no virtual chip on SPI(%r)" % (id,))
        self.id = id
        self.baudrate = baudrate
        self.mode = (polarity, phase)

    def write(self, buf):
        _chip.spi_write(buf, len(buf))

    def readinto(self, buf, write=0):
        _chip.spi_read(buf, len(buf))

    def read(self, n, write=0):
        b = bytearray(n)
        _chip.spi_read(b, n)
        return b

    def write_readinto(self, wbuf, rbuf):
        _chip.spi_exchange(wbuf, rbuf, len(wbuf))

    def init(self, *a, **k):
        pass

    def deinit(self):
        pass
