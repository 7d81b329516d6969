"""CDC-ECM driver (hal/usb_ecm.py) against the virtual ECM device (hal/sim/usb_cdc.py) through
the real pyusb API, served by the in-process backend (hal/sim/usb_backend.py)."""
import errno
import random
import threading
import time

import pytest

usb = pytest.importorskip("usb")
pytest.importorskip("usbip")
import usb.core  # noqa: E402
import usb.util  # noqa: E402

from ustack.hal.sim.usb_backend import SimBackend, parse_configuration  # noqa: E402
from ustack.hal.sim.usb_cdc import (  # noqa: E402
    RESET_FILTER,
    SPEED_FULL,
    CdcEcmDevice,
    CdcNcmDevice,
    TwoConfigEcmDongle,
)
from ustack.hal.usb_cdc import (  # noqa: E402
    CDC_SUBCLASS_ECM,
    DEFAULT_PACKET_FILTER,
    CdcNotifications,
    cdc_kind,
    find_cdc_function,
    find_nic,
    open_nic,
    parse_functional,
)
from ustack.hal.usb_ecm import UsbEcm  # noqa: E402

PEER = b"\x02\x00\x00\x00\x00\x01"
BCAST = b"\xff" * 6


def plug(model):
    be = SimBackend()
    be.add(model)
    dev = find_nic(backend=be, vid=model.vid, pid=model.pid)
    assert dev is not None
    return be, dev


@pytest.fixture
def ecm():
    model = CdcEcmDevice()
    be, dev = plug(model)
    nic = UsbEcm(dev, notify_interval_ms=0)
    yield model, be, nic
    nic.close()


def frame_to(dst, length, rng, ethertype=b"\x08\x00"):
    return dst + PEER + ethertype + rng.randbytes(length - 14)


