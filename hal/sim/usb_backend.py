"""An in-process pyusb backend that serves virtual USB devices built on `usbip.device.USBDevice`.

    be = SimBackend()
    model = CdcEcmDevice(...)                 # hal/sim/usb_cdc.py (any usbip USBDevice works)
    be.add(model)
    dev = usb.core.find(backend=be, idVendor=model.vid)
    nic = UsbEcm(dev)                         # the real driver, through the real pyusb API

Everything a host would do goes through the model's USB request handling
(`USBDevice.handle_urb`): enumeration reads the device/configuration/string descriptors with
GET_DESCRIPTOR, SET_CONFIGURATION / SET_INTERFACE / class requests are control URBs, bulk and
interrupt transfers are URBs on the model's endpoints. An IN transfer with no data parks in
the model until data arrives or the timeout passes; then it is cancelled (as libusb/usbfs
would unlink it) and `usb.core.USBTimeoutError` is raised.

Host-side behaviour modelled after Linux usbfs + libusb:
 * USB packetization: an IN transfer completes on a short packet (a chunk whose length is not
   a multiple of wMaxPacketSize, or a zero-length packet) or when the buffer is full, so a
   device that forgets a ZLP makes frames merge exactly as on real hardware;
 * kernel drivers: `model.kernel_drivers = {config_value: {ifnum: "cdc_ether"}}` says what the
   kernel binds after a configuration is selected (at plug time, the model's
   `initial_config`, default the first configuration); claiming a bound interface or
   SET_CONFIGURATION while any interface is bound/claimed fails with EBUSY until the driver
   calls detach_kernel_driver;
 * endpoints must belong to the current alternate setting of an interface; transfers on an
   unplugged device raise ENODEV.

`backend.log` records host-side operations (set_configuration, detach, claim, set_alt, ...).
"""
import errno
import itertools
import struct
import threading
import time

import usb.backend
from usb.core import USBError, USBTimeoutError
from usbip.core import IN, OUT, Urb

LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_INVALID_PARAM = -2
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_NOT_FOUND = -5
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_OVERFLOW = -8
LIBUSB_ERROR_PIPE = -9

_ERRNO = {
    LIBUSB_ERROR_IO: errno.EIO,
    LIBUSB_ERROR_INVALID_PARAM: errno.EINVAL,
    LIBUSB_ERROR_NO_DEVICE: errno.ENODEV,
    LIBUSB_ERROR_NOT_FOUND: errno.ENOENT,
    LIBUSB_ERROR_BUSY: errno.EBUSY,
    LIBUSB_ERROR_TIMEOUT: errno.ETIMEDOUT,
    LIBUSB_ERROR_OVERFLOW: errno.EOVERFLOW,
    LIBUSB_ERROR_PIPE: errno.EPIPE,
}

# usbip speed enum -> libusb_speed
_LIBUSB_SPEED = {0: 1, 1: 2, 2: 3, 3: 4}

DT_DEVICE, DT_CONFIG, DT_STRING, DT_INTERFACE, DT_ENDPOINT = 1, 2, 3, 4, 5


def _error(code, what):
    if code == LIBUSB_ERROR_TIMEOUT:
        return USBTimeoutError(what, code, _ERRNO[code])
    return USBError(what, code, _ERRNO.get(code))


