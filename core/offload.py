"""Offloads through the driver (issue 13), the parts only a stack with an offloading driver
needs: receiving GRO super-frames into the pool's large buffers, and naming a driver's
capabilities. Stack.add_interface imports this module for a driver with CAP_TSO4/6 or
CAP_GRO (the TAP's virtio-net header on CPython); MCU drivers have no caps, so no MicroPython
board ships it (ports/micropython/build.py FEATURE_MODULES "offload").

A CAP_GRO driver reads with recv_split(buf, spill, at) -> n: the frame's first len(buf) bytes
into buf, the rest into spill from offset at on, n its whole length (hal/tap.py: one readv).
"""
from ustack.core.iface import CAP_CSUM_TX, CAP_CSUM_RX, CAP_TSO4, CAP_TSO6, CAP_GRO

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
