"""The driver benchmark measures what it says: every frame crosses each virtual device intact
(the harness checks each one), and an SPI driver moves a frame over the bus once, with a few
register transactions around it."""
import pytest

from benchmarks import drivers
from benchmarks.driver_rates import SIZES, CountingBus, spi_device, spi_rows


def test_every_device_moves_frames_both_ways():
    import os
    rows = drivers.measure(60)
    devices = {r[0].split(" ")[0] for r in rows}
    want = {"loopback", "enc28j60", "w5500", "usb-ecm", "usb-ncm", "slip"}
    if os.geteuid() == 0 and os.path.exists("/dev/net/tun"):
        want |= {"tap", "afpacket"}  # against the kernel, in a namespace of their own
    assert devices == want
    for dev, size, rx, tx, note in rows:
        assert rx > 0 and tx > 0, (dev, size)


@pytest.mark.parametrize("kind", ["enc28j60", "w5500"])
def test_spi_frame_crosses_the_bus_once(kind):
    for k, size, rx, tx, transactions, bus_bytes, drv_us in spi_rows(40):
        if k != kind:
            continue
        # a frame plus headers, pointers and status: never a second copy of the frame
        assert size < bus_bytes < size + 64, (kind, size, bus_bytes)
        assert 3 <= transactions <= 12, (kind, size, transactions)
        assert drv_us > 0


def test_a_lost_frame_is_reported_not_counted():
    drv, bus, inject, drain = spi_device("w5500")
    assert isinstance(bus, CountingBus)
    from benchmarks.driver_rates import rates
    with pytest.raises(RuntimeError, match="RX frame 0 lost"):
        rates(drv, lambda f: None, drain, SIZES[0], 5)


def test_render_shows_ratios_against_the_baseline():
    rows = [("loopback (baseline)", 64, 100, 100, ""), ("x", 64, 25, 25, "n")]
    text = drivers.render(rows, [("w5500", 64, 5, 6, 7.0, 93.0, 12.5)], 10)
    assert "| x | 64 | 25 | 25 | 0.250 | n |" in text
    assert "| w5500 (virtual chip) | 64 | 5 | 6 | 7.0 | 93 | 12.5 |" in text


def test_the_bench_runs_inside_micropython_and_chip_wire_sides_allocate_nothing(tmp_path):
    """The portable half runs on the unix port, and with the heap locked a virtual chip
    takes full-size frames from its wire and gives transmitted ones back (so a chip bridged
    inside micropython adds no garbage per frame)."""
    from tests.micropython.mpyhelp import MPY
    if MPY is None:
        pytest.skip("micropython unix port not installed")
    rows = drivers.micropython_spi_rows(30)
    assert sorted({r[0] for r in rows}) == ["enc28j60", "w5500"]
    assert all(r[2] > 0 and r[3] > 0 for r in rows)
    from ustack.ports.micropython.stage import stage_lib
    import os
    import subprocess
    stage_lib(str(tmp_path))
    os.symlink(os.path.join(drivers.ROOT, "benchmarks"), str(tmp_path / "benchmarks"))
    script = (
        "import sys, micropython\nsys.path.insert(0, %r)\n"
        "from benchmarks.driver_rates import spi_device, _frame\n"
        "def run(kind):\n"
        "    drv, bus, inject, drain = spi_device(kind)\n"
        "    chip = bus.bus\n"
        "    f = _frame(1514, 5)\n"
        "    buf = bytearray(2048)\n"
        "    for i in range(3):\n"
        "        inject(f); drv.recv_into(buf); drv.send(f, 1514); drv.service(); drain(buf)\n"
        "    micropython.heap_lock()\n"
        "    try:\n"
        "        for i in range(20):\n"
        "            chip.wire_rx(f)\n"
        "            drv.recv_into(buf)\n"
        "            drv.send(f, 1514)\n"
        "            drv.service()\n"
        "            chip.wire_tx_into(buf)\n"
        "    finally:\n"
        "        micropython.heap_unlock()\n"
        "    print(kind, 'ok', chip.rx_frames, chip.tx_frames)\n"
        "run('enc28j60')\nrun('w5500')\n" % str(tmp_path))
    r = subprocess.run([MPY, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "enc28j60 ok 23 23" in r.stdout and "w5500 ok 23 23" in r.stdout, r.stdout
