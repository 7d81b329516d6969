"""The MicroPython `network` / `socket` facades (ports/micropython/netif.py, usock.py) on
CPython, over the in-memory wire: a peer stack driven by a thread of its own plays Linux. The
same behaviour on the real MicroPython, against Linux, is tests/micropython/
test_socket_facade_mpy.py."""
import errno
import threading
import time

import pytest

from ustack.core import clock
from ustack.core import socket as so
from ustack.core.stack import Stack
from ustack.hal import Driver
from ustack.hal.loopback import Wire
from ustack.ports.micropython import netif, usock

PEER_MAC = b"\x02\x00\x00\x00\x00\x0b"
NIC_MAC = b"\x02\x00\x00\x00\x00\x0a"


class Peer:
    """A stack on the other end of the wire with a TCP echo service on port 7, driven by its
    own thread."""

    def __init__(self, wire):
        self.stack = Stack()
        self.stack.add_interface("p0", wire.port(PEER_MAC), ip="192.0.2.1/24")
        self.ls = self.stack.socket(so.AF_INET, so.SOCK_STREAM)
        self.ls.bind(("", 7))
        self.ls.listen(4)
        self.ls.setblocking(False)
        self.conns = []
        self.running = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        buf = bytearray(2048)
        while self.running:
            self.stack.poll(clock.now_ms())
            if self.ls.readable():
                c, _ = self.ls.accept()
                c.setblocking(False)
                self.conns.append(c)
            for c in self.conns:
                if c.readable() and c.writable():
                    try:
                        n = c.recv_into(buf)
                    except OSError:
                        continue
                    if n:
                        c.send(memoryview(buf)[:n])
            time.sleep(0.001)

    def stop(self):
        self.running = False
        self.t.join(2)


@pytest.fixture
def wire():
    return Wire()


@pytest.fixture
def peer(wire):
    p = Peer(wire)
    yield p
    p.stop()


@pytest.fixture
def nic(wire):
    n = netif.NIC(lambda mac: wire.port(mac), mac=NIC_MAC, ip="192.0.2.2/24")
    yield n
    n.active(False)


def test_an_inactive_nic_is_idle_and_not_connected(nic):
    assert (nic.active(), nic.isconnected(), nic.status()) == (False, False, netif.STAT_IDLE)


def test_an_active_nic_with_an_address_is_connected(nic):
    nic.active(True)
    assert (nic.active(), nic.isconnected(), nic.status()) == (True, True, netif.STAT_GOT_IP)
    assert nic.config("mac") == NIC_MAC
    assert nic.config("mtu") == 1500


def test_ifconfig_reads_and_sets_the_four_strings(nic):
    nic.active(True)
    assert nic.ifconfig() == ("192.0.2.2", "255.255.255.0", "0.0.0.0", "0.0.0.0")
    nic.ifconfig(("192.0.2.5", "255.255.255.128", "192.0.2.1", "192.0.2.53"))
    assert nic.ifconfig() == ("192.0.2.5", "255.255.255.128", "192.0.2.1", "192.0.2.53")
    assert nic.iface.ip == bytes([192, 0, 2, 5]) and nic.iface.prefix == 25


def test_ipconfig_reads_and_sets_addr4_and_gw4(nic):
    nic.active(True)
    nic.ipconfig(addr4="192.0.2.7/24", gw4="192.0.2.1")
    assert nic.ipconfig("addr4") == ("192.0.2.7", "255.255.255.0")
    assert nic.ipconfig("gw4") == "192.0.2.1"
    assert nic.ipconfig("dhcp4") is False


