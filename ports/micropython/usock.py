"""MicroPython's `socket` module over ustack: what urequests, umqtt and microdot (through
asyncio) import, on the NIC that `network.LAN()` / `network.WIZNET5K()` activated.

    import network, socket
    nic = network.LAN(); nic.active(True)
    ai = socket.getaddrinfo("192.0.2.1", 80)[0]
    s = socket.socket()
    s.connect(ai[-1])
    s.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    print(s.readline())

Making `import socket` / `import usocket` / `import network` resolve here: put
ports/micropython/shadow first on sys.path (MICROPYPATH; on a board, copy its files to /lib).
A socket.py on the path wins over MicroPython's built-in `socket` (an extensible module), but
`usocket` is an alias that always gives the built-in, whatever the path holds: only an entry
in sys.modules beats it. install() makes both entries; the shadow's socket.py and network.py
call it, and ports/micropython/mpyrun.py (what `runtime run` starts) calls it before the
program's first line, so the order of the program's imports does not matter. The port's own
code that needs the host's socket (StreamLink) gets it through compat.native_socket().

Semantics follow MicroPython's socket, not CPython's:
- blocking by default; settimeout(0) / setblocking(False) make it non-blocking, and then
  read/readinto/readline/write return None when they would block (recv/send/accept raise
  OSError(EAGAIN), a non-blocking connect OSError(EINPROGRESS)); a timeout raises
  OSError(ETIMEDOUT);
- read(n)/readinto(buf) on a blocking socket return n bytes unless the stream ends first;
  write(buf[, n]) on a blocking socket writes it all; makefile() returns the socket itself;
- getaddrinfo takes numeric IPv4 addresses, 'localhost', and names, resolved by the
  stack's DNS resolver (servers from nic.ifconfig()'s dns, or stack.dns.set_servers); an
  unknown name is OSError(-2) (EAI_NONAME), no answer OSError(-3) (EAI_AGAIN); the address
  is a (host, port) tuple as on the lwIP ports, the first address of the answer.
- select.poll()/ipoll() and asyncio work with these sockets on the MicroPython unix port:
  the class is an io.IOBase stream whose ioctl answers MP_STREAM_POLL, and each such poll
  drives the stack once (frames in, timers), so a program blocked in poll/asyncio keeps the
  stack running. While nothing polls and nothing blocks, the stack does not run: call
  nic.poll() in a loop of your own.

Blocking calls drive the stack through Stack.wait (the NIC's waiter). Not allocation-free:
each call may allocate (bytes results, exceptions); the allocation-free paths are app.py's
services.
"""
import sys

try:
    from io import IOBase as _Base
    if sys.implementation.name != "micropython":
        raise ImportError  # CPython's IOBase has its own close/readline: a plain class there
except ImportError:
    _Base = object

from ustack.ports.micropython import netif  # imports no `socket`: no cycle with the shadow

USTACK_FACADE = True     # compat.native_socket() tells this module from the built-in one

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
SOL_SOCKET = 1
SO_REUSEADDR = 2
SO_BROADCAST = 6
SO_KEEPALIVE = 9
TCP_NODELAY = 1
IP_TTL = 2
MSG_PEEK = 2
MSG_DONTWAIT = 0x40

# py/stream.h: the stream ioctl requests and poll flags select.poll uses
_MP_STREAM_POLL = 3
_MP_STREAM_CLOSE = 4
_POLL_RD = 1
_POLL_WR = 4
_POLL_ERR = 8
_POLL_HUP = 16
_POLL_NVAL = 32

_EAGAIN = 11
_EINVAL = 22
_LINE_CHUNK = 128        # readline peeks this many bytes at a time for the newline
_READ_CHUNK = 1460       # read() to the end of the stream takes it this much at a time

error = OSError


