"""CDC-NCM driver (hal/usb_ncm.py) against the virtual NCM device through the real pyusb API
and the in-process sim backend; NTB16 helpers (hal/usb_cdc.py) on CPython and, heap-locked,
on the MicroPython unix port."""
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

usb = pytest.importorskip("usb")
pytest.importorskip("usbip")

from ustack.hal.sim.usb_backend import SimBackend  # noqa: E402
from ustack.hal.sim.usb_cdc import CdcNcmDevice  # noqa: E402
from ustack.hal.usb_cdc import (  # noqa: E402
    NCM_CAP_MAX_DATAGRAM,
    NCM_CAP_NTB_INPUT_SIZE_8,
    NCM_CAP_PACKET_FILTER,
    NTB_E_BLOCK_LENGTH,
    NTB_E_NDP_CHAIN,
    NTB_E_NDP_INDEX,
    NTB_E_NDP_LENGTH,
    NTB_E_NDP_SIGNATURE,
    NTB_E_NTH_LENGTH,
    NTB_E_NTH_SIGNATURE,
    NTB_E_SHORT,
    Ntb16Builder,
    Ntb16Parser,
    cdc_kind,
    find_cdc_function,
    find_nic,
)
from ustack.hal.usb_ncm import UsbNcm  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PEER = b"\x02\x00\x00\x00\x00\x01"


def make(**kw):
    drv_kw = kw.pop("drv", {})
    model = CdcNcmDevice(**kw)
    be = SimBackend([model])
    dev = find_nic(backend=be)
    nic = UsbNcm(dev, notify_interval_ms=0, **drv_kw)
    return model, be, nic


@pytest.fixture
def ncm():
    model, be, nic = make()
    yield model, be, nic
    nic.close()


def frame_to(dst, length, rng):
    return dst + PEER + b"\x08\x00" + rng.randbytes(length - 14)


