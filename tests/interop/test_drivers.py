"""Every driver, one switch: `ustack up --driver D` with Linux pinging and talking UDP and TCP
*through* the driver (and its virtual device, bridged to the TAP). The portable drivers run
under both runtimes: under `--runtime micropython` the driver and its virtual device (SPI
chip, or the SLIP line's pty) live in the micropython process, the far side in CPython."""
import hashlib

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP
from tests.interop.test_linux_ipv4 import ping

pytestmark = [needs_netns]

DRIVERS = ["sim-usb-ecm", "sim-usb-ncm", "slip-pty", "afpacket", "sim-enc28j60", "sim-w5500"]
MPY_DRIVERS = ["sim-enc28j60", "sim-w5500", "slip-pty"]   # portable: they run in micropython
CASES = [(d, "cpython") for d in DRIVERS] + [(d, "micropython") for d in MPY_DRIVERS]


def _available(d, runtime):
    mods = {"sim-enc28j60": "ustack.hal.sim.enc28j60", "sim-w5500": "ustack.hal.sim.w5500"}
    if d in mods:
        pytest.importorskip(mods[d])
    if runtime == "micropython":
        from ustack.ports.micropython.stage import micropython_exe
        try:
            micropython_exe()
        except FileNotFoundError:
            pytest.skip("no micropython unix port")


@pytest.fixture(params=CASES, ids=["%s-%s" % c for c in CASES])
def driver_stack(request):
    d, runtime = request.param
    _available(d, runtime)
    ns = Netns("drv")
    try:
        sp = StackProc(ns, "--driver", d, "--serve", "echo,discard", runtime=runtime)
        assert "driver=%s " % d in sp.ready and "runtime=%s " % runtime in sp.ready, sp.ready
        yield ns, sp, d
        if sp.p.poll() is None:
            c = sp.stop()
            assert c["pbuf.free"] == c["pbuf.count"]
    finally:
        ns.close()


def test_linux_pings_through_the_driver(driver_stack):
    ns, sp, d = driver_stack
    sent, got, _ = ping(ns, "-c", "200", "-i", "0.002", "-W", "2", STACK_IP)
    assert (sent, got) == (200, 200)
    sent, got, _ = ping(ns, "-c", "20", "-i", "0.005", "-s", "1472", STACK_IP)
    if got != sent:  # where a reply went: the stack's drop counters, the bridge's
        c = sp.live_counters()
        drops = {k: v for k, v in c.items() if v and ("drop" in k or "err" in k or
                                                       "no_buffer" in k or k.startswith("bridge"))}
        assert (sent, got) == (20, 20), drops
    assert (sent, got) == (20, 20)


def test_udp_echo_through_the_driver(driver_stack):
    ns, sp, d = driver_stack
    r = ns.python(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
        "for i in range(100):\n"
        "    m = bytes([i]) * (1 + i * 14)\n"
        "    s.sendto(m, ('%s', 7)); assert s.recv(2000) == m, i\nprint('ok')\n" % STACK_IP)
    assert r.stdout.strip() == "ok", r.stdout + r.stderr


def test_tcp_transfer_through_the_driver(driver_stack):
    ns, sp, d = driver_stack
    assert "tcp/echo" in sp.ready, "TCP services missing: no tcp/echo in the ready line: " + sp.ready
    r = ns.python(
        "import socket, hashlib, threading\n"
        "data = bytes(i %% 253 for i in range(1 << 20))\n"
        "c = socket.create_connection(('%s', 7), timeout=30)\n"
        "def send():\n    c.sendall(data); c.shutdown(socket.SHUT_WR)\n"
        "t = threading.Thread(target=send); t.start()\n"
        "got = bytearray()\n"
        "while True:\n    d = c.recv(65536)\n    if not d: break\n    got += d\n"
        "t.join(); print(hashlib.sha256(got).hexdigest(), len(got))\n" % STACK_IP, timeout=120)
    want = hashlib.sha256(bytes(i % 253 for i in range(1 << 20))).hexdigest()
    assert r.stdout.split() == [want, str(1 << 20)], r.stdout + r.stderr
