"""USB CDC networking (ECM 02/06, NCM 02/0D): shared descriptor parsing and helpers.

Portable part (MicroPython subset, no per-frame allocation): functional-descriptor parsing,
the notification decoder (`CdcNotifications`), NCM parameter parsing, and the NTB16
parser/builder (`Ntb16Parser`, `Ntb16Builder`) that work on preallocated buffers with
explicit lengths.

pyusb part (CPython): `find_cdc_function(dev, subclass)` walks a `usb.core.Device`'s
configurations, `find_nic(...)` finds a CDC NIC, `cdc_kind(dev)` says "ncm"/"ecm".
pyusb is imported lazily so the module also imports on MicroPython.
"""
import sys

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from array import array

# --- class / descriptor codes ---
CDC_CLASS_COMM = const(0x02)
CDC_CLASS_DATA = const(0x0A)
CDC_SUBCLASS_ECM = const(0x06)
CDC_SUBCLASS_NCM = const(0x0D)
CDC_PROTO_NCM_NTB = const(0x01)        # data interface protocol for NCM
CS_INTERFACE = const(0x24)
FD_HEADER = const(0x00)
FD_UNION = const(0x06)
FD_ETHERNET = const(0x0F)
FD_NCM = const(0x1A)

# --- class requests (bmRequestType 0x21 out / 0xA1 in, wIndex = comm interface) ---
REQ_SET_ETHERNET_MULTICAST_FILTERS = const(0x40)
REQ_SET_ETHERNET_PACKET_FILTER = const(0x43)
REQ_GET_NTB_PARAMETERS = const(0x80)
REQ_GET_NTB_FORMAT = const(0x83)
REQ_SET_NTB_FORMAT = const(0x84)
REQ_GET_NTB_INPUT_SIZE = const(0x85)
REQ_SET_NTB_INPUT_SIZE = const(0x86)
REQ_GET_MAX_DATAGRAM_SIZE = const(0x87)
REQ_SET_MAX_DATAGRAM_SIZE = const(0x88)

# SET_ETHERNET_PACKET_FILTER wValue bits
PACKET_TYPE_PROMISCUOUS = const(0x01)
PACKET_TYPE_ALL_MULTICAST = const(0x02)
PACKET_TYPE_DIRECTED = const(0x04)
PACKET_TYPE_BROADCAST = const(0x08)
PACKET_TYPE_MULTICAST = const(0x10)
DEFAULT_PACKET_FILTER = const(0x1C)    # directed | broadcast | multicast

# notifications (interrupt IN; bmRequestType 0xA1)
NOTIFY_NETWORK_CONNECTION = const(0x00)
NOTIFY_RESPONSE_AVAILABLE = const(0x01)
NOTIFY_CONNECTION_SPEED_CHANGE = const(0x2A)

# NCM bmNetworkCapabilities bits
NCM_CAP_PACKET_FILTER = const(0x01)
NCM_CAP_NET_ADDRESS = const(0x02)
NCM_CAP_ENCAPSULATED = const(0x04)
NCM_CAP_MAX_DATAGRAM = const(0x08)
NCM_CAP_CRC_MODE = const(0x10)
NCM_CAP_NTB_INPUT_SIZE_8 = const(0x20)

NTB_PARAMETERS_LEN = const(28)
NTH16_LEN = const(12)
NDP16_MIN_LEN = const(16)

_MPY = sys.implementation.name == "micropython"

if _MPY:
    def _copy(dst, doff, src, soff, n):
        for i in range(n):  # memoryview slices allocate on MicroPython
            dst[doff + i] = src[soff + i]
else:
    def _copy(dst, doff, src, soff, n):
        dst[doff:doff + n] = memoryview(src)[soff:soff + n]


def _u16(b, o):
    return b[o] | (b[o + 1] << 8)


def _u32(b, o):
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)


def _put16(b, o, v):
    b[o] = v & 0xFF
    b[o + 1] = (v >> 8) & 0xFF


# --- descriptors -----------------------------------------------------------------------------

