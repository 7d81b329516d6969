"""W5500 MACRAW driver (hal/w5500.py) against the virtual chip (hal/sim/w5500.py), and an
ENC28J60 and a W5500 wired back to back.

Golden SPI logs pin the exact frames (address, control byte, data length); state
assertions pin socket pointers and flags; bulk tests move hundreds of random frames
byte-exact across buffer and 16-bit pointer wrap-around and through overflow.
"""
import os
import random
import sys
import types

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import ustack.hal.spi  # noqa: F401
except ImportError:  # run from a checkout: map the repo root onto the `ustack` package
    for _k in [k for k in sys.modules if k == "ustack" or k.startswith("ustack.")]:
        del sys.modules[_k]
    _pkg = types.ModuleType("ustack")
    _pkg.__path__ = [_ROOT]
    sys.modules["ustack"] = _pkg

import pytest  # noqa: E402

from ustack.hal.enc28j60 import Enc28j60  # noqa: E402
from ustack.hal.sim import w5500 as S  # noqa: E402
from ustack.hal.sim.enc28j60 import Enc28j60Sim  # noqa: E402
from ustack.hal.sim.w5500 import W5500Sim  # noqa: E402
from ustack.hal.w5500 import W5500  # noqa: E402

MAC = b"\x02\x00\x00\x00\x00\x02"
BCAST = b"\xff" * 6


class RecordingBus:
    """Logs each transaction as 'header-hex', 'header-hex <n' (read) or '... >n' (write)."""

    def __init__(self, bus):
        self.bus = bus
        self.log = []

    def xfer(self, header, rx=None, tx=None, n=-1):
        h = bytes(header).hex(" ")
        if rx is not None:
            self.log.append("%s <%d" % (h, len(rx) if n < 0 else n))
        elif tx is not None:
            self.log.append("%s >%d" % (h, len(tx) if n < 0 else n))
        else:
            self.log.append(h)
        self.bus.xfer(header, rx, tx, n)

    def take(self):
        log = self.log
        self.log = []
        return log


def no_sleep(ms):
    pass


def make(sim=None, **kw):
    sim = sim or W5500Sim()
    bus = RecordingBus(sim)
    kw.setdefault("sleep_ms", no_sleep)
    drv = W5500(bus, mac=MAC, **kw)
    bus.take()
    return sim, bus, drv


def rand_frame(rnd, n, dst=MAC):
    return bytes(dst) + bytes(rnd.getrandbits(8) for _ in range(n - 6))


def s0(sim, a):
    return sim.sregs[0][a]


def s0_16(sim, a):
    return (sim.sregs[0][a] << 8) | sim.sregs[0][a + 1]


# --------------------------------------------------------------------------- golden logs
# header = offset hi, offset lo, control (BSB<<3 | RWB<<2 | OM=00)
INIT_LOG = [
    "00 00 04 80",            # MR = RST
    "00 00 00 <1",            # MR: RST cleared?
    "00 39 00 <1",            # VERSIONR
    "00 09 04 >6",            # SHAR
    "00 1e 0c 10 10",         # S0 RXBUF_SIZE/TXBUF_SIZE = 16 KB
    "00 1e 2c 00 00", "00 1e 4c 00 00", "00 1e 6c 00 00", "00 1e 8c 00 00",
    "00 1e ac 00 00", "00 1e cc 00 00", "00 1e ec 00 00",   # sockets 1-7: 0 KB
    "00 2c 0c 04",            # S0_IMR = RECV
    "00 18 04 01",            # SIMR = socket 0
    "00 00 0c 84",            # S0_MR = MACRAW | MFEN
    "00 01 0c 01",            # S0_CR = OPEN
    "00 01 08 <1",            # poll S0_CR
    "00 03 08 <1",            # S0_SR (0x42)
    "00 24 08 <2",            # S0_TX_WR
    "00 28 08 <2",            # S0_RX_RD
    "00 20 08 <2", "00 20 08 <2",   # S0_TX_FSR twice (stable)
    "00 2e 00 <1",            # PHYCFGR
]

SEND_LOG = [
    "00 00 14 >60",           # frame into the S0 TX buffer at TX_WR
    "00 24 0c 00 3c",         # S0_TX_WR += 60
    "00 01 0c 20",            # S0_CR = SEND
    "00 01 08 <1",            # poll S0_CR
]

SEND2_LOG = [
    "00 3c 14 >60",           # next frame written while the first is on the wire
    "00 02 08 <1",            # S0_IR: SEND_OK of the previous frame?
    "00 02 0c 10",            # clear SEND_OK (write 1)
    "00 24 0c 00 78",
    "00 01 0c 20",
    "00 01 08 <1",
]

