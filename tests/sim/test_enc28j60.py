"""ENC28J60 driver (hal/enc28j60.py) against the virtual chip (hal/sim/enc28j60.py).

Specification style: golden SPI logs pin the exact command sequence; state assertions pin
the chip-visible effect (pointers, flags, counters); bulk tests move hundreds of random
frames byte-exact in both directions, across the RX ring wrap and through overflow.
"""
import os
import random
import sys
import types

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import ustack.hal.spi  # noqa: F401  (installed, or put on the path by a conftest)
except ImportError:  # run from a checkout: map the repo root onto the `ustack` package
    for _k in [k for k in sys.modules if k == "ustack" or k.startswith("ustack.")]:
        del sys.modules[_k]
    _pkg = types.ModuleType("ustack")
    _pkg.__path__ = [_ROOT]
    sys.modules["ustack"] = _pkg

import pytest  # noqa: E402

from ustack.hal.enc28j60 import Enc28j60  # noqa: E402
from ustack.hal.sim import enc28j60 as S  # noqa: E402
from ustack.hal.sim.enc28j60 import Enc28j60Sim  # noqa: E402

MAC = b"\x02\x00\x00\x00\x00\x01"
BCAST = b"\xff" * 6


class RecordingBus:
    """Wraps a bus; logs each transaction as 'header-hex', 'header-hex <n' (read n) or
    'header-hex >n' (write n)."""

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


def make(**kw):
    sim_kw = {k: kw.pop(k) for k in list(kw) if k in ("link", "tx_delay", "mii_busy",
                                                      "clkrdy_delay")}
    sim = Enc28j60Sim(**sim_kw)
    bus = RecordingBus(sim)
    kw.setdefault("sleep_ms", no_sleep)
    drv = Enc28j60(bus, mac=MAC, **kw)
    bus.take()
    return sim, bus, drv


def rand_frame(rnd, n, dst=MAC):
    return bytes(dst) + bytes(rnd.getrandbits(8) for _ in range(n - 6))


# --------------------------------------------------------------------------- golden logs
INIT_LOG = [
    "ff",                                   # SRC: system reset
    "1d <1", "1d <1", "1d <1",              # poll ESTAT until CLKRDY
    "9f 03", "12 <1",                       # bank 3, EREVID
    "bf 03",                                # bank 0
    "48 00", "49 00", "4a ff", "4b 19",     # ERXST=0x0000, ERXND=0x19FF
    "4c ff", "4d 19",                       # ERXRDPT=ERXND (odd)
    "44 00", "45 1a",                       # ETXST=0x1A00
    "9f 01", "58 a1",                       # bank 1, ERXFCON = UCEN|CRCEN|BCEN
    "bf 01", "9f 02",                       # bank 2
    "40 01",                                # MACON1 = MARXEN
    "42 32",                                # MACON3 = PADCFG0|TXCRCEN|FRMLNEN
    "43 40",                                # MACON4 = DEFER
    "4a ee", "4b 05",                       # MAMXFL = 1518
    "44 12", "46 12", "47 0c",              # MABBIPG, MAIPGL, MAIPGH (half duplex)
    "9f 01",                                # bank 3: MAADR1..6 at 04 05 02 03 00 01
    "44 02", "45 00", "42 00", "43 00", "40 00", "41 01",
    "bf 01", "54 00", "56 00", "57 00",     # PHCON1 = 0 (half duplex)
    "9f 01", "0a 00 <1", "0a 00 <1",        # MISTAT (dummy byte) until not BUSY
    "bf 01", "54 10", "56 00", "57 01",     # PHCON2 = HDLDIS
    "9f 01", "0a 00 <1", "0a 00 <1",
    "bf 01", "54 12", "56 12", "57 00",     # PHIE = PGEIE|PLNKIE
    "9f 01", "0a 00 <1", "0a 00 <1",
    "5b d3",                                # EIE = INTIE|PKTIE|LINKIE|TXERIE|RXERIE
    "bc 0b",                                # BFC EIR TXIF|TXERIF|RXERIF
    "9e 80",                                # BFS ECON2 AUTOINC
    "9f 04",                                # BFS ECON1 RXEN
    "bf 01", "54 11", "52 01",              # PHY read PHSTAT2: MIREGADR, MICMD=MIIRD
    "9f 01", "0a 00 <1", "0a 00 <1",        # wait BUSY
    "bf 01", "52 00", "18 00 <1", "19 00 <1",  # MICMD=0, MIRDL, MIRDH
]

