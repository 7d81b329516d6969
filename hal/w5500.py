"""WIZnet W5500 as a plain Ethernet MAC: socket 0 in MACRAW mode (datasheet v1.0.9).

Implements the Driver interface (hal/__init__.py) on any SpiBus (hal/spi.py).

SPI frame [2.2]: 16-bit offset (MSB first), control byte BSB<<3 | RWB<<2 | OM (OM=00,
variable length, CS framed), then data. Socket 0 gets the whole 16 KB RX and TX memory
(Sn_RXBUF_SIZE/Sn_TXBUF_SIZE = 16, sockets 1-7 = 0); buffer offsets are the 16-bit socket
pointers masked with size-1.

Per received frame (no allocation): Sn_RX_RSR (read until two reads agree, as the
datasheet advises; the value is cached so a burst costs one pair of reads), the 2-byte
big-endian length at Sn_RX_RD (it counts itself), the frame, Sn_RX_RD += length,
Sn_CR = RECV, poll Sn_CR until 0.
Per sent frame: write it at Sn_TX_WR (invisible to the chip until SEND), wait for the
previous frame's Sn_IR.SEND_OK (one frame in flight; writing overlaps its transmission),
Sn_TX_WR += n, Sn_CR = SEND, poll Sn_CR until 0. Free space is tracked from Sn_TX_FSR.
"""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from ustack.hal.spi import sleep_ms as _sleep_ms, pulse_reset

# blocks (BSB) [Table 2-3]
_COMMON = const(0)
_S0_REG = const(1)
_S0_TX = const(2)
_S0_RX = const(3)
# common registers
MR = const(0x0000)
SHAR = const(0x0009)
SIMR = const(0x0018)
PHYCFGR = const(0x002E)
VERSIONR = const(0x0039)
# socket registers
Sn_MR = const(0x00)
Sn_CR = const(0x01)
Sn_IR = const(0x02)
Sn_SR = const(0x03)
Sn_RXBUF_SIZE = const(0x1E)
Sn_TX_FSR = const(0x20)
Sn_TX_WR = const(0x24)
Sn_RX_RSR = const(0x26)
Sn_RX_RD = const(0x28)
Sn_IMR = const(0x2C)
# values
MR_RST = const(0x80)
Sn_MR_MACRAW = const(0x04)
Sn_MR_MFEN = const(0x80)
CR_OPEN = const(0x01)
CR_CLOSE = const(0x10)
CR_SEND = const(0x20)
CR_RECV = const(0x40)
IR_SEND_OK = const(0x10)
IR_RECV = const(0x04)
SOCK_MACRAW = const(0x42)
PHYCFGR_LNK = const(0x01)
VERSION = const(0x04)

MAX_FRAME = const(1514)  # MACRAW frames carry no FCS


