"""Microchip ENC28J60 10BASE-T MAC+PHY over SPI (datasheet DS39662E, errata DS80349).

Implements the Driver interface (hal/__init__.py) on any SpiBus (hal/spi.py).

Buffer layout: the RX ring starts at 0x0000 (errata: on some revisions the hardware write
pointer resets to 0 when ERXST/ERXND are written, so a ring elsewhere corrupts); the TX
buffer follows the ring: control byte + frame + 7-byte status vector.

Per received frame (no allocation): ERDPT <- next packet; RBM 6-byte header (next pointer,
byte count incl. CRC, status) [7.2.1]; RBM frame without the 4 CRC bytes; ERXRDPT <- next-1
(odd, errata) [7.2.4]; ECON2.PKTDEC. EPKTCNT is polled rather than EIR.PKTIF (errata: PKTIF
is unreliable); its value is cached so a burst costs one read.
Per sent frame: wait ECON1.TXRTS clear (reset the TX logic if it is stuck or EIR.TXERIF is
set, errata), EWRPT <- ETXST, WBM control byte 0x00 + frame, ETXND, BFS ECON1.TXRTS [7.1].
"""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from ustack.hal.spi import sleep_ms as _sleep_ms, pulse_reset

# Register encoding: bits 0-4 address, bits 5-6 bank, bit 7 = MAC/MII register (an RCR
# returns a dummy byte first; BFS/BFC do not apply) [Table 3-2, 4.2].
_MM = const(0x80)
# common (every bank)
EIE = const(0x1B)
EIR = const(0x1C)
ESTAT = const(0x1D)
ECON2 = const(0x1E)
ECON1 = const(0x1F)
# bank 0
ERDPTL = const(0x00)
EWRPTL = const(0x02)
ETXSTL = const(0x04)
ETXNDL = const(0x06)
ERXSTL = const(0x08)
ERXNDL = const(0x0A)
ERXRDPTL = const(0x0C)
# bank 1
ERXFCON = const(0x20 | 0x18)
EPKTCNT = const(0x20 | 0x19)
# bank 2
MACON1 = const(0x80 | 0x40 | 0x00)
MACON3 = const(0x80 | 0x40 | 0x02)
MACON4 = const(0x80 | 0x40 | 0x03)
MABBIPG = const(0x80 | 0x40 | 0x04)
MAIPGL = const(0x80 | 0x40 | 0x06)
MAIPGH = const(0x80 | 0x40 | 0x07)
MAMXFLL = const(0x80 | 0x40 | 0x0A)
MICMD = const(0x80 | 0x40 | 0x12)
MIREGADR = const(0x80 | 0x40 | 0x14)
MIWRL = const(0x80 | 0x40 | 0x16)
MIWRH = const(0x80 | 0x40 | 0x17)
MIRDL = const(0x80 | 0x40 | 0x18)
MIRDH = const(0x80 | 0x40 | 0x19)
# bank 3: MAADR1 is the first address byte on the wire, at 0x04 [Table 3-2]
MAADR5 = const(0x80 | 0x60 | 0x00)
MAADR6 = const(0x80 | 0x60 | 0x01)
MAADR3 = const(0x80 | 0x60 | 0x02)
MAADR4 = const(0x80 | 0x60 | 0x03)
MAADR1 = const(0x80 | 0x60 | 0x04)
MAADR2 = const(0x80 | 0x60 | 0x05)
MISTAT = const(0x80 | 0x60 | 0x0A)
EREVID = const(0x60 | 0x12)

# SPI opcodes [Table 4-1]
_RCR = const(0x00)
_WCR = const(0x40)
_BFS = const(0x80)
_BFC = const(0xA0)
_RBM = const(0x3A)
_WBM = const(0x7A)
_SRC = const(0xFF)

# bits
ECON1_TXRST = const(0x80)
ECON1_RXRST = const(0x40)
ECON1_TXRTS = const(0x08)
ECON1_RXEN = const(0x04)
ECON2_AUTOINC = const(0x80)
ECON2_PKTDEC = const(0x40)
EIE_INTIE = const(0x80)
EIE_PKTIE = const(0x40)
EIE_LINKIE = const(0x10)
EIE_TXERIE = const(0x02)
EIE_RXERIE = const(0x01)
EIR_LINKIF = const(0x10)
EIR_TXIF = const(0x08)
EIR_TXERIF = const(0x02)
EIR_RXERIF = const(0x01)
ESTAT_CLKRDY = const(0x01)
ERXFCON_UCEN = const(0x80)
ERXFCON_CRCEN = const(0x20)
ERXFCON_MCEN = const(0x02)
ERXFCON_BCEN = const(0x01)
MACON1_TXPAUS = const(0x08)
MACON1_RXPAUS = const(0x04)
MACON1_MARXEN = const(0x01)
MACON3_PADCFG0 = const(0x20)
MACON3_TXCRCEN = const(0x10)
MACON3_FRMLNEN = const(0x02)
MACON3_FULDPX = const(0x01)
MACON4_DEFER = const(0x40)
MICMD_MIIRD = const(0x01)
MISTAT_BUSY = const(0x01)
RSV_RXOK = const(0x80)  # status byte 2 (bits 23:16), bit 23 "Received OK" [Table 7-3]