def test_ifconfig_dhcp_leases_the_address_and_reads_it_back():
    from tests.feed import FeedDriver
    from tests.unit import test_dhcp as D
    drv = FeedDriver(mac=D.CLIENT_MAC)
    n = netif.NIC(lambda mac: drv, mac=D.CLIENT_MAC, config={"DHCP_ARP_PROBES": 0})
    try:
        n.ifconfig("dhcp")
        assert n.ipconfig("dhcp4") is True and n.ipconfig("has_dhcp4") is False
        n.active(True)
        assert not n.isconnected()
        assert n.ifconfig() == ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

        def reply(mtype, options=None):
            sent = D.Sent(drv.tx[-1])
            drv.tx.clear()
            drv.rx.append(D.from_server(D.bootp(sent.xid, mtype, options=options)))
            n.poll()
        reply(2)                                             # DISCOVER -> OFFER
        reply(5, D.lease_opts())                             # REQUEST -> ACK
        assert n.isconnected() and n.ipconfig("has_dhcp4") is True
        assert n.ifconfig() == ("192.0.2.50", "255.255.255.0", "192.0.2.1", "192.0.2.53")
        assert n.ipconfig("addr4") == ("192.0.2.50", "255.255.255.0")
        assert n.ipconfig("gw4") == "192.0.2.1"
        n.ipconfig(addr4="192.0.2.9/24")                     # static again: lease released
        assert D.Sent(drv.tx[-1]).type == 7 and n.ipconfig("dhcp4") is False
        assert n.iface.ip == bytes([192, 0, 2, 9])
    finally:
        n.active(False)


def test_ifconfig_dhcp_on_an_active_nic_gives_up_its_static_address_until_leased(nic):
    """MicroPython's WLAN/LAN: asking for DHCP drops the static address; until a lease
    comes, the board has no address, says so (ifconfig, isconnected) and answers nothing on
    the old one."""
    nic.active(True)
    assert nic.isconnected()
    nic.ifconfig("dhcp")
    assert nic.ifconfig() == ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
    assert not nic.isconnected() and nic.iface.ip == bytes(4)


def test_ifconfig_refuses_what_is_neither_four_strings_nor_dhcp(nic):
    with pytest.raises(ValueError):
        nic.ifconfig("static")


def test_a_netmask_with_holes_is_a_value_error(nic):
    with pytest.raises(ValueError):
        nic.ifconfig(("192.0.2.2", "255.0.255.0", "0.0.0.0", "0.0.0.0"))


def test_the_mac_changes_only_while_inactive(nic):
    nic.config(mac=b"\x02\x01\x02\x03\x04\x05")
    nic.active(True)
    assert nic.config("mac") == b"\x02\x01\x02\x03\x04\x05"
    with pytest.raises(OSError) as e:
        nic.config(mac=NIC_MAC)
    assert e.value.args[0] == errno.EBUSY


def test_a_socket_before_any_nic_is_active_is_enodev():
    while netif._default:
        netif._default.pop()
    with pytest.raises(OSError) as e:
        usock.socket()
    assert e.value.args[0] == errno.ENODEV


def test_getaddrinfo_gives_the_tuple_address_and_invalid_names_fail_at_once():
    ai = usock.getaddrinfo("192.0.2.1", 80)
    assert ai == [(usock.AF_INET, usock.SOCK_STREAM, usock.IPPROTO_TCP, "",
                   ("192.0.2.1", 80))]
    with pytest.raises(OSError) as e:
        usock.getaddrinfo("example.invalid", 80)  # RFC 6761 6.4: no query, no stack needed
    assert e.value.args[0] == -2


def connected(nic):
    """The NIC up and a blocking (5 s) usock socket connected to the peer's echo port."""
    nic.active(True)
    s = usock.socket()
    s.settimeout(5)
    s.connect(("192.0.2.1", 7))
    return s


def test_blocking_stream_calls_drive_the_stack_until_done(nic, peer):
    s = connected(nic)
    assert s.write(b"one\ntwo\nrest") == 12
    assert s.readline() == b"one\n"
    assert s.readline() == b"two\n"
    assert s.read(4) == b"rest"
    data = bytes(range(256)) * 100
    assert s.write(data) == len(data)
    assert s.read(len(data)) == data
    s.close()


def test_non_blocking_stream_calls_return_none_when_nothing_waits(nic, peer):
    s = connected(nic)
    s.setblocking(False)
    assert (s.read(10), s.readinto(bytearray(4)), s.readline()) == (None, None, None)
    with pytest.raises(OSError) as e:
        s.recv(10)
    assert e.value.args[0] == errno.EAGAIN
    s.close()


