# The integer constants of wire/tcp.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module
# by (`cimport ... as T`), so T.X compiles to a literal; names not here stay Python
# attributes. tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    SPORT = 0
    DPORT = 2
    SEQ = 4
    ACK = 8
    DOFF = 12
    FLAGS = 13
    WIN = 14
    CSUM = 16
    URP = 18
    HDR_LEN = 20
    MAX_HDR_LEN = 60
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK_F = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80
    OPT_EOL = 0
    OPT_NOP = 1
    OPT_MSS = 2
    OPT_WS = 3
    OPT_SACK_PERM = 4
    OPT_SACK = 5
    OPT_TS = 8
    LEN_MSS = 4
    LEN_WS = 3
    LEN_SACK_PERM = 2
    LEN_TS = 10
    MAX_WSCALE = 14