def install():
    """`import socket` and `import usocket` give this module from now on."""
    me = sys.modules[__name__]
    sys.modules["socket"] = me
    sys.modules["usocket"] = me


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(family, type, proto, canonname, (host, port))]: one entry, as MicroPython gives."""
    from ustack.core.wire import ipv4 as ip4
    if isinstance(host, (bytes, bytearray)):
        host = str(host, "ascii")
    if host is None or host == "":
        host = "0.0.0.0"
    if host == "localhost":
        host = "127.0.0.1"
    if af not in (0, AF_INET):
        raise OSError(-2)
    try:
        ip4.aton(host)
    except (ValueError, AttributeError, IndexError):
        # a name: the stack's resolver (core/dns.py), whose failures are OSError(-2)
        # (EAI_NONAME) and friends, as MicroPython's own getaddrinfo raises them
        try:
            from ustack.core import dns
        except ImportError:  # a build without the dns feature (ports/micropython/build.py)
            raise OSError(-2, "no resolver in this build (feature dns): use a numeric address")
        if dns.is_invalid(host):
            raise dns.gai_error(dns.EAI_NONAME)
        host = ip4.ntoa(netif.default_stack().dns.resolve(host)[0], 0)
    t = type or SOCK_STREAM
    p = IPPROTO_TCP if t == SOCK_STREAM else (IPPROTO_UDP if t == SOCK_DGRAM else proto)
    return [(AF_INET, t, p, "", (host, int(port)))]


def inet_pton(af, s):
    from ustack.core.wire import ipv4 as ip4
    if af != AF_INET:
        raise OSError(97)  # EAFNOSUPPORT
    return bytes(ip4.aton(s))


def inet_ntop(af, b):
    from ustack.core.wire import ipv4 as ip4
    if af != AF_INET:
        raise OSError(97)
    return ip4.ntoa(bytes(b))


def _again(e):
    return e.args and e.args[0] == _EAGAIN and not _is_timeout(e)


def _is_timeout(e):
    from ustack.core.compat import Timeout
    return isinstance(e, Timeout)


class socket(_Base):
    """socket(af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP): a ustack socket with
    MicroPython's stream API. stack= (keyword) picks a stack other than the active NIC's."""

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, stack=None,
                 _sock=None):
        if _sock is None:
            if stack is None:
                stack = netif.default_stack()
            # MicroPython's default proto is IPPROTO_TCP whatever the type; lwIP ignores it
            _sock = stack.socket(af, type, proto if type == SOCK_RAW else 0)
        self._s = _sock

    # ---- setup --------------------------------------------------------------------------
    def bind(self, addr):
        self._s.bind(addr)

    def listen(self, backlog=None):
        self._s.listen(backlog)

    def accept(self):
        c, addr = self._s.accept()
        return socket(_sock=c), addr

    def connect(self, addr):
        self._s.connect(addr)

    def setsockopt(self, level, opt, value):
        self._s.setsockopt(level, opt, value)

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def settimeout(self, t):
        self._s.settimeout(t)

    def makefile(self, mode="rb", buffering=0):
        return self

    def getsockname(self):
        return self._s.getsockname()

    def getpeername(self):
        return self._s.getpeername()

    def close(self):
        self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ---- datagrams and the BSD calls ------------------------------------------------------
    def send(self, data):
        return self._s.send(_bytes(data))

    def sendall(self, data):
        self._s.sendall(_bytes(data))

    def sendto(self, data, addr):
        return self._s.sendto(_bytes(data), addr)

    def recv(self, n):
        return self._s.recv(n)

    def recvfrom(self, n):
        return self._s.recvfrom(n)

    # ---- the stream API ---------------------------------------------------------------------
    def _recv_into(self, mv, flags=0):
        """A count (0 at the end of the stream), or None when a non-blocking socket has
        nothing (MicroPython's stream convention)."""
        try:
            return self._s.recv_into(mv, len(mv), flags)
        except OSError as e:
            if _again(e):
                return None
            raise

    def read(self, n=-1):
        if n is None or n < 0:  # to the end of the stream (non-blocking: what is there)
            out = bytearray()
            chunk = bytearray(_READ_CHUNK)
            while True:
                k = self._recv_into(chunk)
                if not k:
                    if k is None and not out:
                        return None
                    return bytes(out)
                out.extend(memoryview(chunk)[:k])
        buf = bytearray(n)
        got = self._fill(buf, n)
        if got is None:
            return None
        return bytes(buf) if got == n else bytes(buf[:got])

    def readinto(self, buf, n=None):
        return self._fill(buf, len(buf) if n is None else n)

    def _fill(self, buf, n):
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self._recv_into(mv[got:n])
            if k is None:
                return got or None
            if k == 0:
                break
            got += k
            if self._s.timeout == 0:
                break  # non-blocking: what is there, no more
        return got

    def readline(self, limit=-1):
        """Up to and including b'\\n' (or the end of the stream); non-blocking: the part
        that is there, None when nothing is."""
        out = b""
        peek = bytearray(_LINE_CHUNK)
        while limit < 0 or len(out) < limit:
            want = _LINE_CHUNK if limit < 0 else min(_LINE_CHUNK, limit - len(out))
            k = self._recv_into(memoryview(peek)[:want], MSG_PEEK)
            if k is None:
                return out if out else None
            if k == 0:
                break
            i = 0
            while i < k and peek[i] != 10:
                i += 1
            take = i + 1 if i < k else k
            self._s.recv_into(peek, take)
            out += bytes(peek[:take])
            if i < k:
                break
        return out

    def write(self, buf, a=None, b=None):
        """write(buf), write(buf, n) or write(buf, off, n): all of it on a blocking socket;
        non-blocking, what fits (None when nothing does)."""
        mv = memoryview(_bytes(buf))
        if b is not None:
            mv = mv[a:a + b]
        elif a is not None:
            mv = mv[:a]
        if self._s.timeout != 0:
            self._s.sendall(mv)
            return len(mv)
        try:
            return self._s.send(mv)
        except OSError as e:
            if _again(e):
                return None
            raise

    # ---- select.poll / asyncio (the stream ioctl protocol) ----------------------------------
    def ioctl(self, req, arg):
        s = self._s
        if req == _MP_STREAM_POLL:
            if s.closed:
                return _POLL_NVAL
            netif.drive(s.stack)  # whoever polls drives the stack
            r = 0
            if arg & _POLL_RD and s.readable():
                r |= _POLL_RD
            if arg & _POLL_WR and s.writable():
                r |= _POLL_WR
            if s.so_error:
                r |= _POLL_ERR
            return r
        if req == _MP_STREAM_CLOSE:
            s.close()
            return 0
        return -_EINVAL


def _bytes(data):
    if isinstance(data, str):
        return data.encode()
    return data
