"""TAP <-> StreamLink bridge: joins a stack that cannot open a TAP itself (the MicroPython unix
port has no ioctl, HAL-NOTES 1) to a Linux TAP device.

    python -m ustack.ports.cpython.bridge --tap ustk0 --listen unix:/tmp/ustack.sock \\
        [--host-ip 192.0.2.1/24] [--pcap run.pcap]

The bridge listens on the stream, accepts one peer (ports/micropython/streamlink.py), then
moves frames both ways, each as a 2-byte big-endian length plus the frame. Two threads, one
per direction, so a peer blocked writing to us can never deadlock against us writing to it.

`Bridge.probe(ip)` sends an ARP probe (RFC 5227: sender address 0.0.0.0, so nobody learns
anything from it) for `ip` down the stream and waits for the stack's reply: the runtime's
"the stack answers" check. `FrameStream` is the framing alone, for tests that play the
TAP side themselves. `SlipBridge` is the same join for a stack on a SLIP line (a pty):
simdrivers.SlipProxy's SLIP/Ethernet translation, one thread per direction.
"""
import os
import select
import socket
import struct
import sys
import threading
import time


def parse_spec(spec):
    """'unix:/path' -> (AF_UNIX, '/path'); 'tcp:host:port' -> (AF_INET, (host, port))."""
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return socket.AF_INET, (host or "127.0.0.1", int(port))
    raise ValueError("stream spec must be unix:/path or tcp:host:port, not %r" % (spec,))


def listen(spec):
    fam, addr = parse_spec(spec)
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_UNIX:
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(1)
    if fam == socket.AF_INET:
        spec = "tcp:%s:%d" % s.getsockname()[:2]
    return s, spec



def _tap_fds(tap):
    """Every descriptor the TAP's frames arrive on (a multi-queue TAP has one per queue)."""
    if hasattr(tap, "poll_objs"):
        return tap.poll_objs()
    return [tap.fileno() if hasattr(tap, "fileno") else tap.poll_obj()]

# FrameStream's receive buffer: what one recv_into may bring (many frames at a time in a
# burst), plus room for the longest frame the 2-byte length can announce
STREAM_READ = 262144
MAX_FRAME = 0xFFFF


