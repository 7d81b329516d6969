"""Virtual CDC-ECM and CDC-NCM USB Ethernet devices (device models on `usbip.device.USBDevice`).

Real descriptors (device; configuration with a communications interface class 02 subclass
06 (ECM) / 0D (NCM) carrying header, union, Ethernet-networking (+ NCM) functional
descriptors and an interrupt IN endpoint; a data interface 0A whose alt 0 has no endpoints
and alt 1 has bulk IN/OUT; the iMACAddress string), the class requests a host driver uses
(SET_ETHERNET_PACKET_FILTER, GET_NTB_PARAMETERS, GET/SET_NTB_INPUT_SIZE, GET/SET_NTB_FORMAT,
GET/SET_MAX_DATAGRAM_SIZE) and notifications (NETWORK_CONNECTION, CONNECTION_SPEED_CHANGE).

Wire side of each model:
    model.wire_rx(frame)         a frame from the network: delivered on bulk IN (the NCM model
                                 packs every frame waiting when the host asks into one NTB)
    model.on_wire_tx = fn        called with every frame the host sent (else they queue in
                                 model.wire_tx, a deque)
    model.set_link(up, dl, ul)   link change -> notifications

USB details modelled: the device ends a bulk IN transfer whose length is a multiple of
wMaxPacketSize with a zero-length packet, and reassembles bulk OUT transfers until a short
packet / ZLP (so a host driver that forgets its ZLP merges frames, as on hardware); the data
path runs only in data alt 1; the packet filter is applied to wire frames.

`TwoConfigEcmDongle` is an RTL8153-like device: configuration 1 vendor-specific (what the
r8152 driver uses, bound by the kernel at plug time), configuration 2 CDC-ECM.
"""
import struct
import threading
from collections import deque

from usbip.core import DT_CONFIG, SPEED_FULL, SPEED_HIGH, DeviceDescriptor, Stall
from usbip.device import Endpoint, In, Out, USBDevice

from ustack.hal.usb_cdc import (
    CDC_CLASS_COMM,
    CDC_CLASS_DATA,
    CDC_PROTO_NCM_NTB,
    CDC_SUBCLASS_ECM,
    CDC_SUBCLASS_NCM,
    NCM_CAP_MAX_DATAGRAM,
    NCM_CAP_NTB_INPUT_SIZE_8,
    NCM_CAP_PACKET_FILTER,
    NOTIFY_CONNECTION_SPEED_CHANGE,
    NOTIFY_NETWORK_CONNECTION,
    PACKET_TYPE_ALL_MULTICAST,
    PACKET_TYPE_BROADCAST,
    PACKET_TYPE_DIRECTED,
    PACKET_TYPE_MULTICAST,
    PACKET_TYPE_PROMISCUOUS,
    REQ_GET_MAX_DATAGRAM_SIZE,
    REQ_GET_NTB_FORMAT,
    REQ_GET_NTB_INPUT_SIZE,
    REQ_GET_NTB_PARAMETERS,
    REQ_SET_ETHERNET_MULTICAST_FILTERS,
    REQ_SET_ETHERNET_PACKET_FILTER,
    REQ_SET_MAX_DATAGRAM_SIZE,
    REQ_SET_NTB_FORMAT,
    REQ_SET_NTB_INPUT_SIZE,
)

# f_ecm's power-on filter (before the host sends SET_ETHERNET_PACKET_FILTER)
RESET_FILTER = (PACKET_TYPE_PROMISCUOUS | PACKET_TYPE_ALL_MULTICAST | PACKET_TYPE_DIRECTED
                | PACKET_TYPE_BROADCAST)


# --- descriptor rendering ---------------------------------------------------------------------

def config_desc(value, num_interfaces, body, attrs=0x80, power=50, iconfig=0):
    return struct.pack("<BBHBBBBB", 9, DT_CONFIG, 9 + len(body), num_interfaces, value, iconfig,
                       attrs, power) + body


def iface_desc(num, alt, neps, cls, sub, proto, istr=0):
    return struct.pack("<BBBBBBBBB", 9, 4, num, alt, neps, cls, sub, proto, istr)


def ep_desc(addr, attrs, mps, interval=0):
    return struct.pack("<BBBBHB", 7, 5, addr, attrs, mps, interval)


def header_fd(bcd=0x0110):
    return struct.pack("<BBBH", 5, 0x24, 0x00, bcd)


