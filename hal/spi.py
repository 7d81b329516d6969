"""SPI bus HAL: one transaction = one chip-select assertion.

    bus.xfer(header, rx=None, tx=None, n=-1)

asserts CS, writes every byte of `header`, then either reads n bytes into rx[0:n]
(n=-1: len(rx)) or writes tx[0:n] (n=-1: len(tx)), then releases CS. That is the only
primitive the ENC28J60 and W5500 drivers need (both chips frame commands with CS), and it
maps onto every host API: MicroPython machine.SPI + a CS Pin, pyftdi SpiPort.exchange(),
Linux spidev xfer2() (the kernel asserts CS once per call, so loose select()/deselect()
would not be portable). The virtual chips in hal/sim implement the same method.

Pins (INT, RESET) follow machine.Pin's protocol: value() -> 0/1, value(v) to drive, and
optionally pending() -> bool. machine.Pin objects are used as they are; FtdiGpioPin adapts
a pyftdi GPIO port.

Rule for MicroPython: xfer must not allocate. MachineSpi therefore never slices a buffer
(a memoryview slice allocates); see its docstring.
"""

try:
    from time import sleep_ms
except ImportError:  # CPython
    from time import sleep as _sleep

    def sleep_ms(ms):
        _sleep(ms / 1000)


_VIPER_COPY = """
@micropython.viper
def copy(dst, doff: int, src, soff: int, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[doff + i] = s[soff + i]
        i += 1
"""
_native = []


def native_copy():
    """copy(dst, doff, src, soff, n) as MicroPython viper code (no allocation, near memcpy
    speed), compiled once at run time; None on CPython or a port without the native
    emitter or the compiler."""
    if not _native:
        fn = None
        try:
            import micropython
            g = {"micropython": micropython}
            exec(_VIPER_COPY, g)
            fn = g["copy"]
        except Exception:
            fn = None
        _native.append(fn)
    return _native[0]


class SpiBus:
    """Interface. Subclasses implement xfer(); close() is optional."""

    def xfer(self, header, rx=None, tx=None, n=-1):
        raise NotImplementedError

    def close(self):
        pass


