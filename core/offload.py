"""Offloads through the driver (issue 13), the parts only a stack with an offloading driver
needs: receiving GRO super-frames into the pool's large buffers, and naming a driver's
capabilities. Stack.add_interface imports this module for a driver with CAP_TSO4/6 or
CAP_GRO (the TAP's virtio-net header on CPython); MCU drivers have no caps, so no MicroPython
board ships it (ports/micropython/build.py FEATURE_MODULES "offload").
"""
from ustack.core.iface import CAP_CSUM_TX, CAP_CSUM_RX, CAP_TSO4, CAP_TSO6, CAP_GRO
from ustack.core.wire.fields import copy

CAP_NAMES = (("csum", CAP_CSUM_TX | CAP_CSUM_RX), ("tso", CAP_TSO4 | CAP_TSO6),
             ("gro", CAP_GRO))


def caps_str(caps):
    """The offloads a caps value holds, as `ustack up`'s ready line names them
    ("csum,tso,gro"; "none")."""
    out = [n for n, bits in CAP_NAMES if caps & bits]
    return ",".join(out) if out else "none"


def recv_large(iface, pb):
    """CAP_GRO: read iface's next frame into a large buffer (a super-frame may be up to
    64 KB). A frame that fits pb is copied there and pb returned; a larger one comes back in
    the large buffer itself (pb goes back to the pool, a fresh large buffer waits for the
    next frame; given back when the driver has nothing). The frame's length is in the
    returned buffer's n (0: none)."""
    pool = iface.stack.pool
    big = iface.rx_large
    if big is None:
        big = pool.alloc_large()
        if big is None:
            iface.stats.rx_no_large += 1  # the frame waits in the driver
            pb.n = 0
            return pb
        big.epoch = -1  # held between polls: no handler's exception reclaims it
        iface.rx_large = big
    n = iface.driver.recv_into(big.buf)
    if n <= pb.size:
        if n:
            copy(pb.buf, 0, big.buf, 0, n)
        else:
            iface.rx_large = None  # nothing waits: the pool has it back while idle
            pool.free(big)
        pb.n = n
        return pb
    iface.rx_large = None
    pool.free(pb)
    big.epoch = pool.epoch  # now this poll's frame (Stack._recover)
    big.n = n
    iface.stats.rx_gro_frames += 1
    return big