def union_fd(master, slave):
    return struct.pack("<BBBBB", 5, 0x24, 0x06, master, slave)


def ethernet_fd(imac, max_segment=1514, stats=0, mc_filters=0, power_filters=0):
    return struct.pack("<BBBBIHHB", 13, 0x24, 0x0F, imac, stats, max_segment, mc_filters, power_filters)


def ncm_fd(caps, bcd=0x0100):
    return struct.pack("<BBBHB", 6, 0x24, 0x1A, bcd, caps)


def notification(code, value, index, data=b""):
    return struct.pack("<BBHHH", 0xA1, code, value, index, len(data)) + data


# --- a USBDevice with several configurations --------------------------------------------------

class MultiConfigDevice(USBDevice):
    """usbip's USBDevice serves one configuration; this one serves a list of rendered
    configuration descriptors (callables or bytes), indexed like GET_DESCRIPTOR(CONFIG, i)."""

    def __init__(self, vid, pid, **kw):
        super().__init__(vid, pid, **kw)
        self._configs = []

    def add_configuration(self, render):
        self._configs.append(render)
        return len(self._configs) - 1

    def config_values(self):
        return [self.config_bytes(i)[5] for i in range(len(self._configs))]

    def config_bytes(self, index=0):
        c = self._configs[index]
        return c() if callable(c) else c

    def device_descriptor(self):
        d = super().device_descriptor()
        return DeviceDescriptor(d.bcdUSB, d.bDeviceClass, d.bDeviceSubClass, d.bDeviceProtocol,
                                d.bMaxPacketSize0, d.idVendor, d.idProduct, d.bcdDevice,
                                d.iManufacturer, d.iProduct, d.iSerialNumber,
                                max(1, len(self._configs)))

    def interface_triples(self):
        blob = self.config_bytes(0)
        out = {}
        i = 9
        while i + 2 <= len(blob):
            ln = blob[i]
            if ln < 2:
                break
            if blob[i + 1] == 4 and blob[i + 3] == 0:
                out[blob[i + 2]] = (blob[i + 5], blob[i + 6], blob[i + 7])
            i += ln
        return [out[k] for k in sorted(out)]

    def _standard(self, setup):
        if setup.bRequest == 0x06 and (setup.wValue >> 8) == DT_CONFIG:
            idx = setup.wValue & 0xFF
            if idx >= len(self._configs):
                raise Stall
            return self.config_bytes(idx)
        if setup.bRequest == 0x09:  # SET_CONFIGURATION
            value = setup.wValue & 0xFF
            if value and value not in self.config_values():
                raise Stall
            self.config = value
            self.reset_io()
            self.on_configured(value)
            return b""
        return super()._standard(setup)

    def on_configured(self, value):
        """Hook: a configuration (0 = none) was selected."""


# --- bulk IN endpoints with frame semantics ---------------------------------------------------

class _FrameInEndpoint(Endpoint):
    """Bulk IN for ECM: one frame per transfer, a ZLP after a frame that is a multiple of
    wMaxPacketSize. Bounded queue (a real device has finite buffers)."""

    def queued(self):
        with self._cv:
            return len(self._q)

    def queue_frame(self, frame, limit):
        if self.queued() >= limit:
            return False
        if len(frame) % self.mps == 0:
            with self._cv:  # frame + ZLP enqueued together
                self._q.append(bytes(frame))
                self._q.append(b"")
            self._kick()
        else:
            self.write(frame)
        return True

    def _kick(self):
        done = []
        with self._cv:
            while self._pending and self._q:
                length, cb, _seq = self._pending.popleft()
                done.append((cb, self._pop_locked(length)))
        for cb, chunk in done:
            cb(chunk)