class CdcFunctional:
    """Class-specific functional descriptors of a communications interface."""

    def __init__(self):
        self.bcd_cdc = 0
        self.union_master = -1
        self.union_slave = -1
        self.imac = 0
        self.eth_stats = 0
        self.max_segment = 0
        self.mc_filters = 0
        self.power_filters = 0
        self.has_ethernet = False
        self.bcd_ncm = 0
        self.ncm_caps = 0
        self.has_ncm = False

    def feed(self, d, o, ln):
        """One descriptor at d[o:o+ln] (any type; non-CS_INTERFACE ones are ignored)."""
        if ln < 3 or d[o + 1] != CS_INTERFACE:
            return
        sub = d[o + 2]
        if sub == FD_HEADER and ln >= 5:
            self.bcd_cdc = _u16(d, o + 3)
        elif sub == FD_UNION and ln >= 5:
            self.union_master = d[o + 3]
            self.union_slave = d[o + 4]
        elif sub == FD_ETHERNET and ln >= 13:
            self.has_ethernet = True
            self.imac = d[o + 3]
            self.eth_stats = _u32(d, o + 4)
            self.max_segment = _u16(d, o + 8)
            self.mc_filters = _u16(d, o + 10)
            self.power_filters = d[o + 12]
        elif sub == FD_NCM and ln >= 6:
            self.has_ncm = True
            self.bcd_ncm = _u16(d, o + 3)
            self.ncm_caps = d[o + 5]


def parse_functional(extra, fd=None):
    """Parse a run of descriptors (bytes, bytearray, array or a list of ints such as
    pyusb's `extra_descriptors`) into a CdcFunctional. Stops at a malformed length."""
    if fd is None:
        fd = CdcFunctional()
    n = len(extra)
    o = 0
    while o + 2 <= n:
        ln = extra[o]
        if ln < 2 or o + ln > n:
            break
        fd.feed(extra, o, ln)
        o += ln
    return fd


def mac_from_string(s):
    """iMACAddress string ("020000000099") -> 6 bytes. ValueError if malformed."""
    s = s.strip()
    if len(s) != 12:
        raise ValueError("iMACAddress must be 12 hex digits: %r" % (s,))
    return bytes.fromhex(s)


class NtbParameters:
    """GET_NTB_PARAMETERS response (28 bytes)."""

    def __init__(self, b, n=NTB_PARAMETERS_LEN):
        if n < NTB_PARAMETERS_LEN:
            raise ValueError("NTB parameters too short: %d" % n)
        self.length = _u16(b, 0)
        self.formats = _u16(b, 2)            # bit 0 NTB16, bit 1 NTB32
        self.in_max = _u32(b, 4)             # dwNtbInMaxSize
        self.in_divisor = _u16(b, 8)
        self.in_remainder = _u16(b, 10)
        self.in_alignment = _u16(b, 12)
        self.out_max = _u32(b, 16)           # dwNtbOutMaxSize
        self.out_divisor = _u16(b, 20)
        self.out_remainder = _u16(b, 22)
        self.out_alignment = _u16(b, 24)
        self.out_max_datagrams = _u16(b, 26)  # 0 = no limit


# --- notifications ---------------------------------------------------------------------------

class CdcNotifications:
    """Decodes the interrupt-endpoint stream. A notification may be split over several
    transfers (wMaxPacketSize 8) or several may share one; both are handled. No allocation
    after construction (speed values above 2**30 are heap ints on small MCUs; that path is
    rare)."""

    def __init__(self):
        self.connected = False
        self.dl_bps = 0
        self.ul_bps = 0
        self.events = 0
        self.link_changes = 0
        self.bad = 0
        self.other = 0
        self._acc = bytearray(64)
        self._an = 0

    def feed(self, b, n):
        acc = self._acc
        an = self._an
        if an + n > len(acc):  # cannot be a sane notification stream: resync
            self.bad += 1
            an = 0
            if n > len(acc):
                self._an = 0
                return
        _copy(acc, an, b, 0, n)
        an += n
        o = 0
        while an - o >= 8:
            if acc[o] != 0xA1:
                self.bad += 1
                o = an
                break
            wlen = _u16(acc, o + 6)
            if wlen > len(acc) - 8:
                self.bad += 1
                o = an
                break
            if an - o < 8 + wlen:
                break  # wait for the rest
            code = acc[o + 1]
            if code == NOTIFY_NETWORK_CONNECTION:
                up = _u16(acc, o + 2) != 0
                if up != self.connected:
                    self.link_changes += 1
                self.connected = up
            elif code == NOTIFY_CONNECTION_SPEED_CHANGE and wlen >= 8:
                self.dl_bps = _u32(acc, o + 8)
                self.ul_bps = _u32(acc, o + 12)
            else:
                self.other += 1
            self.events += 1
            o += 8 + wlen
        # keep an incomplete tail at the front
        rest = an - o
        if rest and o:
            for i in range(rest):
                acc[i] = acc[o + i]
        self._an = rest


