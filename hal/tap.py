"""Linux TAP device (IFF_TAP | IFF_NO_PI): Ethernet frames to and from the kernel.
CPython only. The fds are non-blocking; poll_obj() returns the first for select/poll,
poll_objs() all of them.

queues > 1 opens a multi-queue TAP (IFF_MULTI_QUEUE) and uses it to keep the flows we talk to
apart from a flood: the kernel puts a frame for the TAP on the queue of the last frame we
sent in the same flow (tun's automatic flow steering, keyed by a symmetric flow hash; entries
expire after 3 s of silence), and hashes the rest - every flow we never answered - over all
queues. We send on one queue (the first, queue 0 to begin with) and read it first: a flood of
new flows lands on it for 1/queues of its frames, so it keeps up (and the connections we are
talking to keep their frames) long before the other queues do, which drop the excess at
their own rings (counted by the kernel as the TAP's tx_dropped). The other queues get what
the first leaves of our time, and at least one frame in PQ_RUN. A flood of one flow (all
fragments from one source hash alike) may hash onto the first queue: when it never runs dry
while another one does, the first queue moves there (SWITCH).

That automatic flow steering cannot keep a flood of new flows off a connection's first SYN
(each flood SYN is a new flow, hashed over every queue like the real client's), nor a
fragment flood off the queue its one flow hashes to. So with at least 5 queues the TAP gets a
steering program (hal/tapsteer.py, eBPF through TUNSETSTEERINGEBPF) that chooses each frame's
queue itself: queue 0 for ARP, neighbour discovery and the flows we sent a frame of in the
last 3 s (`send` notes them in the program's table: the automatic steering, which the kernel
stops once a program is attached, done by us), the next ones for the rest by flow hash, then
one for a TCP SYN seen again (a client's retransmission), one for the other SYNs, the last
for fragments. The reader (`_recv_steered`) asks poll() which queues hold frames and takes,
in that order, up to ROUND[class] frames from each: the SYN and fragment queues never get
more than their share while the others have frames, and all that is left otherwise; a
frame read from AGAIN is flagged (`rx_syn_again`: the core's SYN cookies answer a client's
resent SYN past their per-poll budget). When the port's own poll() has just said which queues
hold frames (`poll_ready`, the CPython runner), the round starts from that instead; a round
that read every queue it saw dry ends the burst without looking again, and after a queue's
first frame a poll() of that queue alone stands in for the read that would fail with EAGAIN
(issue 13: a request costs the port's poll(), one read and one write).
When bpf(2) or the ioctl is refused (an old kernel, no privilege, fewer queues,
USTACK_TAP_STEER=0 in the environment), the TAP keeps the kernel's steering and the reader
above; `report` says which (`link.tap_steering`, `link.tap_steer_refused`).

Offloads (issue 13; `offload="auto"|"on"`, default "off": plain frames): the TAP is opened
with IFF_VNET_HDR, so every frame each way carries a struct virtio_net_hdr (10 bytes, in
front; read with readv, written with writev - nothing copied), and TUNSETOFFLOAD asks the
kernel for TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6. Then `caps` says what the stack may use
(core/iface.py CAP_*): checksums left to the kernel both ways (NEEDS_CSUM out;
NEEDS_CSUM/DATA_VALID in), TCP segments of up to 64 KB out (gso_type/gso_size: the kernel
cuts them), and, once the kernel grants TSO, GRO super-frames of up to 64 KB in. "auto" takes
what the kernel grants; "on" raises OffloadRefused naming the flag it refused. Without the
header ("off") the TAP offers CAP_GSO_SOFT (gso=False: nothing): plain frames, one write
each, cut by the core from its TCP segments of many MSS (core/offload.py gso_send)."""
import errno
import fcntl
import os
import struct
import sys