SEND_LOG = [
    "1f <1",                 # ECON1: TXRTS clear?
    "bf 02",                 # bank 2 -> 0
    "42 00", "43 1a",        # EWRPT = ETXST
    "7a 00 >60",             # WBM: control byte 0x00 + 60-byte frame
    "46 3c", "47 1a",        # ETXND = 0x1A3C
    "9f 08",                 # BFS ECON1 TXRTS
]

RECV_LOG = [
    "9f 01", "19 <1",        # bank 1, EPKTCNT
    "bf 01",                 # bank 0
    "40 00", "41 00",        # ERDPT = next packet (0x0000)
    "3a <6",                 # RBM: next pointer + status vector
    "3a <60",                # RBM: frame without CRC
    "4c 45", "4d 00",        # ERXRDPT = next-1 = 0x0045 (odd)
    "9e 40",                 # BFS ECON2 PKTDEC
]


def test_init_golden_log():
    sim = Enc28j60Sim()
    bus = RecordingBus(sim)
    drv = Enc28j60(bus, mac=MAC, sleep_ms=no_sleep)
    assert bus.log == INIT_LOG
    assert sim.protocol_errors == 0
    assert drv.revision == S.REVISION
    assert drv.link_up() is True


def test_send_and_receive_golden_logs():
    sim, bus, drv = make()
    frame = MAC + bytes(range(54))
    assert drv.send(frame, 60)
    assert bus.take() == SEND_LOG
    # a second send needs no bank switch
    assert drv.send(frame, 60)
    assert bus.take() == SEND_LOG[:1] + SEND_LOG[2:]
    assert sim.wire_rx(frame)
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 60
    assert bus.take() == RECV_LOG
    assert drv.recv_into(buf) == 0
    assert bus.take() == ["9f 01", "19 <1"]  # idle: one EPKTCNT read (plus bank switch)
    drv.service()
    assert bus.take() == ["1c <1"]  # EIR only


def test_full_duplex_init_differs_only_in_mac_phy_settings():
    sim = Enc28j60Sim()
    bus = RecordingBus(sim)
    Enc28j60(bus, mac=MAC, full_duplex=True, sleep_ms=no_sleep)
    log = bus.log
    assert "40 0d" in log          # MACON1 = MARXEN|TXPAUS|RXPAUS
    assert "42 33" in log          # MACON3 |= FULDPX
    assert "43 40" not in log      # no MACON4.DEFER
    assert "44 15" in log          # MABBIPG full duplex
    assert sim.phy[S.PHCON1] == 0x0100 and sim.phy[S.PHCON2] == 0


# --------------------------------------------------------------------------- chip state
def test_init_state_in_chip():
    sim, bus, drv = make()
    r = sim.regs
    assert sim._get16(S.ERXSTL) == 0x0000 and sim._get16(S.ERXNDL) == 0x19FF
    assert sim.rxrdpt == 0x19FF and sim._get16(S.ETXSTL) == 0x1A00
    assert r[S.ERXFCON] == 0xA1
    assert r[S.MACON1] == 0x01 and r[S.MACON3] == 0x32 and r[S.MACON4] == 0x40
    assert sim._get16(S.MAMXFLL) == 1518
    assert bytes(r[a] for a in (S.MAADR1, S.MAADR2, S.MAADR3, S.MAADR4, S.MAADR5,
                                S.MAADR6)) == MAC
    assert r[S.ECON1] & S.ECON1_RXEN and r[S.ECON2] & S.ECON2_AUTOINC
    assert sim.phy[S.PHCON2] == 0x0100 and sim.phy[S.PHIE] == 0x0012


