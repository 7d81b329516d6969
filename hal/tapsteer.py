"""A steering program for a multi-queue TAP (hal/tap.py): an eBPF socket-filter program,
loaded through bpf(2) and attached with TUNSETSTEERINGEBPF, returns the queue of each frame
the kernel hands the TAP. CPython on Linux only (ctypes); every failure is an OSError whose
errno says why (ENOSYS: no bpf(2) on this machine; EPERM: not allowed), and the caller keeps
the kernel's own steering.

The queues of a TAP with n >= 5 queues:

    0           OURS: ARP, IPv6 neighbour discovery (ICMPv6 133..137), and every flow we sent
                a frame of in the last 3 s (not a RST, a fragment, or a reply that keeps
                no state, a SYN cookie's SYN-ACK: `mark`)
    1 .. n-4    REST: the other frames, spread by the flow hash below
    n-3         AGAIN: TCP SYNs without ACK that came 1-2 s before, flow and sequence
                number (a client's retransmission: RFC 6298 2.1, an initial RTO of 1 s)
    n-2         SYN:  the other TCP SYNs without ACK (a connection request, or a SYN flood)
    n-1         FRAG: IPv4 fragments (MF or an offset) and IPv6 Fragment headers (a fragment
                flood: its later fragments carry no ports and hash as one flow)

A SYN flood never sends the same SYN twice (hping3 from one source reuses its ports every
65536 SYNs, with new sequence numbers), a client does until it is answered: the stack reads
what it can of SYN, and AGAIN holds the clients whose first SYN was dropped there (with the
few flood SYNs whose two bits other SYNs set: at 100k SYNs/s at most 1 in 360, 1 in 70 at
300k/s; one bit in 2**21 put 1 in 8 there at 125k/s, more than the stack read of AGAIN,
and clients' SYNs sent again were dropped with them). The SYNs seen: SEEN, three
generations of 2**17 64-bit words each (two bits in one word per hash of flow and sequence
number: a blocked Bloom filter, one lookup), a generation 2**30 ns long by
bpf_ktime_get_ns(); a SYN's bits are looked up in the current and the last one and set in
the current one, and the reader clears the next one (`rotate`) before it begins. A flood
that sends each SYN twice lands on AGAIN and is read as SYN is, its share bounded the same
way; the core answers what it reads there past its cookie budget (rx_syn_again in
hal/tap.py: a client's SYN sent again).

The flows we talk to: a BPF array of STAMPS buckets (BPF_F_MMAPABLE, so the sender writes it
without a system call) holds, per bucket of the flow hash, the CLOCK_MONOTONIC time in ns of
the last frame we sent in a flow of that bucket; the program compares it with
bpf_ktime_get_ns() (the same clock). This is what tun's automatic flow steering did without a
program (a flow's frames on the queue we last sent it from; tun forgets a flow after 3 s),
which the kernel stops doing once a steering program is attached.

The flow hash is symmetric (the same both ways): the source and destination addresses (IPv6:
their eight 32-bit words) XORed, XOR the source and destination ports (TCP and UDP), times
the 32-bit golden ratio (Fibonacci hashing), top 12 bits. `bucket` computes it in Python for
a frame we send; the program, for a frame we receive."""
import ctypes
import errno
import mmap
import os
import platform
import struct

from ustack.core.wire import vnet

TUNSETSTEERINGEBPF = 0x800454E0   # _IOR('T', 224, int): the program's fd, -1 detaches
STAMPS = 4096                     # buckets of the flow hash (12 bits)
BUCKET_SHIFT = vnet.FLOW_SHIFT    # 32 - 12
GOLDEN = vnet.FLOW_GOLDEN
OURS_NS_SHIFT = 20                # 3 s in units of 2**20 ns: tun's flow entries expire after
OURS_UNITS = 2861                 # 3 s of silence (drivers/net/tun.c TUN_FLOW_EXPIRE)
MIN_QUEUES = 5                    # OURS, one REST, AGAIN, SYN, FRAG
SEEN_WORD_BITS = 17               # a generation of SEEN: 2**17 64-bit words (1 MB) ...
SEEN_WORDS = 1 << SEEN_WORD_BITS
SEEN_BIT1_SHIFT = 3               # ... of which a SYN sets two bits: the hash's bits 3-8 and
SEEN_BIT2_SHIFT = 9               # 9-14 name them, bits 15-31 the word
GENS = 3                          # this generation, the last (both read), the next (cleared)
GEN_SHIFT = 30                    # a generation lasts 2**30 ns (1.07 s)

