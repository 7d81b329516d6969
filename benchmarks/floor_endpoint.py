"""The minimal Python TCP endpoint on a TAP (issue 13's floor): how fast plain 1514-byte
frames move between one Python process and the kernel, with no stack at all. Run inside a
network namespace: it makes the TAP ustk0 (no virtio-net header, no offloads), gives the
kernel side HOST_IP, answers ARP for STACK_IP and serves one TCP connection at a time:
port 19 streams (chargen without lines: the same 1460 bytes in every segment), port 9 takes
and discards. What it leaves out is what a stack adds: no retransmission (a lost frame ends
the run), no congestion control (the peer's window is the limit), no timers, no options
beyond MSS and window scale (RFC 7323), a checksum folded from the header's words (the
payload's sum is computed once), an ACK per burst of frames read.

    python benchmarks/floor_endpoint.py      # prints "ready floor" and serves until killed

benchmarks/offload_bench.py --floor runs it beside `ustack up --offload off|on` in the same
run: the issue's target for a stack without offloads is 60 % of this endpoint's MB/s."""
import fcntl
import os
import select
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
HOST_IP = "192.0.2.1"
MAC = b"\x02\x00\x00\x00\x00\x02"
IP = bytes((192, 0, 2, 2))
MSS = 1460
WSHIFT = 7          # the window scale we offer (RFC 7323 2.2): a 65535 << 7 byte window
PAYLOAD = bytes((i * 7 + 3) & 0xFF for i in range(MSS))
BURST = 64          # frames read before the endpoint writes again