class _Desc:
    """Attribute bag standing in for libusb's descriptor structs."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return "_Desc(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items())
                                       if not isinstance(kv[1], list))


def parse_configuration(blob):
    """Split a configuration descriptor blob the way libusb does: interfaces grouped by
    bInterfaceNumber (in order of appearance) with their alternate settings; class-specific
    descriptors go to `extra_descriptors` of the preceding config/interface/endpoint."""
    if len(blob) < 9 or blob[1] != DT_CONFIG:
        raise ValueError("not a configuration descriptor")
    (_l, _t, total, nif, value, icfg, attrs, power) = struct.unpack_from("<BBHBBBBB", blob, 0)
    cfg = _Desc(bLength=9, bDescriptorType=DT_CONFIG, wTotalLength=total, bNumInterfaces=nif,
                bConfigurationValue=value, iConfiguration=icfg, bmAttributes=attrs,
                bMaxPower=power, extra_descriptors=[], interfaces=[])
    by_num = {}
    holder = cfg
    cur_if = None
    i = blob[0]
    end = min(len(blob), total)
    while i + 2 <= end:
        ln = blob[i]
        if ln < 2 or i + ln > end:
            break
        d = blob[i:i + ln]
        t = d[1]
        if t == DT_INTERFACE and ln >= 9:
            cur_if = _Desc(bLength=ln, bDescriptorType=t, bInterfaceNumber=d[2], bAlternateSetting=d[3],
                           bNumEndpoints=d[4], bInterfaceClass=d[5], bInterfaceSubClass=d[6],
                           bInterfaceProtocol=d[7], iInterface=d[8], extra_descriptors=[], endpoints=[])
            if d[2] not in by_num:
                by_num[d[2]] = []
                cfg.interfaces.append(by_num[d[2]])
            by_num[d[2]].append(cur_if)
            holder = cur_if
        elif t == DT_ENDPOINT and ln >= 7 and cur_if is not None:
            ep = _Desc(bLength=ln, bDescriptorType=t, bEndpointAddress=d[2], bmAttributes=d[3],
                       wMaxPacketSize=d[4] | (d[5] << 8), bInterval=d[6],
                       bRefresh=d[7] if ln > 7 else 0, bSynchAddress=d[8] if ln > 8 else 0,
                       extra_descriptors=[])
            cur_if.endpoints.append(ep)
            holder = ep
        else:
            holder.extra_descriptors.extend(d)
        i += ln
    return cfg


class _SimDev:
    """Host-side view of one plugged model."""

    def __init__(self, model, bus, address):
        self.model = model
        self.bus = bus
        self.address = address
        self.gone = False
        self.kernel = {}        # ifnum -> kernel driver name (active configuration)
        self.claims = {}        # ifnum -> handle
        self.alt = {}           # ifnum -> current alternate setting
        self.desc = None
        self.configs = []
        self.lock = threading.RLock()


class _Handle:
    def __init__(self, sd):
        self.sd = sd
        self.closed = False


class SimBackend(usb.backend.IBackend):
    def __init__(self, devices=()):
        super().__init__()
        self._devs = []
        self._seq = itertools.count(1)
        self._next_addr = itertools.count(2)
        self.log = []
        for m in devices:
            self.add(m)

    # --- plugging ---
    def add(self, model, bus=1, address=None):
        """Plug a model: enumerate it (descriptors), configure it like the kernel would, and
        bind the kernel drivers it declares. Returns the host-side record."""
        sd = _SimDev(model, bus, address or next(self._next_addr))
        raw = self._get_descriptor(sd, DT_DEVICE, 0, 18)
        f = struct.unpack_from("<BBHBBBBHHHBBBB", raw, 0)
        sd.desc = _Desc(bLength=f[0], bDescriptorType=f[1], bcdUSB=f[2], bDeviceClass=f[3],
                        bDeviceSubClass=f[4], bDeviceProtocol=f[5], bMaxPacketSize0=f[6],
                        idVendor=f[7], idProduct=f[8], bcdDevice=f[9], iManufacturer=f[10],
                        iProduct=f[11], iSerialNumber=f[12], bNumConfigurations=f[13],
                        bus=sd.bus, address=sd.address, port_number=sd.address - 1,
                        port_numbers=(sd.address - 1,),
                        speed=_LIBUSB_SPEED.get(getattr(model, "speed", 1), 2))
        for idx in range(sd.desc.bNumConfigurations):
            head = self._get_descriptor(sd, DT_CONFIG, idx, 9)
            total = head[2] | (head[3] << 8)
            sd.configs.append(parse_configuration(self._get_descriptor(sd, DT_CONFIG, idx, total)))
        init = getattr(model, "initial_config", None)
        if init is None and sd.configs:
            init = sd.configs[0].bConfigurationValue
        if init and getattr(model, "config", 0) == 0:
            self._control(sd, 0x00, 0x09, init, 0, b"", 0)
            self._bind_kernel(sd, init)
        self._devs.append(sd)
        return sd

    def remove(self, model):
        """Unplug: further transfers raise ENODEV, parked transfers end."""
        for sd in list(self._devs):
            if sd.model is model:
                sd.gone = True
                self._devs.remove(sd)
                try:
                    model.reset_io()
                except Exception:
                    pass

    def record(self, model):
        for sd in self._devs:
            if sd.model is model:
                return sd
        return None

    def _bind_kernel(self, sd, value):
        sd.kernel = dict((getattr(sd.model, "kernel_drivers", None) or {}).get(value, {}))
        for ifnum, name in sorted(sd.kernel.items()):
            self.log.append(("kernel_bind", ifnum, name))

    # --- URB plumbing ---
    def _submit(self, sd, urb, timeout_s):
        """Run one URB through the model. Returns the completed urb, or None on timeout."""
        if sd.gone:
            raise _error(LIBUSB_ERROR_NO_DEVICE, "No such device (it may have been disconnected)")
        box = []
        ev = threading.Event()

        def respond(u):
            box.append(u)
            ev.set()

        r = sd.model.handle_urb(urb, respond)
        if r is not None:
            return r
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left > 0 and ev.wait(left):
                return box[0]
            if ev.is_set():
                return box[0]
            if sd.gone:
                raise _error(LIBUSB_ERROR_NO_DEVICE, "No such device (it may have been disconnected)")
            if deadline is not None and time.monotonic() >= deadline:
                break
        # timed out: unlink the parked URB; if the device completed it meanwhile, keep the data
        ep = getattr(sd.model, "_ep_map", {}).get((urb.ep, urb.direction))
        if ep is not None:
            removed = ep.cancel(urb.seqnum)
        else:
            sd.model.cancel_urb(urb.seqnum)
            removed = True
        if removed:
            return None
        ev.wait(0.5)  # completion in flight (or the device flushed the endpoint)
        return box[0] if box else None

    def _control(self, sd, bmRequestType, bRequest, wValue, wIndex, data, length, timeout_s=5.0):
        direction = IN if bmRequestType & 0x80 else OUT
        setup = struct.pack("<BBHHH", bmRequestType, bRequest, wValue, wIndex, length)
        urb = Urb(seqnum=next(self._seq), direction=direction, ep=0, length=length, setup=setup,
                  buffer=b"" if direction == IN else bytes(data))
        r = self._submit(sd, urb, timeout_s)
        if r is None:
            raise _error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
        if r.status == -32:
            raise _error(LIBUSB_ERROR_PIPE, "Pipe error")
        if r.status:
            raise _error(LIBUSB_ERROR_IO, "Input/Output Error")
        return bytes(r.buffer[:length]) if direction == IN else length

    def _get_descriptor(self, sd, dtype, index, length, langid=0):
        return self._control(sd, 0x80, 0x06, (dtype << 8) | index, langid, b"", length)

    # --- helpers ---
    @staticmethod
    def _sd(h):
        if h.closed:
            raise _error(LIBUSB_ERROR_INVALID_PARAM, "Invalid parameter (handle closed)")
        return h.sd

    def _active_cfg(self, sd):
        v = getattr(sd.model, "config", 0)
        for c in sd.configs:
            if c.bConfigurationValue == v:
                return c
        return None

    def _find_ep(self, h, sd, ep_addr):
        """(ifnum, endpoint descriptor) for an endpoint of the current alt settings."""
        cfg = self._active_cfg(sd)
        if cfg is None:
            raise _error(LIBUSB_ERROR_IO, "Input/Output Error (device not configured)")
        for alts in cfg.interfaces:
            ifnum = alts[0].bInterfaceNumber
            cur = sd.alt.get(ifnum, 0)
            for a in alts:
                if a.bAlternateSetting != cur:
                    continue
                for ep in a.endpoints:
                    if ep.bEndpointAddress == ep_addr:
                        owner = sd.claims.get(ifnum)
                        if owner is None:          # usbfs claims implicitly on first use...
                            if ifnum in sd.kernel:  # ...unless a kernel driver has it
                                raise _error(LIBUSB_ERROR_BUSY, "Resource busy")
                            sd.claims[ifnum] = h
                        elif owner is not h:
                            raise _error(LIBUSB_ERROR_BUSY, "Resource busy")
                        return ifnum, ep
        raise _error(LIBUSB_ERROR_IO, "Input/Output Error (endpoint 0x%02x not in the current "
                                      "alternate settings)" % ep_addr)

    # --- IBackend: enumeration and descriptors ---
    def enumerate_devices(self):
        return iter(list(self._devs))

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev):
        return dev.desc

    def get_configuration_descriptor(self, dev, config):
        if config >= len(dev.configs):
            raise IndexError("Invalid configuration index " + str(config))
        return dev.configs[config]

    def get_interface_descriptor(self, dev, intf, alt, config):
        cfg = self.get_configuration_descriptor(dev, config)
        if intf >= len(cfg.interfaces):
            raise IndexError("Invalid interface index " + str(intf))
        alts = cfg.interfaces[intf]
        if alt >= len(alts):
            raise IndexError("Invalid alternate setting index " + str(alt))
        return alts[alt]

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        i = self.get_interface_descriptor(dev, intf, alt, config)
        if ep >= len(i.endpoints):
            raise IndexError("Invalid endpoint index " + str(ep))
        return i.endpoints[ep]

    # --- IBackend: device handle ---
    def open_device(self, dev):
        if dev.gone:
            raise _error(LIBUSB_ERROR_NO_DEVICE, "No such device")
        return _Handle(dev)

    def close_device(self, dev_handle):
        sd = dev_handle.sd
        with sd.lock:
            for ifnum, owner in list(sd.claims.items()):
                if owner is dev_handle:
                    del sd.claims[ifnum]
        dev_handle.closed = True

    def set_configuration(self, dev_handle, config_value):
        sd = self._sd(dev_handle)
        with sd.lock:
            if config_value == -1:
                config_value = 0
            if config_value and all(c.bConfigurationValue != config_value for c in sd.configs):
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            if sd.kernel or sd.claims:  # usbfs refuses while any interface is claimed
                raise _error(LIBUSB_ERROR_BUSY, "Resource busy")
            self._control(sd, 0x00, 0x09, config_value, 0, b"", 0)
            sd.alt = {}
            self.log.append(("set_configuration", config_value))
            self._bind_kernel(sd, config_value)

    def get_configuration(self, dev_handle):
        sd = self._sd(dev_handle)
        return self._control(sd, 0x80, 0x08, 0, 0, b"", 1)[0]

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        sd = self._sd(dev_handle)
        with sd.lock:
            if sd.claims.get(intf) is not dev_handle:
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found (interface not claimed)")
            cfg = self._active_cfg(sd)
            alts = [a for alts in (cfg.interfaces if cfg else ()) for a in alts
                    if a.bInterfaceNumber == intf and a.bAlternateSetting == altsetting]
            if not alts:
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            self._control(sd, 0x01, 0x0B, altsetting, intf, b"", 0)
            sd.alt[intf] = altsetting
            self.log.append(("set_alt", intf, altsetting))

    def claim_interface(self, dev_handle, intf):
        sd = self._sd(dev_handle)
        with sd.lock:
            cfg = self._active_cfg(sd)
            if cfg is None or all(a[0].bInterfaceNumber != intf for a in cfg.interfaces):
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            if intf in sd.kernel:
                raise _error(LIBUSB_ERROR_BUSY, "Resource busy (kernel driver %s)" % sd.kernel[intf])
            owner = sd.claims.get(intf)
            if owner is not None and owner is not dev_handle:
                raise _error(LIBUSB_ERROR_BUSY, "Resource busy")
            sd.claims[intf] = dev_handle
            self.log.append(("claim", intf))

    def release_interface(self, dev_handle, intf):
        sd = self._sd(dev_handle)
        with sd.lock:
            if sd.claims.get(intf) is not dev_handle:
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            del sd.claims[intf]
            self.log.append(("release", intf))

    def is_kernel_driver_active(self, dev_handle, intf):
        return intf in self._sd(dev_handle).kernel

    def detach_kernel_driver(self, dev_handle, intf):
        sd = self._sd(dev_handle)
        with sd.lock:
            if intf not in sd.kernel:
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            name = sd.kernel.pop(intf)
            self.log.append(("detach", intf, name))

    def attach_kernel_driver(self, dev_handle, intf):
        sd = self._sd(dev_handle)
        with sd.lock:
            if intf in sd.kernel or intf in sd.claims:
                raise _error(LIBUSB_ERROR_BUSY, "Resource busy")
            name = (getattr(sd.model, "kernel_drivers", None) or {}).get(
                getattr(sd.model, "config", 0), {}).get(intf)
            if name is None:
                raise _error(LIBUSB_ERROR_NOT_FOUND, "Entity not found")
            sd.kernel[intf] = name
            self.log.append(("attach", intf, name))

    def reset_device(self, dev_handle):
        sd = self._sd(dev_handle)
        sd.model.reset_io()
        sd.alt = {}
        self.log.append(("reset",))

    def clear_halt(self, dev_handle, ep):
        sd = self._sd(dev_handle)
        self._control(sd, 0x02, 0x01, 0, ep, b"", 0)

    # --- IBackend: transfers ---
    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        sd = self._sd(dev_handle)
        length = len(data) * data.itemsize
        t = None if not timeout else timeout / 1000.0
        if bmRequestType & 0x80:
            got = self._control(sd, bmRequestType, bRequest, wValue, wIndex, b"", length, t)
            n = len(got)
            if n:
                data[:n] = type(data)("B", got)
            return n
        return self._control(sd, bmRequestType, bRequest, wValue, wIndex, data.tobytes(), length, t)

    def _write(self, dev_handle, ep, data, timeout):
        sd = self._sd(dev_handle)
        if ep & 0x80:
            raise _error(LIBUSB_ERROR_INVALID_PARAM, "Invalid parameter")
        self._find_ep(dev_handle, sd, ep)
        payload = data.tobytes()
        urb = Urb(seqnum=next(self._seq), direction=OUT, ep=ep & 0x0F, length=len(payload), buffer=payload)
        r = self._submit(sd, urb, None if not timeout else timeout / 1000.0)
        if r is None:
            raise _error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
        if r.status == -32:
            raise _error(LIBUSB_ERROR_PIPE, "Pipe error")
        if r.status:
            raise _error(LIBUSB_ERROR_IO, "Input/Output Error")
        return len(payload)

    def _read(self, dev_handle, ep, buff, timeout):
        sd = self._sd(dev_handle)
        if not ep & 0x80:
            raise _error(LIBUSB_ERROR_INVALID_PARAM, "Invalid parameter")
        _ifnum, epd = self._find_ep(dev_handle, sd, ep)
        mps = epd.wMaxPacketSize & 0x7FF or 64
        total = len(buff) * buff.itemsize
        deadline = None if not timeout else time.monotonic() + timeout / 1000.0
        got = 0
        mv = memoryview(buff).cast("B")
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            urb = Urb(seqnum=next(self._seq), direction=IN, ep=ep & 0x0F, length=total - got)
            r = self._submit(sd, urb, left)
            if r is None:
                if got:
                    return got  # libusb: data moved before the timeout -> no error
                raise _error(LIBUSB_ERROR_TIMEOUT, "Operation timed out")
            if r.status == -32:
                raise _error(LIBUSB_ERROR_PIPE, "Pipe error")
            if r.status:
                raise _error(LIBUSB_ERROR_IO, "Input/Output Error")
            chunk = r.buffer
            n = len(chunk)
            if n > total - got:
                raise _error(LIBUSB_ERROR_OVERFLOW, "Overflow")
            mv[got:got + n] = chunk
            got += n
            if n == 0 or n % mps or got >= total:
                return got  # short packet / ZLP / buffer full ends the transfer

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        return self._write(dev_handle, ep, data, timeout)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        return self._read(dev_handle, ep, buff, timeout)

    def intr_write(self, dev_handle, ep, intf, data, timeout):
        return self._write(dev_handle, ep, data, timeout)

    def intr_read(self, dev_handle, ep, intf, buff, timeout):
        return self._read(dev_handle, ep, buff, timeout)


def get_backend(devices=()):
    return SimBackend(devices)