# bpf(2)
SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "armv6l": 386, "i686": 357,
           "i386": 357, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_MAP_CREATE = 0
BPF_PROG_LOAD = 5
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_F_MMAPABLE = 0x400
BPF_PSEUDO_MAP_FD = 1
FN_MAP_LOOKUP_ELEM = 1
FN_KTIME_GET_NS = 5

# instruction classes, sizes, modes, operations (include/uapi/linux/bpf.h, bpf_common.h)
LD, LDX, STX, ALU, JMP, ALU64 = 0x00, 0x01, 0x03, 0x04, 0x05, 0x07
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
ABS, IND, MEM, IMM = 0x20, 0x40, 0x60, 0x00
ADD, SUB, MUL, OR, AND, LSH, RSH, MOD, XOR, MOV = (0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70,
                                                  0x90, 0xA0, 0xB0)
K, X = 0x00, 0x08
JA, JEQ, JGT, JNE, JLT, JGE, CALL, EXIT = 0x00, 0x10, 0x20, 0x50, 0xA0, 0x30, 0x80, 0x90


class _Asm:
    """A tiny eBPF assembler: instructions and jumps to labels, resolved at the end."""

    def __init__(self):
        self.ins = []     # [code, dst, src, off, imm] or [code, dst, src, label, imm]
        self.labels = {}

    def op(self, code, dst=0, src=0, off=0, imm=0):
        self.ins.append([code, dst, src, off, imm])

    def label(self, name):
        self.labels[name] = len(self.ins)

    def jmp(self, op, dst, imm, label, reg=None):
        if reg is None:
            self.op(JMP | op | K, dst, 0, label, imm)
        else:
            self.op(JMP | op | X, dst, reg, label, 0)

    def goto(self, label):
        self.op(JMP | JA, 0, 0, label, 0)

    def ld_abs(self, size, off):
        self.op(LD | ABS | size, 0, 0, 0, off)      # r0 = the frame's bytes at off (host order)

    def ld_ind(self, size, reg, off):
        self.op(LD | IND | size, 0, reg, 0, off)    # r0 = the frame's bytes at reg + off

    def ret(self, value):
        self.op(ALU64 | MOV | K, 0, 0, 0, value)
        self.op(JMP | EXIT)

    def code(self):
        out = []
        for i, (code, dst, src, off, imm) in enumerate(self.ins):
            if isinstance(off, str):
                off = self.labels[off] - i - 1
            out.append(struct.pack("<BBhi", code, (src << 4) | dst, off, imm))
        return b"".join(out)


def _ports(a):
    """r8 ^= source port ^ destination port (the transport header at r9)."""
    a.ld_ind(W, 9, 0)                    # source port << 16 | destination port
    a.op(ALU64 | MOV | X, 1, 0)
    a.op(ALU64 | RSH | K, 1, 0, 0, 16)
    a.op(ALU64 | XOR | X, 0, 1)
    a.op(ALU64 | AND | K, 0, 0, 0, 0xFFFF)
    a.op(ALU64 | XOR | X, 8, 0)


def _lookup(a, key, fd, miss):
    """r0 = the value of array map fd at the 32-bit index in register key (stored on the
    stack for the helper); to label miss if there is none."""
    a.op(STX | MEM | W, 10, key, -4)
    a.op(LD | IMM | DW, 1, BPF_PSEUDO_MAP_FD, 0, fd)
    a.op(0, 0, 0, 0, 0)                  # the second half of the 64-bit immediate
    a.op(ALU64 | MOV | X, 2, 10)
    a.op(ALU64 | ADD | K, 2, 0, 0, -4)
    a.op(JMP | CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM)
    a.jmp(JEQ, 0, 0, miss)


def _seen_word(a, seen_fd):
    """r0 = the SEEN word of generation r1, word r8; to SYN if the lookup fails."""
    a.op(ALU64 | MUL | K, 1, 0, 0, SEEN_WORDS)
    a.op(ALU64 | ADD | X, 1, 8)
    _lookup(a, 1, seen_fd, "synq")