def fold(s):
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def words(b):
    """The 16-bit one's complement sum of b (RFC 1071), b of even length."""
    return fold(sum(struct.unpack("!%dH" % (len(b) // 2), b)))


PAYLOAD_SUM = words(PAYLOAD)


class Conn:
    def __init__(self, peer_mac, peer_ip, peer_port, port, irs, wscale):
        self.peer_mac, self.peer_ip, self.peer_port, self.port = peer_mac, peer_ip, peer_port, port
        self.rcv_nxt = (irs + 1) & 0xFFFFFFFF
        self.iss = 0x10000
        self.snd_una = self.iss
        self.snd_nxt = (self.iss + 1) & 0xFFFFFFFF
        self.wscale = wscale      # the peer's shift, or 0 (it offered none)
        self.wnd = 65535
        self.ws_ok = wscale >= 0
        self.open = False
        self.closing = False
        self.unacked = 0
        self.ident = 0
        # the frame's fixed part: Ethernet, IPv4 (DF), the TCP header's ports and offset
        self.tpl = bytearray(14 + 20 + 20 + MSS)
        t = self.tpl
        t[0:6] = peer_mac
        t[6:12] = MAC
        t[12:14] = b"\x08\x00"
        struct.pack_into("!BBHHHBBH4s4s", t, 14, 0x45, 0, 0, 0, 0x4000, 64, 6, 0, IP, peer_ip)
        struct.pack_into("!HH", t, 34, port, peer_port)
        t[54:] = PAYLOAD
        # the sums that do not change: IPv4 header less length, ident, checksum; the TCP
        # pseudo-header less length, the ports
        self.ip_base = words(bytes(t[14:34]))
        self.ph_base = fold(words(IP + peer_ip) + 6 + port + peer_port)

    def frame(self, seq, flags, n, opts=b""):
        """The frame of a segment in self.tpl (n bytes of PAYLOAD, or options opts and no
        data: the caller puts PAYLOAD back after), its length."""
        t = self.tpl
        hl = 20 + len(opts)
        if opts:
            t[54:54 + len(opts)] = opts
        tot = 20 + hl + n
        self.ident = (self.ident + 1) & 0xFFFF
        struct.pack_into("!HH", t, 16, tot, self.ident)
        struct.pack_into("!H", t, 24, ~fold(self.ip_base + tot + self.ident) & 0xFFFF)
        win = 65535
        off_flags = ((hl >> 2) << 12) | flags
        s = self.ph_base + (hl + n) + (seq >> 16) + (seq & 0xFFFF) + \
            (self.rcv_nxt >> 16) + (self.rcv_nxt & 0xFFFF) + off_flags + win
        if opts:
            s += words(opts)
        if n:
            s += PAYLOAD_SUM if n == MSS else words(PAYLOAD[:n] + b"\0" * (n & 1))
        struct.pack_into("!IIHHHH", t, 38, seq, self.rcv_nxt, off_flags, win,
                         ~fold(s) & 0xFFFF, 0)
        return 14 + tot


def main():
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"ustk0", IFF_TAP | IFF_NO_PI))
    subprocess.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
    subprocess.run(["ip", "link", "set", "ustk0", "up"], check=True)
    print("ready floor", flush=True)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    conn = None
    buf = bytearray(2048)
    while True:
        sending = conn is not None and conn.open and conn.port == 19 and not conn.closing
        poller.poll(0 if sending else 1000)
        k = 0
        while k < BURST:
            try:
                n = os.readv(fd, [buf])
            except BlockingIOError:
                break
            k += 1
            if n < 42:
                continue
            et = (buf[12] << 8) | buf[13]
            if et == 0x0806 and buf[21] == 1 and buf[38:42] == IP:   # ARP request for us
                r = bytearray(42)
                r[0:6] = buf[6:12]
                r[6:12] = MAC
                r[12:22] = b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02"
                r[22:28] = MAC
                r[28:32] = IP
                r[32:42] = buf[22:32]
                os.write(fd, r)
                continue
            if et != 0x0800 or buf[23] != 6 or buf[30:34] != IP:
                continue
            ihl = (buf[14] & 0x0F) << 2
            o = 14 + ihl
            tot = (buf[16] << 8) | buf[17]
            sport, dport, seq, ack, offf, win = struct.unpack_from("!HHIIHH", buf, o)
            fl = offf & 0x3F
            thl = (offf >> 12) << 2
            dlen = tot - ihl - thl
            if fl & 0x02:   # SYN: a new connection (the last one is forgotten)
                ws = -1
                p = o + 20
                while p < o + thl:
                    kind = buf[p]
                    if kind == 0:
                        break
                    if kind == 1:
                        p += 1
                        continue
                    if kind == 3:
                        ws = buf[p + 2]
                    p += buf[p + 1]
                conn = Conn(bytes(buf[6:12]), bytes(buf[26:30]), sport, dport, seq, ws)
                opts = struct.pack("!BBH", 2, 4, MSS)
                if ws >= 0:
                    opts += bytes((1, 3, 3, WSHIFT))
                m = conn.frame(conn.iss, 0x12, 0, opts)
                os.write(fd, conn.tpl[:m])
                conn.tpl[54:] = PAYLOAD
                continue
            c = conn
            if c is None or sport != c.peer_port or dport != c.port:
                continue
            if fl & 0x04:   # RST
                conn = None
                continue
            if fl & 0x10:
                if ((ack - c.snd_una) & 0xFFFFFFFF) <= ((c.snd_nxt - c.snd_una) & 0xFFFFFFFF):
                    c.snd_una = ack
                c.wnd = win << c.wscale if c.ws_ok and c.wscale > 0 else win
                c.open = True
            if dlen > 0 and seq == c.rcv_nxt:
                c.rcv_nxt = (c.rcv_nxt + dlen) & 0xFFFFFFFF
                c.unacked += 1
            if fl & 0x01:   # FIN: ACK it with ours
                c.rcv_nxt = (c.rcv_nxt + 1) & 0xFFFFFFFF
                m = c.frame(c.snd_nxt, 0x11, 0)
                os.write(fd, c.tpl[:m])
                c.snd_nxt = (c.snd_nxt + 1) & 0xFFFFFFFF
                c.closing = True
                c.unacked = 0
        c = conn
        if c is None:
            continue
        if c.unacked:   # one ACK for the burst read
            m = c.frame(c.snd_nxt, 0x10, 0)
            os.write(fd, c.tpl[:m])
            c.unacked = 0
        if c.open and c.port == 19 and not c.closing:
            j = 0
            while j < BURST and ((c.snd_nxt - c.snd_una) & 0xFFFFFFFF) + MSS <= c.wnd:
                m = c.frame(c.snd_nxt, 0x18, MSS)
                try:
                    os.write(fd, c.tpl)
                except BlockingIOError:
                    break
                c.snd_nxt = (c.snd_nxt + MSS) & 0xFFFFFFFF
                j += 1


if __name__ == "__main__":
    sys.exit(main())
