"""Virtual ENC28J60 (Microchip DS39662E) at register level.

It *is* an SpiBus: a driver talks to it exactly as to the real chip behind an adapter.
The byte-stream decoder is CS-framed (cs_low / spi_write / spi_read / spi_exchange /
cs_high), so fakes of host SPI APIs (machine.SPI + Pin, spidev, pyftdi) can drive it byte
for byte; xfer() is built on it.

Modelled (datasheet sections in brackets):
- SPI opcodes RCR/RBM/WCR/WBM/BFS/BFC/SRC [4.2]; the dummy byte before MAC/MII register
  data on RCR [4.2.1]; BFS/BFC only on ETH registers.
- 4 banks + common registers 0x1B-0x1F, ECON1.BSEL [3.1].
- 8 KB buffer memory; ERDPT/EWRPT auto-increment (ECON2.AUTOINC); ERDPT wraps ERXND -> ERXST,
  both wrap 0x1FFF -> 0 [3.2].
- RX ring ERXST..ERXND with the hardware write pointer, ERXRDPT (low byte buffered until the
  high byte is written), free-space rule [6.1, 7.2]; per packet: next-packet pointer +
  32-bit receive status vector + frame + CRC, padded to an even address [7.2.1];
  EPKTCNT, PKTIF, ECON2.PKTDEC; ERXFCON unicast/multicast/broadcast/CRC filters, AND/OR
  [8]; overflow (ring full or EPKTCNT == 255): frame dropped, EIR.RXERIF set.
- TX: control byte at ETXST, frame to ETXND, ECON1.TXRTS -> frame on the wire (padding per
  MACON3.PADCFG / control byte), 7-byte TX status vector after ETXND, TXRTS self-clears,
  EIR.TXIF [7.1]; MAMXFL giant check; ECON1.TXRST; optional completion delay; injectable
  abort that leaves TXRTS stuck until TXRST (errata DS80349 "transmit logic" item).
- MIIM: MIREGADR/MICMD.MIIRD/MIWRL/MIWRH, MISTAT.BUSY for a few transactions [3.3];
  PHY registers PHCON1/PHSTAT1/PHID/PHCON2/PHSTAT2 (LSTAT)/PHIE/PHIR/PHLCON [3.3.x];
  link changes -> PHIR.PLNKIF/PGIF -> EIR.LINKIF.
- ESTAT.CLKRDY after reset (a few transactions), MAC/MII access refused before it;
  SRC and a RESET pin; INT pin (active low) from EIE/EIR [12].
Errata checks: an even ERXRDPT or an RX ring not starting at 0 counts in
errata_violations (the silicon would corrupt the ring; the model stays consistent).
Not modelled: DMA/checksum engine, pattern/hash/magic-packet filters (never match),
flow control, half-duplex collisions, the EREVID-dependent erratas other than TX stall.

Wire side: wire_rx(frame) (no FCS; < 60 bytes padded as a sender's MAC would; returns
True if stored) and on_wire_tx(frame_bytes) (FCS not included). With on_wire_tx = None,
transmitted frames go to a preallocated queue read with wire_tx_into(buf) -> n; that path
and the whole SPI side allocate nothing, so drivers can be heap_lock-tested against it.
"""

import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    from binascii import crc32 as _crc32
except ImportError:  # pragma: no cover
    _crc32 = None

from ustack.hal.spi import SpiBus, native_copy
from ustack.hal.sim.pins import ClockedChip, IntPin, ResetPin

_MPY = sys.implementation.name == "micropython"

_copy = native_copy()  # viper copy on MicroPython ports with the native emitter
if _copy is None and _MPY:
    def _copy(dst, doff, src, soff, n):
        # slices of buffers allocate on MicroPython; index copy does not
        for i in range(n):
            dst[doff + i] = src[soff + i]
elif _copy is None:
    def _copy(dst, doff, src, soff, n):
        dst[doff:doff + n] = src[soff:soff + n]

# opcodes [Table 4-1]
_RCR = const(0)
_RBM = const(1)
_WCR = const(2)
_WBM = const(3)
_BFS = const(4)
_BFC = const(5)
_SRC = const(7)

