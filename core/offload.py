"""Offloads through the driver (issue 13), the parts only a stack with an offloading driver
needs: receiving GRO super-frames into the pool's large buffers, cutting TCP segments of many
MSS for a driver that cannot (software GSO), and naming a driver's capabilities. Stack.add_interface imports this module for a driver with CAP_TSO4/6,
CAP_GRO or CAP_GSO_SOFT (the TAP's virtio-net header on CPython); MCU drivers have no caps, so no MicroPython
board ships it (ports/micropython/build.py FEATURE_MODULES "offload").

A CAP_GRO driver reads with recv_split(buf, spill, at) -> n: the frame's first len(buf) bytes
into buf, the rest into spill from offset at on, n its whole length (hal/tap.py: one readv).
"""
from ustack.core.iface import CAP_CSUM_TX, CAP_CSUM_RX, CAP_TSO4, CAP_TSO6, CAP_GRO
from ustack.core import checksum as CS   # CS.csum (compiled: checksum_c.pxd's)
from ustack.core.buf import OFL_GSO_SHIFT

ETH_MIN_FRAME = 60   # IEEE 802.3: the shortest frame, less the FCS
TCP_FIN = 0x01       # RFC 9293 3.1 control bits
TCP_PSH = 0x08
TCP_CWR = 0x80       # RFC 3168 6.1.2: on the first new data after a window reduction only

CAP_NAMES = (("csum", CAP_CSUM_TX | CAP_CSUM_RX), ("tso", CAP_TSO4 | CAP_TSO6),
             ("gro", CAP_GRO))


def caps_str(caps):
    """The offloads a caps value holds, as `ustack up`'s ready line names them
    ("csum,tso,gro"; "none")."""
    out = [n for n, bits in CAP_NAMES if caps & bits]
    return ",".join(out) if out else "none"


def recv_large(iface, pb):
    """CAP_GRO: read iface's next frame into pb, its overflow (a super-frame may be up to
    64 KB) into the top free large buffer past pb's size (the driver's recv_split: one
    readv of [header, pb, large buffer]). A frame that fits pb costs no large buffer and no
    copy; a larger one takes that large buffer (the one the overflow went to: alloc_large
    hands out the top of the free stack), pb's part is copied in front and pb goes back to
    the pool. The frame's length is in the returned buffer's n (0: none). Nothing is held
    between polls, so an idle pool is full."""
    pool = iface.stack.pool
    k = pool.nlarge
    if k == 0:
        iface.stats.rx_no_large += 1  # the frame waits in the driver
        pb.n = 0
        return pb
    spill = pool.large_free[k - 1]
    size = pb.size
    n = iface.driver.recv_split(pb.buf, spill.buf, size)
    if n <= size:
        pb.n = n
        return pb
    big = pool.alloc_large()  # spill itself: nothing ran since the read
    big.mv[0:size] = pb.mv[0:size]  # CPython only (no board ships this module)
    pool.free(pb)
    big.n = n
    iface.stats.rx_gro_frames += 1
    return big