class W5500:
    """Driver for one W5500 on `bus`.

    int_pin: optional INTn line (machine.Pin protocol, active low). Only Sn_IR.RECV is
    unmasked, so with it recv_into skips the SPI poll while INTn is high.
    mac_filter: Sn_MR.MFEN, receive only own unicast + broadcast + multicast (False:
    promiscuous).
    rx_kb/tx_kb: socket 0 buffer sizes (2, 4, 8 or 16 KB; the rest stays unused).
    """

    def __init__(self, bus, int_pin=None, reset_pin=None, mac=b"\x02\x00\x00\x00\x00\x02",
                 mac_filter=True, rx_kb=16, tx_kb=16, tx_wait=200, tx_stall_limit=8,
                 sleep_ms=None):
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        if rx_kb not in (2, 4, 8, 16) or tx_kb not in (2, 4, 8, 16):
            raise ValueError("rx_kb/tx_kb must be 2, 4, 8 or 16")
        self.mac = bytes(mac)
        self.mtu = 1500
        self.caps = 0
        self._bus = bus
        self._int = int_pin
        self._reset_pin = reset_pin
        self._filter = mac_filter
        self._rx_kb = rx_kb
        self._tx_kb = tx_kb
        self._rx_mask = (rx_kb << 10) - 1
        self._tx_size = tx_kb << 10
        self._tx_mask = self._tx_size - 1
        self.tx_wait = tx_wait
        self.tx_stall_limit = tx_stall_limit
        self._sleep = sleep_ms or _sleep_ms
        # preallocated transaction buffers
        self._h3 = bytearray(3)
        self._h4 = bytearray(4)
        self._h5 = bytearray(5)
        self._r1 = bytearray(1)
        self._r2 = bytearray(2)
        self._rx_rd = 0
        self._rx_avail = 0
        self._tx_wr = 0
        self._tx_free = 0
        self._tx_inflight = False
        self._tx_busy_run = 0
        self._link = False
        # statistics
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_errors = 0
        self.rx_dropped = 0
        self.tx_errors = 0
        self.tx_busy = 0
        self.resets = 0
        self.init()

    # ------------------------------------------------------------ frame helpers
    def _read(self, bsb, addr, buf, n):
        h = self._h3
        h[0] = addr >> 8
        h[1] = addr & 0xFF
        h[2] = bsb << 3  # RWB=0 read, OM=00
        self._bus.xfer(h, buf, None, n)

    def _write(self, bsb, addr, buf, n):
        h = self._h3
        h[0] = addr >> 8
        h[1] = addr & 0xFF
        h[2] = (bsb << 3) | 0x04  # RWB=1 write
        self._bus.xfer(h, None, buf, n)

    def _r8(self, bsb, addr):
        self._read(bsb, addr, self._r1, 1)
        return self._r1[0]

    def _r16(self, bsb, addr):
        r = self._r2
        self._read(bsb, addr, r, 2)
        return (r[0] << 8) | r[1]

    def _r16_stable(self, bsb, addr):
        """Sn_RX_RSR / Sn_TX_FSR change while being read: read until two reads agree."""
        a = self._r16(bsb, addr)
        for _ in range(8):
            b = self._r16(bsb, addr)
            if a == b:
                return a
            a = b
        raise OSError(5, "W5500: unstable 16-bit register")

    def _w8(self, bsb, addr, v):
        h = self._h4
        h[0] = addr >> 8
        h[1] = addr & 0xFF
        h[2] = (bsb << 3) | 0x04
        h[3] = v
        self._bus.xfer(h)

    def _w16(self, bsb, addr, v):
        h = self._h5
        h[0] = addr >> 8
        h[1] = addr & 0xFF
        h[2] = (bsb << 3) | 0x04
        h[3] = (v >> 8) & 0xFF
        h[4] = v & 0xFF
        self._bus.xfer(h)

    def _command(self, cmd):
        """Sn_CR: write the command, then poll until the chip clears it."""
        self._w8(_S0_REG, Sn_CR, cmd)
        for _ in range(1000):
            if not self._r8(_S0_REG, Sn_CR):
                return
        raise OSError(110, "W5500: Sn_CR stuck")

    # ------------------------------------------------------------ bring-up
    def init(self):
        if self._reset_pin is not None:
            pulse_reset(self._reset_pin, 1, 2)  # RSTn low >= 500 us; PLL lock < 1 ms
        self._w8(_COMMON, MR, MR_RST)
        for _ in range(100):
            if not self._r8(_COMMON, MR) & MR_RST:
                break
            self._sleep(1)
        else:
            raise OSError(110, "W5500: reset did not complete")
        v = self._r8(_COMMON, VERSIONR)
        if v != VERSION:
            raise OSError(19, "W5500 not found (VERSIONR=0x%02x)" % v)
        self._write(_COMMON, SHAR, self.mac, 6)
        # all 16 KB to socket 0; the sizes must not add up to more than 16 KB
        for s in range(8):
            sz = ((self._rx_kb << 8) | self._tx_kb) if s == 0 else 0
            self._w16((s << 2) | 1, Sn_RXBUF_SIZE, sz)
        self._w8(_S0_REG, Sn_IMR, IR_RECV)
        self._w8(_COMMON, SIMR, 0x01)
        self._open()
        self._link = bool(self._r8(_COMMON, PHYCFGR) & PHYCFGR_LNK)

    def _open(self):
        self._w8(_S0_REG, Sn_MR, Sn_MR_MACRAW | (Sn_MR_MFEN if self._filter else 0))
        self._command(CR_OPEN)
        sr = self._r8(_S0_REG, Sn_SR)
        if sr != SOCK_MACRAW:
            raise OSError(5, "W5500: socket 0 not in MACRAW (Sn_SR=0x%02x)" % sr)
        self._tx_wr = self._r16(_S0_REG, Sn_TX_WR)
        self._rx_rd = self._r16(_S0_REG, Sn_RX_RD)
        self._tx_free = self._r16_stable(_S0_REG, Sn_TX_FSR)
        self._tx_inflight = False
        self._tx_busy_run = 0
        self._rx_avail = 0

    def _reopen(self):
        self._command(CR_CLOSE)
        self._w8(_S0_REG, Sn_IR, 0xFF)
        self._open()
        self.resets += 1

    # ------------------------------------------------------------ Driver interface
    def recv_into(self, buf):
        mask = self._rx_mask
        r2 = self._r2
        while True:
            if self._rx_avail < 2:
                if self._int is not None:
                    if self._int.value():
                        return 0
                    self._w8(_S0_REG, Sn_IR, IR_RECV)  # clear before looking: no lost edge
                rsr = self._r16_stable(_S0_REG, Sn_RX_RSR)
                if rsr < 2:
                    return 0
                self._rx_avail = rsr
            rd = self._rx_rd
            self._read(_S0_RX, rd & mask, r2, 2)
            ln = (r2[0] << 8) | r2[1]  # includes these 2 bytes
            if ln < 2 + 14 or ln > 2 + MAX_FRAME or ln > self._rx_avail:
                self.rx_errors += 1
                self._reopen()
                return 0
            n = ln - 2
            got = 0
            if n <= len(buf):
                self._read(_S0_RX, (rd + 2) & mask, buf, n)
                got = n
            else:
                self.rx_dropped += 1
            rd = (rd + ln) & 0xFFFF
            self._rx_rd = rd
            self._rx_avail -= ln
            self._w16(_S0_REG, Sn_RX_RD, rd)
            self._command(CR_RECV)
            if got:
                self.rx_frames += 1
                return got

    def send(self, buf, n):
        if n < 14 or n > MAX_FRAME:
            self.tx_errors += 1
            return False
        if n > self._tx_free:
            if self._tx_inflight:
                if not self._send_done():
                    return False
            else:
                self._tx_free = self._r16_stable(_S0_REG, Sn_TX_FSR)
                if n > self._tx_free:
                    self.tx_busy += 1
                    return False
        wr = self._tx_wr
        self._write(_S0_TX, wr & self._tx_mask, buf, n)
        if self._tx_inflight and not self._send_done():
            return False
        wr = (wr + n) & 0xFFFF
        self._w16(_S0_REG, Sn_TX_WR, wr)
        self._tx_wr = wr
        self._command(CR_SEND)
        self._tx_inflight = True
        self._tx_free -= n
        self.tx_frames += 1
        return True

    def _send_done(self):
        """Wait for the in-flight frame's SEND_OK (then the whole TX buffer is free)."""
        for _ in range(self.tx_wait):
            if self._r8(_S0_REG, Sn_IR) & IR_SEND_OK:
                self._w8(_S0_REG, Sn_IR, IR_SEND_OK)  # write 1 to clear
                self._tx_inflight = False
                self._tx_free = self._tx_size
                self._tx_busy_run = 0
                return True
        self.tx_busy += 1
        self._tx_busy_run += 1
        if self._tx_busy_run >= self.tx_stall_limit:
            self.tx_errors += 1
            self._reopen()
        return False

    def service(self):
        self._link = bool(self._r8(_COMMON, PHYCFGR) & PHYCFGR_LNK)

    def link_up(self):
        return self._link

    def poll_obj(self):
        return None

    def close(self):
        self._command(CR_CLOSE)
