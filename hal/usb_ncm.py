"""CDC-NCM (USB class 02/0D) Ethernet from user space through pyusb (CPython).

Same bring-up as CDC-ECM (hal/usb_ecm.py) plus, while the data interface is in alt 0:
GET_NTB_PARAMETERS, SET_NTB_FORMAT(NTB16) when the device also offers NTB32, and
SET_NTB_INPUT_SIZE when we want smaller IN transfers than dwNtbInMaxSize.

Data is carried in NTB16 transfers (NTH16 "NCMH" + NDP16 "NCM0" + datagrams). RX: one bulk IN
may carry many datagrams; they are validated (hal/usb_cdc.Ntb16Parser: every index and
length is checked; malformed NTBs/datagrams are counted, never raised), queued as
(offset, length) pairs, and handed out one per recv_into(). TX: send() puts one datagram in
an NTB; send_batch() packs as many as fit (dwNtbOutMaxSize, wNtbOutMaxDatagrams) per
transfer, honouring wNdpOutDivisor/PayloadRemainder and wNdpOutAlignment.
"""
import struct
from array import array

import usb.core

from ustack.hal.usb_cdc import (
    CDC_SUBCLASS_NCM,
    NCM_CAP_NTB_INPUT_SIZE_8,
    NTB_PARAMETERS_LEN,
    REQ_GET_NTB_PARAMETERS,
    REQ_SET_NTB_FORMAT,
    REQ_SET_NTB_INPUT_SIZE,
    Ntb16Builder,
    Ntb16Parser,
    NtbParameters,
)
from ustack.hal.usb_ecm import UsbEcm


class UsbNcm(UsbEcm):
    SUBCLASS = CDC_SUBCLASS_NCM
    KIND = "CDC-NCM"

    def __init__(self, dev, ntb_in_max=16384, ntb_out_max=16384, max_rx_datagrams=64, **kw):
        self._want_in = ntb_in_max
        self._want_out = ntb_out_max
        self._max_rx_dgrams = max_rx_datagrams
        self.params = None
        super().__init__(dev, **kw)

    def _negotiate(self):
        dev = self.dev
        comm = self.fn.comm_if
        raw = dev.ctrl_transfer(0xA1, REQ_GET_NTB_PARAMETERS, 0, comm, NTB_PARAMETERS_LEN, self.tx_timeout_ms)
        p = NtbParameters(raw, len(raw))
        if not p.formats & 1:
            raise ValueError("device does not support NTB16 (formats 0x%x)" % p.formats)
        self.params = p
        if p.formats & 2:  # NTB32 offered too: make sure NTB16 is selected (only legal in alt 0)
            dev.ctrl_transfer(0x21, REQ_SET_NTB_FORMAT, 0, comm, None, self.tx_timeout_ms)
        in_size = min(p.in_max, self._want_in, 0xFFFF) if p.in_max else min(self._want_in, 0xFFFF)
        if in_size != p.in_max:
            if self.fn.fd.ncm_caps & NCM_CAP_NTB_INPUT_SIZE_8:
                data = struct.pack("<IHH", in_size, 0, 0)
            else:
                data = struct.pack("<I", in_size)
            try:
                dev.ctrl_transfer(0x21, REQ_SET_NTB_INPUT_SIZE, 0, comm, data, self.tx_timeout_ms)
            except usb.core.USBError:
                in_size = p.in_max  # refused: the device keeps its own maximum
        self.ntb_in_size = in_size
        self.ntb_out_size = min(p.out_max or 2048, self._want_out, 0xFFFF)

    def _setup_buffers(self):
        super()._setup_buffers()
        p = self.params
        self._rxa = array("B", bytes(self.ntb_in_size))
        self._rxmv = memoryview(self._rxa)
        self.parser = Ntb16Parser(self._max_rx_dgrams, min_dgram=14, max_dgram=self.max_segment)
        self._q_i = 0
        self._q_n = 0
        self._txbuf = bytearray(self.ntb_out_size)
        self.builder = Ntb16Builder(self._txbuf, self.ntb_out_size, p.out_divisor, p.out_remainder,
                                    p.out_alignment, p.out_max_datagrams)
        self.rx_ntbs = 0
        self.tx_ntbs = 0

    # counters surfaced from the parser
    @property
    def rx_bad_ntb(self):
        return self.parser.bad_ntb

    @property
    def rx_bad_datagram(self):
        return self.parser.bad_dgram + self.parser.overflow

    def recv_into(self, buf):
        if self._closed:
            return 0
        par = self.parser
        while True:
            if self._q_i < self._q_n:
                i = self._q_i
                self._q_i = i + 1
                off = par.off[i]
                n = par.len_[i]
                if n > len(buf):
                    self.rx_oversize += 1
                    continue
                memoryview(buf)[:n] = self._rxmv[off:off + n]
                self.rx_frames += 1
                self.rx_bytes += n
                return n
            n = self._bulk_in()
            if n < 0:
                return 0
            if n == 0:
                self.rx_zlp += 1
                n = self._bulk_in()  # the NTB may follow right away
                if n <= 0:
                    return 0
            self.rx_ntbs += 1
            self._q_i = 0
            self._q_n = par.parse(self._rxa, n)
            if not self._q_n:
                return 0

    def _write_ntb(self, total):
        w = self.dev.write(self._ep_out, self._txbuf[:total], self.tx_timeout_ms)
        if total % self._out_mps == 0 and total < self.ntb_out_size:
            self.dev.write(self._ep_out, b"", self.tx_timeout_ms)  # ZLP ends a short NTB
            self.tx_zlp += 1
        self.tx_ntbs += 1
        return w == total

    def send(self, buf, n):
        if self._closed:
            return False
        if n > self.max_segment or n < 14:
            self.tx_oversize += 1
            return False
        bld = self.builder
        bld.reset()
        if not bld.add(buf, n):
            self.tx_oversize += 1
            return False
        try:
            ok = self._write_ntb(bld.finish())
        except usb.core.USBError:
            self.tx_errors += 1
            return False
        if not ok:
            self.tx_errors += 1
            return False
        self.tx_frames += 1
        self.tx_bytes += n
        return True

    def send_batch(self, bufs, lens, count):
        """Send count frames (bufs[i][0:lens[i]]) packed into as few NTBs as fit.
        Returns how many were sent; frames that can never fit are dropped and counted."""
        if self._closed:
            return 0
        bld = self.builder
        sent = 0
        pending = 0
        self._pending_bytes = 0
        bld.reset()
        i = 0
        while i < count:
            n = lens[i]
            if n > self.max_segment or n < 14:
                self.tx_oversize += 1
                i += 1
                continue
            if bld.add(bufs[i], n):
                pending += 1
                self._pending_bytes += n
                i += 1
                continue
            if not pending:  # does not fit even in an empty NTB
                self.tx_oversize += 1
                i += 1
                continue
            if not self._flush(bld, pending):
                return sent
            sent += pending
            pending = 0
            self._pending_bytes = 0
            bld.reset()
        if pending:
            if not self._flush(bld, pending):
                return sent
            sent += pending
        return sent

    def _flush(self, bld, pending):
        try:
            ok = self._write_ntb(bld.finish())
        except usb.core.USBError:
            ok = False
        if ok:
            self.tx_frames += pending
            self.tx_bytes += self._pending_bytes
        else:
            self.tx_errors += 1
        return ok