def test_rx_pointer_and_flag_state():
    sim, bus, drv = make()
    frames = [MAC + bytes([i]) * (54 + i) for i in range(3)]  # 60, 61, 62 bytes
    for f in frames:
        assert sim.wire_rx(f)
    assert sim.pktcnt == 3 and sim._eir() & S.EIR_PKTIF
    # layout: [next(2) status(4) frame CRC(4)] padded to even
    assert sim.mem[0] | sim.mem[1] << 8 == 70            # 6 + 64
    assert sim.mem[2] | sim.mem[3] << 8 == 64             # byte count incl. CRC
    assert sim.mem[4] & 0x80                              # received OK
    assert bytes(sim.mem[6:66]) == frames[0]
    assert sim.mem[70] | sim.mem[71] << 8 == 70 + 6 + 65 + 1   # odd size padded
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 60 and buf[:60] == frames[0]
    assert sim.pktcnt == 2 and sim.rxrdpt == 69 and sim.rxrdpt & 1
    assert drv.recv_into(buf) == 61 and buf[:61] == frames[1]
    assert drv.recv_into(buf) == 62 and buf[:62] == frames[2]
    assert sim.pktcnt == 0 and not sim._eir() & S.EIR_PKTIF
    assert sim.rxrdpt == sim.rxwr - 1  # everything freed
    assert drv.recv_into(buf) == 0


def test_tx_pointer_flags_and_status_vector():
    sim, bus, drv = make()
    frame = BCAST + bytes(range(100))
    assert drv.send(frame, len(frame))
    assert sim.mem[0x1A00] == 0x00                        # per-packet control byte
    assert bytes(sim.mem[0x1A01:0x1A01 + 106]) == frame
    assert sim._get16(S.ETXNDL) == 0x1A00 + 106
    assert not sim.regs[S.ECON1] & S.ECON1_TXRTS          # self-cleared
    assert sim._eir() & S.EIR_TXIF
    tsv = sim.mem[0x1A00 + 107:0x1A00 + 114]
    # Table 7-1: bits 15:0 byte count, 23 done, 25 broadcast, 47:32 bytes on the wire
    assert bytes(tsv) == bytes([110, 0, 0x80, 0x02, 110, 0, 0])   # 106 + CRC
    out = bytearray(1536)
    assert sim.wire_tx_into(out) == 106 and out[:106] == frame


def test_tx_giant_aborts_with_length_out_of_range_in_the_status_vector():
    sim, bus, drv = make()
    sim._set16(S.MAMXFLL, 100)                            # MAC limit below the frame
    frame = BCAST + bytes(range(100))
    drv.send(frame, len(frame))
    tsv = sim.mem[0x1A00 + 107:0x1A00 + 114]
    assert tsv[2] == 0x40                                 # bit 22 length out of range, not done
    assert sim._eir() & S.EIR_TXERIF and sim.regs[S.ESTAT] & S.ESTAT_TXABRT
    assert sim.tx_aborted == 1 and sim.wire_tx_into(bytearray(1536)) == 0


def test_tx_short_frame_padded_by_padcfg():
    sim, bus, drv = make()
    got = []
    sim.on_wire_tx = got.append
    assert drv.send(MAC + b"\x08\x06" + b"x" * 20, 28)
    assert got == [MAC + b"\x08\x06" + b"x" * 20 + bytes(32)]


def test_tx_waits_for_previous_transmission():
    sim, bus, drv = make(tx_delay=4)  # a transmission lasts 4 SPI transactions
    f = MAC + bytes(60)
    assert drv.send(f, 66)
    assert sim.regs[S.ECON1] & S.ECON1_TXRTS  # still on the wire
    bus.take()
    assert drv.send(f, 66)
    # TXRTS set -> check EIR for TXERIF (none) -> poll again until TXRTS clears
    assert bus.take()[:6] == ["1f <1", "1c <1", "1f <1", "1c <1", "1f <1", "42 00"]
    assert sim.tx_frames == 1 and sim.regs[S.ECON1] & S.ECON1_TXRTS
    assert drv.tx_busy == 0 and drv.tx_resets == 0


def test_tx_busy_returns_false_then_errata_reset_after_stall_limit():
    sim, bus, drv = make(tx_delay=10 ** 6, tx_wait=3, tx_stall_limit=2)
    f = MAC + bytes(60)
    assert drv.send(f, 66)
    assert drv.send(f, 66) is False
    assert drv.tx_busy == 1
    assert drv.send(f, 66) is True  # second busy in a row: TX logic reset, frame queued
    assert drv.tx_resets == 1