# PHY registers [Table 3-3]
PHCON1 = const(0x00)
PHCON2 = const(0x10)
PHSTAT2 = const(0x11)
PHIE = const(0x12)
PHIR = const(0x13)
PHCON1_PDPXMD = const(0x0100)
PHCON2_HDLDIS = const(0x0100)
PHSTAT2_LSTAT = const(0x0400)
PHIE_PGEIE = const(0x0002)
PHIE_PLNKIE = const(0x0010)

MAX_FRAME = const(1518)  # MAMXFL: 1500 + 14 header + 4 CRC
_TX_NEED = const(1 + MAX_FRAME + 7)  # control byte + frame + status vector


class Enc28j60:
    """Driver for one ENC28J60 on `bus`.

    int_pin: optional INT line (active low, machine.Pin protocol). With it, recv_into and
    service skip the SPI poll while INT is high (EIE enables PKTIE, LINKIE, TXERIE, RXERIE).
    reset_pin: optional RESET line, pulsed before the soft reset.
    rx_start/rx_end: RX ring bounds (rx_start even, rx_end odd); TX uses rx_end+1..0x1FFF.
    multicast: also accept group-addressed frames (ERXFCON.MCEN; IPv6 needs it).
    """

    def __init__(self, bus, int_pin=None, reset_pin=None, mac=b"\x02\x00\x00\x00\x00\x01",
                 rx_start=0x0000, rx_end=0x19FF, full_duplex=False, multicast=False,
                 tx_wait=200, tx_stall_limit=8, sleep_ms=None):
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        if rx_start & 1 or not rx_end & 1 or not 0 <= rx_start < rx_end:
            raise ValueError("rx_start must be even and rx_end odd, rx_start < rx_end")
        if 0x2000 - (rx_end + 1) < _TX_NEED:
            raise ValueError("TX buffer after rx_end is smaller than %d bytes" % _TX_NEED)
        self.mac = bytes(mac)
        self.mtu = 1500
        self.caps = 0
        self._bus = bus
        self._int = int_pin
        self._reset_pin = reset_pin
        self._rx_start = rx_start
        self._rx_end = rx_end
        self._tx_start = rx_end + 1
        self._full = full_duplex
        self._multicast = multicast
        self.tx_wait = tx_wait
        self.tx_stall_limit = tx_stall_limit
        self._sleep = sleep_ms or _sleep_ms
        # preallocated transaction buffers
        self._h1 = bytearray(1)
        self._h2 = bytearray(2)
        self._r1 = bytearray(1)
        self._hdr = bytearray(6)
        self._rbm_h = bytearray((_RBM,))
        self._wbm_h = bytearray((_WBM, 0x00))  # WBM + per-packet control byte 0x00
        self._bank = -1
        self._next = rx_start
        self._pending = 0
        self._link = False
        self._tx_busy_run = 0
        # statistics
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_errors = 0
        self.rx_dropped = 0
        self.rx_overflows = 0
        self.rx_resets = 0
        self.tx_errors = 0
        self.tx_busy = 0
        self.tx_resets = 0
        self.revision = 0
        self.init()

    # ------------------------------------------------------------ register access
    def _cmd(self, op, data):
        h = self._h2
        h[0] = op
        h[1] = data
        self._bus.xfer(h)

    def _select(self, reg):
        """Switch ECON1.BSEL to the register's bank (cached; commons need none)."""
        if (reg & 0x1F) >= 0x1B:
            return
        b = (reg >> 5) & 3
        cur = self._bank
        if b == cur:
            return
        if cur < 0:
            cur = 3
        clr = cur & ~b & 3
        st = b & ~cur & 3
        if clr:
            self._cmd(_BFC | ECON1, clr)
        if st:
            self._cmd(_BFS | ECON1, st)
        self._bank = b

    def _rcr(self, reg):
        self._select(reg)
        if reg & _MM:
            h = self._h2
            h[0] = _RCR | (reg & 0x1F)
            h[1] = 0  # clocks out the dummy byte MAC/MII reads return first
        else:
            h = self._h1
            h[0] = _RCR | (reg & 0x1F)
        r = self._r1
        self._bus.xfer(h, r, None, 1)
        return r[0]

    def _wcr(self, reg, v):
        self._select(reg)
        self._cmd(_WCR | (reg & 0x1F), v)

    def _wcr16(self, reg, v):
        self._wcr(reg, v & 0xFF)
        self._wcr(reg + 1, (v >> 8) & 0xFF)

    def _bfs(self, reg, mask):
        self._select(reg)
        self._cmd(_BFS | (reg & 0x1F), mask)

    def _bfc(self, reg, mask):
        self._select(reg)
        self._cmd(_BFC | (reg & 0x1F), mask)

    def phy_read(self, reg):
        """MIIM read [3.3.1]: MIREGADR, MICMD.MIIRD, poll MISTAT.BUSY, clear MIIRD, MIRD."""
        self._wcr(MIREGADR, reg)
        self._wcr(MICMD, MICMD_MIIRD)
        self._mii_wait()
        self._wcr(MICMD, 0)
        return self._rcr(MIRDL) | (self._rcr(MIRDH) << 8)

    def phy_write(self, reg, v):
        """MIIM write [3.3.2]: MIREGADR, MIWRL, MIWRH (starts the write), poll BUSY."""
        self._wcr(MIREGADR, reg)
        self._wcr(MIWRL, v & 0xFF)
        self._wcr(MIWRH, (v >> 8) & 0xFF)
        self._mii_wait()

    def _mii_wait(self):
        for _ in range(1000):
            if not self._rcr(MISTAT) & MISTAT_BUSY:
                return
        raise OSError(110, "ENC28J60 MII busy")

    # ------------------------------------------------------------ bring-up
    def init(self):
        if self._reset_pin is not None:
            pulse_reset(self._reset_pin)
        self._h1[0] = _SRC
        self._bus.xfer(self._h1)  # System Reset Command [11.2]
        self._bank = 0  # BSEL resets to 0
        # errata: CLKRDY may read set too early after SRC; wait >= 1 ms, then poll it
        self._sleep(2)
        for _ in range(1000):
            if self._rcr(ESTAT) & ESTAT_CLKRDY:
                break
        else:
            raise OSError(19, "ENC28J60: CLKRDY never set (no chip?)")
        self.revision = self._rcr(EREVID)
        # buffers [6.1]: ERXRDPT = ERXND (odd) since next packet == ERXST
        self._wcr16(ERXSTL, self._rx_start)
        self._wcr16(ERXNDL, self._rx_end)
        self._wcr16(ERXRDPTL, self._rx_end)
        self._wcr16(ETXSTL, self._tx_start)
        self._next = self._rx_start
        self._pending = 0
        # receive filters [8]: own unicast, broadcast, valid CRC only
        fc = ERXFCON_UCEN | ERXFCON_CRCEN | ERXFCON_BCEN
        if self._multicast:
            fc |= ERXFCON_MCEN
        self._wcr(ERXFCON, fc)
        # MAC [6.5]
        full = self._full
        self._wcr(MACON1, MACON1_MARXEN | ((MACON1_TXPAUS | MACON1_RXPAUS) if full else 0))
        self._wcr(MACON3, MACON3_PADCFG0 | MACON3_TXCRCEN | MACON3_FRMLNEN
                  | (MACON3_FULDPX if full else 0))
        if not full:
            self._wcr(MACON4, MACON4_DEFER)
        self._wcr16(MAMXFLL, MAX_FRAME)
        self._wcr(MABBIPG, 0x15 if full else 0x12)
        self._wcr(MAIPGL, 0x12)
        if not full:
            self._wcr(MAIPGH, 0x0C)
        m = self.mac
        self._wcr(MAADR1, m[0])
        self._wcr(MAADR2, m[1])
        self._wcr(MAADR3, m[2])
        self._wcr(MAADR4, m[3])
        self._wcr(MAADR5, m[4])
        self._wcr(MAADR6, m[5])
        # PHY [6.6]: duplex must match MACON3.FULDPX; HDLDIS stops half-duplex loopback
        self.phy_write(PHCON1, PHCON1_PDPXMD if full else 0)
        self.phy_write(PHCON2, 0 if full else PHCON2_HDLDIS)
        self.phy_write(PHIE, PHIE_PGEIE | PHIE_PLNKIE)
        # interrupts, then enable reception
        self._wcr(EIE, EIE_INTIE | EIE_PKTIE | EIE_LINKIE | EIE_TXERIE | EIE_RXERIE)
        self._bfc(EIR, EIR_TXIF | EIR_TXERIF | EIR_RXERIF)
        self._bfs(ECON2, ECON2_AUTOINC)
        self._bfs(ECON1, ECON1_RXEN)
        self._link = bool(self.phy_read(PHSTAT2) & PHSTAT2_LSTAT)

    # ------------------------------------------------------------ Driver interface
    def recv_into(self, buf):
        bus = self._bus
        hdr = self._hdr
        st = self._rx_start
        nd = self._rx_end
        while True:
            if not self._pending:
                if self._int is not None and self._int.value():
                    return 0
                cnt = self._rcr(EPKTCNT)
                if not cnt:
                    return 0
                self._pending = cnt
            p = self._next
            self._wcr(ERDPTL, p & 0xFF)
            self._wcr(ERDPTL + 1, p >> 8)
            bus.xfer(self._rbm_h, hdr, None, 6)
            nxt = hdr[0] | (hdr[1] << 8)
            count = hdr[2] | (hdr[3] << 8)
            # the next pointer must be where this packet ends (even-aligned, wrapped)
            exp = p + 6 + count
            exp += exp & 1
            if exp > nd:
                exp -= nd - st + 1
            if count < 18 or count > MAX_FRAME or nxt != exp:
                self.rx_errors += 1
                self._rx_reset()
                return 0
            n = count - 4
            got = 0
            if not hdr[4] & RSV_RXOK:
                self.rx_errors += 1
            elif n > len(buf):
                self.rx_dropped += 1
            else:
                bus.xfer(self._rbm_h, buf, None, n)
                got = n
            self._next = nxt
            # free the packet: ERXRDPT must be odd (errata), so next-1, or ERXND at the start
            rd = nd if nxt == st else nxt - 1
            self._wcr(ERXRDPTL, rd & 0xFF)
            self._wcr(ERXRDPTL + 1, rd >> 8)
            self._bfs(ECON2, ECON2_PKTDEC)
            self._pending -= 1
            if got:
                self.rx_frames += 1
                return got

    def send(self, buf, n):
        if n < 14 or n > MAX_FRAME - 4:
            self.tx_errors += 1
            return False
        if not self._tx_ready():
            return False
        ts = self._tx_start
        self._wcr(EWRPTL, ts & 0xFF)
        self._wcr(EWRPTL + 1, ts >> 8)
        self._bus.xfer(self._wbm_h, None, buf, n)
        end = ts + n  # control byte at ts, frame at ts+1 .. ts+n
        self._wcr(ETXNDL, end & 0xFF)
        self._wcr(ETXNDL + 1, end >> 8)
        self._bfs(ECON1, ECON1_TXRTS)
        self.tx_frames += 1
        return True

    def _tx_ready(self):
        """The single TX buffer is free once TXRTS clears. A TXRTS that stays set with
        EIR.TXERIF, or for tx_stall_limit consecutive sends, is the errata stall: reset."""
        for _ in range(self.tx_wait):
            if not self._rcr(ECON1) & ECON1_TXRTS:
                self._tx_busy_run = 0
                return True
            if self._rcr(EIR) & EIR_TXERIF:
                self.tx_errors += 1
                self._tx_reset()
                return True
        self.tx_busy += 1
        self._tx_busy_run += 1
        if self._tx_busy_run >= self.tx_stall_limit:
            self._tx_reset()
            return True
        return False

    def _tx_reset(self):
        """Errata workaround: pulse ECON1.TXRST, drop TXRTS, clear TXERIF/TXIF."""
        self._bfs(ECON1, ECON1_TXRST)
        self._bfc(ECON1, ECON1_TXRST | ECON1_TXRTS)
        self._bfc(EIR, EIR_TXERIF | EIR_TXIF)
        self._tx_busy_run = 0
        self.tx_resets += 1

    def _rx_reset(self):
        """Recover from a corrupt RX header: reset the RX logic and rebuild an empty ring."""
        self._bfc(ECON1, ECON1_RXEN)
        self._bfs(ECON1, ECON1_RXRST)
        self._bfc(ECON1, ECON1_RXRST)
        self._wcr16(ERXSTL, self._rx_start)  # also resets the hardware write pointer
        self._wcr16(ERXNDL, self._rx_end)
        self._wcr16(ERXRDPTL, self._rx_end)
        self._next = self._rx_start
        for _ in range(256):
            if not self._rcr(EPKTCNT):
                break
            self._bfs(ECON2, ECON2_PKTDEC)
        self._pending = 0
        self._bfc(EIR, EIR_RXERIF)
        self._bfs(ECON1, ECON1_RXEN)
        self.rx_resets += 1

    def service(self):
        if self._int is not None and self._int.value():
            return
        eir = self._rcr(EIR)
        if eir & EIR_TXERIF:
            self.tx_errors += 1
            self._tx_reset()
        if eir & EIR_RXERIF:
            self.rx_overflows += 1
            self._bfc(EIR, EIR_RXERIF)
        if eir & EIR_LINKIF:
            self.phy_read(PHIR)  # reading PHIR clears PGIF, hence EIR.LINKIF
            self._link = bool(self.phy_read(PHSTAT2) & PHSTAT2_LSTAT)

    def link_up(self):
        return self._link

    def poll_obj(self):
        return None

    def close(self):
        self._bfc(ECON1, ECON1_RXEN)