# common registers
EIE = const(0x1B)
EIR = const(0x1C)
ESTAT = const(0x1D)
ECON2 = const(0x1E)
ECON1 = const(0x1F)
# bank 0
ERDPTL = const(0x00)
ERDPTH = const(0x01)
EWRPTL = const(0x02)
EWRPTH = const(0x03)
ETXSTL = const(0x04)
ETXSTH = const(0x05)
ETXNDL = const(0x06)
ETXNDH = const(0x07)
ERXSTL = const(0x08)
ERXSTH = const(0x09)
ERXNDL = const(0x0A)
ERXNDH = const(0x0B)
ERXRDPTL = const(0x0C)
ERXRDPTH = const(0x0D)
ERXWRPTL = const(0x0E)
ERXWRPTH = const(0x0F)
# bank 1
ERXFCON = const(0x20 + 0x18)
EPKTCNT = const(0x20 + 0x19)
# bank 2 (MAC/MII)
MACON1 = const(0x40 + 0x00)
MACON3 = const(0x40 + 0x02)
MACON4 = const(0x40 + 0x03)
MABBIPG = const(0x40 + 0x04)
MAIPGL = const(0x40 + 0x06)
MAIPGH = const(0x40 + 0x07)
MAMXFLL = const(0x40 + 0x0A)
MAMXFLH = const(0x40 + 0x0B)
MICMD = const(0x40 + 0x12)
MIREGADR = const(0x40 + 0x14)
MIWRL = const(0x40 + 0x16)
MIWRH = const(0x40 + 0x17)
MIRDL = const(0x40 + 0x18)
MIRDH = const(0x40 + 0x19)
# bank 3: MAADR1 (first byte on the wire) is at 0x04 [Table 3-2]
MAADR5 = const(0x60 + 0x00)
MAADR6 = const(0x60 + 0x01)
MAADR3 = const(0x60 + 0x02)
MAADR4 = const(0x60 + 0x03)
MAADR1 = const(0x60 + 0x04)
MAADR2 = const(0x60 + 0x05)
MISTAT = const(0x60 + 0x0A)
EREVID = const(0x60 + 0x12)

# bits
ECON1_TXRST = const(0x80)
ECON1_RXRST = const(0x40)
ECON1_TXRTS = const(0x08)
ECON1_RXEN = const(0x04)
ECON2_AUTOINC = const(0x80)
ECON2_PKTDEC = const(0x40)
EIR_PKTIF = const(0x40)
EIR_LINKIF = const(0x10)
EIR_TXIF = const(0x08)
EIR_TXERIF = const(0x02)
EIR_RXERIF = const(0x01)
ESTAT_INT = const(0x80)
ESTAT_TXABRT = const(0x02)
ESTAT_CLKRDY = const(0x01)
MACON3_TXCRCEN = const(0x10)
MACON3_HFRMEN = const(0x04)
MICMD_MIIRD = const(0x01)
MISTAT_BUSY = const(0x01)
ERXFCON_UCEN = const(0x80)
ERXFCON_ANDOR = const(0x40)
ERXFCON_CRCEN = const(0x20)
ERXFCON_MCEN = const(0x02)
ERXFCON_BCEN = const(0x01)

# PHY registers [Table 3-3]
PHCON1 = const(0x00)
PHSTAT1 = const(0x01)
PHID1 = const(0x02)
PHID2 = const(0x03)
PHCON2 = const(0x10)
PHSTAT2 = const(0x11)
PHIE = const(0x12)
PHIR = const(0x13)
PHLCON = const(0x14)
PHCON1_PRST = const(0x8000)
PHCON1_PDPXMD = const(0x0100)
PHSTAT1_LLSTAT = const(0x0004)
PHSTAT2_LSTAT = const(0x0400)
PHSTAT2_DPXSTAT = const(0x0200)
PHIE_PLNKIE = const(0x0010)
PHIE_PGEIE = const(0x0002)
PHIR_PLNKIF = const(0x0010)
PHIR_PGIF = const(0x0004)