RECV_LOG = [
    "00 26 08 <2", "00 26 08 <2",  # S0_RX_RSR until two reads agree
    "00 00 18 <2",            # length header at RX_RD
    "00 02 18 <60",           # frame
    "00 28 0c 00 3e",         # S0_RX_RD += 62
    "00 01 0c 40",            # S0_CR = RECV
    "00 01 08 <1",
]


def test_init_golden_log():
    sim = W5500Sim()
    bus = RecordingBus(sim)
    drv = W5500(bus, mac=MAC, sleep_ms=no_sleep)
    assert bus.log == INIT_LOG
    assert sim.protocol_errors == 0 and drv.link_up()


def test_send_receive_golden_logs():
    sim, bus, drv = make()
    f = MAC + bytes(range(54))
    assert drv.send(f, 60)
    assert bus.take() == SEND_LOG
    assert drv.send(f, 60)
    assert bus.take() == SEND2_LOG
    assert sim.wire_rx(f)
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 60 and buf[:60] == f
    assert bus.take() == RECV_LOG
    assert drv.recv_into(buf) == 0
    assert bus.take() == ["00 26 08 <2", "00 26 08 <2"]
    drv.service()
    assert bus.take() == ["00 2e 00 <1"]


def test_command_polling_follows_chip_busy_time():
    sim, bus, drv = make(W5500Sim(cmd_delay=3))  # Sn_CR reads back non-zero 3 times
    drv.send(MAC + bytes(54), 60)
    log = bus.take()
    assert log[2] == "00 01 0c 20" and log[3:] == ["00 01 08 <1"] * 4


# --------------------------------------------------------------------------- chip state
def test_init_state_in_chip():
    sim, bus, drv = make()
    assert bytes(sim.common[9:15]) == MAC
    assert [sim.sregs[s][S.Sn_RXBUF_SIZE] for s in range(8)] == [16] + [0] * 7
    assert [sim.sregs[s][S.Sn_TXBUF_SIZE] for s in range(8)] == [16] + [0] * 7
    assert s0(sim, S.Sn_MR) == 0x84 and s0(sim, S.Sn_SR) == S.SOCK_MACRAW
    assert sim.tx_free() == 16384 and sim.rx_used() == 0


def test_rx_state_after_receive():
    sim, bus, drv = make()
    f1 = MAC + bytes([1]) * 94
    f2 = BCAST + bytes([2]) * 200
    sim.wire_rx(f1)
    sim.wire_rx(f2)
    assert sim.rx_wr[0] == 102 + 208 and sim.rx_used() == 310
    assert bytes(sim.rxmem[0:2]) == b"\x00\x66"  # 2 + 100, big-endian, counts itself
    assert s0(sim, S.Sn_IR) & S.IR_RECV
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 100 and buf[:100] == f1
    assert s0_16(sim, S.Sn_RX_RD) == 102 and sim.rx_rd_ack[0] == 102
    assert sim.rx_used() == 208
    assert drv.recv_into(buf) == 206 and buf[:206] == f2
    assert sim.rx_used() == 0 and drv.recv_into(buf) == 0


def test_tx_state_after_send():
    sim, bus, drv = make()
    f = MAC + bytes(range(100))
    assert drv.send(f, 106)
    assert s0_16(sim, S.Sn_TX_WR) == 106 and sim.tx_rd[0] == 106
    assert s0(sim, S.Sn_IR) & S.IR_SEND_OK
    assert bytes(sim.txmem[0:106]) == f
    out = bytearray(1536)
    assert sim.wire_tx_into(out) == 106 and out[:106] == f


def test_send_waits_for_send_ok_of_previous_frame():
    sim, bus, drv = make(W5500Sim(tx_delay=5))
    f = MAC + bytes(60)
    assert drv.send(f, 66) and drv.send(f, 66)
    log = bus.take()
    assert log.count("00 02 08 <1") >= 2  # polled Sn_IR until SEND_OK
    assert sim.tx_frames == 1 and drv.tx_busy == 0


def test_stuck_send_reports_busy_then_reopens_socket():
    sim, bus, drv = make(tx_wait=3, tx_stall_limit=2)
    out = bytearray(1536)
    f = MAC + bytes(range(60))
    sim.stall_next_send()
    assert drv.send(f, 66)        # never completes
    assert drv.send(f, 66) is False
    assert drv.tx_busy == 1
    assert drv.send(f, 66) is False  # second busy: socket closed and reopened
    assert drv.resets == 1 and drv.tx_errors == 1
    assert s0(sim, S.Sn_SR) == S.SOCK_MACRAW
    assert drv.send(f, 66)
    assert sim.wire_tx_into(out) == 66 and out[:66] == f