# --- NTB16 -----------------------------------------------------------------------------------

NTB_E_SHORT = const(-1)
NTB_E_NTH_SIGNATURE = const(-2)
NTB_E_NTH_LENGTH = const(-3)
NTB_E_BLOCK_LENGTH = const(-4)
NTB_E_NDP_INDEX = const(-5)
NTB_E_NDP_SIGNATURE = const(-6)
NTB_E_NDP_LENGTH = const(-7)
NTB_E_NDP_CHAIN = const(-8)


class Ntb16Parser:
    """Validates an NTB16 and lists its datagrams in preallocated arrays `off`/`len_`.

    parse(b, n) -> number of good datagrams (0 for a fully malformed NTB). It never raises
    on bad input: a broken NTH counts `bad_ntb`; a broken NDP counts `bad_ntb` too but keeps
    the datagrams already found in earlier NDPs; a datagram entry pointing outside the block
    (or shorter than min_dgram / longer than max_dgram) counts `bad_dgram` and is skipped;
    entries beyond the table size count `overflow`; an NDP chain that loops back or is longer
    than max_ndps stops there (NTB_E_NDP_CHAIN). `last_error` holds the NTB_E_* code.
    """

    def __init__(self, max_datagrams=64, min_dgram=14, max_dgram=0, max_ndps=8):
        self.off = array("H", [0] * max_datagrams)
        self.len_ = array("H", [0] * max_datagrams)
        self.count = 0
        self.min_dgram = min_dgram
        self.max_dgram = max_dgram
        self.max_ndps = max_ndps
        self._seen = array("H", [0] * max_ndps)  # NDP offsets visited (loop detection)
        self.seq = -1
        self.ntbs = 0
        self.datagrams = 0
        self.bad_ntb = 0
        self.bad_dgram = 0
        self.overflow = 0
        self.last_error = 0

    def _fail(self, err):
        self.bad_ntb += 1
        self.last_error = err
        return 0

    def parse(self, b, n):
        self.count = 0
        self.ntbs += 1
        if n < NTH16_LEN:
            return self._fail(NTB_E_SHORT)
        if b[0] != 0x4E or b[1] != 0x43 or b[2] != 0x4D or b[3] != 0x48:  # "NCMH"
            return self._fail(NTB_E_NTH_SIGNATURE)
        if _u16(b, 4) != NTH16_LEN:
            return self._fail(NTB_E_NTH_LENGTH)
        self.seq = _u16(b, 6)
        blen = _u16(b, 8)
        if blen == 0:          # NTB16: length left to the short packet that ended the transfer
            blen = n
        elif blen > n or blen < NTH16_LEN + NDP16_MIN_LEN:
            return self._fail(NTB_E_BLOCK_LENGTH)
        ndp = _u16(b, 10)
        offs = self.off
        lens = self.len_
        maxd = len(offs)
        mind = self.min_dgram
        maxg = self.max_dgram
        cnt = 0
        hops = 0
        err = 0
        if ndp == 0:
            err = NTB_E_NDP_INDEX
        seen = self._seen
        while ndp:
            if hops >= self.max_ndps:
                err = NTB_E_NDP_CHAIN
                break
            for i in range(hops):
                if seen[i] == ndp:
                    err = NTB_E_NDP_CHAIN  # a loop would hand out the same datagrams again
                    break
            if err:
                break
            seen[hops] = ndp
            hops += 1
            if ndp & 3 or ndp < NTH16_LEN or ndp + NDP16_MIN_LEN > blen:
                err = NTB_E_NDP_INDEX
                break
            if b[ndp] != 0x4E or b[ndp + 1] != 0x43 or b[ndp + 2] != 0x4D or b[ndp + 3] != 0x30:
                err = NTB_E_NDP_SIGNATURE  # "NCM0" only: NCM1 (CRC) is never negotiated
                break
            wlen = _u16(b, ndp + 4)
            if wlen < NDP16_MIN_LEN or wlen & 3 or ndp + wlen > blen:
                err = NTB_E_NDP_LENGTH
                break
            nxt = _u16(b, ndp + 6)
            p = ndp + 8
            end = ndp + wlen
            while p + 4 <= end:
                di = _u16(b, p)
                dl = _u16(b, p + 2)
                p += 4
                if di == 0 or dl == 0:
                    break
                if di < NTH16_LEN or di + dl > blen or dl < mind or (maxg and dl > maxg):
                    self.bad_dgram += 1
                    continue
                if cnt >= maxd:
                    self.overflow += 1
                    continue
                offs[cnt] = di
                lens[cnt] = dl
                cnt += 1
            ndp = nxt
        if err:
            self.bad_ntb += 1
            self.last_error = err
        self.count = cnt
        self.datagrams += cnt
        return cnt