MEM_SIZE = const(0x2000)
REVISION = const(0x06)  # EREVID of silicon rev B7
_TXQ_SLOTS = const(4)
_TXQ_SIZE = const(1536)


def _is_mac_mii(idx):
    """MAC/MII registers (bank 2 all, bank 3 MAADRx/MISTAT) answer RCR after a dummy byte
    and ignore BFS/BFC [4.2.1, 4.2.5]."""
    a = idx & 0x1F
    if a >= 0x1B:
        return False
    bank = idx >> 5
    return bank == 2 or (bank == 3 and (a <= 0x05 or a == 0x0A))


class Enc28j60Sim(ClockedChip, SpiBus):
    def __init__(self, link=True, tx_delay=0, mii_busy=3, clkrdy_delay=3):
        self.mem = bytearray(MEM_SIZE)
        self.regs = bytearray(128)  # bank*32 + addr; commons live at 0x1B-0x1F
        self.phy = [0] * 32
        self.link = bool(link)
        self.tx_delay = tx_delay
        self.mii_busy = mii_busy
        self.clkrdy_delay = clkrdy_delay
        self.on_wire_tx = None
        self.int_pin = IntPin(self)
        self.reset_pin = ResetPin(self)
        # counters
        self.rx_frames = 0
        self.rx_dropped_overflow = 0
        self.rx_dropped_filter = 0
        self.rx_dropped_other = 0
        self.tx_frames = 0
        self.tx_aborted = 0
        self.tx_dropped_nolink = 0
        self.spi_transactions = 0
        self.protocol_errors = 0
        self.errata_violations = 0  # host did what the errata forbid (even ERXRDPT...)
        # pull-mode TX queue (preallocated)
        self._txq = [bytearray(_TXQ_SIZE) for _ in range(_TXQ_SLOTS)]
        self._txq_len = [0] * _TXQ_SLOTS
        self._txq_head = 0
        self._txq_count = 0
        self.tx_queue_dropped = 0
        self._txf = bytearray(MEM_SIZE)  # frame assembly for transmission
        self._zeros = bytearray(64)
        self._rxhdr = bytearray(6)  # wire_rx scratch: no allocation per received frame
        self._stall_next_tx = False
        self._held = False
        self._selected = False
        self._op = -1
        self._arg = 0
        self._cnt = 0
        self.reset()

    # ---------------------------------------------------------------- reset / state
    def reset(self):
        """Power-on / SRC / RESET-pin state [Table 3-2 reset values, 11]."""
        r = self.regs
        for i in range(128):
            r[i] = 0
        r[ECON2] = ECON2_AUTOINC
        self.rdpt = 0x05FA
        self.wrpt = 0x0000
        self._set16(ETXSTL, 0)
        self._set16(ETXNDL, 0)
        self._set16(ERXSTL, 0x05FA)
        self._set16(ERXNDL, 0x1FFF)
        self.rxrdpt = 0x05FA
        self._rxrdpt_low = 0xFA
        self.rxwr = 0x0000  # hardware write pointer (ERXWRPT)
        self.pktcnt = 0
        r[ERXFCON] = ERXFCON_UCEN | ERXFCON_CRCEN | ERXFCON_BCEN
        r[0x40 + 0x08] = 0x0F  # MACLCON1
        r[0x40 + 0x09] = 0x37  # MACLCON2
        self._set16(MAMXFLL, 0x0600)
        p = self.phy
        for i in range(32):
            p[i] = 0
        p[PHSTAT1] = 0x1800 | (PHSTAT1_LLSTAT if self.link else 0)
        p[PHID1] = 0x0083
        p[PHID2] = 0x1400
        p[PHLCON] = 0x3422
        self.mird = 0
        self._mii_count = 0
        self._clk_count = self.clkrdy_delay
        self._tx_count = -1
        self._stall_next_tx = False

    def _set16(self, lo, v):
        self.regs[lo] = v & 0xFF
        self.regs[lo + 1] = (v >> 8) & 0x1F

    def _get16(self, lo):
        return self.regs[lo] | (self.regs[lo + 1] << 8)

    def set_link(self, up):
        """Plug/unplug the cable: PHSTAT2.LSTAT, latching PHSTAT1.LLSTAT, PHIR flags."""
        up = bool(up)
        if up == self.link:
            return
        self.link = up
        p = self.phy
        if not up:
            p[PHSTAT1] &= ~PHSTAT1_LLSTAT
        p[PHIR] |= PHIR_PLNKIF
        if (p[PHIE] & (PHIE_PGEIE | PHIE_PLNKIE)) == (PHIE_PGEIE | PHIE_PLNKIE):
            p[PHIR] |= PHIR_PGIF

    def stall_next_tx(self):
        """Fault injection: the next transmission aborts (TXERIF, ESTAT.TXABRT) and leaves
        ECON1.TXRTS set until the host resets the TX logic (errata DS80349)."""
        self._stall_next_tx = True

    @property
    def bank(self):
        return self.regs[ECON1] & 3

    @property
    def clkrdy(self):
        return self._clk_count <= 0

    def _eir(self):
        v = self.regs[EIR] & 0x2B
        if self.pktcnt:
            v |= EIR_PKTIF
        if self.phy[PHIR] & PHIR_PGIF:
            v |= EIR_LINKIF
        return v

    def _int_asserted(self):
        eie = self.regs[EIE]
        return bool(eie & 0x80) and bool(self._eir() & eie & 0x7B)

    # ---------------------------------------------------------------- register file
    def _read_reg(self, idx):
        r = self.regs
        if idx == EIR:
            return self._eir()
        if idx == ESTAT:
            v = r[ESTAT] & 0x52
            if self._int_asserted():
                v |= ESTAT_INT
            if self.clkrdy:
                v |= ESTAT_CLKRDY
            return v
        if idx == ECON2:
            return r[ECON2] & ~ECON2_PKTDEC
        if idx < 0x20:
            if idx == ERDPTL:
                return self.rdpt & 0xFF
            if idx == ERDPTH:
                return self.rdpt >> 8
            if idx == EWRPTL:
                return self.wrpt & 0xFF
            if idx == EWRPTH:
                return self.wrpt >> 8
            if idx == ERXRDPTL:
                return self.rxrdpt & 0xFF
            if idx == ERXRDPTH:
                return self.rxrdpt >> 8
            if idx == ERXWRPTL:
                return self.rxwr & 0xFF
            if idx == ERXWRPTH:
                return self.rxwr >> 8
        elif idx == EPKTCNT:
            return self.pktcnt
        elif idx == MIRDL:
            return self.mird & 0xFF
        elif idx == MIRDH:
            return self.mird >> 8
        elif idx == MISTAT:
            return MISTAT_BUSY if self._mii_count > 0 else 0
        elif idx == EREVID:
            return REVISION
        return r[idx]

    def _write_reg(self, idx, v):
        r = self.regs
        if _is_mac_mii(idx) and not self.clkrdy:
            self.protocol_errors += 1  # MAC/MII/PHY not accessible before CLKRDY [2.2]
            return
        if idx >= 0x1B and idx < 0x20:
            if idx == ECON1:
                self._write_econ1(v)
            elif idx == ECON2:
                if v & ECON2_PKTDEC and self.pktcnt:
                    self.pktcnt -= 1
                r[ECON2] = v & 0xA8  # AUTOINC, PWRSV, VRPS; PKTDEC self-clears
            elif idx == EIR:
                r[EIR] = v & 0x2B  # DMAIF TXIF TXERIF RXERIF; PKTIF/LINKIF read-only
            elif idx == ESTAT:
                r[ESTAT] &= v | ~0x52  # BUFER LATECOL TXABRT: host may only clear
            else:
                r[EIE] = v
            return
        if idx < 0x20:
            if idx == ERDPTL:
                self.rdpt = (self.rdpt & 0x1F00) | v
            elif idx == ERDPTH:
                self.rdpt = (self.rdpt & 0xFF) | ((v & 0x1F) << 8)
            elif idx == EWRPTL:
                self.wrpt = (self.wrpt & 0x1F00) | v
            elif idx == EWRPTH:
                self.wrpt = (self.wrpt & 0xFF) | ((v & 0x1F) << 8)
            elif idx == ERXRDPTL:
                self._rxrdpt_low = v  # takes effect when ERXRDPTH is written [6.1]
            elif idx == ERXRDPTH:
                self.rxrdpt = ((v & 0x1F) << 8) | self._rxrdpt_low
                if not self.rxrdpt & 1:
                    self.errata_violations += 1  # even ERXRDPT corrupts the ring (errata)
            elif idx == ERXWRPTL or idx == ERXWRPTH:
                pass  # read-only
            else:
                r[idx] = (v & 0x1F) if (idx & 1) and idx <= 0x17 else v
                if ERXSTL <= idx <= ERXNDH:
                    # writing ERXST/ERXND resets the hardware write pointer to ERXST
                    self.rxwr = self._get16(ERXSTL)
                    if idx == ERXSTH and self.rxwr != 0:
                        self.errata_violations += 1  # RX ring must start at 0 (errata)
            return
        if idx == EPKTCNT or idx == MISTAT or idx == EREVID or idx == MIRDL or idx == MIRDH:
            return  # read-only
        if idx == MICMD:
            if v & MICMD_MIIRD and not r[MICMD] & MICMD_MIIRD:
                self.mird = self._phy_read(r[MIREGADR] & 0x1F)
                self._mii_count = self.mii_busy
            r[MICMD] = v & 0x03
            return
        if idx == MIWRH:
            r[MIWRH] = v
            self._phy_write(r[MIREGADR] & 0x1F, r[MIWRL] | (v << 8))
            self._mii_count = self.mii_busy
            return
        r[idx] = v

    def _write_econ1(self, v):
        r = self.regs
        old = r[ECON1]
        if v & ECON1_TXRST:
            # TX logic held in reset: any transmission (or stall) is cancelled
            self._tx_count = -1
            v &= ~ECON1_TXRTS
        if v & ECON1_RXRST:
            v &= ~ECON1_RXEN
        r[ECON1] = v
        if (v & ECON1_TXRTS) and not (old & ECON1_TXRTS):
            self._start_tx()
        elif not (v & ECON1_TXRTS) and (old & ECON1_TXRTS):
            self._tx_count = -1  # host aborted the transmission

    # ---------------------------------------------------------------- PHY (MIIM)
    def _phy_read(self, a):
        p = self.phy
        if a == PHSTAT2:
            v = PHSTAT2_LSTAT if self.link else 0
            if p[PHCON1] & PHCON1_PDPXMD:
                v |= PHSTAT2_DPXSTAT
            return v
        if a == PHSTAT1:
            v = p[PHSTAT1]
            if self.link:  # LLSTAT latches low until read [PHSTAT1 register]
                p[PHSTAT1] |= PHSTAT1_LLSTAT
            return v
        if a == PHIR:
            v = p[PHIR]
            p[PHIR] = 0  # reading clears PGIF and PLNKIF
            return v
        return p[a]

    def _phy_write(self, a, v):
        p = self.phy
        if a == PHCON1:
            if v & PHCON1_PRST:  # PHY reset (self-clearing); the link itself is the cable's
                p[PHCON2] = 0
                p[PHIE] = 0
                p[PHLCON] = 0x3422
                v &= ~PHCON1_PRST
            p[PHCON1] = v
        elif a in (PHCON2, PHIE, PHLCON):
            p[a] = v
        else:
            self.protocol_errors += 1  # read-only PHY register

    # ---------------------------------------------------------------- SPI side
    def cs_low(self):
        self._selected = True
        self._op = -1
        self._cnt = 0
        self.spi_transactions += 1
        if self._mii_count > 0:
            self._mii_count -= 1
        if self._clk_count > 0:
            self._clk_count -= 1
        if self._tx_count > 0:
            self._tx_count -= 1
            if self._tx_count == 0:
                self._finish_tx()

    def cs_high(self):
        if self._op == _SRC and not self._held:
            self.reset()
        self._selected = False
        self._op = -1

    def _clock(self, mosi, moff, miso, noff, n):
        if n <= 0:
            return
        if self._held:  # in reset: MISO floats low, nothing happens
            if miso is not None:
                for i in range(n):
                    miso[noff + i] = 0
            return
        i = 0
        if self._op < 0:
            b = mosi[moff] if mosi is not None else 0
            self._op = b >> 5
            self._arg = b & 0x1F
            if self._op == 1 and self._arg != 0x1A:
                self._op = 6  # undefined
            elif self._op == 3 and self._arg != 0x1A:
                self._op = 6
            elif self._op == 7 and self._arg != 0x1F:
                self._op = 6
            if miso is not None:
                miso[noff] = 0
            i = 1
            if n == 1:
                return
        k = n - i
        op = self._op
        if op == _RBM:
            self._rbm(miso, noff + i, k)
        elif op == _WBM:
            if mosi is None:
                z = self._zeros
                while k > 0:
                    c = k if k < 64 else 64
                    self._wbm(z, 0, c)
                    k -= c
            else:
                self._wbm(mosi, moff + i, k)
        elif op == _RCR:
            idx = self._index(self._arg)
            dummy = _is_mac_mii(idx)
            for j in range(k):
                if miso is not None:
                    if dummy and self._cnt == 0:
                        miso[noff + i + j] = 0
                    else:
                        miso[noff + i + j] = self._read_reg(idx)
                self._cnt += 1
        elif op == _WCR or op == _BFS or op == _BFC:
            if miso is not None:
                for j in range(k):
                    miso[noff + i + j] = 0
            if self._cnt == 0:
                v = mosi[moff + i] if mosi is not None else 0
                self._reg_op(op, self._arg, v)
            if self._cnt + k > 1:
                self.protocol_errors += 1  # extra bytes after the data byte
            self._cnt += k
        else:
            if op != _SRC:
                self.protocol_errors += 1
            if miso is not None:
                for j in range(k):
                    miso[noff + i + j] = 0

    def _index(self, a):
        if a >= 0x1B:
            return a
        return ((self.regs[ECON1] & 3) << 5) | a

    def _reg_op(self, op, a, v):
        idx = self._index(a)
        if op == _WCR:
            self._write_reg(idx, v)
            return
        if _is_mac_mii(idx):
            self.protocol_errors += 1  # BFS/BFC only work on ETH registers [4.2.5]
            return
        cur = self._read_reg(idx)
        if op == _BFS:
            self._write_reg(idx, cur | v)
        else:
            if idx == ECON2:
                cur &= ~ECON2_PKTDEC
            self._write_reg(idx, cur & ~v)

    def _rbm(self, miso, off, k):
        mem = self.mem
        p = self.rdpt
        if not self.regs[ECON2] & ECON2_AUTOINC:
            if miso is not None:
                b = mem[p]
                for j in range(k):
                    miso[off + j] = b
            return
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        while k > 0:
            if p <= nd:
                lim = nd
                nxt = st
            else:
                lim = 0x1FFF
                nxt = 0
            c = lim - p + 1
            if c > k:
                c = k
            if miso is not None:
                _copy(miso, off, mem, p, c)
            off += c
            k -= c
            p += c
            if p > lim:
                p = nxt
        self.rdpt = p

    def _wbm(self, src, soff, k):
        mem = self.mem
        p = self.wrpt
        if not self.regs[ECON2] & ECON2_AUTOINC:
            mem[p] = src[soff + k - 1]
            return
        while k > 0:
            c = MEM_SIZE - p
            if c > k:
                c = k
            _copy(mem, p, src, soff, c)
            soff += c
            k -= c
            p = (p + c) & 0x1FFF
        self.wrpt = p

    # ---------------------------------------------------------------- transmit
    def _start_tx(self):
        if self._stall_next_tx:
            self._stall_next_tx = False
            self.tx_aborted += 1
            self.regs[EIR] |= EIR_TXERIF
            self.regs[ESTAT] |= ESTAT_TXABRT
            self._tx_count = -1  # TXRTS stays set: logic stalled until TXRST
            return
        if self.tx_delay > 0:
            self._tx_count = self.tx_delay
        else:
            self._finish_tx()

    def _finish_tx(self):
        r = self.regs
        mem = self.mem
        self._tx_count = -1
        st = self._get16(ETXSTL)
        nd = self._get16(ETXNDL)
        n = (nd - st) & 0x1FFF  # frame bytes at st+1 .. nd
        ctrl = mem[st]
        f = self._txf
        p = (st + 1) & 0x1FFF
        j = 0
        while j < n:
            c = MEM_SIZE - p
            if c > n - j:
                c = n - j
            _copy(f, j, mem, p, c)
            j += c
            p = (p + c) & 0x1FFF
        macon3 = r[MACON3]
        if ctrl & 0x01:  # POVERRIDE: the control byte decides [Figure 7-1]
            pad = 60 if ctrl & 0x04 else 0
            crc = ctrl & 0x02
            huge = ctrl & 0x08
        else:
            padcfg = macon3 >> 5
            pad = 0
            if padcfg & 1:
                pad = 64 if (padcfg & 3) == 3 else 60
            crc = macon3 & MACON3_TXCRCEN
            huge = macon3 & MACON3_HFRMEN
        if not crc and pad == 0 and n >= 4:
            n -= 4  # the host supplied the FCS: not part of the frame handed to the wire
        while n < pad:
            f[n] = 0
            n += 1
        wire = n + 4
        mxfl = self._get16(MAMXFLL)
        status2 = 0x80  # TSV bit 23: transmit done
        ok = True
        if wire > mxfl and not huge:
            ok = False
            status2 = 0x40  # TSV bit 22: length out of range (giant)
        if ok:
            if not self.link:
                self.tx_dropped_nolink += 1  # nobody on the wire
            elif self.on_wire_tx is not None:
                self.on_wire_tx(bytes(f[0:n]))
            else:
                self._txq_push(f, n)
            self.tx_frames += 1
        else:
            self.tx_aborted += 1
            r[EIR] |= EIR_TXERIF
            r[ESTAT] |= ESTAT_TXABRT
        # 7-byte TX status vector after ETXND [Table 7-1]
        status3 = 0
        if f[0] & 1:
            status3 = 0x02 if (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xFF else 0x01
        q = nd + 1
        mem[q & 0x1FFF] = wire & 0xFF  # bits 15:0 byte count
        mem[(q + 1) & 0x1FFF] = wire >> 8
        mem[(q + 2) & 0x1FFF] = status2  # bits 19:16 collisions (none), 22 range, 23 done
        mem[(q + 3) & 0x1FFF] = status3  # bits 24 multicast, 25 broadcast
        mem[(q + 4) & 0x1FFF] = wire & 0xFF  # bits 47:32 total bytes on the wire
        mem[(q + 5) & 0x1FFF] = wire >> 8
        mem[(q + 6) & 0x1FFF] = 0  # bits 51:48 control/pause frame, backpressure, VLAN
        r[ECON1] &= ~ECON1_TXRTS
        if ok:
            r[EIR] |= EIR_TXIF

    def _txq_push(self, f, n):
        if self._txq_count == _TXQ_SLOTS:
            self.tx_queue_dropped += 1
            self._txq_head = (self._txq_head + 1) % _TXQ_SLOTS
            self._txq_count -= 1
        if n > _TXQ_SIZE:
            n = _TXQ_SIZE
        k = (self._txq_head + self._txq_count) % _TXQ_SLOTS
        _copy(self._txq[k], 0, f, 0, n)
        self._txq_len[k] = n
        self._txq_count += 1

    def wire_tx_pending(self):
        return self._txq_count

    def wire_tx_into(self, buf):
        """Pop the oldest transmitted frame (pull mode, on_wire_tx None) into buf; -> n."""
        if not self._txq_count:
            return 0
        k = self._txq_head
        n = self._txq_len[k]
        _copy(buf, 0, self._txq[k], 0, n)
        self._txq_head = (k + 1) % _TXQ_SLOTS
        self._txq_count -= 1
        return n

    # ---------------------------------------------------------------- receive
    def rx_free(self):
        """Free bytes in the RX ring by the datasheet's formula [Equation 6-1 / 7.2.4]."""
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        wr = self.rxwr
        rd = self.rxrdpt
        if wr > rd:
            return (nd - st) - (wr - rd)
        if wr == rd:
            return nd - st
        return rd - wr - 1

    def _accept(self, f, crc_ok):
        fc = self.regs[ERXFCON]
        if fc & ERXFCON_CRCEN and not crc_ok:
            return False
        en = fc & 0x9F  # UCEN PMEN MPEN HTEN MCEN BCEN
        if not en:
            return True  # promiscuous
        r = self.regs
        uc = (f[0] == r[MAADR1] and f[1] == r[MAADR2] and f[2] == r[MAADR3]
              and f[3] == r[MAADR4] and f[4] == r[MAADR5] and f[5] == r[MAADR6])
        bc = (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xFF
        mc = f[0] & 1
        # pattern match, magic packet and hash table filters (0x10/0x08/0x04) never match
        hit = ((en & ERXFCON_UCEN and uc) or (en & ERXFCON_MCEN and mc)
               or (en & ERXFCON_BCEN and bc))
        if not fc & ERXFCON_ANDOR:
            return bool(hit)
        return not ((en & ERXFCON_UCEN and not uc) or (en & ERXFCON_MCEN and not mc)
                    or (en & ERXFCON_BCEN and not bc) or en & 0x1C)

    def wire_rx(self, frame, crc_ok=True):
        """A frame (without FCS) arrives from the network. Returns True if it was stored in
        the RX ring, False if filtered, refused (RX off, no link) or dropped for lack of room
        (counted in rx_dropped_overflow, EIR.RXERIF set)."""
        r = self.regs
        if self._held or not (r[ECON1] & ECON1_RXEN) or (r[ECON1] & ECON1_RXRST) or not self.link:
            self.rx_dropped_other += 1
            return False
        n = len(frame)
        if n < 60:
            frame = bytes(frame) + bytes(60 - n)
            n = 60
        if not self._accept(frame, crc_ok):
            self.rx_dropped_filter += 1
            return False
        total = n + 4
        if total > self._get16(MAMXFLL) and not r[MACON3] & MACON3_HFRMEN:
            self.rx_dropped_other += 1
            return False
        need = 6 + total
        need += need & 1  # next packet starts on an even address
        if self.pktcnt >= 255 or need > self.rx_free():
            r[EIR] |= EIR_RXERIF
            self.rx_dropped_overflow += 1
            return False
        crc = _crc32(frame) & 0xFFFFFFFF if _crc32 else 0
        if not crc_ok:
            crc ^= 0xFFFFFFFF
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        size = nd - st + 1
        p = self.rxwr
        nxt = p + need
        if nxt > nd:
            nxt -= size
        bc = (frame[0] & frame[1] & frame[2] & frame[3] & frame[4] & frame[5]) == 0xFF
        s2 = 0x80 if crc_ok else 0x10  # bit 23 received OK / bit 20 CRC error
        s3 = (0x02 if bc else 0x01) if frame[0] & 1 else 0  # bit 25 broadcast / 24 multicast
        h = self._rxhdr  # next pointer, status vector [Table 7-3], then after the frame the CRC
        h[0] = nxt & 0xFF
        h[1] = nxt >> 8
        h[2] = total & 0xFF
        h[3] = total >> 8
        h[4] = s2
        h[5] = s3
        p = self._ring_write(p, h, 6, st, nd)
        p = self._ring_write(p, frame, n, st, nd)
        h[0] = crc & 0xFF
        h[1] = (crc >> 8) & 0xFF
        h[2] = (crc >> 16) & 0xFF
        h[3] = crc >> 24
        p = self._ring_write(p, h, 4, st, nd)
        self.rxwr = nxt
        self.pktcnt += 1
        self.rx_frames += 1
        return True

    def _ring_write(self, p, src, n, st, nd):
        mem = self.mem
        s = 0
        while n > 0:
            c = nd - p + 1
            if c > n:
                c = n
            _copy(mem, p, src, s, c)
            s += c
            n -= c
            p += c
            if p > nd:
                p = st
        return p