def test_a_read_timeout_is_oserror_etimedout(nic, peer):
    s = connected(nic)
    s.settimeout(0.2)
    with pytest.raises(OSError) as e:
        s.read(1)
    assert e.value.args[0] == errno.ETIMEDOUT
    s.close()


def test_the_poll_ioctl_reports_readable_once_data_arrived(nic, peer):
    s = connected(nic)
    assert s.ioctl(3, 1 | 4) == 4          # writable, nothing to read
    s.write(b"x")
    end = time.monotonic() + 5
    while not s.ioctl(3, 1) and time.monotonic() < end:
        time.sleep(0.001)
    assert s.ioctl(3, 1) == 1
    s.close()
    assert s.ioctl(3, 1) == 32             # POLLNVAL on a closed socket


def test_linger_delivers_written_data_and_fin_before_the_stack_stops(nic, peer):
    s = connected(nic)
    s.write(b"z" * 20000)
    assert nic.linger(5000) is True
    assert nic.stack.tcp.closing() == 0


def test_linger_that_gives_up_resets_what_is_still_closing(nic, peer):
    # the peer went quiet (its stack no longer runs): nothing is acknowledged, so after the
    # linger time the connection is reset (RFC 9293 3.10.5 ABORT), as host.finish_closing
    # does, rather than left for ever in FIN-WAIT-1
    s = connected(nic)
    peer.stop()
    s.write(b"z" * 2000)
    assert nic.linger(300) is False
    st = nic.stack
    assert st.tcp.closing() == 0 and st.counters()["tcp.tx_rst"] >= 1


class Flaky:
    """A wire port whose recv_into raises once every `every` calls (a driver's bug)."""

    def __init__(self, port, every=5):
        self.port = port
        self.every = every
        self.calls = 0
        self.raised = 0

    def recv_into(self, buf):
        self.calls += 1
        if self.calls % self.every == 0:
            self.raised += 1
            raise RuntimeError("driver bug")
        return self.port.recv_into(buf)

    def __getattr__(self, name):
        return getattr(self.port, name)


def test_a_driver_that_raises_in_poll_does_not_break_a_blocking_call(wire, peer):
    flaky = []
    n = netif.NIC(lambda mac: flaky.append(Flaky(wire.port(mac))) or flaky[0], mac=NIC_MAC,
                  ip="192.0.2.2/24")
    n.active(True)
    try:
        n.stack.log = lambda line: None
        s = usock.socket()
        s.settimeout(5)
        s.connect(("192.0.2.1", 7))
        s.write(b"still here\n")
        assert s.readline() == b"still here\n"
        assert flaky[0].raised > 0
        assert n.stack.stats.exceptions >= flaky[0].raised
    finally:
        n.active(False)


def test_a_driver_that_raises_does_not_escape_from_the_poll_ioctl(wire, peer):
    ports = []
    n = netif.NIC(lambda mac: ports.append(Flaky(wire.port(mac), every=1)) or ports[0],
                  mac=NIC_MAC, ip="192.0.2.2/24")
    n.active(True)
    try:
        n.stack.log = lambda line: None
        s = usock.socket()
        s.setblocking(False)
        assert s.ioctl(3, 1) == 0
        assert ports[0].raised >= 1
    finally:
        n.active(False)


class ChipWire(Driver):
    """The peer's NIC: the virtual W5500's wire side (frames it sent, frames for it)."""

    def __init__(self, chip):
        self.chip = chip
        self.mac = PEER_MAC
        self.mtu = 1500

    def recv_into(self, buf):
        return self.chip.wire_tx_into(buf)

    def send(self, buf, n):
        self.chip.wire_rx(bytes(buf[:n]))
        return True


