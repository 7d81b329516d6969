"""SLIP (RFC 1055) link over a byte stream: an L3 link (mac == b""), one IP packet per frame.

    link = SlipLink(PyserialUart(serial.Serial("/dev/ttyUSB0", 115200, timeout=0)))
    link = SlipLink(MachineUart(machine.UART(1, 115200, timeout=0)))      # MicroPython board
    link = SlipLink(FdUart(master_fd))                                   # CPython pty

Framing: END 0xC0 closes a frame (we also send one before each frame to flush line noise);
inside a frame 0xC0 is sent as ESC ESC_END (0xDB 0xDC) and 0xDB as ESC ESC_ESC (0xDB 0xDD).

The decoder is an incremental state machine over a preallocated input chunk and a
preallocated frame buffer: no allocation per byte or per frame (MicroPython subset; the
only CPython-specific code is in the FdUart/PyserialUart adapters). Garbage (bad escape
sequences, runts) and oversize frames are dropped and counted, never raised.

A `Uart` is anything with
    readinto(buf) -> int | None      non-blocking; None or 0 = nothing waiting
    write(buf, n) -> int | None      write the first n bytes of buf (MicroPython streams
                                     accept write(buf, n) natively)
    any() -> int                     bytes waiting (optional for SlipLink)
"""
import sys

try:
    from micropython import const
except ImportError:  # CPython / Cython
    def const(x):
        return x

END = const(0xC0)
ESC = const(0xDB)
ESC_END = const(0xDC)
ESC_ESC = const(0xDD)

_END_B = b"\xc0"
_ESC_B = b"\xdb"

_MPY = sys.implementation.name == "micropython"


if _MPY:
    def _copy(dst, doff, src, soff, n):
        # a memoryview slice allocates on MicroPython: copy by index (allocation-free)
        for i in range(n):
            dst[doff + i] = src[soff + i]
else:
    def _copy(dst, doff, src, soff, n):
        dst[doff:doff + n] = memoryview(src)[soff:soff + n]


class SlipLink:
    """Driver interface over a Uart. mtu = largest packet carried (frames above it are dropped)."""

    def __init__(self, uart, mtu=1500, chunk=256, min_len=1):
        self.uart = uart
        self.mac = b""
        self.mtu = mtu
        self.caps = 0
        self.min_len = min_len
        self._rx = bytearray(mtu)          # frame being decoded
        self._rxn = 0
        self._esc = False
        self._drop = False                 # discarding until the next END
        self._in = bytearray(chunk)        # raw bytes read from the uart
        self._ipos = 0
        self._in_n = 0
        self._tx = bytearray(2 * mtu + 2)  # worst case: every byte escaped + 2 ENDs
        self._closed = False
        # counters
        self.rx_frames = 0
        self.rx_bytes = 0
        self.rx_oversize = 0               # frame longer than mtu (or than the caller's buffer)
        self.rx_garbage = 0                # bad escape sequence, or runt shorter than min_len
        self.tx_frames = 0
        self.tx_bytes = 0
        self.tx_oversize = 0
        self.tx_errors = 0

    # --- Driver interface ---
    def recv_into(self, buf):
        inb = self._in
        rx = self._rx
        cap = len(rx)
        while True:
            pos = self._ipos
            n = self._in_n
            if pos >= n:
                if self._closed:
                    return 0
                n = self.uart.readinto(inb)
                if not n:
                    return 0
                self._in_n = n
                pos = 0
            rxn = self._rxn
            esc = self._esc
            drop = self._drop
            done = 0
            ne = -2  # cached index of the next END in inb (-1: none left, -2: unknown)
            ns = -2  # same for ESC
            while pos < n:
                if drop:
                    if ne != -1 and ne < pos:
                        ne = inb.find(_END_B, pos, n)
                    if ne < 0:
                        pos = n
                        break
                    pos = ne + 1
                    drop = False
                    esc = False
                    rxn = 0
                    continue
                if esc:
                    b = inb[pos]
                    pos += 1
                    esc = False
                    if b == ESC_END:
                        b = END
                    elif b == ESC_ESC:
                        b = ESC
                    else:
                        self.rx_garbage += 1
                        if b == END:       # END right after ESC: the frame is aborted
                            rxn = 0
                        else:
                            drop = True
                        continue
                    if rxn >= cap:
                        self.rx_oversize += 1
                        drop = True
                        continue
                    rx[rxn] = b
                    rxn += 1
                    continue
                # a run of ordinary bytes up to the next END/ESC
                if ne != -1 and ne < pos:
                    ne = inb.find(_END_B, pos, n)
                if ns != -1 and ns < pos:
                    ns = inb.find(_ESC_B, pos, n)
                stop = n
                if ne >= 0:
                    stop = ne
                if 0 <= ns < stop:
                    stop = ns
                run = stop - pos
                if run:
                    if rxn + run > cap:
                        self.rx_oversize += 1
                        drop = True
                        continue
                    _copy(rx, rxn, inb, pos, run)
                    rxn += run
                    pos = stop
                    if pos >= n:
                        break
                b = inb[pos]
                pos += 1
                if b == ESC:
                    esc = True
                elif rxn:  # END closing a non-empty frame
                    if rxn < self.min_len:
                        self.rx_garbage += 1
                        rxn = 0
                        continue
                    done = rxn
                    rxn = 0
                    break
                # an END on an empty frame is an inter-frame flush: ignore
            self._ipos = pos
            self._rxn = rxn
            self._esc = esc
            self._drop = drop
            if done:
                if done > len(buf):
                    self.rx_oversize += 1
                    continue
                _copy(buf, 0, rx, 0, done)
                self.rx_frames += 1
                self.rx_bytes += done
                return done

    def send(self, buf, n):
        if n > self.mtu or n <= 0:
            self.tx_oversize += 1
            return False
        tx = self._tx
        tx[0] = END
        k = 1
        if hasattr(buf, "find"):
            pos = 0
            ne = -2
            ns = -2
            while pos < n:
                if ne != -1 and ne < pos:
                    ne = buf.find(_END_B, pos, n)
                if ns != -1 and ns < pos:
                    ns = buf.find(_ESC_B, pos, n)
                stop = n
                if ne >= 0:
                    stop = ne
                if 0 <= ns < stop:
                    stop = ns
                run = stop - pos
                if run:
                    _copy(tx, k, buf, pos, run)
                    k += run
                    pos = stop
                    if pos >= n:
                        break
                tx[k] = ESC
                tx[k + 1] = ESC_END if buf[pos] == END else ESC_ESC
                k += 2
                pos += 1
        else:  # memoryview and friends: no find(), encode byte by byte
            for i in range(n):
                b = buf[i]
                if b == END:
                    tx[k] = ESC
                    tx[k + 1] = ESC_END
                    k += 2
                elif b == ESC:
                    tx[k] = ESC
                    tx[k + 1] = ESC_ESC
                    k += 2
                else:
                    tx[k] = b
                    k += 1
        tx[k] = END
        k += 1
        w = self.uart.write(tx, k)
        if w is not None and w != k:
            self.tx_errors += 1
            return False
        self.tx_frames += 1
        self.tx_bytes += n
        return True

    def poll_obj(self):
        p = getattr(self.uart, "poll_obj", None)
        return p() if p is not None else None

    def service(self):
        pass

    def link_up(self):
        return not self._closed

    def close(self):
        self._closed = True
        c = getattr(self.uart, "close", None)
        if c is not None:
            c()