def program(queues, map_fd, seen_fd):
    """The steering program for a TAP of `queues` queues: its flows' stamps in map_fd, the
    SYNs' generations in seen_fd."""
    rest = queues - 4
    a = _Asm()
    a.op(ALU64 | MOV | X, 6, 1)          # r6 = the skb (LD_ABS/LD_IND read through it)
    a.op(LDX | MEM | W, 7, 1, 0)         # r7 = skb->len (struct __sk_buff's first field)
    a.jmp(JLT, 7, 14, "rest1")
    a.ld_abs(H, 12)                      # the EtherType
    a.jmp(JEQ, 0, 0x0806, "ours")        # ARP
    a.jmp(JEQ, 0, 0x0800, "v4")
    a.jmp(JEQ, 0, 0x86DD, "v6")
    a.goto("rest1")                      # VLAN tags and the rest: one queue

    a.label("v4")
    a.jmp(JLT, 7, 34, "rest1")
    a.ld_abs(H, 20)
    a.op(ALU64 | AND | K, 0, 0, 0, 0x3FFF)   # RFC 791: MF or a fragment offset
    a.jmp(JNE, 0, 0, "frag")
    a.ld_abs(W, 26)
    a.op(ALU64 | MOV | X, 8, 0)          # r8 = source address ^ destination address
    a.ld_abs(W, 30)
    a.op(ALU64 | XOR | X, 8, 0)
    a.ld_abs(B, 14)
    a.op(ALU64 | AND | K, 0, 0, 0, 0x0F)
    a.op(ALU64 | LSH | K, 0, 0, 0, 2)
    a.op(ALU64 | ADD | K, 0, 0, 0, 14)
    a.op(ALU64 | MOV | X, 9, 0)          # r9 = the transport header's offset
    a.ld_abs(B, 23)                      # the protocol
    a.jmp(JEQ, 0, 6, "tcp")
    a.jmp(JEQ, 0, 17, "ports")
    a.goto("hash")

    a.label("v6")
    a.jmp(JLT, 7, 54, "rest1")
    a.ld_abs(B, 20)                      # the next header
    a.jmp(JEQ, 0, 44, "frag")            # RFC 8200 4.5: a Fragment header
    a.op(ALU64 | MOV | X, 9, 0)          # r9 = the next header, for now
    a.ld_abs(W, 22)
    a.op(ALU64 | MOV | X, 8, 0)
    for off in range(26, 54, 4):         # both addresses' words XORed
        a.ld_abs(W, off)
        a.op(ALU64 | XOR | X, 8, 0)
    a.op(ALU64 | MOV | X, 0, 9)
    a.op(ALU64 | MOV | K, 9, 0, 0, 54)   # r9 = the transport header's offset
    a.jmp(JEQ, 0, 6, "tcp")
    a.jmp(JEQ, 0, 17, "ports")
    a.jmp(JNE, 0, 58, "hash")
    a.jmp(JLT, 7, 55, "hash")
    a.ld_abs(B, 54)                      # ICMPv6 type: RFC 4861's 133..137 are ARP's kin
    a.jmp(JLT, 0, 133, "hash")
    a.jmp(JGT, 0, 137, "hash")
    a.goto("ours")

    a.label("tcp")
    a.op(ALU64 | MOV | X, 0, 9)
    a.op(ALU64 | ADD | K, 0, 0, 0, 14)
    a.jmp(JGT, 0, 0, "hash", reg=7)      # no flags byte: addresses only
    _ports(a)
    a.ld_ind(B, 9, 13)
    a.op(ALU64 | AND | K, 0, 0, 0, 0x12)
    a.jmp(JEQ, 0, 0x02, "syn")           # SYN without ACK (RFC 9293 3.1 control bits)
    a.goto("hash")
    a.label("ports")
    a.op(ALU64 | MOV | X, 0, 9)
    a.op(ALU64 | ADD | K, 0, 0, 0, 4)
    a.jmp(JGT, 0, 0, "hash", reg=7)
    _ports(a)

    a.label("hash")
    a.op(ALU | MUL | K, 8, 0, 0, GOLDEN - (1 << 32))   # 32-bit: Fibonacci hashing
    a.op(ALU | RSH | K, 8, 0, 0, BUCKET_SHIFT)          # r8 = the bucket, 0..STAMPS-1
    _lookup(a, 8, map_fd, "rest")
    a.op(LDX | MEM | DW, 9, 0, 0)        # r9 = when we last sent in this bucket
    a.op(JMP | CALL, 0, 0, 0, FN_KTIME_GET_NS)
    a.op(ALU64 | SUB | X, 0, 9)
    a.op(ALU64 | RSH | K, 0, 0, 0, OURS_NS_SHIFT)
    a.jmp(JLT, 0, OURS_UNITS, "ours")
    a.label("rest")
    a.op(ALU64 | MOV | X, 0, 8)
    a.op(ALU | MOD | K, 0, 0, 0, rest)
    a.op(ALU64 | ADD | K, 0, 0, 0, 1)
    a.op(JMP | EXIT)
    a.label("ours")
    a.ret(0)

    # a SYN: to AGAIN when its two bits are set in this generation of SEEN or the last one
    # (a retransmission after RFC 6298 2.1's 1 s: within 1.07-2.15 s), else to SYN; its bits
    # set. Both bits in one 64-bit word: one lookup per generation (a blocked Bloom filter)
    a.label("syn")
    a.ld_ind(W, 9, 4)                    # the sequence number: the same SYN again, not only
    a.op(ALU64 | XOR | X, 8, 0)          # its flow (a flood reusing ports picks new ones)
    a.op(JMP | CALL, 0, 0, 0, FN_KTIME_GET_NS)
    a.op(ALU64 | RSH | K, 0, 0, 0, GEN_SHIFT)
    a.op(ALU64 | MOD | K, 0, 0, 0, GENS)
    a.op(ALU64 | MOV | X, 7, 0)          # r7 = this generation (the length is not needed now)
    a.op(ALU | MUL | K, 8, 0, 0, GOLDEN - (1 << 32))   # r8: 32 hash bits, the top ones used
    a.op(ALU64 | MOV | K, 9, 0, 0, 0)    # r9 = the word's two bits, from the hash's bits
    for shift in (SEEN_BIT1_SHIFT, SEEN_BIT2_SHIFT):
        a.op(ALU64 | MOV | X, 2, 8)
        a.op(ALU64 | RSH | K, 2, 0, 0, shift)
        a.op(ALU64 | AND | K, 2, 0, 0, 63)
        a.op(ALU64 | MOV | K, 1, 0, 0, 1)
        a.op(ALU64 | LSH | X, 1, 2)
        a.op(ALU64 | OR | X, 9, 1)
    a.op(ALU64 | RSH | K, 8, 0, 0, 32 - SEEN_WORD_BITS)   # r8 = the word in a generation
    a.op(ALU64 | MOV | X, 1, 7)
    _seen_word(a, seen_fd)
    a.op(LDX | MEM | DW, 3, 0, 0)
    a.op(ALU64 | MOV | X, 2, 3)
    a.op(ALU64 | AND | X, 2, 9)
    a.jmp(JEQ, 2, 0, "again", reg=9)
    a.op(ALU64 | OR | X, 3, 9)
    a.op(STX | MEM | DW, 0, 3, 0)        # a lost race with another CPU loses one mark: harmless
    a.op(ALU64 | MOV | X, 1, 7)
    a.op(ALU64 | ADD | K, 1, 0, 0, GENS - 1)
    a.op(ALU64 | MOD | K, 1, 0, 0, GENS)  # the last generation
    _seen_word(a, seen_fd)
    a.op(LDX | MEM | DW, 3, 0, 0)
    a.op(ALU64 | AND | X, 3, 9)
    a.jmp(JEQ, 3, 0, "again", reg=9)
    a.label("synq")
    a.ret(queues - 2)
    a.label("again")
    a.ret(queues - 3)
    a.label("frag")
    a.ret(queues - 1)
    a.label("rest1")
    a.ret(1)
    return a.code()


