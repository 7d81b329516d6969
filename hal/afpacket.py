"""AF_PACKET link (Linux, CPython only): raw Ethernet frames on an existing interface.

    link = AfPacket("veth0")       # needs CAP_NET_RAW

A SOCK_RAW packet socket bound to the interface with ETH_P_ALL, non-blocking. recv_into()
returns one frame (or 0); frames the host itself transmitted on the interface (including
ours) are skipped: PACKET_IGNORE_OUTGOING where the kernel has it (4.20+), and the
PACKET_OUTGOING pkttype from recvfrom_into as a check everywhere. mac comes from
SIOCGIFHWADDR (fallback /sys/class/net/<if>/address), mtu from /sys/class/net/<if>/mtu.

Notes: the kernel strips VLAN tags on receive into auxdata (not re-inserted here); on veth
and other offloading devices, TCP/UDP checksums of locally generated frames may be left
partial (CHECKSUM_PARTIAL) when captured: disable tx checksum offload on the peer
(`ethtool -K <peer> tx off`) when such frames must be verified.
"""
import fcntl
import os
import socket
import struct
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SIOCGIFHWADDR = 0x8927
MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0x20)


def _sysfs(ifname, leaf):
    with open("/sys/class/net/%s/%s" % (ifname, leaf)) as f:
        return f.read().strip()


def read_mac(ifname):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            r = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
        finally:
            s.close()
        return bytes(r[18:24])
    except OSError:
        return bytes.fromhex(_sysfs(ifname, "address").replace(":", ""))


class AfPacket:
    def __init__(self, ifname, link_check_s=1.0, rcvbuf=None, ignore_outgoing=True):
        if not os.path.isdir("/sys/class/net/%s" % ifname):
            raise OSError("no such interface: %s" % ifname)
        self.ifname = ifname
        self.caps = 0
        self.mac = read_mac(ifname)
        self.mtu = int(_sysfs(ifname, "mtu"))
        self._max_frame = self.mtu + 14
        self.link_check_s = link_check_s
        self._next_check = 0.0
        self._up = True
        self.rx_frames = self.rx_bytes = self.rx_outgoing = self.rx_oversize = 0
        self.tx_frames = self.tx_bytes = self.tx_busy = self.tx_errors = 0
        # protocol 0 at socket() time: nothing is delivered until bind() names the interface,
        # so no frame of another interface can slip in (the libpcap trick)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.ignore_outgoing = False  # without it (kernel < 4.20) the pkttype check does the job
            if ignore_outgoing:
                try:
                    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                    self.ignore_outgoing = True
                except OSError:
                    pass
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.bind((ifname, ETH_P_ALL))
            s.setblocking(False)
        except Exception:
            s.close()
            raise
        self.sock = s
        self._check_link()

    def _check_link(self):
        try:
            up = _sysfs(self.ifname, "operstate") in ("up", "unknown")
            if up:
                up = _sysfs(self.ifname, "carrier") == "1"
        except OSError:
            up = False
        self._up = up
        return up

    # --- Driver interface ---
    def recv_into(self, buf):
        sock = self.sock
        if sock is None:
            return 0
        while True:
            try:
                n, addr = sock.recvfrom_into(buf, 0, MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError:
                return 0
            if addr[2] == PACKET_OUTGOING:
                self.rx_outgoing += 1
                continue
            if n > len(buf):
                self.rx_oversize += 1
                continue
            self.rx_frames += 1
            self.rx_bytes += n
            return n

    def send(self, buf, n):
        if self.sock is None:
            return False
        try:
            w = self.sock.send(memoryview(buf)[:n])
        except (BlockingIOError, InterruptedError):
            self.tx_busy += 1
            return False
        except OSError as e:
            if e.errno == 105:  # ENOBUFS: queue full
                self.tx_busy += 1
            else:
                self.tx_errors += 1
            return False
        if w != n:
            self.tx_errors += 1
            return False
        self.tx_frames += 1
        self.tx_bytes += n
        return True

    def poll_obj(self):
        return self.sock

    def fileno(self):
        return self.sock.fileno()

    def service(self):
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.link_check_s
            self._check_link()

    def link_up(self):
        return self._up

    def close(self):
        s, self.sock = self.sock, None
        if s is not None:
            s.close()