# --- Uart adapters -------------------------------------------------------------------------

class MachineUart:
    """MicroPython machine.UART (create it with timeout=0 so reads never block), or any
    MicroPython stream with readinto/write(buf, n) (e.g. a raw pty file on the unix port)."""

    def __init__(self, uart):
        self.uart = uart

    def readinto(self, buf):
        return self.uart.readinto(buf)

    def write(self, buf, n):
        return self.uart.write(buf, n)

    def any(self):
        a = getattr(self.uart, "any", None)
        return a() if a is not None else 0

    def poll_obj(self):
        return self.uart

    def close(self):
        pass


class PyserialUart:
    """pyserial `serial.Serial` (CPython). Reads only what `in_waiting` reports: never blocks."""

    def __init__(self, ser):
        self.ser = ser

    def readinto(self, buf):
        n = self.ser.in_waiting
        if not n:
            return 0
        if n > len(buf):
            n = len(buf)
        data = self.ser.read(n)
        n = len(data)
        buf[:n] = data
        return n

    def write(self, buf, n):
        return self.ser.write(memoryview(buf)[:n])

    def any(self):
        return self.ser.in_waiting

    def poll_obj(self):
        try:
            return self.ser.fileno()
        except Exception:
            return None

    def close(self):
        pass


class FdUart:
    """A raw OS file descriptor (CPython), e.g. a pty master from pty.openpty(). The fd is
    made non-blocking; write() waits (up to write_timeout s) for room so a frame is never
    cut. close() closes the fd only when own=True."""

    def __init__(self, fd, own=False, write_timeout=2.0):
        import os
        import select
        self._os = os
        self._select = select
        self.fd = fd
        self.own = own
        self.write_timeout = write_timeout
        os.set_blocking(fd, False)

    def readinto(self, buf):
        try:
            return self._os.readv(self.fd, [buf])
        except BlockingIOError:
            return None
        except OSError:  # EIO: the other end of the pty is closed
            return None

    def write(self, buf, n):
        os = self._os
        mv = memoryview(buf)
        off = 0
        while off < n:
            try:
                off += os.write(self.fd, mv[off:n])
            except BlockingIOError:
                _r, w, _x = self._select.select((), (self.fd,), (), self.write_timeout)
                if not w:
                    break
        return off

    def any(self):
        import fcntl
        import termios
        import struct
        try:
            return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    def poll_obj(self):
        return self.fd

    def close(self):
        if self.own:
            try:
                self._os.close(self.fd)
            except OSError:
                pass
