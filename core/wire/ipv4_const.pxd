# The integer constants of wire/ipv4.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module
# by (`cimport ... as T`), so T.X compiles to a literal; names not here stay Python
# attributes. tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    VER_IHL = 0
    TOS = 1
    TOTLEN = 2
    IDENT = 4
    FRAG = 6
    TTL = 8
    PROTO = 9
    CSUM = 10
    SRC = 12
    DST = 16
    HDR_LEN = 20
    MAX_HDR_LEN = 60
    FLAG_DF = 0x4000
    FLAG_MF = 0x2000
    FRAG_OFF_MASK = 0x1FFF
    OPT_EOL = 0
    OPT_NOP = 1
    OPT_LSRR = 131
    OPT_SSRR = 137
    PROTO_ICMP = 1
    PROTO_TCP = 6
    PROTO_UDP = 17