def recv_wait(nic, buf, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = nic.recv_into(buf)
        if n:
            return n
    return 0


def ntb(datagrams, seq=0, ndp_at=None, block_len=None, sig=b"NCMH", hlen=12, ndp_sig=b"NCM0",
        ndp_len=None, next_ndp=0, entries=None):
    """Hand-built NTB16 for malformed-input tests: NTH, NDP, then datagrams."""
    k = len(datagrams) if entries is None else max(len(datagrams), len(entries))
    ndp = 12 if ndp_at is None else ndp_at
    wlen = 8 + 4 * (k + 1) if ndp_len is None else ndp_len
    pos = max(12 + 8 + 4 * (k + 1), ndp + 8 + 4 * (k + 1))
    body = bytearray(pos)
    offs = []
    for d in datagrams:
        pos += (-pos) % 4
        body += bytes(pos - len(body))
        offs.append(pos)
        body += d
        pos += len(d)
    if entries is None:
        entries = [(o, len(d)) for o, d in zip(offs, datagrams)]
    struct.pack_into("<4sHH", body, ndp, ndp_sig, wlen, next_ndp)
    for i, (o, ln) in enumerate(entries):
        struct.pack_into("<HH", body, ndp + 8 + 4 * i, o, ln)
    total = len(body)
    struct.pack_into("<4sHHHH", body, 0, sig, hlen, seq, total if block_len is None else block_len, ndp)
    return bytes(body)


# --- enumeration and negotiation -----------------------------------------------------------

def test_enumeration_functional_descriptors():
    model = CdcNcmDevice(ncm_caps=NCM_CAP_PACKET_FILTER | NCM_CAP_MAX_DATAGRAM)
    be = SimBackend([model])
    dev = find_nic(backend=be)
    assert cdc_kind(dev) == "ncm"
    comm = dev[0][(0, 0)]
    assert (comm.bInterfaceClass, comm.bInterfaceSubClass) == (0x02, 0x0D)
    assert dev[0][(1, 1)].bInterfaceProtocol == 0x01
    fn = find_cdc_function(dev)
    assert fn.kind == "ncm" and fn.fd.has_ncm and fn.fd.bcd_ncm == 0x0100
    assert fn.fd.ncm_caps == NCM_CAP_PACKET_FILTER | NCM_CAP_MAX_DATAGRAM
    assert fn.fd.has_ethernet and fn.fd.max_segment == 1514
    assert ("kernel_bind", 0, "cdc_ncm") in be.log


def test_negotiation_defaults(ncm):
    model, be, nic = ncm
    reqs = [(r[0], r[1]) for r in model.requests]
    assert (0xA1, 0x80) in reqs                      # GET_NTB_PARAMETERS
    assert (0x21, 0x84) not in reqs                  # NTB16 only: no SET_NTB_FORMAT
    assert (0x21, 0x86) not in reqs                  # we take the device's 16384
    assert model.filter_requests == [0x1C]
    assert nic.ntb_in_size == 16384 and nic.ntb_out_size == 16384
    assert nic.params.formats == 1 and nic.params.out_divisor == 4
    assert ("detach", 0, "cdc_ncm") in be.log and ("detach", 1, "cdc_ncm") in be.log
    assert nic.mac == model.mac and nic.mtu == 1500
    nic.service()
    assert nic.link_up() and nic.speed == (model.dl_bps, model.ul_bps)


def test_negotiation_input_size_and_format():
    model, _be, nic = make(formats=0x3, in_max=32768, drv={"ntb_in_max": 8192})
    try:
        reqs = [(r[0], r[1], r[2], r[4]) for r in model.requests]
        assert (0x21, 0x84, 0, b"") in reqs            # SET_NTB_FORMAT(NTB16) while in alt 0
        assert (0x21, 0x86, 0, struct.pack("<I", 8192)) in reqs
        assert model.ntb_input_size == 8192 and nic.ntb_in_size == 8192 and model.ntb_format == 0
    finally:
        nic.close()
    model, _be, nic = make(ncm_caps=NCM_CAP_PACKET_FILTER | NCM_CAP_NTB_INPUT_SIZE_8, drv={"ntb_in_max": 4096})
    try:
        assert (0x21, 0x86, 0, struct.pack("<IHH", 4096, 0, 0)) in [(r[0], r[1], r[2], r[4]) for r in model.requests]
        assert model.ntb_input_size == 4096
    finally:
        nic.close()


def test_link_notifications(ncm):
    model, _be, nic = ncm
    nic.service()
    assert nic.link_up()
    model.set_link(False)
    nic.service()
    assert not nic.link_up()
    model.set_link(True, dl_bps=10_000_000_000 // 4, ul_bps=1_000_000)
    nic.service()
    assert nic.link_up() and nic.speed == (2_500_000_000, 1_000_000)


# --- data path -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["first", "last", "split"])
def test_500_random_frames_each_way(layout):
    model, _be, nic = make(layout=layout, out_divisor=8, out_remainder=2, out_alignment=16,
                           in_divisor=16, in_remainder=14)
    try:
        rng = random.Random(hash(layout) & 0xFFFF)
        sent = []
        model.on_wire_tx = sent.append
        frames = [frame_to(PEER, rng.randint(14, 1514), rng) for _ in range(500)]
        for f in frames[:250]:
            assert nic.send(bytearray(f), len(f))
        assert nic.send_batch([bytearray(f) for f in frames[250:]], [len(f) for f in frames[250:]], 250) == 250
        assert sent == frames
        assert model.host_tx_bad == 0 and model.host_tx_align_errors == 0
        assert nic.tx_ntbs < 500  # the batch was packed several per NTB

        frames = [frame_to(model.mac, rng.randint(14, 1514), rng) for _ in range(500)]
        got = []
        buf = bytearray(1514)
        i = 0
        while i < 500:
            burst = rng.randint(1, 40)
            for f in frames[i:i + burst]:
                assert model.wire_rx(f)
            for _ in frames[i:i + burst]:
                n = recv_wait(nic, buf)
                got.append(bytes(buf[:n]))
            i += burst
        assert got == frames
        assert max(model.ntb_sizes) > 1 and nic.rx_ntbs < 500  # multi-datagram NTBs
        assert nic.rx_bad_ntb == 0 and nic.rx_bad_datagram == 0
        assert nic.recv_into(buf) == 0
    finally:
        nic.close()


def test_multi_datagram_ntb_handed_out_one_per_call(ncm):
    model, _be, nic = ncm
    rng = random.Random(4)
    frames = [frame_to(model.mac, 60 + i, rng) for i in range(10)]
    for f in frames:
        assert model.wire_rx(f)
    buf = bytearray(1514)
    got = [bytes(buf[:recv_wait(nic, buf)]) for _ in frames]
    assert got == frames
    assert nic.rx_ntbs == 1 and model.in_ntbs == 1 and list(model.ntb_sizes) == [10]


def test_tx_limits_split_batches():
    model, _be, nic = make(out_max=4096, out_max_datagrams=3)
    try:
        rng = random.Random(8)
        sent = []
        model.on_wire_tx = sent.append
        frames = [frame_to(PEER, 1000, rng) for _ in range(10)]
        assert nic.send_batch(frames, [1000] * 10, 10) == 10
        assert sent == frames
        assert nic.tx_ntbs == 4 and model.host_tx_ntbs == 4   # 3 + 3 + 3 + 1
        assert model.host_tx_bad == 0
    finally:
        nic.close()


def test_ntb_multiple_of_mps_uses_zlp(ncm):
    model, _be, nic = ncm
    rng = random.Random(12)
    sent = []
    model.on_wire_tx = sent.append
    # host TX: NTH 12 + datagram + NDP 16 = 512 / 1024
    for n in (484, 996):
        f = frame_to(PEER, n, rng)
        assert nic.send(bytearray(f), n) and sent[-1] == f
    assert nic.tx_zlp == 2 and model.host_tx_bad == 0
    # device RX: NTH 12 + NDP 16 + datagram = 512 (layout "first")
    buf = bytearray(1514)
    for n in (484, 996):
        f = frame_to(model.mac, n, rng)
        assert model.wire_rx(f)
        assert recv_wait(nic, buf) == n and buf[:n] == f


def test_idle_recv_returns_zero_quickly(ncm):
    _model, _be, nic = ncm
    buf = bytearray(1514)
    t = time.perf_counter()
    for _ in range(20):
        assert nic.recv_into(buf) == 0
    assert (time.perf_counter() - t) / 20 < 0.02


# --- malformed NTBs --------------------------------------------------------------------------

def _good(model, rng, n=80):
    return frame_to(model.mac, n, rng)


def malformed_cases(model, rng):
    d = _good(model, rng)
    ok = ntb([d])
    return [
        ("short", ok[:10], NTB_E_SHORT),
        ("nth signature", ntb([d], sig=b"NCMX"), NTB_E_NTH_SIGNATURE),
        ("nth length", ntb([d], hlen=16), NTB_E_NTH_LENGTH),
        ("block longer than transfer", ntb([d], block_len=len(ok) + 100), NTB_E_BLOCK_LENGTH),
        ("block too short", ntb([d], block_len=20), NTB_E_BLOCK_LENGTH),
        ("ndp index zero", ok[:10] + b"\x00\x00" + ok[12:], NTB_E_NDP_INDEX),
        ("ndp misaligned", ok[:10] + b"\x0e\x00" + ok[12:], NTB_E_NDP_INDEX),
        ("ndp past end", ok[:10] + struct.pack("<H", len(ok) - 8) + ok[12:], NTB_E_NDP_INDEX),
        ("ndp signature NCM1", ntb([d], ndp_sig=b"NCM1"), NTB_E_NDP_SIGNATURE),
        ("ndp length small", ntb([d], ndp_len=12), NTB_E_NDP_LENGTH),
        ("ndp length odd", ntb([d], ndp_len=18), NTB_E_NDP_LENGTH),
        ("ndp length past end", ntb([d], ndp_len=4096), NTB_E_NDP_LENGTH),
        ("ndp chain loop", ntb([d], next_ndp=12), NTB_E_NDP_CHAIN),
    ]


def test_malformed_ntbs_counted_not_raised(ncm):
    model, _be, nic = ncm
    rng = random.Random(99)
    buf = bytearray(1514)
    cases = malformed_cases(model, rng)
    for name, blob, err in cases:
        before = nic.rx_bad_ntb
        model.inject_in(blob)
        n = recv_wait(nic, buf, timeout=0.05)
        if err == NTB_E_NDP_CHAIN:  # the datagrams before the loop was detected are kept
            assert n == 80, name
            assert nic.recv_into(buf) == 0
        else:
            assert n == 0, name
        assert nic.rx_bad_ntb == before + 1, name
        assert nic.parser.last_error == err, name
        # the link still works afterwards
        f = _good(model, rng, 100)
        assert model.wire_rx(f)
        assert recv_wait(nic, buf) == 100 and buf[:100] == f, name
    assert nic.rx_bad_ntb == len(cases)


def test_bad_datagram_entries_skipped(ncm):
    model, _be, nic = ncm
    rng = random.Random(5)
    good = [_good(model, rng, 60), _good(model, rng, 70), _good(model, rng, 90)]
    blob = ntb(good)
    # rebuild the NDP entries: good, out of range, runt, good, good
    k = 5
    offs = []
    pos = 12 + 8 + 4 * (k + 1)
    for dg in good:
        pos += (-pos) % 4
        offs.append(pos)
        pos += len(dg)
    entries = [(offs[0], 60), (offs[2], 1000), (offs[1], 5), (offs[1], 70), (offs[2], 90)]
    blob = ntb(good, entries=entries, ndp_len=8 + 4 * 6)
    model.inject_in(blob)
    buf = bytearray(1514)
    got = []
    while True:
        n = recv_wait(nic, buf, timeout=0.2)
        if not n:
            break
        got.append(bytes(buf[:n]))
    assert got == good
    assert nic.parser.bad_dgram == 2 and nic.rx_bad_ntb == 0


def test_zero_block_length_means_transfer_length(ncm):
    model, _be, nic = ncm
    rng = random.Random(6)
    d = _good(model, rng, 77)
    model.inject_in(ntb([d], block_len=0))
    buf = bytearray(1514)
    assert recv_wait(nic, buf) == 77 and buf[:77] == d


def test_random_garbage_never_raises(ncm):
    model, _be, nic = ncm
    rng = random.Random(2024)
    buf = bytearray(1514)
    base = ntb([_good(model, rng, 100), _good(model, rng, 200)])
    for i in range(300):
        blob = bytearray(base)
        for _ in range(rng.randint(1, 6)):  # corrupt a few bytes, mostly in the headers
            j = rng.randrange(0, 40) if rng.random() < 0.8 else rng.randrange(len(blob))
            blob[j] = rng.randrange(256)
        model.inject_in(bytes(blob))
        for _ in range(4):
            n = nic.recv_into(buf)
            assert 0 <= n <= 1514
    assert nic.parser.ntbs >= 300


# --- NTB16 helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize("div,rem,align", [(4, 0, 4), (8, 2, 16), (32, 14, 32), (1, 0, 4)])
def test_builder_parser_round_trip(div, rem, align):
    rng = random.Random(div * 100 + rem)
    buf = bytearray(16384)
    bld = Ntb16Builder(buf, 16384, div, rem, align, 0)
    par = Ntb16Parser(64)
    model = CdcNcmDevice(out_divisor=div, out_remainder=rem, out_alignment=align)
    for _ in range(50):
        bld.reset()
        frames = []
        while True:
            f = rng.randbytes(rng.randint(14, 1514))
            if not bld.add(f, len(f)):
                break
            frames.append(f)
        total = bld.finish()
        assert frames and total <= 16384
        n = par.parse(buf, total)
        assert [bytes(buf[par.off[i]:par.off[i] + par.len_[i]]) for i in range(n)] == frames
        assert all(par.off[i] % div == rem % div for i in range(n))
        assert model.parse_host_ntb(bytes(buf[:total])) == frames  # independent decoder agrees
        assert model.host_tx_align_errors == 0
    assert par.bad_ntb == 0 and bld.seq == 50


def test_parser_ndp_chain_longer_than_limit():
    d = b"\x02" * 60
    # NTH, then 10 NDPs of one datagram each, chained in order
    k = 10
    blob = bytearray(12 + 16 * k)
    for i in range(k):
        o = 12 + 16 * i
        struct.pack_into("<4sHHHHHH", blob, o, b"NCM0", 16, o + 16 if i < k - 1 else 0, len(blob), 60, 0, 0)
    blob += d
    struct.pack_into("<4sHHHH", blob, 0, b"NCMH", 12, 0, len(blob), 12)
    par = Ntb16Parser(16, max_ndps=8)
    assert par.parse(blob, len(blob)) == 8 and par.last_error == NTB_E_NDP_CHAIN and par.bad_ntb == 1
    par = Ntb16Parser(16, max_ndps=16)
    assert par.parse(blob, len(blob)) == 10 and par.bad_ntb == 0
    par = Ntb16Parser(4)  # table smaller than the datagram count
    assert par.parse(blob, len(blob)) == 4 and par.overflow == 4


def test_builder_limits():
    buf = bytearray(2048)
    bld = Ntb16Builder(buf, 2048, 4, 0, 4, max_datagrams=2)
    assert bld.add(bytes(100), 100) and bld.add(bytes(100), 100)
    assert not bld.add(bytes(100), 100)  # wNtbOutMaxDatagrams
    bld = Ntb16Builder(buf, 2048)
    assert not bld.add(bytes(2030), 2030)  # cannot fit with NTH + NDP
    assert bld.finish() == 0


MP_NTB = r'''
import sys, micropython
sys.path.insert(0, sys.argv[1])
from ustack.hal.usb_cdc import Ntb16Builder, Ntb16Parser, CdcNotifications
buf = bytearray(4096)
src = bytearray(1514)
for i in range(1514):
    src[i] = (i * 7) & 0xFF
bld = Ntb16Builder(buf, 4096, 8, 2, 16, 0)
par = Ntb16Parser(16)
notes = CdcNotifications()
note = bytearray(b"\xa1\x00\x01\x00\x00\x00\x00\x00")

def run(rounds):
    total_dg = 0
    for r in range(rounds):
        bld.reset()
        bld.add(src, 60 + r)
        bld.add(src, 1514)
        bld.add(src, 300)
        t = bld.finish()
        n = par.parse(buf, t)
        total_dg += n
        o = par.off[1]
        if par.len_[1] != 1514 or buf[o + 1513] != src[1513] or buf[par.off[0]] != src[0]:
            return -1
        notes.feed(note, 8)
    return total_dg

run(1)  # warm up
micropython.heap_lock()
try:
    got = run(100)
finally:
    micropython.heap_unlock()
print("OK", got, par.bad_ntb, par.bad_dgram, notes.connected)
'''


def test_ntb_helpers_allocation_free_on_micropython(tmp_path):
    mp = Path(sys.executable).parent / "micropython"
    if not mp.exists():
        pytest.skip("micropython unix port not installed")
    pkg = tmp_path / "ustack"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hal").symlink_to(REPO / "hal")
    script = tmp_path / "ntb.py"
    script.write_text(MP_NTB)
    out = subprocess.run([str(mp), str(script), str(tmp_path)], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == [b"OK", b"300", b"0", b"0", b"True"], out.stdout