def lengths(rng, count, mps=512, max_len=1514):
    special = [14, 60, 64, 511, 512, 513, 1024, 1023, 1025, 1500, 1514]
    special += [k * mps for k in range(1, max_len // mps + 1)]
    out = list(special)
    while len(out) < count:
        out.append(rng.randint(14, max_len))
    rng.shuffle(out)
    return out[:count]


def recv_wait(nic, buf, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = nic.recv_into(buf)
        if n:
            return n
    return 0


# --- enumeration and descriptors -----------------------------------------------------------

def test_enumeration_and_descriptors():
    model = CdcEcmDevice(vid=0x1209, pid=0xEC01)
    be, dev = plug(model)
    assert cdc_kind(dev) == "ecm"
    assert (dev.idVendor, dev.idProduct, dev.bDeviceClass, dev.bNumConfigurations) == (0x1209, 0xEC01, 2, 1)
    assert dev.speed == 3  # libusb high speed
    assert dev.product == "ustack virtual CDC NIC"
    cfg = dev[0]
    comm = cfg[(0, 0)]
    assert (comm.bInterfaceClass, comm.bInterfaceSubClass) == (0x02, 0x06)
    extra = bytes(comm.extra_descriptors)
    assert b"\x05\x24\x00" in extra and b"\x05\x24\x06\x00\x01" in extra and b"\x0d\x24\x0f" in extra
    data0, data1 = cfg[(1, 0)], cfg[(1, 1)]
    assert (data0.bInterfaceClass, data0.bNumEndpoints, data1.bNumEndpoints) == (0x0A, 0, 2)
    fd = parse_functional(list(comm.extra_descriptors))
    assert fd.has_ethernet and fd.max_segment == 1514 and fd.union_master == 0 and fd.union_slave == 1
    assert usb.util.get_string(dev, fd.imac) == "020000000099"
    fn = find_cdc_function(dev, CDC_SUBCLASS_ECM)
    assert (fn.config_value, fn.comm_if, fn.data_if, fn.data_alt) == (1, 0, 1, 1)
    assert (fn.bulk_in, fn.bulk_out, fn.intr_in, fn.bulk_in_mps, fn.intr_mps) == (0x81, 0x02, 0x83, 512, 16)
    assert find_cdc_function(dev, 0x0D) is None
    # the kernel bound cdc_ether at plug time
    assert ("kernel_bind", 0, "cdc_ether") in be.log and dev.is_kernel_driver_active(0)


def test_find_nic_filters_and_open_nic():
    be = SimBackend([CdcEcmDevice(pid=0x0001), CdcNcmDevice(pid=0x0002)])
    assert find_nic(backend=be, pid=0x0002).idProduct == 0x0002
    assert find_nic(backend=be, vid=0xDEAD) is None
    assert len(find_nic(backend=be, find_all=True)) == 2
    nic = open_nic(find_nic(backend=be, pid=0x0001), notify_interval_ms=0)
    try:
        assert type(nic).__name__ == "UsbEcm"
    finally:
        nic.close()
    nic = open_nic(find_nic(backend=be, pid=0x0002), notify_interval_ms=0)
    try:
        assert type(nic).__name__ == "UsbNcm"
    finally:
        nic.close()


def test_parse_configuration_like_libusb():
    model = CdcEcmDevice()
    cfg = parse_configuration(model.config_bytes(0))
    assert [len(alts) for alts in cfg.interfaces] == [1, 2]
    assert cfg.interfaces[0][0].endpoints[0].bEndpointAddress == 0x83
    assert bytes(cfg.interfaces[0][0].extra_descriptors)[:3] == b"\x05\x24\x00"


# --- bring-up ------------------------------------------------------------------------------

def test_bring_up_detach_claim_filter_mac(ecm):
    model, be, nic = ecm
    assert nic.mac == b"\x02\x00\x00\x00\x00\x99" and nic.mtu == 1500 and nic.poll_obj() is None
    log = be.log
    # kernel driver detached from both interfaces before they were claimed
    assert log.index(("detach", 0, "cdc_ether")) < log.index(("claim", 0))
    assert log.index(("detach", 1, "cdc_ether")) < log.index(("claim", 1))
    assert nic.detached == [0, 1]
    # alt 0 first, then alt 1; the filter request came in between
    assert log.index(("set_alt", 1, 0)) < log.index(("set_alt", 1, 1))
    assert model.filter_requests == [DEFAULT_PACKET_FILTER] and model.packet_filter == 0x1C
    assert (0x21, 0x43, 0x1C, 0, b"") in model.requests
    assert nic.filter_ok and model.active
    assert ("set_configuration", 1) not in log  # already in the right configuration


def test_without_detach_claim_fails_busy():
    model = CdcEcmDevice()
    _be, dev = plug(model)
    with pytest.raises(usb.core.USBError) as ei:
        UsbEcm(dev, detach=False)
    assert ei.value.errno == errno.EBUSY


def test_two_config_dongle_selects_ecm_configuration():
    model = TwoConfigEcmDongle()
    be, dev = plug(model)
    assert dev.bNumConfigurations == 2
    assert dev[0][(0, 0)].bInterfaceClass == 0xFF  # config 1: vendor-specific (r8152)
    assert model.config == 1 and be.log[0] == ("kernel_bind", 0, "r8152")
    with pytest.raises(ValueError):
        UsbEcm(dev, config=1)
    nic = UsbEcm(dev, notify_interval_ms=0)
    try:
        assert model.config == 2 and model.active
        log = be.log
        i_detach = log.index(("detach", 0, "r8152"))
        i_setcfg = log.index(("set_configuration", 2))
        assert i_detach < i_setcfg < log.index(("detach", 0, "cdc_ether")) < log.index(("claim", 0))
        assert nic.mac == b"\x00\xe0\x4c\x68\x00\x01"
        rng = random.Random(3)
        buf = bytearray(1514)
        f = frame_to(model.mac, 700, rng)
        assert model.wire_rx(f)
        assert recv_wait(nic, buf) == 700 and buf[:700] == f
    finally:
        nic.close()
    assert ("attach", 0, "cdc_ether") in be.log


def test_unconfigured_device_gets_configured():
    model = CdcEcmDevice()
    model.initial_config = 0  # nothing bound, no configuration selected at plug time
    be, dev = plug(model)
    assert model.config == 0 and be.log == []
    nic = UsbEcm(dev, notify_interval_ms=0)
    try:
        assert model.config == 1 and model.active
        # selecting the configuration made the kernel bind cdc_ether, which we then detached
        assert be.log[:3] == [("set_configuration", 1), ("kernel_bind", 0, "cdc_ether"),
                              ("kernel_bind", 1, "cdc_ether")]
        assert nic.detached == [0, 1]
    finally:
        nic.close()


def test_failed_bring_up_releases_interfaces():
    model = CdcEcmDevice()
    model.imac = 0  # no iMACAddress string: bring-up fails after claiming
    be, dev = plug(model)
    with pytest.raises(ValueError):
        UsbEcm(dev)
    assert ("release", 0) in be.log and ("release", 1) in be.log
    assert ("attach", 0, "cdc_ether") in be.log and dev.is_kernel_driver_active(0)


def test_set_configuration_busy_while_kernel_driver_bound():
    model = TwoConfigEcmDongle()
    _be, dev = plug(model)
    with pytest.raises(usb.core.USBError) as ei:
        dev.set_configuration(2)
    assert ei.value.errno == errno.EBUSY


# --- link notifications --------------------------------------------------------------------

def test_link_notifications(ecm):
    model, _be, nic = ecm
    assert not nic.link_up()  # nothing read yet
    nic.service()
    assert nic.link_up() and nic.speed == (425984000, 425984000)
    model.set_link(False)
    nic.service()
    assert not nic.link_up()
    model.set_link(True, dl_bps=100_000_000, ul_bps=50_000_000)
    nic.service()
    assert nic.link_up() and nic.speed == (100_000_000, 50_000_000)
    assert nic.notes.bad == 0 and nic.notes.link_changes == 3


def test_service_rate_limit():
    model = CdcEcmDevice()
    _be, dev = plug(model)
    nic = UsbEcm(dev, notify_interval_ms=10_000)
    try:
        nic.service()
        assert nic.link_up()
        model.set_link(False)
        nic.service()  # within the interval: not polled
        assert nic.link_up()
        nic._next_intr = 0
        nic.service()
        assert not nic.link_up()
    finally:
        nic.close()


def test_notification_decoder_split_and_merged():
    from ustack.hal.sim.usb_cdc import notification
    n = CdcNotifications()
    speed = notification(0x2A, 0, 0, (1000).to_bytes(4, "little") + (2000).to_bytes(4, "little"))
    conn = notification(0x00, 1, 0)
    stream = speed + conn
    for i in range(0, len(stream), 8):  # wMaxPacketSize 8: split transfers
        chunk = stream[i:i + 8]
        n.feed(chunk, len(chunk))
    assert n.connected and (n.dl_bps, n.ul_bps) == (1000, 2000) and n.events == 2
    blob = notification(0x00, 0, 0) + notification(0x01, 0, 0)  # merged; RESPONSE_AVAILABLE
    n.feed(blob, len(blob))
    assert not n.connected and n.other == 1 and n.bad == 0
    n.feed(b"\x00" * 8, 8)
    assert n.bad == 1


# --- data path ------------------------------------------------------------------------------

def test_500_random_frames_each_way(ecm):
    model, _be, nic = ecm
    rng = random.Random(500)
    sent = []
    model.on_wire_tx = sent.append
    lens_tx = lengths(rng, 500)
    frames = [frame_to(PEER, n, rng) for n in lens_tx]
    for f in frames:
        assert nic.send(bytearray(f), len(f))
    assert sent == frames
    assert nic.tx_zlp == sum(1 for n in lens_tx if n % 512 == 0) > 0
    assert model.host_tx_bad == 0 and nic.tx_frames == 500

    lens_rx = lengths(rng, 500)
    frames = [frame_to(model.mac if i % 3 else BCAST, n, rng) for i, n in enumerate(lens_rx)]
    buf = bytearray(1514)
    got = []
    for i in range(0, 500, 25):  # bursts of 25 queued in the device
        for f in frames[i:i + 25]:
            assert model.wire_rx(f)
        for _ in range(25):
            n = recv_wait(nic, buf)
            got.append(bytes(buf[:n]))
    assert got == frames
    assert nic.rx_frames == 500 and nic.rx_errors == 0
    assert nic.recv_into(buf) == 0


def test_packet_filter_applied_by_device(ecm):
    model, _be, nic = ecm
    rng = random.Random(9)
    assert not model.wire_rx(frame_to(b"\x02\x99\x99\x99\x99\x99", 100, rng))  # someone else's
    assert model.wire_rx_filtered == 1
    assert model.wire_rx(frame_to(BCAST, 100, rng))
    assert model.wire_rx(frame_to(b"\x33\x33\x00\x00\x00\x01", 100, rng))  # multicast
    buf = bytearray(1514)
    assert recv_wait(nic, buf) == 100 and recv_wait(nic, buf) == 100
    assert nic.set_packet_filter(0x01)  # promiscuous
    assert model.wire_rx(frame_to(b"\x02\x99\x99\x99\x99\x99", 100, rng))
    assert recv_wait(nic, buf) == 100


def test_full_speed_device_mps_64():
    model = CdcEcmDevice(speed=SPEED_FULL)
    be, dev = plug(model)
    nic = UsbEcm(dev, notify_interval_ms=0)
    try:
        assert nic.fn.bulk_in_mps == 64 and dev.speed == 2
        rng = random.Random(64)
        sent = []
        model.on_wire_tx = sent.append
        buf = bytearray(1514)
        for n in [64, 128, 640, 1472, 65, 1514] + [rng.randint(14, 1514) for _ in range(50)]:
            f = frame_to(model.mac, n, rng)
            assert nic.send(bytearray(f), n) and sent[-1] == f
            assert model.wire_rx(f)
            assert recv_wait(nic, buf) == n and buf[:n] == f
    finally:
        nic.close()


def test_rx_zlp_after_frame_filling_the_buffer():
    """max segment 1536 = 3 x 512: a 1536-byte frame fills the host buffer exactly, so the
    device's ZLP arrives as its own (empty) transfer and must be skipped."""
    model = CdcEcmDevice(max_segment=1536)
    _be, dev = plug(model)
    nic = UsbEcm(dev, notify_interval_ms=0)
    try:
        rng = random.Random(1536)
        buf = bytearray(1536)
        a, b = frame_to(model.mac, 1536, rng), frame_to(model.mac, 99, rng)
        assert model.wire_rx(a) and model.wire_rx(b)
        assert recv_wait(nic, buf) == 1536 and buf == a
        assert recv_wait(nic, buf) == 99 and buf[:99] == b
        assert nic.rx_zlp == 1
    finally:
        nic.close()


def test_missing_zlp_merges_transfers_like_real_usb(ecm):
    """The backend/model keep USB packet semantics: a 512-byte bulk OUT without a ZLP does
    not end the transfer, so the next write is glued to it (why the driver sends ZLPs)."""
    model, _be, nic = ecm
    sent = []
    model.on_wire_tx = sent.append
    rng = random.Random(1)
    a, b = frame_to(PEER, 512, rng), frame_to(PEER, 100, rng)
    nic.dev.write(0x02, a)  # raw pyusb: no ZLP
    nic.dev.write(0x02, b)
    assert sent == [a + b]  # one 612-byte "frame": the corruption real hardware shows too
    assert nic.send(bytearray(a), 512) and sent[-1] == a and nic.tx_zlp == 1


def test_bad_sizes_refused(ecm):
    _model, _be, nic = ecm
    assert not nic.send(bytearray(2000), 1515)
    assert not nic.send(bytearray(10), 10)
    assert nic.tx_oversize == 2
    model = _model
    assert not model.wire_rx(b"\x00" * 1515)
    # a frame bigger than the caller's buffer is dropped and counted, not truncated
    rng = random.Random(2)
    assert model.wire_rx(frame_to(model.mac, 1000, rng))
    small = bytearray(500)
    deadline = time.monotonic() + 1
    while nic.rx_oversize == 0 and time.monotonic() < deadline:
        assert nic.recv_into(small) == 0
    assert nic.rx_oversize == 1


def test_idle_recv_returns_zero_quickly(ecm):
    _model, _be, nic = ecm
    buf = bytearray(1514)
    t = time.perf_counter()
    for _ in range(20):
        assert nic.recv_into(buf) == 0
    per_call = (time.perf_counter() - t) / 20
    assert per_call < 0.02, per_call
    # raw pyusb on the sim backend: a proper USBTimeoutError
    t = time.perf_counter()
    with pytest.raises(usb.core.USBTimeoutError):
        nic.dev.read(0x81, 2048, timeout=50)
    assert 0.04 < time.perf_counter() - t < 0.5


def test_send_not_blocked_by_pending_read():
    model = CdcEcmDevice()
    _be, dev = plug(model)
    nic = UsbEcm(dev, notify_interval_ms=0, rx_timeout_ms=1000)
    try:
        sent = []
        model.on_wire_tx = sent.append
        result = []
        t = threading.Thread(target=lambda: result.append(nic.recv_into(bytearray(1514))))
        t.start()
        time.sleep(0.05)  # the reader is parked in the device
        t0 = time.perf_counter()
        rng = random.Random(5)
        for _ in range(10):
            assert nic.send(bytearray(frame_to(PEER, 200, rng)), 200)
        assert time.perf_counter() - t0 < 0.1 and len(sent) == 10
        assert model.wire_rx(frame_to(model.mac, 300, rng))  # completes the parked read
        t.join(2)
        assert result == [300]
    finally:
        nic.close()


def test_unplug_is_not_fatal(ecm):
    model, be, nic = ecm
    nic.service()
    assert nic.link_up()
    be.remove(model)
    assert nic.recv_into(bytearray(1514)) == 0
    assert not nic.link_up()
    assert not nic.send(bytearray(60), 60)


def test_close_restores_device(ecm):
    model, be, nic = ecm
    nic.close()
    nic.close()  # idempotent
    assert model.data_alt == 0 and not model.active
    assert ("attach", 0, "cdc_ether") in be.log and ("attach", 1, "cdc_ether") in be.log
    assert model.packet_filter != RESET_FILTER  # what the driver set stays set