class FrameStream:
    """Length-prefixed frames over a connected stream socket (the StreamLink wire format).

    Received bytes go into one buffer made here (recv_into), and frames are cut from it by
    index: nothing per read is allocated but the frame handed out. (A recv(262144) per read
    made a 256 KB object each time; above glibc's mmap threshold, that is an mmap, mremap
    and munmap per frame in a process whose threshold nothing had raised: 2.6 times the
    bridge's CPU per UDP echo, issue 13.)"""

    def __init__(self, sock):
        self.sock = sock
        self.rbuf = bytearray(STREAM_READ + 2 + MAX_FRAME)
        self.rview = memoryview(self.rbuf)
        self.lo = 0     # the unread bytes are rbuf[lo:hi]
        self.hi = 0
        self.eof = False
        self._lock = threading.Lock()
        self._hdr = bytearray(2)
        if sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, frame, n=None):
        """frame[:n] (n None: all of it) as one length-prefixed frame."""
        if n is None:
            n = len(frame)
        h = self._hdr
        with self._lock:
            h[0] = n >> 8
            h[1] = n & 0xFF
            self._sendv(h, memoryview(frame)[:n])

    def _sendv(self, h, body):
        # one sendmsg for header and frame; on a short write, the rest with sendall
        k = self.sock.sendmsg([h, body])
        if k < 2 + len(body):
            rest = (bytes(h) + bytes(body))[k:]
            self.sock.sendall(rest)

    def recv(self, timeout=None):
        """One frame (bytes), or None on timeout/EOF."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            f = self._take()
            if f is not None:
                return f
            if self.eof:
                return None
            w = None if end is None else end - time.monotonic()
            if w is not None and w < 0:
                w = 0
            r, _, _ = select.select([self.sock], [], [], w)
            if not r:
                return None
            self._fill()

    def _fill(self):
        lo, hi = self.lo, self.hi
        if lo == hi:
            lo = hi = 0
        elif len(self.rbuf) - hi < 2 + MAX_FRAME:
            # too little room behind for a whole frame: the partial one to the front
            self.rview[0:hi - lo] = self.rview[lo:hi]
            lo, hi = 0, hi - lo
        self.lo = lo
        try:
            k = self.sock.recv_into(self.rview[hi:])
        except (ConnectionResetError, OSError):
            k = 0
        if not k:
            self.eof = True
        self.hi = hi + k

    def _take(self):
        lo = self.lo
        if self.hi - lo < 2:
            return None
        b = self.rbuf
        n = (b[lo] << 8) | b[lo + 1]
        if self.hi - lo < 2 + n:
            return None
        f = bytes(self.rview[lo + 2:lo + 2 + n])
        self.lo = lo + 2 + n
        return f

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def arp_probe(src_mac, target_ip):
    """An RFC 5227 ARP probe (sender IP 0.0.0.0) for target_ip (4 bytes), broadcast."""
    return (b"\xff" * 6 + bytes(src_mac) + b"\x08\x06" +
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(src_mac) + b"\0\0\0\0" +
            b"\0" * 6 + bytes(target_ip))


def is_arp_reply_from(frame, ip):
    return len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02" \
        and frame[28:32] == bytes(ip)


class Bridge:
    """One TAP (or any Driver-like port with fileno/recv_into/send) and one stream peer."""

    def __init__(self, tap, spec="unix:/tmp/ustack-bridge.sock", pcap=None):
        self.tap = tap
        self.lsock, self.spec = listen(spec)
        self.conn = None
        self.stream = None
        self.pcap = None
        self._pcap_lock = threading.Lock()
        self.on_frame = None  # fn(frame) for every frame either way, or None
        if pcap:
            from ustack.hal.pcap import PcapWriter
            self.pcap = PcapWriter(pcap)
        self.running = False
        self.threads = []
        self.closed = threading.Event()
        self.to_stack = 0
        self.to_tap = 0
        self.tap_drops = 0
        self._probe_ip = None
        self._probe_seen = threading.Event()
        self._wr, self._ww = os.pipe()

    # ---- setup ----------------------------------------------------------------------------
    def accept(self, timeout=10.0):
        """Wait for the stack to connect. True when it did."""
        self.lsock.settimeout(timeout)
        try:
            self.conn, _ = self.lsock.accept()
        except socket.timeout:
            return False
        self.conn.settimeout(None)
        self.stream = FrameStream(self.conn)
        return True

    def start(self):
        self.running = True
        for fn, name in ((self._tap_to_stream, "tap>stack"), (self._stream_to_tap, "stack>tap")):
            t = threading.Thread(target=fn, name="bridge " + name, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.running = False
        try:
            os.write(self._ww, b"x")
        except OSError:
            pass
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(2)
        for s in (self.conn, self.lsock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        fam, addr = parse_spec(self.spec)
        if fam == socket.AF_UNIX:
            try:
                os.unlink(addr)
            except OSError:
                pass
        if self.pcap is not None:
            with self._pcap_lock:
                self.pcap.close()
        for fd in (self._wr, self._ww):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wr = self._ww = -1

    def close_link(self):
        """End the stream towards the stack (its StreamLink sees EOF); the TAP stays open, and
        so does the way back, until the stack closes it: its last frames (a DHCP RELEASE on
        the way out) still reach the TAP."""
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def probe(self, ip, mac, timeout=5.0, every=0.25):
        """ARP-probe ip until the stack answers (True) or timeout (False)."""
        ipb = socket.inet_aton(ip) if isinstance(ip, str) else bytes(ip)
        self._probe_seen.clear()
        self._probe_ip = ipb
        end = time.monotonic() + timeout
        frame = arp_probe(mac, ipb)
        try:
            while time.monotonic() < end and not self.closed.is_set():
                self._send_stream(frame)
                if self._probe_seen.wait(every):
                    return True
            return False
        finally:
            self._probe_ip = None

    def counters(self):
        return {"bridge.to_stack": self.to_stack, "bridge.to_tap": self.to_tap,
                "bridge.tap_drops": self.tap_drops}

    # ---- the two directions ---------------------------------------------------------------
    def _capture(self, frame):
        if self.pcap is not None:
            with self._pcap_lock:
                self.pcap.write(frame, len(frame))
        h = self.on_frame
        if h is not None:
            h(frame)  # `ustack capture` (control.ControlServer.attach_forward)

    def _send_stream(self, frame):
        self.stream.send(frame)

    def _tap_to_stream(self):
        buf = bytearray(65536)
        p = select.poll()
        for fd in _tap_fds(self.tap):
            p.register(fd, select.POLLIN)
        p.register(self._wr, select.POLLIN)
        try:
            while self.running:
                ev = p.poll(500)
                if not self.running:
                    break
                if not ev:
                    continue
                while True:
                    n = self.tap.recv_into(buf)
                    if not n:
                        break
                    if self.pcap is not None or self.on_frame is not None:
                        self._capture(bytes(buf[:n]))   # a copy only for a capture
                    self.stream.send(buf, n)   # header and frame in one write, no copy
                    self.to_stack += 1
        except OSError:
            pass
        finally:
            self.closed.set()

    def _stream_to_tap(self):
        st = self.stream
        try:
            while self.running:
                f = st.recv(0.5)
                if f is None:
                    if st.eof:
                        break
                    continue
                if self._probe_ip is not None and is_arp_reply_from(f, self._probe_ip):
                    self._probe_seen.set()
                self._capture(f)
                if self.tap.send(f, len(f)):
                    self.to_tap += 1
                else:
                    self.tap_drops += 1
        finally:
            self.closed.set()


def icmp_echo_request(src_ip, dst_ip, ident, seq=1):
    """An IPv4 ICMP echo request packet (no link header)."""
    def csum(b):
        if len(b) & 1:
            b += b"\0"
        t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        while t >> 16:
            t = (t & 0xFFFF) + (t >> 16)
        return ~t & 0xFFFF
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"ustack-probe"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0,
                     bytes(src_ip), bytes(dst_ip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + icmp


class SlipBridge:
    """TAP <-> SLIP over a pty master: the far end of the stack's SLIP line (slip-pty under
    the MicroPython runtime, whose SlipLink owns the pty's slave side). The SLIP/Ethernet
    translation is simdrivers.SlipProxy's (proxy ARP for the stack's address, IPv4 both
    ways); here each direction has its own thread, since the stack runs in another process.

    Same surface as Bridge for the runtime: start, probe, close_link, stop, counters,
    closed."""

    PROBE_ID = 0x5553

    def __init__(self, tap, master_fd, mac, stack_ip, pcap=None):
        from ustack.hal.slip import SlipLink, FdUart
        from ustack.ports.cpython.simdrivers import SlipProxy
        self.tap = tap
        self.fd = master_fd
        self.link = SlipLink(FdUart(master_fd), chunk=4096)
        self.stack_ip = bytes(stack_ip)
        self.proxy = SlipProxy(self.link, self, mac, self.stack_ip)
        self.pcap = None
        self._pcap_lock = threading.Lock()
        self.on_frame = None  # fn(frame) for every frame either way, or None
        if pcap:
            from ustack.hal.pcap import PcapWriter
            self.pcap = PcapWriter(pcap)
        self.conn = True            # the runtime's "is there a link to close" check
        self.running = False
        self.threads = []
        self.closed = threading.Event()
        self.to_stack = 0
        self.to_tap = 0
        self.tap_drops = 0
        self._probe_seen = threading.Event()
        self._wr, self._ww = os.pipe()

    # ---- the TAP side SlipProxy writes to ---------------------------------------------------
    def send(self, frame, n):
        """Frames SlipProxy puts on the TAP (ARP replies, the stack's packets)."""
        f = bytes(frame[:n])
        if len(f) >= 42 and f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 0 and \
                f[26:30] == self.stack_ip and f[38:40] == struct.pack("!H", self.PROBE_ID):
            self._probe_seen.set()      # our probe's echo reply: not for the kernel
            return True
        self._capture(f)
        if self.tap.send(f, len(f)):
            self.to_tap += 1
            return True
        self.tap_drops += 1
        return False

    def _capture(self, frame):
        if self.pcap is not None:
            with self._pcap_lock:
                self.pcap.write(frame, len(frame))
        h = self.on_frame
        if h is not None:
            h(frame)  # `ustack capture` (control.ControlServer.attach_forward)

    # ---- setup ------------------------------------------------------------------------------
    def start(self):
        self.running = True
        for fn, name in ((self._tap_to_slip, "tap>slip"), (self._slip_to_tap, "slip>tap")):
            t = threading.Thread(target=fn, name="slip bridge " + name, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def probe(self, src_ip, timeout=5.0, every=0.25):
        """ICMP-echo the stack over the line (from src_ip) until it answers (True)."""
        src = socket.inet_aton(src_ip) if isinstance(src_ip, str) else bytes(src_ip)
        pkt = icmp_echo_request(src, self.stack_ip, self.PROBE_ID)
        self._probe_seen.clear()
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.closed.is_set():
            self.link.send(pkt, len(pkt))
            if self._probe_seen.wait(every):
                return True
        return False

    def close_link(self):
        """Stop both directions and close the pty master: the stack's line hangs up."""
        self._halt()
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def _halt(self):
        self.running = False
        try:
            os.write(self._ww, b"x")
        except OSError:
            pass
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(3)
        self.threads = []

    def stop(self):
        self.close_link()
        if self.pcap is not None:
            with self._pcap_lock:
                self.pcap.close()
            self.pcap = None
        for fd in (self._wr, self._ww):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wr = self._ww = -1

    def counters(self):
        return {"bridge.to_stack": self.to_stack, "bridge.to_tap": self.to_tap,
                "bridge.tap_drops": self.tap_drops}

    # ---- the two directions -----------------------------------------------------------------
    def _tap_to_slip(self):
        buf = bytearray(65536)
        p = select.poll()
        for fd in _tap_fds(self.tap):
            p.register(fd, select.POLLIN)
        p.register(self._wr, select.POLLIN)
        try:
            while self.running:
                if not p.poll(500) or not self.running:
                    continue
                while self.running:
                    n = self.tap.recv_into(buf)
                    if not n:
                        break
                    f = bytes(buf[:n])
                    self._capture(f)
                    sent = self.link.tx_frames
                    self.proxy.from_tap(f)
                    if self.link.tx_frames != sent:
                        self.to_stack += 1
        except OSError:
            pass
        finally:
            self.closed.set()

    def _slip_to_tap(self):
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        p.register(self._wr, select.POLLIN)
        try:
            while self.running:
                ev = p.poll(500)
                if not self.running:
                    break
                for fd, e in ev:
                    if fd == self.fd and e & (select.POLLHUP | select.POLLERR) and \
                            not e & select.POLLIN:
                        return          # the stack's side of the line is gone
                self.proxy.drain()
        except OSError:
            pass
        finally:
            self.closed.set()


def main(argv=None):
    import argparse
    from ustack.ports.cpython import cli
    p = cli.one_line_errors(argparse.ArgumentParser(
        prog="ustack-bridge", description=__doc__.split("\n\n")[0]), "ustack-bridge")
    p.add_argument("--tap", default="ustack0")
    p.add_argument("--listen", default="unix:/tmp/ustack-bridge.sock",
                   help="unix:/path or tcp:host:port (port 0 picks one)")
    p.add_argument("--host-ip", default=None, help="address/prefix for the kernel side")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--pcap", default=None)
    p.add_argument("--probe", default=None, help="wait until this IP answers ARP, print ready")
    a = p.parse_args(argv)
    try:  # the checks `ustack up` makes of the same flags, before the TAP is made
        cli.check_ifname("--tap", a.tap)
        if a.host_ip is not None:
            cli.check_cidr("--host-ip", a.host_ip)
        if a.probe is not None:
            cli.check_unicast("--probe", a.probe, cli.check_ipv4("--probe", a.probe))
        if a.pcap is not None:
            cli.check_out_file("--pcap", a.pcap)
        from ustack.core.stack import MIN_MTU
        if not MIN_MTU <= a.mtu <= 65535:  # RFC 791: at least 68 octets, at most 65535
            cli.refuse("--mtu", a.mtu, "must be in %d..65535" % MIN_MTU)
        if not cli._tap_prepared(a.tap):
            cli.check_privileges("--tap", "the TAP %s" % a.tap)
    except SystemExit as e:
        raise cli.reword(e, "ustack-bridge")
    from ustack.hal.tap import Tap
    from ustack.ports.cpython import hostlink
    try:
        tap = Tap(a.tap, mtu=a.mtu)
    except OSError as e:
        raise SystemExit("ustack-bridge: %s" % hostlink.explain_open(e, "tap", a.tap))
    try:
        cli.host_setup(tap.name, a.host_ip, a.mtu)
    except SystemExit as e:
        tap.close()
        raise cli.reword(e, "ustack-bridge")
    br = Bridge(tap, a.listen, a.pcap)
    print("listening " + br.spec, flush=True)
    if not br.accept(3600):
        return 1
    br.start()
    print("connected", flush=True)
    if a.probe:
        tap_mac = open("/sys/class/net/%s/address" % tap.name).read().strip()
        ok = br.probe(a.probe, bytes(int(x, 16) for x in tap_mac.split(":")))
        print("ready" if ok else "no answer from " + a.probe, flush=True)
    try:
        br.closed.wait()
    except KeyboardInterrupt:
        pass
    br.stop()
    tap.close()
    print("bridge " + " ".join("%s=%d" % kv for kv in sorted(br.counters().items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
