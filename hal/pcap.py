"""A pcap-writing wrapper around any driver: every frame in and out goes to a classic libpcap
file (tcpdump and Wireshark read it). Use: Pcap(Tap(...), "run.pcap")."""
import struct
import time

from ustack.core.checksum import csum
from ustack.core.wire import vnet

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # for L3 links (SLIP): IPv4 packets with no link header


class PcapWriter:
    def __init__(self, path, linktype=LINKTYPE_ETHERNET, snaplen=262144):
        # tcpdump's snaplen: a 64 KB super-frame (TSO/GRO, hal/tap.py offloads) fits whole
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        self.count = 0

    def write(self, buf, n):
        t = time.time()
        s = int(t)
        self.f.write(struct.pack("<IIII", s, int((t - s) * 1e6), n, n))
        self.f.write(memoryview(buf)[:n])
        self.count += 1

    def flush(self):
        self.f.flush()

    def close(self):
        if not self.f.closed:
            self.f.close()


def whole(buf, n):
    """A copy of the Ethernet frame buf[:n] with its TCP/UDP checksum computed whole: what
    the wire carries once a checksum left partial (offloads: the pseudo-header sum only) is
    completed by the kernel. Frames that are not TCP/UDP over IPv4/IPv6 come back as they
    are."""
    h = bytearray(vnet.HDR_LEN)
    if not vnet.for_frame(h, buf, n, vnet.OFL_CSUM):
        return buf
    f = bytearray(buf[0:n])
    l4 = h[6] | (h[7] << 8)
    co = l4 + (h[8] | (h[9] << 8))
    ip = 18 if f[12] == 0x81 else 14
    if f[ip] >> 4 == 4:
        end = ip + ((f[ip + 2] << 8) | f[ip + 3])
        ps = csum(f, ip + 12, 8, f[ip + 9])
    else:
        end = ip + 40 + ((f[ip + 4] << 8) | f[ip + 5])
        ps = csum(f, ip + 8, 32, f[ip + 6])
    if end > n:
        return buf
    f[co] = 0
    f[co + 1] = 0
    c = ~csum(f, l4, end - l4, ps + end - l4) & 0xFFFF
    if c == 0 and co - l4 == 6:
        c = 0xFFFF  # RFC 768: UDP sends a computed zero as all ones
    f[co] = c >> 8
    f[co + 1] = c & 0xFF
    return f


class Pcap:
    """Driver wrapper: same interface as the driver it wraps."""

    def __init__(self, driver, path):
        self.driver = driver
        self.mac = driver.mac
        self.mtu = driver.mtu
        self.writer = PcapWriter(path, LINKTYPE_ETHERNET if len(driver.mac) == 6 else LINKTYPE_RAW)

    def recv_into(self, buf):
        n = self.driver.recv_into(buf)
        if n:
            if getattr(self.driver, "rx_offload", 0) & vnet.OFL_PARTIAL:
                self.writer.write(whole(buf, n), n)  # maybe partial (NEEDS_CSUM): as sent
            else:
                self.writer.write(buf, n)
        return n

    def recv_split(self, buf, spill, at):
        """CAP_GRO's read (hal/tap.py recv_split): a frame longer than buf is written whole
        (its head from buf, the rest from spill)."""
        n = self.driver.recv_split(buf, spill, at)
        k = len(buf)
        if n > k:
            f = bytearray(n)
            f[0:k] = buf
            f[k:n] = memoryview(spill)[at:at + n - k]
            self._rx(f, n)
        elif n:
            self._rx(buf, n)
        return n

    def _rx(self, buf, n):
        if getattr(self.driver, "rx_offload", 0) & vnet.OFL_PARTIAL:
            self.writer.write(whole(buf, n), n)  # maybe partial (NEEDS_CSUM): as sent
        else:
            self.writer.write(buf, n)

    def send(self, buf, n):
        self.writer.write(buf, n)
        return self.driver.send(buf, n)

    def send_offload(self, buf, n, offload):
        """An offloaded frame (hal/tap.py): a TCP segment of many MSS as the stack built it
        (what tcpdump shows on a Linux sender with TSO), its checksum as the kernel will
        complete it."""
        self.writer.write(whole(buf, n) if offload & vnet.OFL_CSUM else buf, n)
        return self.driver.send_offload(buf, n, offload)

    def poll_obj(self):
        return self.driver.poll_obj()

    def service(self):
        self.driver.service()

    def link_up(self):
        return self.driver.link_up()

    def close(self):
        self.writer.close()
        self.driver.close()

    def __getattr__(self, name):
        return getattr(self.driver, name)