class Ntb16Builder:
    """Packs datagrams into an NTB16 in a preallocated buffer: NTH16, the datagrams (each
    starting at offset % divisor == remainder), then one NDP16 aligned to `alignment`.

        bld.reset(); bld.add(frame, n) ...; total = bld.finish()   # buf[0:total] is the NTB
    """

    def __init__(self, buf, max_size, divisor=4, remainder=0, alignment=4, max_datagrams=0):
        if max_size > len(buf):
            max_size = len(buf)
        if max_size > 0xFFFF:
            max_size = 0xFFFF  # NTB16 lengths and indexes are 16 bits
        self.buf = buf
        self.max_size = max_size
        self.divisor = divisor if divisor > 0 else 1
        self.remainder = remainder % self.divisor
        self.alignment = alignment if alignment >= 4 else 4
        cap = max_datagrams if max_datagrams > 0 else 32
        self.cap = cap
        self.off = array("H", [0] * cap)
        self.len_ = array("H", [0] * cap)
        self.seq = 0
        self.n = 0
        self.pos = NTH16_LEN

    def reset(self):
        self.n = 0
        self.pos = NTH16_LEN

    def fits(self, length):
        if self.n >= self.cap:
            return False
        p = self.pos + (self.remainder - self.pos) % self.divisor
        end = p + length
        ndp = end + (-end) % self.alignment
        return ndp + 8 + 4 * (self.n + 2) <= self.max_size

    def add(self, src, length):
        """Append one datagram (src[0:length]); False if it does not fit (nothing changes)."""
        if not self.fits(length):
            return False
        buf = self.buf
        pos = self.pos
        p = pos + (self.remainder - pos) % self.divisor
        for i in range(pos, p):
            buf[i] = 0
        _copy(buf, p, src, 0, length)
        self.off[self.n] = p
        self.len_[self.n] = length
        self.n += 1
        self.pos = p + length
        return True

    def finish(self):
        """Write NDP16 and NTH16; return the NTB length (0 if empty)."""
        n = self.n
        if not n:
            return 0
        buf = self.buf
        pos = self.pos
        ndp = pos + (-pos) % self.alignment
        for i in range(pos, ndp):
            buf[i] = 0
        wlen = 8 + 4 * (n + 1)
        buf[ndp] = 0x4E      # "NCM0"
        buf[ndp + 1] = 0x43
        buf[ndp + 2] = 0x4D
        buf[ndp + 3] = 0x30
        _put16(buf, ndp + 4, wlen)
        _put16(buf, ndp + 6, 0)
        p = ndp + 8
        offs = self.off
        lens = self.len_
        for i in range(n):
            _put16(buf, p, offs[i])
            _put16(buf, p + 2, lens[i])
            p += 4
        _put16(buf, p, 0)
        _put16(buf, p + 2, 0)
        total = ndp + wlen
        buf[0] = 0x4E        # "NCMH"
        buf[1] = 0x43
        buf[2] = 0x4D
        buf[3] = 0x48
        _put16(buf, 4, NTH16_LEN)
        _put16(buf, 6, self.seq)
        _put16(buf, 8, total)
        _put16(buf, 10, ndp)
        self.seq = (self.seq + 1) & 0xFFFF
        return total


# --- pyusb helpers (CPython) -----------------------------------------------------------------

class CdcFunction:
    """Where a CDC ECM/NCM function lives in a pyusb device."""

    def __init__(self):
        self.subclass = 0
        self.config_value = 0
        self.config_index = 0
        self.comm_if = 0
        self.data_if = 0
        self.data_alt = 1
        self.intr_in = None
        self.intr_mps = 0
        self.bulk_in = None
        self.bulk_in_mps = 0
        self.bulk_out = None
        self.bulk_out_mps = 0
        self.fd = None

    @property
    def kind(self):
        return "ncm" if self.subclass == CDC_SUBCLASS_NCM else "ecm"

    def __repr__(self):
        return ("CdcFunction(%s cfg=%d comm=%d data=%d/alt%d in=0x%02x out=0x%02x intr=%s mac_idx=%d)"
                % (self.kind, self.config_value, self.comm_if, self.data_if, self.data_alt,
                   self.bulk_in or 0, self.bulk_out or 0,
                   "0x%02x" % self.intr_in if self.intr_in is not None else None,
                   self.fd.imac if self.fd else 0))