class _NtbInEndpoint(Endpoint):
    """Bulk IN for NCM: frames wait in `frames`; when the host asks (or is already waiting),
    every waiting frame that fits goes into one NTB built by `pack(frames, limit)`. Raw
    chunks written with write() (e.g. malformed NTBs in tests) go out first, as they are."""

    def __init__(self, spec, packer):
        super().__init__(spec)
        self.frames = deque()
        self._packer = packer

    def queued(self):
        with self._cv:
            return len(self.frames)

    def queue_frame(self, frame, limit):
        done = None
        with self._cv:
            if len(self.frames) >= limit:
                return False
            self.frames.append(bytes(frame))
            if self._pending:
                length, cb, _seq = self._pending.popleft()
                done = (cb, self._take_locked(length))
        if done is not None:
            done[0](done[1])
        return True

    def _take_locked(self, length):
        if self._q:
            return self._pop_locked(length)
        ntb = self._packer(self.frames)
        if ntb is None:
            return b""
        self._q.append(ntb)
        if len(ntb) % self.mps == 0:
            self._q.append(b"")  # ZLP ends an NTB that is a multiple of wMaxPacketSize
        return self._pop_locked(length)

    def take_or_park(self, length, complete, seqnum=None):
        with self._cv:
            if self._q or self.frames:
                return self._take_locked(length)
            self._pending.append((length, complete, seqnum))
            return None

    def reset(self):
        super().reset()
        with self._cv:
            self.frames.clear()


# --- the CDC Ethernet models ------------------------------------------------------------------

