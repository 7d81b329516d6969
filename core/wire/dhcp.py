"""DHCPv4 message format (RFC 2131 section 2, options RFC 2132). No state, no I/O.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +---------------+---------------+---------------+---------------+
    |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
    +---------------+---------------+---------------+---------------+
    |                            xid (4)                            |
    +-------------------------------+-------------------------------+
    |           secs (2)            |           flags (2)           |
    +-------------------------------+-------------------------------+
    |                          ciaddr  (4)                          |
    |                          yiaddr  (4)                          |
    |                          siaddr  (4)                          |
    |                          giaddr  (4)                          |
    +---------------------------------------------------------------+
    |                          chaddr  (16)                         |
    |                          sname   (64)                         |
    |                          file    (128)                        |
    +---------------------------------------------------------------+
    |          magic cookie 99.130.83.99, then options (variable)   |
    +---------------------------------------------------------------+
"""
from ustack.core.compat import const

OP = const(0)
HTYPE = const(1)
HLEN = const(2)
XID = const(4)
SECS = const(8)
FLAGS = const(10)
CIADDR = const(12)
YIADDR = const(16)
SIADDR = const(20)
GIADDR = const(24)
CHADDR = const(28)
SNAME = const(44)
SNAME_LEN = const(64)
FILE = const(108)
FILE_LEN = const(128)
MAGIC = const(236)
OPTIONS = const(240)
MIN_LEN = const(300)   # RFC 1542 2.1: BOOTP relays drop shorter messages; we pad to it

BOOTREQUEST = const(1)
BOOTREPLY = const(2)
HTYPE_ETHERNET = const(1)

SERVER_PORT = const(67)
CLIENT_PORT = const(68)

MAGIC_COOKIE = b"\x63\x82\x53\x63"  # RFC 2131 section 3

# RFC 2132 option codes
OPT_PAD = const(0)
OPT_SUBNET_MASK = const(1)
OPT_ROUTER = const(3)
OPT_DNS = const(6)
OPT_HOST_NAME = const(12)
OPT_DOMAIN_NAME = const(15)
OPT_MTU = const(26)
OPT_REQUESTED_IP = const(50)
OPT_LEASE_TIME = const(51)
OPT_OVERLOAD = const(52)
OPT_MSG_TYPE = const(53)
OPT_SERVER_ID = const(54)
OPT_PARAM_LIST = const(55)
OPT_RENEWAL_T1 = const(58)
OPT_REBINDING_T2 = const(59)
OPT_CLIENT_ID = const(61)
OPT_END = const(255)

# RFC 2132 9.6 message types
DISCOVER = const(1)
OFFER = const(2)
REQUEST = const(3)
DECLINE = const(4)
ACK = const(5)
NAK = const(6)
RELEASE = const(7)

# what we ask for (RFC 2132 9.8): mask, router, DNS, domain, MTU, lease, T1, T2
PARAMS = b"\x01\x03\x06\x0f\x1a\x33\x3a\x3b"


def put_opt(b, o, code, data, n):
    """Option code with n bytes of data at o; returns the offset after it."""
    b[o] = code
    b[o + 1] = n
    i = 0
    while i < n:
        b[o + 2 + i] = data[i]
        i += 1
    return o + 2 + n


def put_opt1(b, o, code, v):
    b[o] = code
    b[o + 1] = 1
    b[o + 2] = v
    return o + 3
