"""Virtual WIZnet W5500 (datasheet v1.0.9) in MACRAW mode, at register level.

It *is* an SpiBus, like hal/sim/enc28j60.py, with the same CS-framed byte-stream decoder
(cs_low / spi_write / spi_read / spi_exchange / cs_high) underneath xfer().

Modelled:
- SPI frame [2.2]: 16-bit offset (MSB first) + control byte BSB[4:0]|RWB|OM[1:0] + data;
  the offset auto-increments; OM=00 variable length (CS framed), OM=01/10/11 fixed 1/2/4
  data bytes (bytes beyond that are counted as protocol errors, not chained).
- Blocks: common registers (BSB 0); for socket n registers (n<<2)|1, TX buffer |2,
  RX buffer |3 [Table 2-3]. Buffer address = offset & (size-1) inside the socket's share
  of the 16 KB TX / 16 KB RX memory (Sn_TXBUF_SIZE / Sn_RXBUF_SIZE in KB, allocated in
  socket order) [Sn_RXBUF_SIZE].
- Common: MR (RST bit 7 self-clearing reset), SHAR, IR/IMR, SIR/SIMR, PHYCFGR (LNK bit 0,
  SPD, DPX, RST), VERSIONR = 0x04.
- Socket: Sn_MR (MACRAW 0x04, MFEN bit 7, BCASTB bit 6, MMB bit 5, MIP6B bit 4; MACRAW is
  socket 0 only), Sn_CR commands OPEN/CLOSE/SEND/RECV that self-clear (optionally after a
  few reads), Sn_IR (write 1 to clear; SEND_OK 0x10, RECV 0x04), Sn_SR (0x42 SOCK_MACRAW),
  Sn_TX_FSR / Sn_TX_RD / Sn_TX_WR / Sn_RX_RSR / Sn_RX_RD / Sn_RX_WR (16-bit big-endian;
  FSR and RSR change only on SEND/RECV and wire events) [Socket registers].
- MACRAW RX: each frame stored as a 2-byte big-endian length that counts itself + frame
  (no FCS); dropped when it does not fit. TX: SEND puts TX_RD..TX_WR on the wire as one
  frame (short frames padded to 60 bytes: assumed MAC behaviour), then TX_RD = TX_WR and
  Sn_IR.SEND_OK, immediately or after `tx_delay` SPI transactions.
- Fault injection: unstable RSR/FSR reads (the reason the datasheet says "read until two
  reads agree"), a SEND that never completes, arbitrary pointer start values.
Not modelled: TCP/UDP/IPRAW sockets (OPEN gives them a status but no traffic), WOL, PPPoE,
the interrupt-level timer, PHY register details beyond PHYCFGR.

Wire side: wire_rx(frame) -> True if stored; on_wire_tx(frame_bytes); with on_wire_tx None
frames queue in preallocated slots read by wire_tx_into(buf). The SPI side and the queue
allocate nothing.
"""

import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

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

# common registers
MR = const(0x0000)
SHAR = const(0x0009)
IR = const(0x0015)
IMR = const(0x0016)
SIR = const(0x0017)
SIMR = const(0x0018)
PHYCFGR = const(0x002E)
VERSIONR = const(0x0039)
# socket registers
Sn_MR = const(0x00)
Sn_CR = const(0x01)
Sn_IR = const(0x02)
Sn_SR = const(0x03)
Sn_RXBUF_SIZE = const(0x1E)
Sn_TXBUF_SIZE = const(0x1F)
Sn_TX_FSR = const(0x20)
Sn_TX_RD = const(0x22)
Sn_TX_WR = const(0x24)
Sn_RX_RSR = const(0x26)
Sn_RX_RD = const(0x28)
Sn_RX_WR = const(0x2A)
Sn_IMR = const(0x2C)

MR_RST = const(0x80)
MR_MACRAW = const(0x04)
MR_MFEN = const(0x80)
MR_BCASTB = const(0x40)
MR_MMB = const(0x20)
MR_MIP6B = const(0x10)
CR_OPEN = const(0x01)
CR_CLOSE = const(0x10)
CR_SEND = const(0x20)
CR_RECV = const(0x40)
IR_SEND_OK = const(0x10)
IR_RECV = const(0x04)
SOCK_CLOSED = const(0x00)
SOCK_UDP = const(0x22)
SOCK_INIT = const(0x13)
SOCK_MACRAW = const(0x42)
VERSION = const(0x04)
BUF_TOTAL = const(16384)
_TXQ_SLOTS = const(4)
_TXQ_SIZE = const(1536)