def fake_machine(board_name):
    """MicroPython's machine.SPI/Pin wired to the board's virtual chip on its bus and pins
    (tests/micropython/mp_scripts/fakemachine.py)."""
    import os
    import sys
    from ustack import boards
    board = boards.load(board_name)
    if board.DRIVER == "w5500":
        from ustack.hal.sim.w5500 import W5500Sim as Chip
    else:
        from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "micropython", "mp_scripts")
    sys.path.insert(0, here)
    try:
        import fakemachine
    finally:
        sys.path.remove(here)
    chip = Chip()
    fakemachine.attach(chip, board.BUS, board.PINS)
    fakemachine.chip = chip
    fakemachine.board = board
    return fakemachine


@pytest.fixture
def machine():
    return fake_machine("w5500_evb_pico")


def udp_both_ways(nic, chip):
    """A datagram from the NIC's socket facade to a peer stack on the chip's wire, and one
    back."""
    peer = Stack()
    peer.add_interface("p0", ChipWire(chip), ip="192.0.2.1/24")
    ps = peer.socket(so.AF_INET, so.SOCK_DGRAM)
    ps.bind(("", 7000))
    ps.setblocking(False)
    u = usock.socket(usock.AF_INET, usock.SOCK_DGRAM)
    u.setblocking(False)
    u.bind(("", 7001))

    def both(cond):
        for _ in range(2000):
            nic.poll()
            peer.poll(clock.now_ms())
            if cond():
                return True
        return False
    u.sendto(b"through the chip", ("192.0.2.1", 7000))
    assert both(ps.readable)
    d, a = ps.recvfrom(100)
    assert (d, a) == (b"through the chip", ("192.0.2.2", 7001))
    ps.sendto(b"and back", a)
    assert both(lambda: u.ioctl(3, 1) == 1)
    assert u.recvfrom(100) == (b"and back", ("192.0.2.1", 7000))


def test_wiznet5k_takes_spi_cs_and_rst_and_carries_udp_through_the_chip(machine):
    b = machine.board
    spi = machine.SPI(b.BUS["id"], baudrate=b.BUS["baudrate"])
    cs = machine.Pin(b.BUS["cs"], machine.Pin.OUT, value=1)
    rst = machine.Pin(b.PINS["rst"], machine.Pin.OUT, value=1)
    nic = netif.WIZNET5K(spi, cs, rst)
    nic.active(True)
    try:
        nic.ifconfig(("192.0.2.2", "255.255.255.0", "0.0.0.0", "0.0.0.0"))
        assert nic.isconnected() and nic.config("mac") == b"\x02\x08\xdc\x00\x00\x02"
        udp_both_ways(nic, machine.chip)
    finally:
        nic.active(False)


def test_lan_builds_a_boards_driver_from_its_bus_and_pins(machine, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.delenv("USTACK_MPY_SETTINGS", raising=False)
    nic = netif.LAN(board=machine.board)
    nic.active(True)
    try:
        from ustack.hal.w5500 import W5500
        assert isinstance(nic.driver, W5500)
        assert nic.ifconfig()[:2] == ("192.0.2.2", "255.255.255.0")
        assert nic.config("mac") == b"\x02\x08\xdc\x00\x00\x02"
        assert nic.stack.config["TCP_MAX_CONNS"] == machine.board.CONFIG["TCP_MAX_CONNS"]
        assert nic.status() == netif.STAT_GOT_IP
    finally:
        nic.active(False)


def test_enc28j60_takes_spi_cs_int_and_rst_and_carries_udp_through_the_chip():
    m = fake_machine("pico_enc28j60")
    b = m.board
    nic = netif.ENC28J60(m.SPI(b.BUS["id"]), m.Pin(b.BUS["cs"], m.Pin.OUT, value=1),
                         m.Pin(b.PINS["int"], m.Pin.IN), m.Pin(b.PINS["rst"], m.Pin.OUT),
                         mac=b"\x02\x00\x00\x00\x28\x60", ip="192.0.2.2/24")
    nic.active(True)
    try:
        assert nic.isconnected() and nic.config("mac") == b"\x02\x00\x00\x00\x28\x60"
        udp_both_ways(nic, m.chip)
    finally:
        nic.active(False)
