"""UDP header (RFC 768).

     0      7 8     15 16    23 24    31
    +--------+--------+--------+--------+
    |   Source Port   |   Dest. Port    |
    +--------+--------+--------+--------+
    |     Length      |    Checksum     |
    +--------+--------+--------+--------+
"""
from ustack.core.compat import const

SPORT = const(0)
DPORT = const(2)
LEN = const(4)
CSUM = const(6)
HDR_LEN = const(8)