def _ep_dir_type(ep):
    return ep.bEndpointAddress & 0x80, ep.bmAttributes & 0x03


def find_cdc_function(dev, subclass=None):
    """The first CDC-ECM/NCM function in any configuration of a pyusb Device (configuration
    order), or None. subclass: CDC_SUBCLASS_ECM / CDC_SUBCLASS_NCM / None (either)."""
    for ci, cfg in enumerate(dev):
        intfs = list(cfg)
        for intf in intfs:
            if intf.bInterfaceClass != CDC_CLASS_COMM or intf.bAlternateSetting != 0:
                continue
            sc = intf.bInterfaceSubClass
            if sc not in (CDC_SUBCLASS_ECM, CDC_SUBCLASS_NCM):
                continue
            if subclass is not None and sc != subclass:
                continue
            fd = parse_functional(list(intf.extra_descriptors or ()))
            eps = list(intf)
            for ep in eps:  # some devices hang functional descriptors off the endpoint
                if ep.extra_descriptors:
                    parse_functional(list(ep.extra_descriptors), fd)
            if not fd.has_ethernet:
                parse_functional(list(getattr(cfg, "extra_descriptors", None) or ()), fd)
            fn = CdcFunction()
            fn.subclass = sc
            fn.config_value = cfg.bConfigurationValue
            fn.config_index = ci
            fn.comm_if = intf.bInterfaceNumber
            fn.data_if = fd.union_slave if fd.union_slave >= 0 else intf.bInterfaceNumber + 1
            fn.fd = fd
            for ep in eps:
                d, t = _ep_dir_type(ep)
                if d and t == 3:
                    fn.intr_in = ep.bEndpointAddress
                    fn.intr_mps = ep.wMaxPacketSize
            for di in intfs:
                if di.bInterfaceNumber != fn.data_if or di.bNumEndpoints < 2:
                    continue
                bin_ = bout = None
                for ep in di:
                    d, t = _ep_dir_type(ep)
                    if t != 2:
                        continue
                    if d and bin_ is None:
                        bin_ = ep
                    elif not d and bout is None:
                        bout = ep
                if bin_ is not None and bout is not None:
                    fn.data_alt = di.bAlternateSetting
                    fn.bulk_in = bin_.bEndpointAddress
                    fn.bulk_in_mps = bin_.wMaxPacketSize
                    fn.bulk_out = bout.bEndpointAddress
                    fn.bulk_out_mps = bout.wMaxPacketSize
                    break
            if fn.bulk_in is None:
                continue
            return fn
    return None


def cdc_kind(dev):
    """"ncm", "ecm" or None for a pyusb Device (NCM preferred when both exist)."""
    try:
        if find_cdc_function(dev, CDC_SUBCLASS_NCM) is not None:
            return "ncm"
        if find_cdc_function(dev, CDC_SUBCLASS_ECM) is not None:
            return "ecm"
    except Exception:  # unreadable descriptors (permissions, vanished device)
        return None
    return None


def find_nic(backend=None, vid=None, pid=None, bus=None, address=None, find_all=False):
    """The first USB device with a CDC-ECM/NCM function (or all of them with find_all),
    optionally filtered by vid/pid/bus/address. backend: a pyusb backend (None = pyusb's
    default, e.g. libusb1; `libusb_package.get_libusb1_backend()` works without system
    libusb; the SimBackend in tests)."""
    import usb.core

    def match(d):
        if vid is not None and d.idVendor != vid:
            return False
        if pid is not None and d.idProduct != pid:
            return False
        if bus is not None and d.bus != bus:
            return False
        if address is not None and d.address != address:
            return False
        return cdc_kind(d) is not None

    found = usb.core.find(find_all=True, backend=backend, custom_match=match)
    devs = list(found)
    if find_all:
        return devs
    return devs[0] if devs else None


def open_nic(dev, **kw):
    """The right driver for a pyusb Device: UsbNcm when it has an NCM function, else UsbEcm."""
    kind = cdc_kind(dev)
    if kind == "ncm":
        from ustack.hal.usb_ncm import UsbNcm
        return UsbNcm(dev, **kw)
    if kind == "ecm":
        from ustack.hal.usb_ecm import UsbEcm
        return UsbEcm(dev, **kw)
    raise ValueError("not a CDC-ECM/NCM device")
