"""CDC-ECM (USB class 02/06) Ethernet from user space through pyusb (CPython).

    dev = find_nic(vid=0x0bda)                 # or usb.core.find(...), any pyusb backend
    nic = UsbEcm(dev)                          # mac, mtu, recv_into, send, service, link_up

Bring-up: pick the configuration holding the ECM function (e.g. config 2 of an RTL8153);
detach kernel drivers (cdc_ether / r8152 ...) from the current configuration's interfaces
before SET_CONFIGURATION and from the function's interfaces afterwards; claim the comm and
data interfaces; data interface alt 0 (reset), SET_ETHERNET_PACKET_FILTER, alt 1 (bulk
endpoints live there); MAC from the iMACAddress string.

Data path: one bulk transfer = one Ethernet frame. recv_into() does one bulk IN with a short
timeout (rx_timeout_ms, default 1 ms) and returns 0 when nothing came. A frame whose length
is a multiple of wMaxPacketSize is ended by a zero-length packet: on RX a ZLP shows up as an
empty transfer when the frame filled our buffer exactly (skipped), on TX we send one.
service() reads the interrupt endpoint (NETWORK_CONNECTION, CONNECTION_SPEED_CHANGE) at most
every notify_interval_ms.
"""
import time
from array import array

import usb.core
import usb.util

from ustack.hal.usb_cdc import (
    CDC_SUBCLASS_ECM,
    DEFAULT_PACKET_FILTER,
    REQ_SET_ETHERNET_PACKET_FILTER,
    CdcNotifications,
    find_cdc_function,
    mac_from_string,
)

_ENODEV = 19
_EPIPE = 32


def _roundup(n, m):
    return (n + m - 1) // m * m if m else n