class MachineSpi(SpiBus):
    """MicroPython machine.SPI (any mode-0 instance) plus a CS machine.Pin (already an output).

    The machine.SPI API has no offset/length arguments, and a memoryview slice allocates, so
    partial buffers are moved through a preallocated scratch buffer (`big` bytes) and its
    views: one of `big` bytes, one of `chunk` bytes and exact-length tail views 1..chunk-1.
    - whole buffer (n == len(buf)): one spi.write(buf) / spi.readinto(buf, 0);
    - read of n < len(rx): readinto() the scratch views piece by piece (big, chunk, tail)
      and copy with slice *stores* (rx[i:j] = view), which do not allocate;
    - write of n < len(tx): each piece is copied into the scratch by `copy(dst, doff, src,
      soff, n)`, by default a viper byte copy compiled at import where the port has the
      native emitter (the source is a string, so mpy-cross and CPython never see it);
      without one (copy=False, or no emitter) memoryview chunks of tx are built once per
      buffer object and kept in an identity cache of `tx_cache` buffers (a stack that sends
      from more pbufs than that would allocate on cache misses).
    Every transfer is exact: nothing beyond n is clocked, so FIFO-style chips are safe too.
    Memory: about 3.7 KB (64-bit unix port; roughly half on 32-bit MCUs) for the scratch and
    its views, plus about 2.8 KB per cached buffer on the fallback path.
    """

    def __init__(self, spi, cs, chunk=64, big=512, tx_cache=2, copy=None):
        if big % chunk:
            raise ValueError("big must be a multiple of chunk")
        self._spi = spi
        self._cs = cs
        self._chunk = chunk
        self._big = big
        scratch = bytearray(big)
        mv = memoryview(scratch)
        self._scratch = scratch
        self._vbig = mv
        self._vchunk = mv[0:chunk]
        tail = [None]
        for i in range(1, chunk):
            tail.append(mv[0:i])
        self._tail = tail  # tail[r] = exact r-byte view of scratch
        self._cobj = [None] * tx_cache  # identity cache: buffer -> chunk views
        self._cbig = [None] * tx_cache
        self._cchunk = [None] * tx_cache
        self._cnext = 0
        if copy is None:
            copy = native_copy()
        self._copyfn = copy or None
        cs.value(1)

    def xfer(self, header, rx=None, tx=None, n=-1):
        spi = self._spi
        cs = self._cs
        cs.value(0)
        try:
            spi.write(header)
            if rx is not None:
                if n < 0 or n == len(rx):
                    spi.readinto(rx, 0)
                elif n:
                    self._read_part(rx, n)
            elif tx is not None:
                if n < 0 or n == len(tx):
                    spi.write(tx)
                elif n:
                    self._write_part(tx, n)
        finally:
            cs.value(1)

    def _read_part(self, rx, n):
        spi = self._spi
        big = self._big
        chunk = self._chunk
        i = 0
        if n - i >= big:
            v = self._vbig
            while n - i >= big:
                spi.readinto(v, 0)
                rx[i:i + big] = v
                i += big
        if n - i >= chunk:
            v = self._vchunk
            while n - i >= chunk:
                spi.readinto(v, 0)
                rx[i:i + chunk] = v
                i += chunk
        r = n - i
        if r:
            v = self._tail[r]
            spi.readinto(v, 0)
            rx[i:n] = v

    def _views(self, tx):
        cobj = self._cobj
        for k in range(len(cobj)):
            if cobj[k] is tx:
                return k
        return self._add_views(tx)

    def _add_views(self, tx):
        # cache miss: build the chunk views of this buffer once (allocates; not per frame).
        # Kept out of _views: comprehensions would turn its locals into heap cells.
        k = self._cnext
        self._cnext = (k + 1) % len(self._cobj)
        mv = memoryview(tx)
        size = len(tx)
        big = self._big
        chunk = self._chunk
        self._cbig[k] = [mv[j:j + big] for j in range(0, size - big + 1, big)]
        self._cchunk[k] = [mv[j:j + chunk] for j in range(0, size - chunk + 1, chunk)]
        self._cobj[k] = tx
        return k

    def _write_part(self, tx, n):
        cp = self._copyfn
        if cp is None:
            self._write_cached(tx, n)
            return
        spi = self._spi
        big = self._big
        chunk = self._chunk
        s = self._scratch
        i = 0
        while n - i >= big:
            cp(s, 0, tx, i, big)
            spi.write(self._vbig)
            i += big
        while n - i >= chunk:
            cp(s, 0, tx, i, chunk)
            spi.write(self._vchunk)
            i += chunk
        r = n - i
        if r:
            cp(s, 0, tx, i, r)
            spi.write(self._tail[r])

    def _write_cached(self, tx, n):
        spi = self._spi
        big = self._big
        chunk = self._chunk
        k = self._views(tx)
        i = 0
        if n - i >= big:
            vb = self._cbig[k]
            while n - i >= big:
                spi.write(vb[i // big])
                i += big
        if n - i >= chunk:
            vc = self._cchunk[k]
            while n - i >= chunk:
                spi.write(vc[i // chunk])
                i += chunk
        r = n - i
        if r:
            v = self._tail[r]
            for j in range(r):
                v[j] = tx[i + j]
            spi.write(v)


class FtdiSpi(SpiBus):
    """pyftdi SpiPort (FT232H/FT2232H MPSSE): exchange(out, readlen) is exactly "write the
    header, then read n bytes, one CS assertion" (half duplex); write(out) sends header +
    payload under one CS. pyftdi returns new bytes objects: CPython only."""

    def __init__(self, port):
        self._port = port

    def xfer(self, header, rx=None, tx=None, n=-1):
        if rx is not None:
            if n < 0:
                n = len(rx)
            data = self._port.exchange(bytes(header), n)
            if len(data) != n:
                raise OSError(5, "FtdiSpi: short read")
            rx[0:n] = data
        elif tx is not None:
            if n < 0:
                n = len(tx)
            self._port.write(bytes(header) + bytes(memoryview(tx)[0:n]))
        else:
            self._port.write(bytes(header))


SPIDEV_BUFSIZ = 4096


def spidev_bufsiz(path="/sys/module/spidev/parameters/bufsiz"):
    """The kernel's per-message limit (module parameter spidev.bufsiz, default 4096)."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return SPIDEV_BUFSIZ


class SpidevSpi(SpiBus):
    """Linux spidev (py-spidev SpiDev). The kernel asserts CS once per ioctl, so each
    transaction is one xfer2(list(header) + payload) and the read data is the tail of the
    returned list.

    Size limit: one message must fit in the kernel's spidev buffer (module parameter
    `bufsiz`, default 4096; raise it with spidev.bufsiz=N on the kernel command line or
    modprobe) AND in py-spidev's own 4096-byte xfer2 limit. A larger transaction is NOT
    split (splitting drops CS in between, and repeating the header with an advanced address
    is not valid for every chip: an ENC28J60 RBM continues from ERDPT, a FIFO read cannot
    restart), so xfer raises ValueError instead. ENC28J60/W5500 frames (<= 1518 + 3 bytes)
    fit easily."""

    def __init__(self, dev, bufsiz=None):
        self._dev = dev
        if bufsiz is None:
            bufsiz = min(spidev_bufsiz(), SPIDEV_BUFSIZ)
        self.bufsiz = bufsiz

    def _check(self, total):
        if total > self.bufsiz:
            raise ValueError(
                "SpidevSpi: %d-byte transaction exceeds the spidev limit of %d bytes "
                "(kernel spidev.bufsiz / py-spidev xfer2); it cannot be split without "
                "releasing CS" % (total, self.bufsiz))

    def xfer(self, header, rx=None, tx=None, n=-1):
        h = len(header)
        if rx is not None:
            if n < 0:
                n = len(rx)
            self._check(h + n)
            res = self._dev.xfer2(list(header) + [0] * n)
            rx[0:n] = bytes(res[h:h + n])
        elif tx is not None:
            if n < 0:
                n = len(tx)
            self._check(h + n)
            self._dev.xfer2(list(header) + list(bytes(memoryview(tx)[0:n])))
        else:
            self._check(h)
            self._dev.xfer2(list(header))

    def close(self):
        self._dev.close()


class FtdiGpioPin:
    """One line (bit number `pin`, >= 4 next to SPI) of a pyftdi SpiGpioPort
    (SpiController.get_gpio()) as a Pin. Writes read-modify-write the output pins."""

    def __init__(self, gpio, pin, output=False, value=1):
        self._gpio = gpio
        self._mask = 1 << pin
        self._output = output
        gpio.set_direction(self._mask, self._mask if output else 0)
        if output:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return 1 if self._gpio.read(with_output=True) & self._mask else 0
        # write() accepts only GPIO output bits: mask the read-back with the direction
        cur = self._gpio.read(with_output=True) & self._gpio.direction
        self._gpio.write((cur | self._mask) if v else (cur & ~self._mask))
        return None

    def pending(self):
        """Active-low interrupt line asserted."""
        return self.value() == 0


class NoPin:
    """Placeholder for an absent INT pin: never pending (drivers then poll over SPI)."""

    def value(self, v=None):
        return 1

    def pending(self):
        return False


def pulse_reset(pin, low_ms=1, settle_ms=2):
    """Active-low hardware reset: hold low `low_ms`, release, wait `settle_ms`."""
    pin.value(0)
    sleep_ms(low_ms)
    pin.value(1)
    sleep_ms(settle_ms)