def test_tx_errata_stall_with_txerif_is_reset():
    sim, bus, drv = make()
    out = bytearray(1536)
    sim.stall_next_tx()
    f1 = MAC + bytes(range(60))
    assert drv.send(f1, 66)  # aborts: TXRTS stuck, TXERIF
    assert sim.regs[S.ECON1] & S.ECON1_TXRTS and sim._eir() & S.EIR_TXERIF
    assert sim.wire_tx_pending() == 0
    f2 = MAC + bytes(range(1, 61))
    bus.take()
    assert drv.send(f2, 66)
    log = bus.take()
    assert log[:5] == ["1f <1", "1c <1",   # TXRTS stuck, EIR says TXERIF
                       "9f 80", "bf 88",  # TXRST set; clear TXRST|TXRTS
                       "bc 0a"]           # clear TXERIF|TXIF
    assert drv.tx_resets == 1 and drv.tx_errors == 1
    assert sim.wire_tx_into(out) == 66 and out[:66] == f2
    assert not sim._eir() & S.EIR_TXERIF


def test_service_resets_tx_on_txerif():
    sim, bus, drv = make()
    sim.regs[S.EIR] |= S.EIR_TXERIF
    drv.service()
    assert bus.take() == ["1c <1", "9f 80", "bf 88", "bc 0a"]
    assert drv.tx_resets == 1


def test_send_rejects_bad_lengths():
    sim, bus, drv = make()
    buf = bytearray(2000)
    assert drv.send(buf, 1515) is False
    assert drv.send(buf, 10) is False
    assert drv.tx_errors == 2 and bus.take() == []


# --------------------------------------------------------------------------- bulk + wrap
def test_random_frames_wire_to_driver_and_back_byte_exact():
    sim, bus, drv = make()
    rnd = random.Random(7)
    buf = bytearray(1536)
    out = bytearray(1536)
    wraps = 0
    for i in range(400):
        n = rnd.randint(60, 1514)
        f = rand_frame(rnd, n)
        before = sim.rxwr
        assert sim.wire_rx(f)
        wraps += sim.rxwr < before
        assert drv.recv_into(buf) == n
        assert buf[:n] == f
        assert drv.send(buf, n)
        assert sim.wire_tx_into(out) == n
        assert out[:n] == f
    assert wraps > 20  # the RX ring wrapped many times, frames split across the end
    assert sim.protocol_errors == 0 and drv.rx_errors == 0
    assert sim.errata_violations == 0  # ERXRDPT was always written odd
    assert drv.rx_frames == drv.tx_frames == sim.rx_frames == sim.tx_frames == 400


def test_bursts_and_small_ring_wrap():
    # a 3 KB ring (0x0000-0x0BFF): bursts of queued frames, many straddling the end
    sim, bus, drv = make(rx_end=0x0BFF)
    rnd = random.Random(11)
    buf = bytearray(1536)
    total = 0
    straddled = 0
    for burst in range(150):
        sent = []
        while True:
            f = rand_frame(rnd, rnd.randint(60, 700))
            p = sim.rxwr
            if not sim.wire_rx(f):
                break
            straddled += p + 10 + len(f) > 0x0BFF
            sent.append(f)
        assert sim.rx_dropped_overflow == burst + 1
        for f in sent:
            assert drv.recv_into(buf) == len(f) and buf[:len(f)] == f
        assert drv.recv_into(buf) == 0
        total += len(sent)
        assert sim.pktcnt == 0
    assert straddled > 50 and total > 300
    assert sim.rxrdpt & 1 and sim.errata_violations == 0


def test_overflow_drops_sets_rxerif_and_recovers():
    sim, bus, drv = make()
    rnd = random.Random(3)
    stored = []
    while True:
        f = rand_frame(rnd, 1514)
        if not sim.wire_rx(f):
            break
        stored.append(f)
    assert len(stored) == 4  # 6.5 KB ring holds four full-size frames
    assert sim.rx_dropped_overflow == 1 and sim._eir() & S.EIR_RXERIF
    assert sim.rx_free() < 1530
    drv.service()
    assert drv.rx_overflows == 1 and not sim._eir() & S.EIR_RXERIF
    buf = bytearray(1536)
    for f in stored:
        assert drv.recv_into(buf) == 1514 and buf[:1514] == f
    for _ in range(10):
        f = rand_frame(rnd, 1514)
        assert sim.wire_rx(f)
        assert drv.recv_into(buf) == 1514 and buf[:1514] == f