class _CdcEthModel(MultiConfigDevice):
    SUBCLASS = CDC_SUBCLASS_ECM
    DATA_PROTOCOL = 0
    KERNEL_DRIVER = "cdc_ether"

    def __init__(self, mac=b"\x02\x00\x00\x00\x00\x99", vid=0x1209, pid=0x0001, speed=SPEED_HIGH,
                 product="ustack virtual CDC NIC", manufacturer="ustack", serial="0001",
                 max_segment=1514, connected=True, dl_bps=425984000, ul_bps=425984000,
                 ep_in=0x81, ep_out=0x02, ep_intr=0x83, intr_mps=16, bulk_mps=None,
                 rx_queue_limit=4096, mc_filters=0, two_configs=False, device_class=None):
        if device_class is None:
            device_class = 0 if two_configs else 0x02
        super().__init__(vid, pid, product=product, manufacturer=manufacturer, serial=serial,
                         device_class=device_class)
        self.set_speed(speed)
        self.mac = bytes(mac)
        self.imac = self.add_string("".join("%02X" % b for b in self.mac))
        self.max_segment = max_segment
        self.connected = connected
        self.dl_bps = dl_bps
        self.ul_bps = ul_bps
        self.rx_queue_limit = rx_queue_limit
        self.mc_filters = mc_filters
        self.bulk_mps = bulk_mps or (512 if speed >= SPEED_HIGH else 64)
        self.intr_mps = intr_mps
        self.two_configs = two_configs
        self.comm_if = 0
        self.data_if = 1
        self.cdc_config = 2 if two_configs else 1
        self.initial_config = 1
        kdrv = self.KERNEL_DRIVER
        drivers = {self.cdc_config: {0: kdrv, 1: kdrv}}
        if two_configs:
            drivers[1] = {0: "r8152"}
        self.kernel_drivers = drivers
        # endpoints (shared by both configurations of a two-config dongle)
        self.ep_intr = Endpoint(In(ep_intr, "interrupt", mps=intr_mps, interval=9 if speed >= SPEED_HIGH else 32))
        self.ep_in = self._make_bulk_in(In(ep_in, "bulk", mps=self.bulk_mps))
        self.ep_out = Endpoint(Out(ep_out, "bulk", mps=self.bulk_mps))
        for ep in (self.ep_intr, self.ep_in, self.ep_out):
            self.route_endpoint(ep, owner=self)
        self.ep_out.on_out = self._on_bulk_out
        self.on_control(self.comm_if, self._comm_request)
        self.on_control(self.data_if, self._data_request)
        self.on_set_alt(self.data_if, self._set_data_alt)
        if two_configs:
            self.add_configuration(self._vendor_config)
        self.add_configuration(self._cdc_config)
        # state seen by tests
        self.lock = threading.RLock()
        self.data_alt = 0
        self.packet_filter = RESET_FILTER
        self.filter_requests = []
        self.requests = []          # every class request: (bmRequestType, bRequest, wValue, wIndex, data)
        self.mc_list = b""
        self.on_wire_tx = None
        self.wire_tx = deque()
        self._out_acc = bytearray()
        # counters
        self.wire_rx_frames = 0
        self.wire_rx_inactive = 0   # dropped: not configured / data alt 0 / link down
        self.wire_rx_filtered = 0   # dropped by the packet filter
        self.wire_rx_overflow = 0   # dropped: device queue full
        self.wire_rx_too_big = 0
        self.host_tx_frames = 0
        self.host_tx_bad = 0        # frames/NTBs from the host that were malformed
        self.host_tx_transfers = 0
        self.notifications_sent = 0

    # -- descriptors --
    def _vendor_config(self):
        body = (iface_desc(0, 0, 3, 0xFF, 0xFF, 0x00)
                + ep_desc(self.ep_in.addr, 2, self.bulk_mps)
                + ep_desc(self.ep_out.addr, 2, self.bulk_mps)
                + ep_desc(self.ep_intr.addr, 3, 2, 8))
        return config_desc(1, 1, body, attrs=0xA0, power=50)

    def _comm_functional(self):
        return (header_fd() + union_fd(self.comm_if, self.data_if)
                + ethernet_fd(self.imac, self.max_segment, mc_filters=self.mc_filters))

    def _cdc_config(self):
        body = (iface_desc(self.comm_if, 0, 1, CDC_CLASS_COMM, self.SUBCLASS, 0)
                + self._comm_functional()
                + ep_desc(self.ep_intr.addr, 3, self.intr_mps, self.ep_intr.interval)
                + iface_desc(self.data_if, 0, 0, CDC_CLASS_DATA, 0, self.DATA_PROTOCOL)
                + iface_desc(self.data_if, 1, 2, CDC_CLASS_DATA, 0, self.DATA_PROTOCOL)
                + ep_desc(self.ep_in.addr, 2, self.bulk_mps)
                + ep_desc(self.ep_out.addr, 2, self.bulk_mps))
        return config_desc(self.cdc_config, 2, body)

    # -- configuration / alt settings --
    def _make_bulk_in(self, spec):
        return _FrameInEndpoint(spec)

    def on_configured(self, value):
        with self.lock:
            self.data_alt = 0
            self._out_acc = bytearray()

    @property
    def active(self):
        return self.config == self.cdc_config and self.data_alt == 1

    def _set_data_alt(self, alt):
        if self.config != self.cdc_config:
            raise Stall
        with self.lock:
            self.data_alt = alt
            self._out_acc = bytearray()
            self.ep_in.reset()
            self.ep_out.reset()
            self.ep_out.on_out = self._on_bulk_out
            self._on_alt(alt)
            if alt == 1:
                self._announce()

    def _on_alt(self, alt):
        pass

    def _announce(self):
        """What the device says when the host activates the data interface."""
        self.notify_connection(self.connected)
        if self.connected:
            self.notify_speed(self.dl_bps, self.ul_bps)

    # -- notifications / link --
    def notify_connection(self, up):
        self.ep_intr.write(notification(NOTIFY_NETWORK_CONNECTION, 1 if up else 0, self.comm_if))
        self.notifications_sent += 1

    def notify_speed(self, dl, ul):
        self.ep_intr.write(notification(NOTIFY_CONNECTION_SPEED_CHANGE, 0, self.comm_if,
                                        struct.pack("<II", dl, ul)))
        self.notifications_sent += 1

    def set_link(self, up, dl_bps=None, ul_bps=None):
        with self.lock:
            self.connected = up
            if dl_bps is not None:
                self.dl_bps = dl_bps
            if ul_bps is not None:
                self.ul_bps = ul_bps
            if self.config == self.cdc_config:
                if up:
                    self.notify_speed(self.dl_bps, self.ul_bps)
                self.notify_connection(up)

    # -- class requests --
    def _record(self, setup, data):
        self.requests.append((setup.bmRequestType, setup.bRequest, setup.wValue, setup.wIndex, bytes(data)))

    def _comm_request(self, setup, data=b""):
        if self.config != self.cdc_config:
            raise Stall
        self._record(setup, data)
        return self._class_request(setup, bytes(data))

    def _data_request(self, setup, data=b""):
        raise Stall

    def _class_request(self, setup, data):
        if setup.bmRequestType == 0x21 and setup.bRequest == REQ_SET_ETHERNET_PACKET_FILTER:
            self.packet_filter = setup.wValue
            self.filter_requests.append(setup.wValue)
            return b""
        if setup.bmRequestType == 0x21 and setup.bRequest == REQ_SET_ETHERNET_MULTICAST_FILTERS:
            if setup.wValue > self.mc_filters or len(data) != 6 * setup.wValue:
                raise Stall
            self.mc_list = data
            return b""
        raise Stall

    # -- wire side --
    def _passes_filter(self, frame):
        f = self.packet_filter
        if f & PACKET_TYPE_PROMISCUOUS:
            return True
        dst = frame[0:6]
        if dst == b"\xff\xff\xff\xff\xff\xff":
            return bool(f & PACKET_TYPE_BROADCAST)
        if dst[0] & 1:
            if f & PACKET_TYPE_ALL_MULTICAST:
                return True
            if f & PACKET_TYPE_MULTICAST:
                if not self.mc_list:
                    return True  # no list programmed: all multicast
                return any(self.mc_list[i:i + 6] == dst for i in range(0, len(self.mc_list), 6))
            return False
        return bool(f & PACKET_TYPE_DIRECTED) and dst == self.mac

    def wire_rx(self, frame):
        """A frame arrives from the network. Returns True if it was queued for the host."""
        frame = bytes(frame)
        if not self.active or not self.connected:
            self.wire_rx_inactive += 1
            return False
        if len(frame) < 14 or len(frame) > self.max_segment:
            self.wire_rx_too_big += 1
            return False
        if not self._passes_filter(frame):
            self.wire_rx_filtered += 1
            return False
        if not self.ep_in.queue_frame(frame, self.rx_queue_limit):
            self.wire_rx_overflow += 1
            return False
        self.wire_rx_frames += 1
        return True

    def inject_in(self, raw):
        """Put raw bytes on bulk IN as one transfer (malformed-input tests)."""
        self.ep_in.write(raw)

    def _deliver(self, frame):
        self.host_tx_frames += 1
        cb = self.on_wire_tx
        if cb is not None:
            cb(frame)
        else:
            self.wire_tx.append(frame)

    def _on_bulk_out(self, ep, data):
        """Reassemble one transfer: data arrives per URB; a transfer ends with a short packet."""
        if not self.active:
            raise Stall
        with self.lock:
            self._out_acc += data
            if len(data) and len(data) % self.bulk_mps == 0 and len(self._out_acc) < self._out_limit():
                return
            blob = bytes(self._out_acc)
            self._out_acc = bytearray()
        self.host_tx_transfers += 1
        self._host_transfer(blob)

    def _out_limit(self):
        return self.max_segment

    def _host_transfer(self, blob):
        if len(blob) < 14 or len(blob) > self.max_segment:
            self.host_tx_bad += 1
            return
        self._deliver(blob)


