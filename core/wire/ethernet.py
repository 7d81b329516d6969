"""Ethernet II framing (IEEE 802.3), with 802.1Q tags recognised.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                   Destination MAC (6 octets)                  |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   Source MAC (6 octets)       +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   EtherType (or 0x8100 + TCI)  |  Payload ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""
from ustack.core.compat import const

DST = const(0)
SRC = const(6)
TYPE = const(12)
HDR_LEN = const(14)
VLAN_LEN = const(4)
MIN_FRAME = const(60)       # without FCS; shorter frames are padded on send
MAX_FRAME = const(1514)

ETH_P_IPV4 = const(0x0800)
ETH_P_ARP = const(0x0806)
ETH_P_VLAN = const(0x8100)  # IEEE 802.1Q
ETH_P_QINQ = const(0x88A8)  # IEEE 802.1ad
ETH_P_IPV6 = const(0x86DD)

BROADCAST = b"\xff\xff\xff\xff\xff\xff"


def write_header(b, o, dst, src, etype):
    i = 0
    while i < 6:
        b[o + i] = dst[i]
        b[o + 6 + i] = src[i]
        i += 1
    b[o + 12] = etype >> 8
    b[o + 13] = etype & 0xFF


def is_multicast(b, o):
    """Group bit (I/G) of a MAC address; broadcast is a group address too."""
    return b[o] & 1


def mac_str(m):
    return ":".join("%02x" % x for x in m)


def parse_mac(s):
    parts = s.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError("bad MAC address %r" % (s,))
    return bytes(int(p, 16) for p in parts)