# --------------------------------------------------------------------------- receive rules
def test_receive_filter_unicast_broadcast_crc():
    sim, bus, drv = make()
    buf = bytearray(1536)
    other = b"\x02\x00\x00\x00\x00\x99" + bytes(54)
    mcast = b"\x33\x33\x00\x00\x00\x01" + bytes(54)
    assert not sim.wire_rx(other)
    assert not sim.wire_rx(mcast)
    assert not sim.wire_rx(MAC + bytes(54), crc_ok=False)
    assert sim.rx_dropped_filter == 3
    assert sim.wire_rx(BCAST + bytes(54))
    assert drv.recv_into(buf) == 60 and buf[:6] == BCAST


def test_multicast_option_sets_mcen():
    sim, bus, drv = make(multicast=True)
    assert sim.regs[S.ERXFCON] == 0xA3
    assert sim.wire_rx(b"\x33\x33\xff\x00\x00\x01" + bytes(54))


def test_frame_larger_than_buffer_is_dropped_and_next_frame_received():
    sim, bus, drv = make()
    big = MAC + bytes(1000)
    small = MAC + bytes(range(60))
    sim.wire_rx(big)
    sim.wire_rx(small)
    buf = bytearray(100)
    assert drv.recv_into(buf) == 66 and buf[:66] == small
    assert drv.rx_dropped == 1 and sim.pktcnt == 0


def test_corrupt_rx_header_triggers_rx_reset_and_recovery():
    sim, bus, drv = make()
    f = MAC + bytes(range(60))
    sim.wire_rx(f)
    sim.mem[0] ^= 0x01  # next-packet pointer becomes odd: corrupt
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 0
    assert drv.rx_errors == 1 and drv.rx_resets == 1
    assert sim.pktcnt == 0 and sim.rxwr == 0 and sim.rxrdpt == 0x19FF
    assert sim.regs[S.ECON1] & S.ECON1_RXEN
    for i in range(5):
        g = MAC + bytes([i]) * 80
        assert sim.wire_rx(g)
        assert drv.recv_into(buf) == 86 and buf[:86] == g


# --------------------------------------------------------------------------- link, pins, reset
def test_link_change_via_linkif_and_phir():
    sim, bus, drv = make()
    assert drv.link_up()
    sim.set_link(False)
    assert sim._eir() & S.EIR_LINKIF
    drv.service()
    assert drv.link_up() is False
    assert not sim._eir() & S.EIR_LINKIF  # PHIR read cleared it
    bus.take()
    drv.service()
    assert bus.take() == ["1c <1"]  # no MII traffic without a link event
    assert not sim.wire_rx(MAC + bytes(54))  # no link: nothing arrives
    sim.set_link(True)
    drv.service()
    assert drv.link_up() is True
    assert sim.wire_rx(MAC + bytes(54))


def test_int_pin_gates_polling():
    sim = Enc28j60Sim()
    bus = RecordingBus(sim)
    drv = Enc28j60(bus, mac=MAC, int_pin=sim.int_pin, sleep_ms=no_sleep)
    bus.take()
    buf = bytearray(1536)
    assert sim.int_pin.value() == 1
    assert drv.recv_into(buf) == 0
    drv.service()
    assert bus.take() == []  # INT high: no SPI at all
    f = MAC + bytes(60)
    sim.wire_rx(f)
    assert sim.int_pin.value() == 0  # PKTIF & PKTIE & INTIE
    assert drv.recv_into(buf) == 66
    assert sim.int_pin.value() == 1


def test_reset_pin_is_pulsed_and_chip_reinitialised():
    sim = Enc28j60Sim()
    sim.regs[S.ERXFCON] = 0  # garbage that a reset must clear
    seen = []

    class Pin:
        def value(self, v=None):
            seen.append(v)
            return sim.reset_pin.value(v)

    Enc28j60(sim, mac=MAC, reset_pin=Pin(), sleep_ms=no_sleep)
    assert seen[:2] == [0, 1]
    assert sim.regs[S.ERXFCON] == 0xA1


def test_clkrdy_wait_and_missing_chip():
    sim, bus, drv = make(clkrdy_delay=40)
    assert drv.link_up()

    class DeadBus:
        def xfer(self, header, rx=None, tx=None, n=-1):
            if rx is not None:
                for i in range(len(rx) if n < 0 else n):
                    rx[i] = 0

    with pytest.raises(OSError):
        Enc28j60(DeadBus(), sleep_ms=no_sleep)


