"""ICMPv4 (RFC 792).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Identifier (echo) / unused  |  Sequence (echo) / MTU (4/4)  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Data: echo payload, or the offending IP header + 8 bytes  |
"""
from ustack.core.compat import const

TYPE = const(0)
CODE = const(1)
CSUM = const(2)
ID = const(4)
SEQ = const(6)
HDR_LEN = const(8)

ECHO_REPLY = const(0)
DEST_UNREACH = const(3)
SOURCE_QUENCH = const(4)
REDIRECT = const(5)
ECHO_REQUEST = const(8)
TIME_EXCEEDED = const(11)
PARAM_PROBLEM = const(12)

# Destination Unreachable codes (RFC 792, RFC 1191)
NET_UNREACH = const(0)
HOST_UNREACH = const(1)
PROTO_UNREACH = const(2)
PORT_UNREACH = const(3)
FRAG_NEEDED = const(4)
ADMIN_PROHIBITED = const(13)  # RFC 1812

# Time Exceeded codes (RFC 792)
TTL_EXCEEDED = const(0)
FRAG_REASS_EXCEEDED = const(1)


def is_error(t):
    return t == DEST_UNREACH or t == SOURCE_QUENCH or t == REDIRECT or \
        t == TIME_EXCEEDED or t == PARAM_PROBLEM
