"""StreamLink: a Driver over a byte stream (AF_UNIX or TCP socket) that carries Ethernet frames,
each prefixed by its length as 2 bytes, big-endian. It joins the stack running under the
MicroPython unix port to ports/cpython/bridge.py, which moves the frames to and from a TAP.

    link = StreamLink.connect("unix:/tmp/ustack.sock", mac=b"\\x02\\0\\0\\0\\0\\x02")
    link = StreamLink.connect("tcp:127.0.0.1:7777", mac=...)

Why a stream and not datagrams (HAL-NOTES 1.4): MicroPython's readinto on a datagram socket
merges queued datagrams, and recv() allocates. On a blocking stream socket `readinto(buf, n)`
reads exactly n bytes without allocating, and `write(buf, n)` writes n bytes. So recv_into
asks the poller (ipoll, allocation-free after warm-up) whether a frame waits, then reads the
2-byte length and the frame with two blocking readintos: the bridge always writes a length
and its frame together, so the second read never waits long. Sending, the length and the
frame go out in one write from a send buffer (the native copy) for frames of up to 512 bytes
where the heap is 1 MB or more, else in two writes.

Runs on CPython too (recv_into with MSG_WAITALL / sendall), for host tests of the same code.
Counters: rx_frames, tx_frames, rx_oversize (frames longer than the caller's buffer, read and
dropped), tx_errors; `eof` turns True when the peer closed the stream.
"""
from ustack.ports.micropython.compat import mem_info, Poller, unix_sockaddr, POLLIN, native_socket

socket = native_socket()  # the host's, also when the facade shadows `socket` (usock.py)

try:
    from ustack.core.checksum_viper import copy as _copy  # native: ~1 ns a byte
except (ImportError, SyntaxError):
    _copy = None  # a byte loop in bytecode costs more than the second write it saves

# A frame of up to TX_COALESCE bytes goes out with its length in one write, copied into a send
# buffer: the copy (native, ~4 ns a byte on x86-64) is cheaper than a second write (~3 us)
# below ~700 bytes; a longer frame keeps the two writes. Only on a heap of TX_COALESCE_HEAP or
# more: an MCU board's 64 KB data budget (tests/micropython/test_memory.py) has no room
TX_COALESCE = 512
TX_COALESCE_HEAP = 1 << 20


class StreamLink:
    def __init__(self, sock, mac, mtu=1500):
        self.sock = sock
        self.mac = bytes(mac)
        self.mtu = mtu
        self.caps = 0
        self.eof = False
        self.tx_dead = False
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_oversize = 0
        self.tx_errors = 0
        self._rhdr = bytearray(2)
        self._thdr = bytearray(2)
        # a short frame and its length in one write where the heap allows: two writes woke
        # the bridge twice per frame (a 2-byte read, a select, the frame: 1.6 reads a ping)
        self._tbuf = None
        m = mem_info()  # the heap's size: free + allocated (none on CPython)
        if _copy is not None and m.get("free", 0) + m.get("alloc", 0) >= TX_COALESCE_HEAP and \
                hasattr(sock, "write"):
            self._tbuf = bytearray(2 + TX_COALESCE)
        self._drop = bytearray(256)
        self._mp = hasattr(sock, "readinto")
        self._poller = Poller()
        self._poller.register(sock, POLLIN)

    @classmethod
    def connect(cls, spec, mac, mtu=1500, timeout_s=10):
        """spec: 'unix:/path' or 'tcp:host:port'. Retries until the bridge listens."""
        sock = open_stream(spec, timeout_s)
        return cls(sock, mac, mtu)

    # ---- Driver interface -----------------------------------------------------------------
    def recv_into(self, buf):
        if self.eof or not self._poller.wait(0):
            return 0
        if not self._read(self._rhdr, 2):
            return 0
        n = (self._rhdr[0] << 8) | self._rhdr[1]
        if n > len(buf):
            self.rx_oversize += 1
            while n > 0:
                k = n if n < len(self._drop) else len(self._drop)
                if not self._read(self._drop, k):
                    return 0
                n -= k
            return 0
        if n == 0 or not self._read(buf, n):
            return 0
        self.rx_frames += 1
        return n

    def send(self, buf, n):
        # the peer's end of the stream (eof) still lets frames out: the bridge half-closes
        # it to say "stop", and a DHCP RELEASE leaves after that; a failed write ends it
        if self.tx_dead:
            self.tx_errors += 1
            return False
        h = self._thdr
        h[0] = n >> 8
        h[1] = n & 0xFF
        try:
            t = self._tbuf
            if t is not None and n + 2 <= len(t):
                t[0] = n >> 8
                t[1] = n & 0xFF
                _copy(t, 2, buf, 0, n)
                self.sock.write(t, n + 2)
            elif self._mp:
                self.sock.write(h, 2)
                self.sock.write(buf, n)
            else:
                self.sock.sendall(h)
                self.sock.sendall(memoryview(buf)[:n])
        except OSError:
            self.tx_errors += 1
            self.eof = True
            self.tx_dead = True
            return False
        self.tx_frames += 1
        return True

    def poll_obj(self):
        return self.sock

    def service(self):
        pass

    def link_up(self):
        return not self.eof

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.eof = True

    # ---- internals ------------------------------------------------------------------------
    def _read(self, buf, n):
        """Read exactly n bytes into buf[0:n]; False (and eof) when the peer went away."""
        try:
            if self._mp:
                got = self.sock.readinto(buf, n)
            else:
                got = self.sock.recv_into(buf, n, socket.MSG_WAITALL)
        except OSError:
            got = 0
        if got != n:
            self.eof = True
            return False
        return True


def open_stream(spec, timeout_s=10):
    """A connected, blocking stream socket for 'unix:/path' or 'tcp:host:port'."""
    from ustack.ports.micropython.compat import sleep_ms
    kind, _, rest = spec.partition(":")
    tries = int(timeout_s * 20) + 1
    last = None
    for _ in range(tries):
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = unix_sockaddr(rest)
        elif kind == "tcp":
            host, _, port = rest.rpartition(":")
            addr = socket.getaddrinfo(host, int(port))[0][-1]
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            raise ValueError("stream spec must be unix:/path or tcp:host:port, not %r" % (spec,))
        try:
            s.connect(addr)
            if kind == "tcp" and hasattr(socket, "TCP_NODELAY"):
                try:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except (OSError, AttributeError):
                    pass
            return s
        except OSError as e:
            last = e
            s.close()
            sleep_ms(50)
    raise OSError("cannot connect to %s: %s" % (spec, last))