class CdcEcmDevice(_CdcEthModel):
    """A CDC-ECM NIC (like Linux's f_ecm gadget)."""

    SUBCLASS = CDC_SUBCLASS_ECM
    DATA_PROTOCOL = 0


class TwoConfigEcmDongle(CdcEcmDevice):
    """RTL8153-like: configuration 1 vendor-specific (r8152 bound at plug), 2 = CDC-ECM."""

    def __init__(self, **kw):
        kw.setdefault("vid", 0x0BDA)
        kw.setdefault("pid", 0x8153)
        kw.setdefault("product", "USB 10/100/1000 LAN")
        kw.setdefault("manufacturer", "Realtek")
        kw.setdefault("mac", b"\x00\xe0\x4c\x68\x00\x01")
        super().__init__(two_configs=True, **kw)


class CdcNcmDevice(_CdcEthModel):
    """A CDC-NCM NIC (like Linux's f_ncm gadget) speaking NTB16.

    layout: where the IN NDP goes: "first" (right after NTH16), "last" (after the datagrams)
    or "split" (datagrams spread over two chained NDPs)."""

    SUBCLASS = CDC_SUBCLASS_NCM
    DATA_PROTOCOL = CDC_PROTO_NCM_NTB
    KERNEL_DRIVER = "cdc_ncm"

    def __init__(self, formats=0x0001, in_max=16384, in_divisor=4, in_remainder=0, in_alignment=4,
                 out_max=16384, out_divisor=4, out_remainder=0, out_alignment=4, out_max_datagrams=0,
                 max_in_datagrams=40, ncm_caps=NCM_CAP_PACKET_FILTER | NCM_CAP_MAX_DATAGRAM,
                 layout="first", **kw):
        self.formats = formats
        self.in_max = in_max
        self.in_divisor = in_divisor
        self.in_remainder = in_remainder
        self.in_alignment = in_alignment
        self.out_max = out_max
        self.out_divisor = out_divisor
        self.out_remainder = out_remainder
        self.out_alignment = out_alignment
        self.out_max_datagrams = out_max_datagrams
        self.max_in_datagrams = max_in_datagrams
        self.ncm_caps = ncm_caps
        self.layout = layout
        self.ntb_format = 0
        self.ntb_input_size = in_max
        self.max_datagram = kw.get("max_segment", 1514)
        self.in_seq = 0
        self.in_ntbs = 0
        self.in_datagrams = 0
        self.host_tx_align_errors = 0
        self.host_tx_ntbs = 0
        self.ntb_sizes = deque(maxlen=64)   # datagrams per IN NTB (recent)
        super().__init__(**kw)

    def _make_bulk_in(self, spec):
        return _NtbInEndpoint(spec, self._pack)

    def _comm_functional(self):
        return (header_fd() + union_fd(self.comm_if, self.data_if)
                + ethernet_fd(self.imac, self.max_segment, mc_filters=self.mc_filters)
                + ncm_fd(self.ncm_caps))

    def _on_alt(self, alt):
        if alt == 1:
            self.in_seq = 0  # NCM: selecting alt 1 resets the function's data state

    def _announce(self):  # f_ncm order: speed first, then connection
        if self.connected:
            self.notify_speed(self.dl_bps, self.ul_bps)
        self.notify_connection(self.connected)

    def ntb_parameters(self):
        return struct.pack("<HHIHHHHIHHHH", 28, self.formats, self.in_max, self.in_divisor,
                           self.in_remainder, self.in_alignment, 0, self.out_max, self.out_divisor,
                           self.out_remainder, self.out_alignment, self.out_max_datagrams)

    def _class_request(self, setup, data):
        rt, rq = setup.bmRequestType, setup.bRequest
        if rt == 0xA1 and rq == REQ_GET_NTB_PARAMETERS:
            return self.ntb_parameters()
        if rt == 0xA1 and rq == REQ_GET_NTB_FORMAT:
            if not self.formats & 2:
                raise Stall  # only required when NTB32 is supported
            return struct.pack("<H", self.ntb_format)
        if rt == 0x21 and rq == REQ_SET_NTB_FORMAT:
            if self.data_alt != 0 or setup.wValue > 1 or not self.formats & (1 << setup.wValue):
                raise Stall
            self.ntb_format = setup.wValue
            return b""
        if rt == 0xA1 and rq == REQ_GET_NTB_INPUT_SIZE:
            if self.ncm_caps & NCM_CAP_NTB_INPUT_SIZE_8:
                return struct.pack("<IHH", self.ntb_input_size, 0, 0)
            return struct.pack("<I", self.ntb_input_size)
        if rt == 0x21 and rq == REQ_SET_NTB_INPUT_SIZE:
            want = 8 if self.ncm_caps & NCM_CAP_NTB_INPUT_SIZE_8 else 4
            if len(data) != want:
                raise Stall
            size = struct.unpack_from("<I", data, 0)[0]
            if size < 2048 or size > self.in_max:
                raise Stall
            self.ntb_input_size = size
            return b""
        if rq in (REQ_GET_MAX_DATAGRAM_SIZE, REQ_SET_MAX_DATAGRAM_SIZE):
            if not self.ncm_caps & NCM_CAP_MAX_DATAGRAM:
                raise Stall
            if rt == 0xA1:
                return struct.pack("<H", self.max_datagram)
            size = struct.unpack_from("<H", data, 0)[0] if len(data) >= 2 else 0
            if size < 14 or size > self.max_segment:
                raise Stall
            self.max_datagram = size
            return b""
        if rq == REQ_SET_ETHERNET_PACKET_FILTER and not self.ncm_caps & NCM_CAP_PACKET_FILTER:
            raise Stall
        return super()._class_request(setup, data)

    # -- IN: pack waiting frames into one NTB16 --
    @staticmethod
    def _align(pos, div, rem):
        return pos + (rem - pos) % div

    def _layout(self, lens):
        """Offsets for an NTB holding datagrams of the given lengths:
        (total, [(ndp_offset, next_ndp, [datagram offsets of this NDP])...], dg_offsets)."""
        k = len(lens)
        div, rem, al = self.in_divisor or 1, self.in_remainder, max(4, self.in_alignment)
        groups = [list(range(k))]
        if self.layout == "split" and k >= 2:
            groups = [list(range(k // 2)), list(range(k // 2, k))]
        ndp_sizes = [8 + 4 * (len(g) + 1) for g in groups]
        offs = [0] * k
        ndps = []
        pos = 12
        if self.layout in ("first", "split"):
            ndp0 = self._align(pos, al, 0)
            pos = ndp0 + ndp_sizes[0]
        for i in range(k):
            p = self._align(pos, div, rem)
            offs[i] = p
            pos = p + lens[i]
        if self.layout == "first":
            ndps = [ndp0]
        elif self.layout == "last":
            ndps = [self._align(pos, al, 0)]
            pos = ndps[0] + ndp_sizes[0]
        else:  # split: second NDP after the datagrams
            ndps = [ndp0]
            if len(groups) > 1:
                n1 = self._align(pos, al, 0)
                ndps.append(n1)
                pos = n1 + ndp_sizes[1]
        return pos, ndps, groups, offs

    def _pack(self, frames):
        limit = min(self.ntb_input_size, 0xFFFF)
        chosen = []
        while frames and len(chosen) < self.max_in_datagrams:
            lens = [len(f) for f in chosen] + [len(frames[0])]
            total = self._layout(lens)[0]
            if total > limit:
                if not chosen:  # cannot fit even alone
                    frames.popleft()
                    self.wire_rx_too_big += 1
                    continue
                break
            chosen.append(frames.popleft())
        if not chosen:
            return None
        total, ndps, groups, offs = self._layout([len(f) for f in chosen])
        ntb = bytearray(total)
        for f, o in zip(chosen, offs):
            ntb[o:o + len(f)] = f
        for gi, (g, ndp) in enumerate(zip(groups, ndps)):
            nxt = ndps[gi + 1] if gi + 1 < len(ndps) else 0
            struct.pack_into("<4sHH", ntb, ndp, b"NCM0", 8 + 4 * (len(g) + 1), nxt)
            p = ndp + 8
            for i in g:
                struct.pack_into("<HH", ntb, p, offs[i], len(chosen[i]))
                p += 4
            struct.pack_into("<HH", ntb, p, 0, 0)
        struct.pack_into("<4sHHHH", ntb, 0, b"NCMH", 12, self.in_seq, total, ndps[0])
        self.in_seq = (self.in_seq + 1) & 0xFFFF
        self.in_ntbs += 1
        self.in_datagrams += len(chosen)
        self.ntb_sizes.append(len(chosen))
        return bytes(ntb)

    # -- OUT: unpack the host's NTBs --
    def _out_limit(self):
        return self.out_max

    def _host_transfer(self, blob):
        self.host_tx_ntbs += 1
        frames = self.parse_host_ntb(blob)
        if frames is None:
            self.host_tx_bad += 1
            return
        for f in frames:
            self._deliver(f)

    def parse_host_ntb(self, blob):
        """Independent NTB16 decoder (struct-based). None if the NTB is malformed."""
        n = len(blob)
        if n < 12 or blob[:4] != b"NCMH" or n > self.out_max:
            return None
        hlen, _seq, blen, ndp = struct.unpack_from("<HHHH", blob, 4)
        if hlen != 12:
            return None
        if blen == 0:
            blen = n
        if blen > n:
            return None
        frames = []
        seen = set()
        while ndp:
            if ndp in seen or ndp % 4 or ndp + 16 > blen or blob[ndp:ndp + 4] != b"NCM0":
                return None
            seen.add(ndp)
            if ndp % max(4, self.out_alignment):
                self.host_tx_align_errors += 1
            wlen, nxt = struct.unpack_from("<HH", blob, ndp + 4)
            if wlen < 16 or wlen % 4 or ndp + wlen > blen:
                return None
            for i in range((wlen - 8) // 4):
                di, dl = struct.unpack_from("<HH", blob, ndp + 8 + 4 * i)
                if di == 0 or dl == 0:
                    break
                if di < 12 or di + dl > blen or dl < 14 or dl > self.max_segment:
                    return None
                if self.out_divisor and di % self.out_divisor != self.out_remainder % self.out_divisor:
                    self.host_tx_align_errors += 1
                frames.append(bytes(blob[di:di + dl]))
            ndp = nxt
        if self.out_max_datagrams and len(frames) > self.out_max_datagrams:
            return None
        return frames


__all__ = ["CdcEcmDevice", "CdcNcmDevice", "TwoConfigEcmDongle", "MultiConfigDevice", "RESET_FILTER",
           "SPEED_FULL", "SPEED_HIGH"]