def test_small_tx_buffer_uses_fsr():
    sim, bus, drv = make(W5500Sim(tx_delay=3), tx_kb=2)
    assert sim.sregs[0][S.Sn_TXBUF_SIZE] == 2 and sim.sregs[0][S.Sn_RXBUF_SIZE] == 16
    rnd = random.Random(5)
    got = []
    sim.on_wire_tx = got.append
    sent = []
    for _ in range(50):
        f = rand_frame(rnd, rnd.randint(1000, 1514))
        assert drv.send(f, len(f))
        sent.append(f)
    for _ in range(5):
        bus.xfer(b"\x00\x39\x00", bytearray(1))  # let the last transmission finish
    assert got == sent


def test_unstable_rsr_is_read_until_two_reads_agree():
    sim, bus, drv = make()
    f = MAC + bytes(range(60))
    sim.wire_rx(f)
    sim.unstable_reads = 3
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 66 and buf[:66] == f
    assert bus.take()[:5] == ["00 26 08 <2"] * 5
    sim.unstable_reads = 100
    with pytest.raises(OSError):
        drv.recv_into(buf)


def test_corrupt_length_header_reopens_socket():
    sim, bus, drv = make()
    sim.wire_rx(MAC + bytes(60))
    sim.rxmem[0] = 0x7F  # absurd length
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 0
    assert drv.rx_errors == 1 and drv.resets == 1
    g = MAC + bytes(range(80))
    assert sim.wire_rx(g)
    assert drv.recv_into(buf) == 86 and buf[:86] == g


def test_frame_larger_than_buffer_is_skipped():
    sim, bus, drv = make()
    sim.wire_rx(MAC + bytes(500))
    small = MAC + bytes(range(60))
    sim.wire_rx(small)
    buf = bytearray(100)
    assert drv.recv_into(buf) == 66 and buf[:66] == small
    assert drv.rx_dropped == 1 and sim.rx_used() == 0


# --------------------------------------------------------------------------- bulk + wrap
@pytest.mark.parametrize("base", [0x0000, 0x3FF0, 0xFFF0])
def test_random_frames_both_directions_byte_exact_with_wrap(base):
    sim, bus, drv = make(W5500Sim(ptr_base=base))
    rnd = random.Random(base)
    buf = bytearray(1536)
    out = bytearray(1536)
    rx_wraps = ptr_wraps = 0
    for i in range(300):
        n = rnd.randint(60, 1514)
        f = rand_frame(rnd, n)
        before = sim.rx_wr[0]
        assert sim.wire_rx(f)
        rx_wraps += (sim.rx_wr[0] & 0x3FFF) < (before & 0x3FFF)  # 16 KB buffer wrap
        ptr_wraps += sim.rx_wr[0] < before                       # 16-bit pointer wrap
        assert drv.recv_into(buf) == n and buf[:n] == f
        assert drv.send(buf, n)
        assert sim.wire_tx_into(out) == n and out[:n] == f
    assert rx_wraps >= 10 and ptr_wraps >= 2
    assert sim.protocol_errors == 0
    assert drv.rx_frames == drv.tx_frames == 300


def test_overflow_drops_and_buffer_drains_intact():
    sim, bus, drv = make(rx_kb=4)
    rnd = random.Random(9)
    stored = []
    while True:
        f = rand_frame(rnd, rnd.randint(60, 1514))
        if not sim.wire_rx(f):
            break
        stored.append(f)
    assert sim.rx_dropped_overflow == 1 and sim.rx_used() <= 4096
    buf = bytearray(1536)
    for f in stored:
        assert drv.recv_into(buf) == len(f) and buf[:len(f)] == f
    assert drv.recv_into(buf) == 0
    for _ in range(50):  # bursts keep flowing through the 4 KB ring
        burst = []
        while len(burst) < 5:
            f = rand_frame(rnd, rnd.randint(60, 900))
            if not sim.wire_rx(f):
                break
            burst.append(f)
        for f in burst:
            assert drv.recv_into(buf) == len(f) and buf[:len(f)] == f


# --------------------------------------------------------------------------- filter, link, pins
def test_mac_filter_and_promiscuous():
    sim, bus, drv = make()
    other = b"\x02\x00\x00\x00\x00\x99" + bytes(54)
    assert not sim.wire_rx(other) and sim.rx_dropped_filter == 1
    assert sim.wire_rx(BCAST + bytes(54))
    assert sim.wire_rx(b"\x33\x33\x00\x00\x00\x01" + bytes(54))  # multicast passes MFEN
    sim2, bus2, drv2 = make(mac_filter=False)
    assert s0(sim2, S.Sn_MR) == 0x04
    assert sim2.wire_rx(other)


def test_link_state_from_phycfgr():
    sim, bus, drv = make()
    sim.set_link(False)
    drv.service()
    assert drv.link_up() is False
    assert not sim.wire_rx(MAC + bytes(54))
    sim.set_link(True)
    drv.service()
    assert drv.link_up() is True


