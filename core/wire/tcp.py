"""TCP header (RFC 9293 section 3.1) and option kinds (RFC 9293, RFC 7323, RFC 2018).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sequence Number                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Acknowledgment Number                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Data |       |C|E|U|A|P|R|S|F|                               |
    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    |       |       |R|E|G|K|H|T|N|N|                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Checksum            |         Urgent Pointer        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           [Options]                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               :
    :                             Data                              :
    :                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Options: kind 0 end, 1 no-op, 2 MSS (len 4), 3 window scale (len 3, RFC 7323 2),
4 SACK permitted (len 2, RFC 2018), 5 SACK blocks (len 2+8n), 8 timestamps (len 10,
RFC 7323 3).
"""
from ustack.core.compat import const

SPORT = const(0)
DPORT = const(2)
SEQ = const(4)
ACK = const(8)
DOFF = const(12)   # data offset in the high nibble, 32-bit words
FLAGS = const(13)
WIN = const(14)
CSUM = const(16)
URP = const(18)
HDR_LEN = const(20)
MAX_HDR_LEN = const(60)

FIN = const(0x01)
SYN = const(0x02)
RST = const(0x04)
PSH = const(0x08)
ACK_F = const(0x10)
URG = const(0x20)
ECE = const(0x40)
CWR = const(0x80)

OPT_EOL = const(0)
OPT_NOP = const(1)
OPT_MSS = const(2)
OPT_WS = const(3)
OPT_SACK_PERM = const(4)
OPT_SACK = const(5)
OPT_TS = const(8)

LEN_MSS = const(4)
LEN_WS = const(3)
LEN_SACK_PERM = const(2)
LEN_TS = const(10)

MAX_WSCALE = const(14)  # RFC 7323 2.3


def write_fixed(b, o, sport, dport, hlen, flags, win):
    """Everything but the sequence and acknowledgment numbers (bytes 4-11, written by the
    caller: a connection writes them from its relative values, tcp/seq.py put_rel); zero
    checksum (IPv4 output fills it) and urgent pointer."""
    b[o] = sport >> 8
    b[o + 1] = sport & 0xFF
    b[o + 2] = dport >> 8
    b[o + 3] = dport & 0xFF
    b[o + 12] = (hlen >> 2) << 4
    b[o + 13] = flags
    b[o + 14] = win >> 8
    b[o + 15] = win & 0xFF
    b[o + 16] = 0
    b[o + 17] = 0
    b[o + 18] = 0
    b[o + 19] = 0


def write_header_rel(b, o, sport, dport, seq, shi, slo, ack, ahi, alo, hlen, flags, win):
    """A connection's header: seq and ack relative to bases shi:slo and ahi:alo (16-bit
    halves), written as base + value modulo 2**32 in 16-bit halves with carry - no 32-bit
    int is formed (tcp/seq.py put_rel, inlined: one call per segment)."""
    write_fixed(b, o, sport, dport, hlen, flags, win)
    lo = slo + (seq & 0xFFFF)
    hi = shi + (seq >> 16) + (lo >> 16)
    b[o + 4] = (hi >> 8) & 0xFF
    b[o + 5] = hi & 0xFF
    b[o + 6] = (lo >> 8) & 0xFF
    b[o + 7] = lo & 0xFF
    lo = alo + (ack & 0xFFFF)
    hi = ahi + (ack >> 16) + (lo >> 16)
    b[o + 8] = (hi >> 8) & 0xFF
    b[o + 9] = hi & 0xFF
    b[o + 10] = (lo >> 8) & 0xFF
    b[o + 11] = lo & 0xFF


def write_header(b, o, sport, dport, seq, ack, hlen, flags, win):
    """A whole header with absolute 32-bit seq and ack (segments outside a connection: a
    32-bit value is a heap object on a 32-bit MCU, so the data path uses write_fixed)."""
    write_fixed(b, o, sport, dport, hlen, flags, win)
    b[o + 4] = (seq >> 24) & 0xFF
    b[o + 5] = (seq >> 16) & 0xFF
    b[o + 6] = (seq >> 8) & 0xFF
    b[o + 7] = seq & 0xFF
    b[o + 8] = (ack >> 24) & 0xFF
    b[o + 9] = (ack >> 16) & 0xFF
    b[o + 10] = (ack >> 8) & 0xFF
    b[o + 11] = ack & 0xFF


def flag_names(f):
    """'SA', 'R.', 'F.' ... tcpdump-style, for tests and traces (not the hot path)."""
    s = ""
    for bit, ch in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U")):
        if f & bit:
            s += ch
    if f & ACK_F:
        s += "."
    return s
