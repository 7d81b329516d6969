"""The virtio-net header (struct virtio_net_hdr, virtio 1.x section 5.1.6; Linux
include/uapi/linux/virtio_net.h) a TAP opened with IFF_VNET_HDR puts in front of every frame
each way (hal/tap.py, issue 13). Ten bytes, little-endian (virtio 1.x; TUNSETVNETLE):

     0        1          2..3      4..5      6..7        8..9
    +-------+----------+---------+---------+-----------+------------+
    | flags | gso_type | hdr_len | gso_size| csum_start| csum_offset|
    +-------+----------+---------+---------+-----------+------------+

flags NEEDS_CSUM: the checksum at csum_start + csum_offset holds only the pseudo-header sum;
whoever takes the frame completes it over [csum_start, end). DATA_VALID (received only): the
checksum was checked. gso_type TCPV4/TCPV6: the frame is a TCP segment of many gso_size-byte
segments (hdr_len: its headers), cut by the kernel on the way out, merged by it (GRO) on the
way in. Formats only: no state, no I/O; the fields are read and written by index."""
from ustack.core.compat import const

HDR_LEN = const(10)
F_NEEDS_CSUM = const(1)
F_DATA_VALID = const(2)
GSO_NONE = const(0)
GSO_TCPV4 = const(1)
GSO_TCPV6 = const(4)
# core/buf.py PacketBuffer.offload (copied: a wire module imports no stack module)
OFL_CSUM = const(1)
OFL_PARTIAL = const(2)
OFL_GSO_SHIFT = const(2)


def write(h, flags, gso_type, hdr_len, gso_size, csum_start, csum_offset):
    h[0] = flags
    h[1] = gso_type
    h[2] = hdr_len & 0xFF
    h[3] = hdr_len >> 8
    h[4] = gso_size & 0xFF
    h[5] = gso_size >> 8
    h[6] = csum_start & 0xFF
    h[7] = csum_start >> 8
    h[8] = csum_offset & 0xFF
    h[9] = csum_offset >> 8


def gso_size(h):
    return h[4] | (h[5] << 8)


def rx_offload(h):
    """What a received header says, as PacketBuffer.offload: OFL_CSUM when the checksum
    needs no check (DATA_VALID; or NEEDS_CSUM: a local sender left it partial - OFL_PARTIAL -
    the data never crossed a wire), and a super-frame's segment size."""
    o = 0
    if h[0] & F_NEEDS_CSUM:
        o = OFL_CSUM | OFL_PARTIAL
    elif h[0] & F_DATA_VALID:
        o = OFL_CSUM
    if h[1] != GSO_NONE:
        o |= gso_size(h) << OFL_GSO_SHIFT
    return o


def for_frame(h, b, n, offload):
    """Fill h for the Ethernet frame b[:n] the stack built with pb.offload `offload`: a
    partial TCP/UDP checksum to complete (OFL_CSUM), a TCP segment to cut into segments of
    offload >> OFL_GSO_SHIFT bytes. A frame that is not TCP/UDP over untagged or 802.1Q
    IPv4/IPv6 gets a plain header (all zero). False when the header is plain."""
    o = 14
    et = (b[12] << 8) | b[13]
    if et == 0x8100 and n >= 18:
        et = (b[16] << 8) | b[17]
        o = 18
    l4 = 0
    proto = 0
    gt = GSO_NONE
    if et == 0x0800 and n >= o + 20:
        l4 = o + ((b[o] & 0x0F) << 2)
        proto = b[o + 9]
        gt = GSO_TCPV4
    elif et == 0x86DD and n >= o + 40:
        l4 = o + 40  # the core offloads only datagrams without extension headers
        proto = b[o + 6]
        gt = GSO_TCPV6
    if proto == 6 and n >= l4 + 20:
        co = 16
    elif proto == 17 and n >= l4 + 8:
        co = 6
        gt = GSO_NONE  # UDP is never cut (no UDP segmentation asked of the kernel)
    else:
        write(h, 0, GSO_NONE, 0, 0, 0, 0)
        return False
    seg = offload >> OFL_GSO_SHIFT
    if not seg:
        gt = GSO_NONE
    flags = 0
    cs = 0
    if offload & OFL_CSUM:
        flags = F_NEEDS_CSUM
        cs = l4
    else:
        co = 0
    if gt == GSO_NONE:
        write(h, flags, GSO_NONE, 0, 0, cs, co)
    else:
        write(h, flags, gt, l4 + ((b[l4 + 12] >> 4) << 2), seg, cs, co)
    return True


# The TAP steering program's flow hash (hal/tapsteer.py builds the program and re-exports
# this as tapsteer.bucket): here so that it is compiled with the core, as it runs for every
# frame the TAP sends (issue 13: 1.3-1.6 us interpreted, before each frame's write).
FLOW_GOLDEN = const(0x9E3779B1)   # Fibonacci hashing's 2**32 / phi
FLOW_SHIFT = const(20)            # 32 - 12: 4096 buckets


def flow_bucket(b, n):
    """The flow hash's bucket of the Ethernet frame b[:n], or -1 for a frame whose flow must not
    be steered by it: not IP, a fragment (IPv4 offset or MF; IPv6's fragment header), a TCP
    RST. The IPv4 or IPv6 addresses xor-folded in 32-bit words, TCP's and UDP's ports with
    them, times FLOW_GOLDEN, the top 12 of 32 bits."""
    if not isinstance(b, bytearray):
        b = bytearray(b)  # bytes from the MicroPython bridge (a copy; the core's are bytearrays)
    if n > len(b):
        n = len(b)  # never past the buffer (compiled, its bytes are read unchecked)
    return _flow_hash(b, n)


def _flow_hash(b, n):
    if n < 34:
        return -1
    t = (b[12] << 8) | b[13]
    if t == 0x0800:
        if ((b[20] << 8) | b[21]) & 0x3FFF:
            return -1
        p = b[23]
        h = (((b[26] ^ b[30]) << 24) | ((b[27] ^ b[31]) << 16) | ((b[28] ^ b[32]) << 8)
             | (b[29] ^ b[33]))
        o = 14 + ((b[14] & 0x0F) << 2)
    elif t == 0x86DD:
        if n < 54:
            return -1
        p = b[20]
        if p == 44:
            return -1
        h = 0
        i = 22
        while i < 54:
            h ^= (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]
            i += 4
        o = 54
    else:
        return -1
    if p == 6:
        if n >= o + 14:
            if b[o + 13] & 0x04:
                return -1
            h ^= ((b[o] << 8) | b[o + 1]) ^ ((b[o + 2] << 8) | b[o + 3])
    elif p == 17 and n >= o + 4:
        h ^= ((b[o] << 8) | b[o + 1]) ^ ((b[o + 2] << 8) | b[o + 3])
    return ((h * FLOW_GOLDEN) & 0xFFFFFFFF) >> FLOW_SHIFT
