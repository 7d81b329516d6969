"""Linux TAP device (IFF_TAP | IFF_NO_PI): Ethernet frames to and from the kernel.
CPython only. The fds are non-blocking; poll_obj() returns the first for select/poll,
poll_objs() all of them.

queues > 1 opens a multi-queue TAP (IFF_MULTI_QUEUE) and uses it to keep the flows we talk to
apart from a flood: the kernel puts a frame for the TAP on the queue of the last frame we
sent in the same flow (tun's automatic flow steering, keyed by a symmetric flow hash; entries
expire after 3 s of silence), and hashes the rest - every flow we never answered - over all
queues. We send on queue 0 only and read it first: a flood of new flows lands on queue 0 for
1/queues of its frames, so queue 0 keeps up (and the connections we are talking to keep
their frames) long before the other queues do, which drop the excess at their own rings
(counted by the kernel as the TAP's tx_dropped). The other queues get everything queue 0
leaves of our time: queue 0 is looked at again after at most SPAN of their frames."""
import errno
import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
SPAN = 4  # frames read from the other queues between two looks at queue 0


class Tap:
    def __init__(self, name="ustack0", mac=b"\x02\x00\x00\x00\x00\x02", mtu=1500, persist=False,
                 queues=1):
        flags = IFF_TAP | IFF_NO_PI | (IFF_MULTI_QUEUE if queues > 1 else 0)
        self.fds = []
        try:
            for _ in range(max(1, queues)):
                fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
                self.fds.append(fd)
                res = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
                name = res[:16].rstrip(b"\0").decode()
        except OSError:
            for fd in self.fds:
                os.close(fd)
            raise
        self.fd = self.fds[0]
        self.others = self.fds[1:]
        self.span = 0   # frames the other queues may still take before queue 0 is read again
        self.rr = 0     # the next of the other queues to read
        self.name = name
        if persist:
            fcntl.ioctl(self.fd, TUNSETPERSIST, 1)
        self.mac = bytes(mac)
        self.mtu = mtu
        self.rx_errors = 0
        self.tx_errors = 0
        self._mv = None

    def recv_into(self, buf):
        others = self.others
        if self.span <= 0:
            n = self._read(self.fd, buf)
            if n or not others:
                return n
            self.span = SPAN
        k = len(others)
        i = 0
        while i < k:
            fd = others[self.rr]
            self.rr = self.rr + 1 if self.rr + 1 < k else 0
            n = self._read(fd, buf)
            if n:
                self.span -= 1
                return n
            i += 1
        if self.span < SPAN:
            self.span = 0
            return self._read(self.fd, buf)  # the others ran dry: queue 0 again
        self.span = 0
        return 0

    def _read(self, fd, buf):
        try:
            return os.readv(fd, [buf])
        except BlockingIOError:
            return 0
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return 0
            self.rx_errors += 1
            return 0

    def send(self, buf, n):
        try:
            if n == len(buf):
                os.write(self.fd, buf)
            else:
                os.write(self.fd, memoryview(buf)[:n])
            return True
        except OSError:
            # EIO while the kernel side is down, EAGAIN when its queue is full
            self.tx_errors += 1
            return False

    def poll_obj(self):
        return self.fd

    def poll_objs(self):
        return list(self.fds)

    def fileno(self):
        return self.fd

    def service(self):
        pass

    def link_up(self):
        return True

    def close(self):
        if self.fd >= 0:
            for fd in self.fds:
                os.close(fd)
            self.fds = []
            self.others = []
            self.fd = -1