def gso_send(iface, pb, n):
    """CAP_GSO_SOFT: cut the TCP/IPv4 frame pb.buf[0:n] (link header, IPv4 header, TCP
    header with its options, then more than one segment's payload; pb.offload names the
    segment size) into frames of that size and hand each to the driver, as Linux's GSO
    does in front of a driver without TSO (and as the kernel cuts a TSO frame we hand a
    TAP with offloads). Each frame: the headers copied, then its part of the payload; IPv4
    Total Length, Identification (the super-frame's + k, RFC 6864 4.1: DF datagrams) and
    header checksum; TCP sequence number (+ the offset) and checksum (RFC 9293 3.1, over
    the pseudo-header); FIN and PSH on the last frame only, CWR on the first only (RFC
    3168 6.1.2). The headers' sums are taken once with the fields that change zeroed (RFC
    1071: a sum adds in any order), so a frame costs one pass over its payload. The frames
    go through one pool buffer in turn; pb stays the caller's (its header fields
    are left zeroed). Counted as Interface.transmit counts (tx_packets, tx_bytes, tx_busy,
    tx_no_buffer) and captured per frame; tx_gso_frames once."""
    st = iface.stats
    stack = iface.stack
    pool = stack.pool
    drv = iface.driver
    cap = stack.capture
    b = pb.buf
    src = pb.mv
    mss = pb.offload >> OFL_GSO_SHIFT
    l3 = 14
    if b[12] == 0x81 and b[13] == 0x00:
        l3 = 18   # IEEE 802.1Q: the tag before the EtherType
    ihl = (b[l3] & 0x0F) << 2
    l4 = l3 + ihl
    thl = (b[l4 + 12] >> 4) << 2
    hdr = l4 + thl
    data = ((b[l3 + 2] << 8) | b[l3 + 3]) - ihl - thl
    ident = (b[l3 + 4] << 8) | b[l3 + 5]
    shi = (b[l4 + 4] << 8) | b[l4 + 5]    # the sequence number in 16-bit halves
    slo = (b[l4 + 6] << 8) | b[l4 + 7]
    fl = b[l4 + 13]
    # what changes from frame to frame is zeroed in pb's headers (copied so to each frame)
    # and added to the sums per frame: IPv4 Total Length, Identification, checksum; TCP
    # sequence number, flags, checksum
    i = 2
    while i < 6:
        b[l3 + i] = 0
        b[l4 + 2 + i] = 0
        i += 1
    b[l3 + 10] = 0
    b[l3 + 11] = 0
    b[l4 + 13] = 0
    b[l4 + 16] = 0
    b[l4 + 17] = 0
    ipsum = CS.csum(src, l3, ihl, 0)
    # the pseudo-header's addresses and protocol (RFC 9293 3.1) and the TCP header
    tsum = CS.csum(src, l3 + 12, 8, 6 + thl)
    tsum = CS.csum(src, l4, thl, tsum)
    sent = 0
    nbytes = 0
    busy = 0
    p = 0
    k = 0
    # one pool buffer holds every frame in turn: the driver has written (or copied) a frame
    # when its send returns, so the next overwrites it - the headers are copied once, only
    # the fields that change are rewritten. Written through its memoryview: compiled, a
    # typed view (offload.pxd), so the copies are memcpy and the stores C stores
    f = pool.alloc()
    if f is None:
        st.tx_no_buffer += 1   # nothing is cut: the sender's recovery resends it
        data = 0
    else:
        dst = f.mv
        fb = f.buf
        dst[0:hdr] = src[0:hdr]
    while p < data:
        m = data - p
        f2 = fl
        if m > mss:
            m = mss
            f2 = fl & ~(TCP_FIN | TCP_PSH)
        if k:
            f2 &= ~TCP_CWR
        dst[hdr:hdr + m] = src[hdr + p:hdr + p + m]
        t = ihl + thl + m
        dst[l3 + 2] = t >> 8
        dst[l3 + 3] = t & 0xFF
        i = (ident + k) & 0xFFFF
        dst[l3 + 4] = i >> 8
        dst[l3 + 5] = i & 0xFF
        c = ipsum + t + i
        c = (c & 0xFFFF) + (c >> 16)
        c = ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF
        dst[l3 + 10] = c >> 8
        dst[l3 + 11] = c & 0xFF
        lo = slo + p
        hi = (shi + (lo >> 16)) & 0xFFFF
        lo &= 0xFFFF
        dst[l4 + 4] = hi >> 8
        dst[l4 + 5] = hi & 0xFF
        dst[l4 + 6] = lo >> 8
        dst[l4 + 7] = lo & 0xFF
        dst[l4 + 13] = f2
        c = ~CS.csum(src, hdr + p, m, tsum + m + hi + lo + f2) & 0xFFFF
        dst[l4 + 16] = c >> 8
        dst[l4 + 17] = c & 0xFF
        fn = hdr + m
        while fn < ETH_MIN_FRAME:
            dst[fn] = 0
            fn += 1
        if cap is not None:
            cap(iface, fb, fn, True)
        if drv.send(fb, fn):
            sent += 1
            nbytes += fn
        else:
            busy += 1
        p += m
        k += 1
    if f is not None:
        pool.free(f)
    st.tx_gso_frames += 1
    st.tx_packets += sent
    st.tx_bytes += nbytes
    if busy:
        st.tx_busy += busy
