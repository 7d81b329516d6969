"""A pcap-writing wrapper around any driver: every frame in and out goes to a classic libpcap
file (tcpdump and Wireshark read it). Use: Pcap(Tap(...), "run.pcap")."""
import struct
import time

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # for L3 links (SLIP): IPv4 packets with no link header


class PcapWriter:
    def __init__(self, path, linktype=LINKTYPE_ETHERNET, snaplen=65535):
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
            self.writer.write(buf, n)
        return n

    def send(self, buf, n):
        self.writer.write(buf, n)
        return self.driver.send(buf, n)

    def send_offload(self, buf, n, offload):
        """An offloaded frame (hal/tap.py) as the stack built it: a checksum left partial, a
        TCP segment of many MSS - what tcpdump shows on a Linux sender with offloads."""
        self.writer.write(buf, n)
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
