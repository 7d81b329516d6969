"""ARP for IPv4 over Ethernet (RFC 826).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      Hardware type (1)        |     Protocol type (0x0800)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  HLEN (6)     |  PLEN (4)     |          Operation            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Sender hardware address (6) | Sender protocol address (4)    |
    |  Target hardware address (6) | Target protocol address (4)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""
from ustack.core.compat import const

HTYPE = const(0)
PTYPE = const(2)
HLEN = const(4)
PLEN = const(5)
OPER = const(6)
SHA = const(8)
SPA = const(14)
THA = const(18)
TPA = const(24)
LEN = const(28)

HTYPE_ETHERNET = const(1)
OP_REQUEST = const(1)
OP_REPLY = const(2)


def write(b, o, op, sha, spa, tha, tpa):
    b[o] = 0
    b[o + 1] = HTYPE_ETHERNET
    b[o + 2] = 0x08
    b[o + 3] = 0x00
    b[o + 4] = 6
    b[o + 5] = 4
    b[o + 6] = 0
    b[o + 7] = op
    i = 0
    while i < 6:
        b[o + SHA + i] = sha[i]
        b[o + THA + i] = tha[i]
        i += 1
    i = 0
    while i < 4:
        b[o + SPA + i] = spa[i]
        b[o + TPA + i] = tpa[i]
        i += 1