from ustack.core.wire import vnet
from ustack.hal import tapio

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01   # we take frames with a partial checksum (NEEDS_CSUM)
TUN_F_TSO4 = 0x02   # ... and TCP/IPv4 super-frames (GSO)
TUN_F_TSO6 = 0x04   # ... and TCP/IPv6 super-frames
TUNSETVNETLE = 0x400454DC  # the header little-endian (virtio 1.x) on any host
VNET_HDR_LEN = vnet.HDR_LEN  # struct virtio_net_hdr (core/wire/vnet.py)
# core/iface.py's capability bits and core/buf.py's PacketBuffer.offload bits (the driver
# speaks the core's words; the core never imports a driver)
CAP_CSUM_TX = 1
CAP_CSUM_RX = 2
CAP_TSO4 = 4
CAP_TSO6 = 8
CAP_GRO = 16
CAP_GSO_SOFT = 32  # no offload: the core cuts its TCP segments of many MSS (software GSO)
OFFLOAD_MODES = ("auto", "on", "off")


class OffloadRefused(OSError):
    """offload="on" and the kernel refused what it names (one line for `ustack up`)."""
SPAN = 4      # frames read from the other queues between two looks at the first one
PQ_RUN = 16   # frames in a row from the first queue before the others get one
SWITCH = 64   # runs of PQ_RUN in a row (1024 frames that never let it run dry) before the
              # first queue moves to one that ran dry: a TCP sender's window (45 frames for
              # 64 KB) runs out long before, only a flood keeps a queue full that long


# what `report` may add (README's counter table lists them)
TAP_COUNTERS = ("tap_queues", "tap_queue_moves", "tap_dropped", "tap_rx_truncated",
                "tap_steering", "tap_rx_ours", "tap_rx_rest", "tap_rx_syn_again", "tap_rx_syn",
                "tap_rx_frag", "tap_steer_refused")
# frames a round of the steered reader takes from each queue that holds some, by class
# (hal/tapsteer.py's queues); then poll() again
ROUND = (64, 16, 32, 32, 32)   # OURS, each REST, AGAIN, SYN, FRAG


def _is_rst(b, n):
    """A TCP RST in an untagged IPv4 frame: a reply that ends its flow (a RST to a scan or a
    flood). Sent on the first queue, it would steer the flow it answers onto the queue we read
    first; it goes out on the last one instead, like a SYN cookie (`Tap.stateless`)."""
    if n < 54 or b[12] != 0x08 or b[13] != 0x00 or b[23] != 6:
        return False
    o = 14 + ((b[14] & 0x0F) << 2) + 13
    return o < n and (b[o] & 0x04) != 0


def _open(name, queues, with_hdr=False):
    """Attach `queues` fds to the TAP `name` (made if missing); ([fds], its name)."""
    flags = IFF_TAP | IFF_NO_PI | (IFF_MULTI_QUEUE if queues > 1 else 0) | \
        (IFF_VNET_HDR if with_hdr else 0)
    fds = []
    try:
        for _ in range(max(1, queues)):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            fds.append(fd)
            res = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
            name = res[:16].rstrip(b"\0").decode()
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return fds, name


