"""What every virtual chip shares: INT and RESET pins (both active low; a chip provides
`_int_asserted()`, `reset()` and a `_held` flag) and the byte-level SPI surface."""


class IntPin:
    """INT output: low while the chip asserts an enabled interrupt."""

    def __init__(self, chip):
        self._chip = chip

    def value(self, v=None):
        return 0 if self._chip._int_asserted() else 1

    def pending(self):
        return self._chip._int_asserted()


class ResetPin:
    """RESET input: held low -> chip in reset; rising edge -> power-on state."""

    def __init__(self, chip):
        self._chip = chip
        self._v = 1

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v and not self._v:
            self._chip._held = False
            self._chip.reset()
        elif not v:
            self._chip._held = True
        self._v = v
        return None


class ClockedChip:
    """The byte-level SPI surface every virtual chip shares, built on the chip's own
    cs_low(), cs_high() and _clock(mosi, moff, miso, noff, n); xfer() is the SpiBus
    transaction (one CS assertion) the drivers use."""

    def spi_write(self, buf, n=-1, off=0):
        """Clock out buf[off:off+n] (MOSI); MISO is discarded."""
        if n < 0:
            n = len(buf)
        self._clock(buf, off, None, 0, n)

    def spi_read(self, buf, n=-1, off=0):
        """Clock n bytes with MOSI = 0x00 and store MISO into buf[off:off+n]."""
        if n < 0:
            n = len(buf)
        self._clock(None, 0, buf, off, n)

    def spi_exchange(self, mosi, miso, n=-1):
        """Full duplex: clock out mosi[0:n], store MISO into miso[0:n] (same clocks)."""
        if n < 0:
            n = len(mosi)
        self._clock(mosi, 0, miso, 0, n)

    def xfer(self, header, rx=None, tx=None, n=-1):
        self.cs_low()
        self._clock(header, 0, None, 0, len(header))
        if rx is not None:
            if n < 0:
                n = len(rx)
            self._clock(None, 0, rx, 0, n)
        elif tx is not None:
            if n < 0:
                n = len(tx)
            self._clock(tx, 0, None, 0, n)
        self.cs_high()