# the flow hash's bucket of a frame we send (-1: its flow must not come to OURS by it: not IP,
# a RST, a fragment), the same the program computes for a frame it receives: in the core, so
# compiled (core/wire/vnet.py; issue 13: it runs before every frame's write)
from ustack.core.wire.vnet import flow_bucket as bucket  # noqa: E402 (the Python object)


_libc = None


def _bpf(cmd, attr):
    global _libc
    nr = SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, "bpf(2): no system call number for %s" % platform.machine())
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    r = _libc.syscall(ctypes.c_long(nr), ctypes.c_long(cmd), buf, ctypes.c_uint(len(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "bpf(%d): %s" % (cmd, os.strerror(e)))
    return r


def _array_map(name, entries):
    """A new mmap-able BPF array of `entries` 64-bit values (4-byte keys); its fd."""
    return _bpf(BPF_MAP_CREATE, struct.pack(
        "<IIIIIII16s", BPF_MAP_TYPE_ARRAY, 4, 8, entries, BPF_F_MMAPABLE, 0, 0,
        name).ljust(72, b"\0"))


def _mapped(fd, entries):
    """The array map fd's values, shared with the program."""
    return mmap.mmap(fd, entries * 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


class Steering:
    """The loaded program and its stamps for a TAP of `queues` queues: attach(fd) puts it on
    the TAP, mark(b, n) notes a frame we send, close() releases it all."""

    def __init__(self, queues):
        if queues < MIN_QUEUES:
            raise OSError(errno.EINVAL, "a steering program needs %d queues" % MIN_QUEUES)
        self.queues = queues
        self.map_fd = self.prog_fd = self.seen_fd = -1
        self.mm = self.seen = None
        self.stamps = None
        self.gen = -1           # the generation of SEEN the next one was cleared in
        self._zero = bytes(SEEN_WORDS * 8)
        try:
            self.map_fd = _array_map(b"ustack_ours", STAMPS)
            self.mm = _mapped(self.map_fd, STAMPS)
            self.stamps = memoryview(self.mm).cast("Q")
            self.seen_fd = _array_map(b"ustack_seen", GENS * SEEN_WORDS)
            self.seen = _mapped(self.seen_fd, GENS * SEEN_WORDS)
            code = program(queues, self.map_fd, self.seen_fd)
            lic = ctypes.create_string_buffer(b"GPL")
            log = ctypes.create_string_buffer(65536)
            insns = ctypes.create_string_buffer(code, len(code))
            attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_SOCKET_FILTER, len(code) // 8,
                               ctypes.addressof(insns), ctypes.addressof(lic), 1, len(log),
                               ctypes.addressof(log), 0, 0, b"ustack_steer").ljust(128, b"\0")
            try:
                self.prog_fd = _bpf(BPF_PROG_LOAD, attr)
            except OSError as e:
                if e.errno == errno.EACCES or e.errno == errno.EINVAL:
                    tail = log.value.decode("ascii", "replace").strip()
                    raise OSError(e.errno, "bpf: the verifier refused the program: %s" % (
                        tail.splitlines()[-1] if tail else e.strerror))
                raise
        except BaseException:
            self.close()
            raise

    def attach(self, fd):
        import fcntl
        fcntl.ioctl(fd, TUNSETSTEERINGEBPF, struct.pack("i", self.prog_fd))

    @staticmethod
    def detach(fd):
        import fcntl
        fcntl.ioctl(fd, TUNSETSTEERINGEBPF, struct.pack("i", -1))

    def mark(self, b, n, now_ns):
        k = vnet.flow_bucket(b, n)   # `bucket`, called as the core's C function when compiled
        if k >= 0:
            self.stamps[k] = now_ns

    def rotate(self, now_ns):
        """Clear SEEN's next generation once during the current one (its bits are 2 to 3
        generations old)."""
        g = now_ns >> GEN_SHIFT
        if g != self.gen:
            self.gen = g
            k = (g + 1) % GENS
            self.seen[k * SEEN_WORDS * 8:(k + 1) * SEEN_WORDS * 8] = self._zero

    def close(self):
        if self.stamps is not None:
            self.stamps.release()
            self.stamps = None
        for m in (self.mm, self.seen):
            if m is not None:
                m.close()
        self.mm = self.seen = None
        for fd in (self.prog_fd, self.map_fd, self.seen_fd):
            if fd >= 0:
                os.close(fd)
        self.prog_fd = self.map_fd = self.seen_fd = -1