def test_rx_ring_away_from_zero_works_but_violates_the_errata():
    sim, bus, drv = make(rx_start=0x0100, rx_end=0x19FF)
    assert sim.errata_violations == 1  # rev B1-B7 may reset ERXWRPT to 0 here
    f = MAC + bytes(range(60))
    sim.wire_rx(f)
    buf = bytearray(1536)
    assert drv.recv_into(buf) == 66 and buf[:66] == f
    assert sim.errata_violations == 1


def test_constructor_validates_buffer_layout():
    with pytest.raises(ValueError):
        Enc28j60(Enc28j60Sim(), rx_end=0x1A00, sleep_ms=no_sleep)  # even end
    with pytest.raises(ValueError):
        Enc28j60(Enc28j60Sim(), rx_end=0x1BFF, sleep_ms=no_sleep)  # TX area too small


# --------------------------------------------------------------------------- sim specifics
def test_sim_rcr_mac_register_returns_dummy_byte_first():
    sim, bus, drv = make()
    sim.xfer(b"\xbf\x03")   # BFC ECON1 BSEL: bank 0
    sim.xfer(b"\x9f\x02")   # BFS ECON1: bank 2
    rx = bytearray(2)
    sim.xfer(b"\x02", rx)    # RCR MACON3 (MAC register)
    assert rx[0] == 0 and rx[1] == 0x32
    sim.xfer(b"\xbf\x03")    # bank 0
    sim.xfer(b"\x04", rx)    # RCR ETXSTL (ETH register): no dummy byte
    assert rx[0] == 0x00 and rx[1] == 0x00
    sim.xfer(b"\x05", rx)
    assert rx[0] == 0x1A


def test_sim_bfs_on_mac_register_is_ignored():
    sim, bus, drv = make()
    sim.xfer(b"\xbf\x03")
    sim.xfer(b"\x9f\x02")    # bank 2
    before = sim.regs[S.MACON3]
    sim.xfer(b"\x82\x01")    # BFS MACON3 (not allowed)
    assert sim.regs[S.MACON3] == before and sim.protocol_errors == 1


def test_sim_erdpt_wraps_from_erxnd_to_erxst_and_ewrpt_from_1fff():
    sim, bus, drv = make()
    sim.mem[0x19FF] = 0xAB
    sim.mem[0x0000] = 0xCD
    sim.rdpt = 0x19FF
    rx = bytearray(2)
    sim.xfer(b"\x3a", rx)
    assert bytes(rx) == b"\xab\xcd" and sim.rdpt == 1
    sim.wrpt = 0x1FFF
    sim.xfer(b"\x7a\x11\x22")
    assert sim.mem[0x1FFF] == 0x11 and sim.mem[0] == 0x22 and sim.wrpt == 1


def test_sim_erxrdpt_takes_effect_on_high_byte_write():
    sim, bus, drv = make()
    sim.xfer(b"\xbf\x03")    # bank 0
    sim.xfer(b"\x4c\x21")    # ERXRDPTL alone changes nothing yet
    assert sim.rxrdpt == 0x19FF
    sim.xfer(b"\x4d\x00")
    assert sim.rxrdpt == 0x0021


def test_sim_counts_transactions_and_streaming_interface_matches_xfer():
    a = Enc28j60Sim()
    b = Enc28j60Sim()
    Enc28j60(a, mac=MAC, sleep_ms=no_sleep)

    class Stream:
        """xfer built from cs_low/spi_write/spi_read/cs_high, byte by byte"""

        def xfer(self, header, rx=None, tx=None, n=-1):
            b.cs_low()
            for i in range(len(header)):
                b.spi_write(header, 1, i)
            if rx is not None:
                for i in range(len(rx) if n < 0 else n):
                    b.spi_read(rx, 1, i)
            elif tx is not None:
                for i in range(len(tx) if n < 0 else n):
                    b.spi_write(tx, 1, i)
            b.cs_high()

    Enc28j60(Stream(), mac=MAC, sleep_ms=no_sleep)
    assert a.spi_transactions == b.spi_transactions == len(INIT_LOG)
    assert a.regs == b.regs and a.phy == b.phy
