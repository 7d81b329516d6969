"""Links for `ustack up --runtime micropython --driver sim-enc28j60|sim-w5500|slip-pty`: the
real driver runs inside the MicroPython process, on a virtual device whose far side the
CPython runtime joins to the TAP.

    sim-enc28j60 / sim-w5500   hal/enc28j60.py or hal/w5500.py -> its register-level virtual
                               chip (hal/sim) -> the chip's wire = a StreamLink to the bridge
    slip-pty                   hal/slip.py SlipLink -> a pty (fd inherited from the runtime,
                               non-blocking) -> the runtime's SLIP/Ethernet proxy -> TAP

SimChip is the Driver the stack sees: the SPI driver's recv_into/send, plus moving frames
between the chip's wire side and the stream. A frame enters the chip only when its RX memory
has room for a full-size frame (a real chip would drop the rest; the stream holds them
meanwhile), and the frames the chip transmits are pulled (wire_tx_into, preallocated queue)
right after each send. `rx_pending()` tells the app's loop that frames wait inside the chip
(the poller only sees the stream). Frames go into the chip through exact-length views of one
buffer, made once per length (wire_rx takes len(frame); a slice per frame would allocate).
"""
import sys

from ustack.hal.slip import SlipLink

_MPY = sys.implementation.name == "micropython"
_ROOM = 1514 + 16      # a full-size frame plus the chip's per-frame header/CRC/padding


class SimChip:
    def __init__(self, kind, wire, mac, mtu=1500):
        if kind == "sim-enc28j60":
            from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
            from ustack.hal.enc28j60 import Enc28j60 as Driver
        elif kind == "sim-w5500":
            from ustack.hal.sim.w5500 import W5500Sim as Chip
            from ustack.hal.w5500 import W5500 as Driver
        else:
            raise ValueError("unknown virtual chip %r" % (kind,))
        self.kind = kind
        self.chip = chip = Chip()
        chip.on_wire_tx = None             # pull mode: wire_tx_into, allocation-free
        self.wire = wire
        self.driver = Driver(chip, None, None, mac=mac)
        self.mac = self.driver.mac
        self.mtu = getattr(self.driver, "mtu", mtu)
        self.caps = getattr(self.driver, "caps", 0)
        self._enc = kind == "sim-enc28j60"
        self.buf = bytearray(1514)
        self._mv = memoryview(self.buf)
        self._views = [None] * (len(self.buf) + 1)
        self.wire_in = 0
        self.wire_out = 0
        self.wire_refused = 0

    # ---- the chip's wire side -------------------------------------------------------------
    def _room(self):
        c = self.chip
        if self._enc:
            return c.pktcnt < 255 and c.rx_free() >= _ROOM
        return c._region(0, False) - c.rx_used(0) >= _ROOM

    def rx_pending(self):
        """Frames wait inside the chip (the next poll must not sleep on the stream)."""
        c = self.chip
        if self._enc:
            return c.pktcnt > 0
        return c.rx_used(0) > 0

    def _view(self, n):
        v = self._views[n]
        if v is None:
            v = self._views[n] = self._mv[0:n]
        return v

    def _pump_in(self):
        wire = self.wire
        while self._room():
            n = wire.recv_into(self.buf)
            if not n:
                return
            self.wire_in += 1
            if not self.chip.wire_rx(self._view(n)):
                self.wire_refused += 1   # filtered (not for us) or the chip is not ready

    def _pump_out(self):
        chip = self.chip
        while chip.wire_tx_pending():
            n = chip.wire_tx_into(self.buf)
            if n:
                self.wire.send(self.buf, n)
                self.wire_out += 1

    # ---- Driver interface -----------------------------------------------------------------
    def recv_into(self, buf):
        n = self.driver.recv_into(buf)
        if not n:
            self._pump_in()
            n = self.driver.recv_into(buf)
        if self.chip.wire_tx_pending():
            self._pump_out()
        return n

    def send(self, buf, n):
        ok = self.driver.send(buf, n)
        self._pump_out()
        return ok

    def poll_obj(self):
        return self.wire.poll_obj()

    def service(self):
        self.driver.service()
        self._pump_out()

    def link_up(self):
        return self.driver.link_up() and not self.wire.eof

    @property
    def eof(self):
        return self.wire.eof

    def report(self, c):
        for k, v in (("wire.rx_frames", self.wire_in), ("wire.tx_frames", self.wire_out),
                     ("wire.refused", self.wire_refused),
                     ("chip.rx_dropped_overflow", getattr(self.chip, "rx_dropped_overflow", 0))):
            if v:
                c[k] = v

    def close(self):
        try:
            self.driver.close()
        finally:
            self.wire.close()


class PtyUart:
    """A Uart (hal/slip.py) over a non-blocking file descriptor the runtime handed us (the
    slave side of a raw pty): readinto never blocks (None = nothing waiting); write waits
    for room (poll) and goes on from where it stopped, so a frame is never cut. On
    MicroPython `write(buf, off, n)` continues without a slice. `eof` turns True when the
    other side hung up."""

    def __init__(self, fd):
        from ustack.ports.micropython.compat import Poller, POLLOUT
        if _MPY:
            self.f = open(fd, "r+b")
        else:
            import os
            os.set_blocking(fd, False)
            self.f = open(fd, "r+b", buffering=0)
        self.eof = False
        self._out = Poller()
        self._out.register(self.f, POLLOUT)

    def readinto(self, buf):
        if self.eof:
            return None
        try:
            n = self.f.readinto(buf)
        except OSError:                 # EIO: the master side is gone
            n = 0
        if n == 0:
            self.eof = True
            return None
        return n

    def write(self, buf, n):
        f = self.f
        off = 0
        while off < n and not self.eof:
            try:
                if _MPY:
                    w = f.write(buf, off, n - off)
                else:
                    w = f.write(memoryview(buf)[off:n])
            except OSError:
                self.eof = True
                break
            if w:
                off += w
            elif not self._out.wait(2000):
                break                   # nobody reads the line: the frame is cut
        return off

    def any(self):
        return 0

    def poll_obj(self):
        return self.f

    def close(self):
        try:
            self.f.close()
        except OSError:
            pass


def slip_pty(spec, mtu=1500):
    """SlipLink over the fd named by spec ('fd:N'); `eof` follows the line."""
    kind, _, rest = spec.partition(":")
    if kind != "fd":
        raise ValueError("slip-pty wants LINK fd:N, not %r" % (spec,))
    return PtySlip(PtyUart(int(rest)), mtu)


class PtySlip(SlipLink):
    @property
    def eof(self):
        return self.uart.eof
