"""The app's virtual-device links under the MicroPython unix port (ports/micropython/
simlink.py), with the test as the far side (no root needed):

- sim-enc28j60 / sim-w5500: the real SPI driver on its register-level virtual chip inside
  micropython; the chip's wire is the StreamLink, here a FrameStream with a CPython ustack
  (pings, UDP echo, 256 KB of TCP echo with SHA-256).
- slip-pty: SlipLink on a pty slave fd micropython inherits (non-blocking); the test holds
  the master with a SlipLink of its own and pings/echoes over it; closing the master ends
  the app cleanly ("link closed", exit counters)."""
import hashlib
import json
import os
import pty
import subprocess
import time
import tty

import pytest

from tests import frames as F
from tests.micropython.mpyhelp import needs_micropython, MpApp, MPY

pytestmark = [needs_micropython]


def _is_echo_reply(seq):
    return lambda f: len(f) > 41 and f[23] == 1 and f[34] == 0 and (f[40] << 8 | f[41]) == seq


def _is_udp_from(port):
    return lambda f: len(f) > 41 and f[23] == 17 and (f[34] << 8 | f[35]) == port


@pytest.mark.parametrize("kind", ["sim-enc28j60", "sim-w5500"])
def test_spi_driver_on_its_virtual_chip_inside_micropython(workdir, kind):
    app = MpApp(workdir, serve="echo", extra={"DRIVER": kind})
    try:
        for i in range(50):
            req = F.echo_request_frame(56 + i * 28, seq=i)
            r = app.exchange(req, want=_is_echo_reply(i))
            assert r is not None, "ping %d" % i
            assert r[42:len(req)] == req[42:]
        for i in range(50):
            data = bytes([i]) * (1 + i * 28)
            r = app.exchange(F.udp_frame(7, data), want=_is_udp_from(7))
            assert r is not None and r[42:42 + len(data)] == data
        from ustack.core import socket as so
        peer = app.peer_stack()
        s = peer.socket(so.AF_INET, so.SOCK_STREAM)
        s.settimeout(30)
        s.connect(("192.0.2.2", 7))
        data = os.urandom(256 << 10)
        got = bytearray()
        sent = 0
        while len(got) < len(data):
            if sent < len(data):
                sent += s.send(data[sent:sent + 8192])
            got += s.recv(65536)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        s.close()
        c, out, err = app.stop()
        assert c["wire.rx_frames"] > 100 and c["wire.tx_frames"] > 100, c
        assert c["pbuf.free"] == c["pbuf.count"]
        assert "chip.rx_dropped_overflow" not in c, c   # frames wait in the stream instead
    finally:
        app.close()


def test_slip_pty_inside_micropython(workdir):
    from ustack.hal.slip import SlipLink, FdUart
    from ustack.ports.micropython.stage import stage
    from ustack import boards
    stage(workdir, boards.load("unix"))
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    os.set_blocking(s, False)
    spath = os.path.join(workdir, "settings.json")
    with open(spath, "w") as f:
        json.dump({"DRIVER": "slip-pty", "LINK": "fd:%d" % s, "SERVE": "echo"}, f)
    p = subprocess.Popen([MPY, os.path.join(workdir, "main.py"), "--settings", spath],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=workdir, pass_fds=(s,))
    os.close(s)
    link = SlipLink(FdUart(m), chunk=4096)
    buf = bytearray(2048)

    def exchange(pkt, want, timeout=5.0):
        link.send(pkt, len(pkt))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = link.recv_into(buf)
            if n:
                r = bytes(14) + bytes(buf[:n])          # as an Ethernet frame for the checks
                if want(r):
                    return r
            else:
                time.sleep(0.001)
        return None

    try:
        up = p.stdout.readline()
        assert up.startswith("up ") and "tcp/echo" in up, up + p.stderr.read()
        for i in range(50):
            req = F.echo_request_frame(56 + i * 28, seq=i)[14:]
            r = exchange(req, _is_echo_reply(i))
            assert r is not None, "ping %d" % i
            assert r[42:] == req[28:]
        for i in range(30):
            data = bytes([i]) * (1 + i * 45)
            r = exchange(F.udp_frame(7, data)[14:], _is_udp_from(7))
            assert r is not None and r[42:42 + len(data)] == data
        os.close(m)                                     # the line hangs up
        m = -1
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, out + err
        assert "link closed" in out, out + err
        c = json.loads([ln for ln in out.splitlines() if ln.startswith("counters ")][-1][9:])
        assert c["link.rx_frames"] >= 80 and c["link.tx_frames"] >= 80, c
        assert c["pbuf.free"] == c["pbuf.count"]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if m >= 0:
            os.close(m)
