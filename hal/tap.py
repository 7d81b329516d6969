"""Linux TAP device (IFF_TAP | IFF_NO_PI): Ethernet frames to and from the kernel.
CPython only. The fd is non-blocking; poll_obj() returns it for select/poll."""
import errno
import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


class Tap:
    def __init__(self, name="ustack0", mac=b"\x02\x00\x00\x00\x00\x02", mtu=1500, persist=False):
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI)
            res = fcntl.ioctl(self.fd, TUNSETIFF, ifr)
        except OSError:
            os.close(self.fd)
            raise
        self.name = res[:16].rstrip(b"\0").decode()
        if persist:
            fcntl.ioctl(self.fd, TUNSETPERSIST, 1)
        self.mac = bytes(mac)
        self.mtu = mtu
        self.rx_errors = 0
        self.tx_errors = 0
        self._mv = None

    def recv_into(self, buf):
        try:
            return os.readv(self.fd, [buf])
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

    def fileno(self):
        return self.fd

    def service(self):
        pass

    def link_up(self):
        return True

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