def test_int_pin_gates_rx_polling():
    sim = W5500Sim()
    bus = RecordingBus(sim)
    drv = W5500(bus, mac=MAC, int_pin=sim.int_pin, sleep_ms=no_sleep)
    bus.take()
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 0 and bus.take() == []
    f = MAC + bytes(range(60))
    sim.wire_rx(f)
    assert sim.int_pin.value() == 0
    assert drv.recv_into(buf) == 66
    assert bus.take()[0] == "00 02 0c 04"  # clear Sn_IR.RECV before reading RSR
    assert sim.int_pin.value() == 1


def test_reset_pin_and_missing_chip():
    sim = W5500Sim()
    seen = []

    class Pin:
        def value(self, v=None):
            seen.append(v)
            return sim.reset_pin.value(v)

    W5500(sim, reset_pin=Pin(), sleep_ms=no_sleep)
    assert seen[:2] == [0, 1]

    class DeadBus:
        def xfer(self, header, rx=None, tx=None, n=-1):
            if rx is not None:
                for i in range(len(rx) if n < 0 else n):
                    rx[i] = 0

    with pytest.raises(OSError):
        W5500(DeadBus(), sleep_ms=no_sleep)


# --------------------------------------------------------------------------- sim specifics
def test_sim_buffer_offsets_wrap_inside_the_socket_buffer():
    sim, bus, drv = make()
    sim.xfer(b"\x3f\xfe\x14", None, b"ABCD")  # write at 0x3FFE in S0 TX: wraps to 0
    assert bytes(sim.txmem[0x3FFE:0x4000]) == b"AB" and bytes(sim.txmem[0:2]) == b"CD"
    sim.xfer(b"\xff\xfe\x14", None, b"XY")    # any 16-bit offset maps modulo 16 KB
    assert bytes(sim.txmem[0x3FFE:0x4000]) == b"XY"


def test_sim_fixed_length_mode_and_address_phase_miso():
    sim, bus, drv = make()
    rx = bytearray(5)
    sim.cs_low()
    sim.spi_read(rx)  # MOSI zeros: read common block offset 0, OM=00 -> MR
    sim.cs_high()
    assert bytes(rx[:3]) == b"\x00\x01\x02"  # MISO during the address phase
    sim.xfer(b"\x00\x39\x01", rx, None, 1)  # OM=01: fixed 1-byte data phase
    assert rx[0] == 0x04
    sim.xfer(b"\x00\x39\x01", rx, None, 2)  # a second data byte is a protocol error
    assert sim.protocol_errors == 1


def test_sim_rejects_buffer_sizes_that_are_not_powers_of_two():
    sim = W5500Sim()
    sim.xfer(b"\x00\x1e\x0c\x03")
    assert sim.sregs[0][S.Sn_RXBUF_SIZE] == 2 and sim.protocol_errors == 1


# --------------------------------------------------------------------------- back to back
def test_enc28j60_and_w5500_back_to_back():
    """Two virtual chips on one cable: each chip's on_wire_tx feeds the other's wire_rx.
    ENC28J60 driver <-> sim <-> wire <-> sim <-> W5500 driver."""
    enc_sim = Enc28j60Sim()
    w_sim = W5500Sim(ptr_base=0xFF00)
    enc_mac = b"\x02\x00\x00\x00\x00\x01"
    enc = Enc28j60(enc_sim, mac=enc_mac, sleep_ms=no_sleep)
    w = W5500(w_sim, mac=MAC, sleep_ms=no_sleep)
    enc_sim.on_wire_tx = w_sim.wire_rx
    w_sim.on_wire_tx = enc_sim.wire_rx
    rnd = random.Random(42)
    buf = bytearray(1536)
    for i in range(300):
        n = rnd.randint(60, 1514)
        f = rand_frame(rnd, n, dst=MAC)          # ENC -> W5500
        assert enc.send(f, n)
        assert w.recv_into(buf) == n and buf[:n] == f
        buf[0:6] = enc_mac                        # W5500 -> ENC: echo, re-addressed
        g = bytes(buf[:n])
        assert w.send(buf, n)
        assert enc.recv_into(buf) == n and buf[:n] == g
    # a burst in each direction
    burst = [rand_frame(rnd, rnd.randint(60, 600), dst=MAC) for _ in range(8)]
    for f in burst:
        assert enc.send(f, len(f))
    for f in burst:
        assert w.recv_into(buf) == len(f) and buf[:len(f)] == f
    assert enc_sim.protocol_errors == w_sim.protocol_errors == 0
    assert enc_sim.tx_frames == w_sim.rx_frames == 308
    assert w_sim.tx_frames == enc_sim.rx_frames == 300