class Tap:
    def __init__(self, name="ustack0", mac=b"\x02\x00\x00\x00\x00\x02", mtu=1500, persist=False,
                 queues=1, offload="off", gro=True, steer=True, gso=True):
        if offload not in OFFLOAD_MODES:
            raise ValueError("offload must be one of auto, on, off; got %r" % (offload,))
        with_hdr = offload != "off"
        try:
            self.fds, name = _open(name, queues, with_hdr)
        except OSError as e:
            if queues <= 1 or e.errno != errno.EINVAL:
                raise
            # a persistent TAP made without multi_queue (ip tuntap add mode tap): one queue
            self.fds, name = _open(name, 1, with_hdr)
        self.name = name
        if persist:
            fcntl.ioctl(self.fds[0], TUNSETPERSIST, 1)
        self._queues(self.fds, mac, mtu)
        if with_hdr:
            try:
                self._offload(offload, gro)
            except OSError:
                self.close()
                raise
        elif gso:
            # plain frames, one write each: the core builds a burst's segments once and
            # cuts them just before us (core/offload.py gso_send; issue 13)
            self.caps = CAP_GSO_SOFT
        if len(self.fds) > 1:
            self._steer(steer and os.environ.get("USTACK_TAP_STEER", "1") != "0")

    def _steer(self, wanted):
        """Attach the steering program (hal/tapsteer.py); on any refusal keep the kernel's
        steering, and say why in steer_refused (an errno; -1: turned off)."""
        if not wanted:
            self.steer_refused = -1
            return
        try:
            from ustack.hal import tapsteer
            st = tapsteer.Steering(len(self.fds))
        except (OSError, ImportError, AttributeError) as e:
            self.steer_refused = getattr(e, "errno", None) or errno.ENOSYS
            return
        try:
            st.attach(self.fds[0])
        except OSError as e:
            st.close()
            self.steer_refused = e.errno or errno.EINVAL
            return
        self._steered(st)

    def _steered(self, st):
        """Read and send as the steering program st sorts the queues (fds in queue order)."""
        self.steer = st
        n = len(self.fds)
        self.fd = self.fds[0]
        self.others = self.fds[1:]
        # the reading order is the queues' own: OURS, the REST queues, AGAIN, SYN, FRAG;
        # each with its share
        self.budget = [ROUND[0]] + [ROUND[1]] * (n - 4) + list(ROUND[2:])
        self.poller = tapio.Waiter(self.fds)   # a look at every queue (no wait)
        self.ready = [0] * n    # its answer: the queues' descriptors holding frames
        self.qfd = {fd: q for q, fd in enumerate(self.fds)}
        self.have = [0] * n     # a round's scratch: which queues poll() found holding frames
        self.plan = [0] * n     # this round's queues in reading order, nplan of them
        self.nplan = 0
        self.pi = 0
        self.left = 0
        self.qreads = [0] * n
        self.again_q = n - 3    # AGAIN: what it reads there is a SYN sent again (rx_syn_again)
        from ustack.hal.tapsteer import GEN_SHIFT
        self.gen_shift = GEN_SHIFT  # SEEN's generations (Steering.rotate)
        self.cut = False        # this round left a queue at its share (frames may be left)

    def _offload(self, mode, gro=True):
        """The virtio-net header is on (IFF_VNET_HDR): its size, then as much of
        TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6 as the kernel grants; caps from what it did.
        gro=False takes no super-frames in (a router: a super-frame over the egress MTU
        cannot be forwarded as it is, as Linux turns LRO off on forwarding devices)."""
        fd = self.fds[0]
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
        try:
            fcntl.ioctl(fd, TUNSETVNETLE, struct.pack("i", 1))
        except OSError:
            if sys.byteorder != "little":
                raise  # a legacy header in big-endian order: we write little-endian
        self.vnet = True
        granted = 0
        wants = ((TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, "TUN_F_TSO4|TUN_F_TSO6"),
                 (TUN_F_CSUM, "TUN_F_CSUM"))
        for want, name in wants if gro else wants[1:]:
            try:
                fcntl.ioctl(fd, TUNSETOFFLOAD, want)
                granted = want
                break
            except OSError as e:
                if mode == "on":
                    raise OffloadRefused(e.errno, "the kernel refused TUNSETOFFLOAD(%s) on %s: %s"
                                         % (name, self.name, os.strerror(e.errno)))
        self.tun_offload = granted
        # the kernel takes NEEDS_CSUM and GSO frames from us whatever it grants, and says
        # per frame whether a checksum needs checking; super-frames come only once granted
        caps = CAP_CSUM_TX | CAP_CSUM_RX | CAP_TSO4 | CAP_TSO6
        if granted & (TUN_F_TSO4 | TUN_F_TSO6):
            caps |= CAP_GRO
        self.caps = caps

    def _queues(self, fds, mac, mtu):
        """The state over the queues' fds (any non-blocking fds that read one frame each)."""
        self.fds = list(fds)
        self.fd = self.fds[0]
        self.others = self.fds[1:]
        self.stateless = False  # set by the core around a reply that keeps no state
        self.rx_syn_again = False  # the frame just read is a SYN seen before (the core's
                                   # SYN cookies answer it past their budget: a real client)
        self.span = 0   # frames the other queues may still take before the first is read again
        self.rr = 0     # the next of the other queues to read
        self.run = 0    # frames in a row from the first queue
        self.busy = 0   # runs of PQ_RUN frames in a row from the first queue
        self.idle_q = -1  # another queue found empty on its last read, or -1
        self.moves = 0  # times the first queue moved (a flood hashed onto it)
        self.steer = None       # hal/tapsteer.py's Steering, when the program is attached
        self.steer_refused = 0  # why not (an errno; -1: turned off), when it was wanted
        self.mac = bytes(mac)
        self.mtu = mtu
        self.rx_errors = 0
        self.tx_errors = 0
        self._mv = None
        self.caps = 0          # offloads (core/iface.py CAP_*): none without the vnet header
        self.vnet = False      # every frame carries a virtio_net_hdr
        self.tun_offload = 0   # the TUN_F_* the kernel granted
        self.rx_offload = 0    # the last frame read: core/wire/vnet.py rx_offload
        self.rx_truncated = 0  # frames longer than the buffer they were read into
        self._rxhdr = bytearray(VNET_HDR_LEN)
        self._split = False     # recv_split: read a frame's overflow into _tail
        self._spill_src = None  # the large buffer whose tail _tail is
        self._tail = None
        self._txhdr = bytearray(VNET_HDR_LEN)
        self._plainhdr = bytes(VNET_HDR_LEN)  # flags 0, GSO_NONE: a complete frame
        # issue 13, a request's syscalls: a read that finds nothing raises (EAGAIN, ~2 us in
        # CPython); after a queue's first frame, poll() that queue alone (~0.3 us; tapio's
        # poll_in) before reading it again, and read on until EAGAIN only from the second
        # frame on (a burst)
        self.got = 0            # frames read in a row from the queue being read
        self.seeded = 0         # queues the port's poll() said hold frames (poll_ready)
        self.seed_q = 0         # the last of them

    def recv_split(self, buf, spill, at):
        """CAP_GRO (core/offload.py recv_large): the next frame's first len(buf) bytes into
        buf, the rest into spill from offset at on - one readv - and its whole length."""
        if spill is not self._spill_src:
            self._spill_src = spill  # the same large buffer mostly (the pool's top free one)
            self._tail = memoryview(spill)[at:]
        self._split = True
        n = self._recv_steered(buf) if self.steer is not None else self.recv_into(buf)
        self._split = False
        return n

    def recv_into(self, buf):
        if self.steer is not None:
            return self._recv_steered(buf)
        others = self.others
        if self.span <= 0:
            if not others:
                if self.got == 1 and not tapio.poll_in(self.fd):
                    self.got = 0
                    return 0  # one frame came, no second: no read that raises EAGAIN
                n = self._read(self.fd, buf)
                self.got = self.got + 1 if n else 0
                return n
            n = self._read(self.fd, buf)
            if n:
                self.run += 1
                if self.run >= PQ_RUN:
                    # the first queue did not run dry for PQ_RUN frames: the others get a
                    # frame now; one that stays busy for SWITCH such runs while another
                    # queue runs dry carries a flood hashed onto it: move ours elsewhere
                    self.run = 0
                    self.busy += 1
                    self.span = 1
                    if self.busy >= SWITCH and self.idle_q >= 0:
                        self._move(self.idle_q)
                return n
            self.run = 0
            self.busy = 0
            self.span = SPAN
        k = len(others)
        i = 0
        while i < k:
            q = self.rr
            self.rr = q + 1 if q + 1 < k else 0
            n = self._read(others[q], buf)
            if n:
                if q == self.idle_q:
                    self.idle_q = -1
                self.span -= 1
                return n
            self.idle_q = q
            i += 1
        if self.span < SPAN:
            self.span = 0
            return self._read(self.fd, buf)  # the others ran dry: the first queue again
        self.span = 0
        return 0

    def _recv_steered(self, buf):
        """One frame as the round plans: the queues poll() found holding frames, in the order
        OURS, REST, AGAIN, SYN, FRAG, each for at most its budget; then a new round."""
        plan = self.plan
        i = self.pi
        polled = False
        while True:
            k = self.nplan
            while i < k:
                q = plan[i]
                if self.left > 0:
                    # the round's look said q holds a frame; after one, look at q alone
                    if self.got != 1 or tapio.poll_in(self.fds[q]):
                        n = self._read(self.fds[q], buf)
                        if n:
                            self.left -= 1
                            self.got += 1
                            self.pi = i
                            self.qreads[q] += 1
                            self.rx_syn_again = q == self.again_q
                            return n
                else:
                    self.cut = True  # its share is spent with frames maybe left: look again
                i += 1
                self.got = 0
                if i < k:
                    self.left = self.budget[plan[i]]
            # the round is over; the next call starts a new one
            self.nplan = 0
            self.pi = 0
            if polled:
                return 0
            polled = True
            dry = k and not self.cut  # every queue the round's look named was read dry
            self.cut = False
            now = tapio.monotonic_ns()
            if now >> self.gen_shift != self.steer.gen:
                self.steer.rotate(now)   # a new generation (1 s): not a call every round
            have = self.have
            one = -1
            if self.seeded:
                # the port's poll() just named the queues holding frames: no look of our own;
                # one queue (a request's frame) is the round's whole plan, no walk over all
                if self.seeded == 1:
                    one = self.seed_q
                self.seeded = 0
            elif dry:
                # this burst read dry what it saw: frames that came since wake the port's
                # poll(), which looks at every queue anyway (not a poll() here finding none)
                return 0
            else:
                ready = self.ready
                k = self.poller.wait(0.0, ready)
                if not k:
                    return 0
                qfd = self.qfd
                i = 0
                while i < k:
                    q = qfd.get(ready[i], -1)
                    if q >= 0:
                        have[q] = 1
                    i += 1
            k = 0
            if one >= 0:
                have[one] = 0
                plan[0] = one
                k = 1
            else:
                for q in range(len(have)):
                    if have[q]:
                        have[q] = 0
                        plan[k] = q
                        k += 1
            self.nplan = k
            i = 0
            self.left = self.budget[plan[0]] if k else 0

    def poll_ready(self, fd):
        """The port's poll() found fd readable: the next round reads it without a poll() of
        its own (a steered TAP; the other readers read the first queue first anyway)."""
        if self.steer is not None:
            q = self.qfd.get(fd)
            if q is not None and not self.have[q]:
                self.have[q] = 1
                self.seeded += 1   # queues named (one: seed_q is the round's plan)
                self.seed_q = q

    def _move(self, q):
        """Send on (and read first) the other queue q from now on: each flow we talk to
        follows with the next frame we send in it."""
        fd = self.others[q]
        self.others[q] = self.fd
        self.fd = fd
        self.busy = 0
        self.idle_q = -1
        self.moves += 1

    def _read(self, fd, buf):
        """One frame into buf (0: none). With the vnet header: the header into its own
        buffer and the frame into buf, one readv (recv_split: its overflow into a large
        buffer's tail too); rx_offload says what the header told. One function, not two:
        every request's frame comes through here (issue 13); hal/tapio.py makes the call
        (compiled: the system call itself, nothing allocated, no exception for EAGAIN)."""
        if not self.vnet:
            n = tapio.read(fd, buf)
            if n < 0:
                self.rx_errors += 1
                return 0
            return n
        if self._split:
            tail = self._tail  # [header, buf, a large buffer's tail] (recv_split)
            room = len(buf) + len(tail)
        else:
            tail = None
            room = len(buf)
        n = tapio.readv(fd, self._rxhdr, buf, tail)
        if n <= 0:
            if n < 0:
                self.rx_errors += 1
            return 0
        n -= VNET_HDR_LEN
        if n <= 0:
            return 0
        if n > room:
            self.rx_truncated += 1  # a super-frame read into a small buffer: not CAP_GRO
            return 0
        self.rx_offload = vnet.rx_offload(self._rxhdr)
        return n

    def send(self, buf, n):
        fd = self.fd
        st = self.steer
        if st is not None:
            if not self.stateless:  # a cookie's SYN-ACK would bring the flood's answers
                st.mark(buf, n, tapio.monotonic_ns())  # its flow's frames come to OURS
        elif self.others and (self.stateless or _is_rst(buf, n)):
            fd = self.others[len(self.others) - 1]
        if self.vnet:
            r = tapio.writev(fd, self._plainhdr, buf, n)
        else:
            r = tapio.write(fd, buf, n)
        if r < 0:
            # EIO while the kernel side is down, EAGAIN when its queue is full
            self.tx_errors += 1
            return False
        return True

    def send_offload(self, buf, n, offload):
        """The frame buf[:n] whose pb.offload asks for a checksum completed (OFL_CSUM) and/or
        a TCP segment cut into segments of offload >> OFL_GSO_SHIFT bytes: the header says
        so (core/wire/vnet.py: NEEDS_CSUM with csum_start/csum_offset, gso_type/gso_size/
        hdr_len), the kernel does it."""
        if not self.vnet:
            return self.send(buf, n)
        if self.steer is not None and not self.stateless:  # as send: a cookie's is not noted
            self.steer.mark(buf, n, tapio.monotonic_ns())
        vnet.for_frame(self._txhdr, buf, n, offload)
        if tapio.writev(self.fd, self._txhdr, buf, n) < 0:
            self.tx_errors += 1
            return False
        return True

    def report(self, c, prefix="link."):
        """Add the TAP's own figures to the counters dict c: its queues, the times the first
        queue moved, and the frames the kernel dropped at its queues because they were full
        (the TAP's tx_dropped: frames offered faster than the stack reads them)."""
        c[prefix + "tap_queues"] = len(self.fds)
        if self.steer is not None:
            # the steering program's classes: frames read from each (hal/tapsteer.py)
            q = self.qreads
            c[prefix + "tap_steering"] = 1
            c[prefix + "tap_rx_ours"] = q[0]
            c[prefix + "tap_rx_rest"] = sum(q[1:-3])
            c[prefix + "tap_rx_syn_again"] = q[-3]
            c[prefix + "tap_rx_syn"] = q[-2]
            c[prefix + "tap_rx_frag"] = q[-1]
        elif self.steer_refused:
            c[prefix + "tap_steer_refused"] = self.steer_refused
        if self.rx_truncated:
            c[prefix + "tap_rx_truncated"] = self.rx_truncated
        if self.moves:
            c[prefix + "tap_queue_moves"] = self.moves
        try:
            with open("/sys/class/net/%s/statistics/tx_dropped" % self.name) as f:
                v = int(f.read())
        except (OSError, ValueError):
            return
        if v:
            c[prefix + "tap_dropped"] = v

    def poll_obj(self):
        return self.fds[0] if self.fds else -1  # stable: add_reader/remove_reader pair up

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
            if self.tun_offload:
                try:
                    # a persistent TAP outlives us: its next user may read plain frames
                    fcntl.ioctl(self.fd, TUNSETOFFLOAD, 0)
                except OSError:
                    pass
            if self.steer is not None:
                try:
                    # a persistent TAP outlives us: its next user gets the kernel's steering
                    self.steer.detach(self.fd)
                except OSError:
                    pass
                self.steer.close()
                self.steer = None
                self.poller.close()
            for fd in self.fds:
                os.close(fd)
            self.fds = []
            self.others = []
            self.fd = -1