class UsbEcm:
    SUBCLASS = CDC_SUBCLASS_ECM
    KIND = "CDC-ECM"

    def __init__(self, dev, config=None, detach=True, reattach=True, packet_filter=DEFAULT_PACKET_FILTER,
                 rx_timeout_ms=1, tx_timeout_ms=200, notify_interval_ms=20, intr_timeout_ms=1):
        self.dev = dev
        self.caps = 0
        self.rx_timeout_ms = max(1, int(rx_timeout_ms))   # 0 would mean "forever" to libusb
        self.tx_timeout_ms = max(1, int(tx_timeout_ms))
        self.intr_timeout_ms = max(1, int(intr_timeout_ms))
        self.notify_interval_ms = notify_interval_ms
        self.reattach = reattach
        self.detached = []        # interface numbers whose kernel driver we detached
        self.packet_filter = packet_filter
        self.filter_ok = False
        self.notes = CdcNotifications()
        self._closed = False
        self._next_intr = 0.0
        # counters
        self.rx_frames = self.rx_bytes = self.rx_zlp = self.rx_oversize = self.rx_runts = 0
        self.rx_errors = self.tx_frames = self.tx_bytes = self.tx_oversize = self.tx_errors = 0
        self.tx_zlp = 0

        fn = find_cdc_function(dev, self.SUBCLASS)
        if fn is None:
            raise ValueError("no %s function on %04x:%04x" % (self.KIND, dev.idVendor, dev.idProduct))
        if config is not None and fn.config_value != config:
            raise ValueError("%s function is in configuration %d, not %d" % (self.KIND, fn.config_value, config))
        self.fn = fn
        try:
            self._activate(detach)
            self.mac = self._read_mac()
            seg = fn.fd.max_segment or 1514
            self.max_segment = seg
            self.mtu = seg - 14
            self._setup_buffers()
        except BaseException:
            self.close()  # release what we claimed, give detached interfaces back
            raise

    # --- bring-up ---
    def _current_config(self):
        try:
            return self.dev.get_active_configuration().bConfigurationValue
        except usb.core.USBError:
            return 0

    def _detach(self, ifnum):
        try:
            if self.dev.is_kernel_driver_active(ifnum):
                self.dev.detach_kernel_driver(ifnum)
                self.detached.append(ifnum)
        except NotImplementedError:  # macOS/Windows: no kernel-driver API
            pass

    def _activate(self, detach):
        dev = self.dev
        fn = self.fn
        cur = self._current_config()
        if cur != fn.config_value:
            if cur and detach:
                for intf in dev.get_active_configuration():
                    if intf.bAlternateSetting == 0:
                        self._detach(intf.bInterfaceNumber)
            dev.set_configuration(fn.config_value)
        if detach:
            self._detach(fn.comm_if)
            self._detach(fn.data_if)
        usb.util.claim_interface(dev, fn.comm_if)
        usb.util.claim_interface(dev, fn.data_if)
        dev.set_interface_altsetting(interface=fn.data_if, alternate_setting=0)
        self._negotiate()
        self.set_packet_filter(self.packet_filter)
        dev.set_interface_altsetting(interface=fn.data_if, alternate_setting=fn.data_alt)

    def _negotiate(self):
        """Class-specific setup while the data interface is in alt 0 (NCM overrides)."""

    def set_packet_filter(self, bits):
        try:
            self.dev.ctrl_transfer(0x21, REQ_SET_ETHERNET_PACKET_FILTER, bits, self.fn.comm_if, None,
                                   self.tx_timeout_ms)
            self.packet_filter = bits
            self.filter_ok = True
        except usb.core.USBError:  # optional for some devices: they STALL it
            self.filter_ok = False
        return self.filter_ok

    def _read_mac(self):
        idx = self.fn.fd.imac
        if not idx:
            raise ValueError("%s function has no iMACAddress" % self.KIND)
        return mac_from_string(usb.util.get_string(self.dev, idx))

    def _setup_buffers(self):
        fn = self.fn
        self._ep_in = fn.bulk_in
        self._ep_out = fn.bulk_out
        self._in_mps = fn.bulk_in_mps or 512
        self._out_mps = fn.bulk_out_mps or 512
        self._rxa = array("B", bytes(_roundup(max(self.max_segment, 1514), self._in_mps)))
        self._rxmv = memoryview(self._rxa)
        self._ep_intr = fn.intr_in
        self._inta = array("B", bytes(max(fn.intr_mps or 16, 8)))

    # --- Driver interface ---
    def _rx_error(self, e):
        self.rx_errors += 1
        if e.errno == _ENODEV:
            self._closed = True
        elif e.errno == _EPIPE:
            try:
                self.dev.clear_halt(self._ep_in)
            except usb.core.USBError:
                pass

    def _bulk_in(self):
        """One bulk IN transfer into self._rxa: its length (0 = a ZLP), -1 timeout, -2 error."""
        try:
            return self.dev.read(self._ep_in, self._rxa, self.rx_timeout_ms)
        except usb.core.USBTimeoutError:
            return -1
        except usb.core.USBError as e:
            self._rx_error(e)
            return -2

    def recv_into(self, buf):
        if self._closed:
            return 0
        for _ in range(2):  # a ZLP (frame filled our buffer exactly) costs one more read
            n = self._bulk_in()
            if n < 0:
                return 0
            if n == 0:
                self.rx_zlp += 1
                continue
            if n < 14:
                self.rx_runts += 1
                continue
            if n > len(buf):
                self.rx_oversize += 1
                continue
            memoryview(buf)[:n] = self._rxmv[:n]
            self.rx_frames += 1
            self.rx_bytes += n
            return n
        return 0

    def _bulk_out(self, data, n):
        dev = self.dev
        w = dev.write(self._ep_out, data, self.tx_timeout_ms)
        if n % self._out_mps == 0:
            dev.write(self._ep_out, b"", self.tx_timeout_ms)  # ZLP ends the transfer
            self.tx_zlp += 1
        return w

    def send(self, buf, n):
        if self._closed:
            return False
        if n > self.max_segment or n < 14:
            self.tx_oversize += 1
            return False
        try:
            w = self._bulk_out(bytes(memoryview(buf)[:n]), n)
        except usb.core.USBError as e:
            self.tx_errors += 1
            if e.errno == _ENODEV:
                self._closed = True
            return False
        if w != n:
            self.tx_errors += 1
            return False
        self.tx_frames += 1
        self.tx_bytes += n
        return True

    def poll_obj(self):
        return None

    def service(self):
        if self._closed or self._ep_intr is None:
            return
        if self.notify_interval_ms:
            now = time.monotonic()
            if now < self._next_intr:
                return
            self._next_intr = now + self.notify_interval_ms / 1000.0
        for _ in range(4):  # drain what is queued
            try:
                n = self.dev.read(self._ep_intr, self._inta, self.intr_timeout_ms)
            except usb.core.USBTimeoutError:
                break
            except usb.core.USBError as e:
                self.rx_errors += 1
                if e.errno == _ENODEV:
                    self._closed = True
                break
            if n:
                self.notes.feed(self._inta, n)

    def link_up(self):
        return self.notes.connected and not self._closed

    @property
    def speed(self):
        """(downlink, uplink) bit/s from the last CONNECTION_SPEED_CHANGE."""
        return self.notes.dl_bps, self.notes.ul_bps

    def close(self):
        if getattr(self, "_released", False):
            return
        self._released = True
        self._closed = True
        dev = self.dev
        fn = self.fn
        try:
            dev.set_interface_altsetting(interface=fn.data_if, alternate_setting=0)
        except (usb.core.USBError, ValueError):
            pass
        for i in (fn.data_if, fn.comm_if):
            try:
                usb.util.release_interface(dev, i)
            except usb.core.USBError:
                pass
        if self.reattach:
            for i in self.detached:
                try:
                    dev.attach_kernel_driver(i)
                except (usb.core.USBError, NotImplementedError):
                    pass
        usb.util.dispose_resources(dev)