class W5500Sim(ClockedChip, SpiBus):
    def __init__(self, link=True, tx_delay=0, cmd_delay=0, ptr_base=0):
        self.common = bytearray(0x40)
        self.sregs = [bytearray(0x30) for _ in range(8)]
        self.txmem = bytearray(BUF_TOTAL)
        self.rxmem = bytearray(BUF_TOTAL)
        self.link = bool(link)
        self.tx_delay = tx_delay
        self.cmd_delay = cmd_delay
        self.ptr_base = ptr_base & 0xFFFF
        self.on_wire_tx = None
        self.int_pin = IntPin(self)
        self.reset_pin = ResetPin(self)
        self.unstable_reads = 0
        # counters
        self.rx_frames = 0
        self.rx_dropped_overflow = 0
        self.rx_dropped_filter = 0
        self.rx_dropped_other = 0
        self.tx_frames = 0
        self.tx_dropped_nolink = 0
        self.spi_transactions = 0
        self.protocol_errors = 0
        # socket internal state (all 8 keep pointers; only socket 0 carries MACRAW traffic)
        self.tx_rd = [0] * 8
        self.tx_wr_sent = [0] * 8  # TX_WR as of the last SEND
        self.rx_wr = [0] * 8
        self.rx_rd_ack = [0] * 8  # RX_RD as of the last RECV
        self._cr_busy = [0] * 8
        self._txq = [bytearray(_TXQ_SIZE) for _ in range(_TXQ_SLOTS)]
        self._txq_len = [0] * _TXQ_SLOTS
        self._txq_head = 0
        self._txq_count = 0
        self.tx_queue_dropped = 0
        self._txf = bytearray(BUF_TOTAL)
        self._hdr = bytearray(3)
        self._base = 0
        self._mem = self.rxmem
        self._held = False
        self._stall_send = False
        self._tx_count = -1
        self._tx_sock = 0
        self._hn = 0
        self._addr = 0
        self._bsb = 0
        self._rwb = 0
        self._om = 0
        self._cnt = 0
        self.reset()

    # ---------------------------------------------------------------- reset / state
    def reset(self):
        """Power-on / MR.RST / RSTn state."""
        c = self.common
        for i in range(len(c)):
            c[i] = 0
        c[0x19] = 0x07  # RTR = 2000 (0x07D0)
        c[0x1A] = 0xD0
        c[0x1B] = 0x08  # RCR
        c[PHYCFGR] = 0xB8  # RST=1, OPMD=0, OPMDC=111 (all capable, auto-negotiation)
        for s in range(8):
            r = self.sregs[s]
            for i in range(len(r)):
                r[i] = 0
            r[Sn_RXBUF_SIZE] = 2
            r[Sn_TXBUF_SIZE] = 2
            r[Sn_IMR] = 0xFF
            r[0x12] = 0xFF  # MSSR
            r[0x16] = 0x80  # TTL
            self.tx_rd[s] = 0
            self.tx_wr_sent[s] = 0
            self.rx_wr[s] = 0
            self.rx_rd_ack[s] = 0
            self._cr_busy[s] = 0
        self._tx_count = -1
        self._stall_send = False

    def set_link(self, up):
        self.link = bool(up)

    def stall_next_send(self):
        """Fault injection: the next SEND never completes (no SEND_OK) until CLOSE/OPEN."""
        self._stall_send = True

    def _g16(self, r, a):
        return (r[a] << 8) | r[a + 1]

    def _s16(self, r, a, v):
        r[a] = (v >> 8) & 0xFF
        r[a + 1] = v & 0xFF

    def _region(self, s, tx):
        """Size of socket s's share of the TX or RX memory (0 = none); its start goes to
        self._base (no tuple: this runs on the allocation-free SPI path)."""
        a = Sn_TXBUF_SIZE if tx else Sn_RXBUF_SIZE
        base = 0
        for k in range(s):
            base += self.sregs[k][a] << 10
        size = self.sregs[s][a] << 10
        if base + size > BUF_TOTAL:
            size = 0
        self._base = base
        return size

    def rx_used(self, s=0):
        return (self.rx_wr[s] - self.rx_rd_ack[s]) & 0xFFFF

    def tx_free(self, s=0):
        size = self._region(s, True)
        return size - ((self.tx_wr_sent[s] - self.tx_rd[s]) & 0xFFFF)

    def _sir(self):
        v = 0
        for s in range(8):
            r = self.sregs[s]
            if r[Sn_IR] & r[Sn_IMR]:
                v |= 1 << s
        return v

    def _int_asserted(self):
        c = self.common
        return bool((self._sir() & c[SIMR]) or (c[IR] & c[IMR] & 0xF0))

    # ---------------------------------------------------------------- registers
    def _read_common(self, a):
        c = self.common
        if a == SIR:
            return self._sir()
        if a == PHYCFGR:
            v = (c[PHYCFGR] & 0xF8) | 0x80
            if self.link:
                v |= 0x07  # LNK, SPD 100, DPX full
            return v
        if a == VERSIONR:
            return VERSION
        if a < 0x40:
            return c[a]
        return 0

    def _write_common(self, a, v):
        c = self.common
        if a == MR:
            if v & MR_RST:
                self.reset()
            else:
                c[MR] = v
        elif a == IR:
            c[IR] &= ~v
        elif a == SIR or a == VERSIONR:
            pass
        elif a == PHYCFGR:
            c[PHYCFGR] = (v & 0x78) | 0x80  # RST=0 would restart the PHY: immediate here
        elif a < 0x40:
            c[a] = v

    def _read_sreg(self, s, a):
        r = self.sregs[s]
        if a == Sn_CR:
            if self._cr_busy[s] > 0:
                self._cr_busy[s] -= 1
                return r[Sn_CR]
            return 0
        if a == Sn_TX_FSR or a == Sn_TX_FSR + 1:
            v = self.tx_free(s)
            if a == Sn_TX_FSR:
                if self.unstable_reads > 0:  # torn read: differs from every other one
                    self.unstable_reads -= 1
                    return ((v >> 8) + self.unstable_reads + 1) & 0xFF
                return v >> 8
            return v & 0xFF
        if a == Sn_TX_RD or a == Sn_TX_RD + 1:
            v = self.tx_rd[s]
            return (v >> 8) if a == Sn_TX_RD else (v & 0xFF)
        if a == Sn_RX_RSR or a == Sn_RX_RSR + 1:
            v = self.rx_used(s)
            if a == Sn_RX_RSR:
                if self.unstable_reads > 0:  # torn read: differs from every other one
                    self.unstable_reads -= 1
                    return ((v >> 8) + self.unstable_reads + 1) & 0xFF
                return v >> 8
            return v & 0xFF
        if a == Sn_RX_WR or a == Sn_RX_WR + 1:
            v = self.rx_wr[s]
            return (v >> 8) if a == Sn_RX_WR else (v & 0xFF)
        if a < 0x30:
            return r[a]
        return 0

    def _write_sreg(self, s, a, v):
        r = self.sregs[s]
        if a == Sn_CR:
            r[Sn_CR] = v
            self._cr_busy[s] = self.cmd_delay
            self._command(s, v)
        elif a == Sn_IR:
            r[Sn_IR] &= ~v
        elif a == Sn_SR or (Sn_TX_FSR <= a <= Sn_TX_RD + 1) or a == Sn_RX_RSR \
                or a == Sn_RX_RSR + 1 or a == Sn_RX_WR or a == Sn_RX_WR + 1:
            pass  # read-only
        elif a == Sn_RXBUF_SIZE or a == Sn_TXBUF_SIZE:
            if v in (0, 1, 2, 4, 8, 16):
                r[a] = v
            else:
                self.protocol_errors += 1
        elif a < 0x30:
            r[a] = v

    def _command(self, s, cmd):
        r = self.sregs[s]
        if cmd == CR_OPEN:
            proto = r[Sn_MR] & 0x0F
            b = self.ptr_base
            self.tx_rd[s] = b
            self.tx_wr_sent[s] = b
            self._s16(r, Sn_TX_WR, b)
            self.rx_wr[s] = b
            self.rx_rd_ack[s] = b
            self._s16(r, Sn_RX_RD, b)
            if proto == MR_MACRAW and s == 0:
                r[Sn_SR] = SOCK_MACRAW
            elif proto == 0x01:
                r[Sn_SR] = SOCK_INIT
            elif proto == 0x02:
                r[Sn_SR] = SOCK_UDP
            else:
                r[Sn_SR] = SOCK_CLOSED
                self.protocol_errors += 1
            self._stall_send = False
        elif cmd == CR_CLOSE:
            r[Sn_SR] = SOCK_CLOSED
            if self._tx_sock == s:
                self._tx_count = -1
        elif cmd == CR_SEND:
            if r[Sn_SR] != SOCK_MACRAW:
                self.protocol_errors += 1
                return
            if self._tx_count >= 0:
                self.protocol_errors += 1  # SEND before the previous SEND_OK
                self._finish_tx()
            self.tx_wr_sent[s] = self._g16(r, Sn_TX_WR)
            self._tx_sock = s
            if self._stall_send:
                self._stall_send = False
                self._tx_count = -1  # never completes: no SEND_OK, TX_RD stays
                return
            if self.tx_delay > 0:
                self._tx_count = self.tx_delay
            else:
                self._finish_tx()
        elif cmd == CR_RECV:
            new = self._g16(r, Sn_RX_RD)
            if ((new - self.rx_rd_ack[s]) & 0xFFFF) > self.rx_used(s):
                self.protocol_errors += 1  # RX_RD moved past the received data
            self.rx_rd_ack[s] = new
        else:
            self.protocol_errors += 1

    def _finish_tx(self):
        s = self._tx_sock
        self._tx_count = -1
        r = self.sregs[s]
        size = self._region(s, True)
        base = self._base
        start = self.tx_rd[s]
        n = (self.tx_wr_sent[s] - start) & 0xFFFF
        if size == 0 or n > size or n == 0:
            self.protocol_errors += 1
            self.tx_rd[s] = self.tx_wr_sent[s]
            r[Sn_IR] |= IR_SEND_OK
            return
        f = self._txf
        off = start & (size - 1)
        j = 0
        while j < n:
            c = size - off
            if c > n - j:
                c = n - j
            _copy(f, j, self.txmem, base + off, c)
            j += c
            off = (off + c) & (size - 1)
        while n < 60:
            f[n] = 0
            n += 1
        self.tx_rd[s] = self.tx_wr_sent[s]
        r[Sn_IR] |= IR_SEND_OK
        if not self.link:
            self.tx_dropped_nolink += 1
            return
        self.tx_frames += 1
        if self.on_wire_tx is not None:
            self.on_wire_tx(bytes(f[0:n]))
        else:
            self._txq_push(f, n)

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

    # ---------------------------------------------------------------- SPI side
    def cs_low(self):
        self._hn = 0
        self._cnt = 0
        self.spi_transactions += 1
        if self._tx_count > 0:
            self._tx_count -= 1
            if self._tx_count == 0:
                self._finish_tx()

    def cs_high(self):
        self._hn = 0

    def _clock(self, mosi, moff, miso, noff, n):
        if n <= 0:
            return
        if self._held:
            if miso is not None:
                for i in range(n):
                    miso[noff + i] = 0
            return
        i = 0
        h = self._hdr
        while self._hn < 3 and i < n:
            h[self._hn] = mosi[moff + i] if mosi is not None else 0
            if miso is not None:
                miso[noff + i] = self._hn  # the chip shifts out 0x00 0x01 0x02 here [2.2.1]
            self._hn += 1
            i += 1
            if self._hn == 3:
                self._addr = (h[0] << 8) | h[1]
                self._bsb = h[2] >> 3
                self._rwb = (h[2] >> 2) & 1
                self._om = h[2] & 3
        k = n - i
        if k <= 0:
            return
        if self._om:
            fixed = 4 if self._om == 3 else self._om
            left = fixed - self._cnt
            if k > left:
                self.protocol_errors += 1
                if miso is not None:
                    for j in range(left, k):
                        miso[noff + i + j] = 0
                k = left if left > 0 else 0
        addr = (self._addr + self._cnt) & 0xFFFF
        if self._rwb:
            if miso is not None:
                for j in range(k):
                    miso[noff + i + j] = 0
            self._write(addr, mosi, moff + i, k)
        else:
            self._read(addr, miso, noff + i, k)
        self._cnt += k

    def _buf_block(self, bsb):
        """Socket buffer block -> its size (0 = unallocated); memory and start go to
        self._mem / self._base."""
        t = bsb & 3
        self._mem = self.txmem if t == 2 else self.rxmem
        return self._region(bsb >> 2, t == 2)

    def _read(self, addr, miso, off, k):
        bsb = self._bsb
        t = bsb & 3
        if bsb == 0 or t == 1:
            s = bsb >> 2
            for j in range(k):
                a = (addr + j) & 0xFFFF
                v = self._read_common(a) if bsb == 0 else self._read_sreg(s, a)
                if miso is not None:
                    miso[off + j] = v
            return
        if t == 0:
            self.protocol_errors += 1
            if miso is not None:
                for j in range(k):
                    miso[off + j] = 0
            return
        size = self._buf_block(bsb)
        mem = self._mem
        base = self._base
        if size == 0:
            self.protocol_errors += 1
            if miso is not None:
                for j in range(k):
                    miso[off + j] = 0
            return
        if miso is None:
            return
        o = addr & (size - 1)
        while k > 0:
            c = size - o
            if c > k:
                c = k
            _copy(miso, off, mem, base + o, c)
            off += c
            k -= c
            o = (o + c) & (size - 1)

    def _write(self, addr, mosi, soff, k):
        bsb = self._bsb
        t = bsb & 3
        if bsb == 0 or t == 1:
            s = bsb >> 2
            for j in range(k):
                v = mosi[soff + j] if mosi is not None else 0
                a = (addr + j) & 0xFFFF
                if bsb == 0:
                    self._write_common(a, v)
                else:
                    self._write_sreg(s, a, v)
            return
        if t != 2 or mosi is None:
            self.protocol_errors += 1  # reserved block, RX buffer (read-only), no data
            return
        size = self._buf_block(bsb)
        mem = self._mem
        base = self._base
        if size == 0:
            self.protocol_errors += 1
            return
        o = addr & (size - 1)
        while k > 0:
            c = size - o
            if c > k:
                c = k
            _copy(mem, base + o, mosi, soff, c)
            soff += c
            k -= c
            o = (o + c) & (size - 1)

    # ---------------------------------------------------------------- wire side
    def _accept(self, f, mr):
        c = self.common
        bc = (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xFF
        if bc:
            return not mr & MR_BCASTB
        if f[0] & 1:
            return not mr & MR_MMB
        if mr & MR_MIP6B and f[12] == 0x86 and f[13] == 0xDD:
            return False
        if mr & MR_MFEN:
            return (f[0] == c[SHAR] and f[1] == c[SHAR + 1] and f[2] == c[SHAR + 2]
                    and f[3] == c[SHAR + 3] and f[4] == c[SHAR + 4] and f[5] == c[SHAR + 5])
        return True

    def wire_rx(self, frame):
        """A frame (without FCS) arrives from the network for socket 0 (MACRAW). Returns
        True if stored; False if refused (socket not MACRAW, no link, filter) or dropped
        for lack of room (rx_dropped_overflow)."""
        r = self.sregs[0]
        if self._held or not self.link or r[Sn_SR] != SOCK_MACRAW or len(frame) > 1514:
            self.rx_dropped_other += 1
            return False
        n = len(frame)
        if n < 60:
            frame = bytes(frame) + bytes(60 - n)
            n = 60
        if not self._accept(frame, r[Sn_MR]):
            self.rx_dropped_filter += 1
            return False
        size = self._region(0, False)
        base = self._base
        need = n + 2
        if need > size - self.rx_used(0):
            self.rx_dropped_overflow += 1
            return False
        o = self.rx_wr[0] & (size - 1)
        mem = self.rxmem
        mem[base + o] = need >> 8
        o = (o + 1) & (size - 1)
        mem[base + o] = need & 0xFF
        o = (o + 1) & (size - 1)
        j = 0
        while j < n:
            c = size - o
            if c > n - j:
                c = n - j
            _copy(mem, base + o, frame, j, c)
            j += c
            o = (o + c) & (size - 1)
        self.rx_wr[0] = (self.rx_wr[0] + need) & 0xFFFF
        r[Sn_IR] |= IR_RECV
        self.rx_frames += 1
        return True
