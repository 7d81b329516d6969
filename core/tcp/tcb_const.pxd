# The integer constants of tcp/tcb.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module
# by (`cimport ... as T`), so T.X compiles to a literal; names not here stay Python
# attributes. tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    CLOSED = 0
    LISTEN = 1
    SYN_SENT = 2
    SYN_RECEIVED = 3
    ESTABLISHED = 4
    FIN_WAIT_1 = 5
    FIN_WAIT_2 = 6
    CLOSE_WAIT = 7
    CLOSING = 8
    LAST_ACK = 9
    TIME_WAIT = 10
    F_ACKNOW = 0x0001
    F_FIN_QUEUED = 0x0002
    F_FIN_SENT = 0x0004
    F_FIN_ACKED = 0x0008
    F_RCVD_FIN = 0x0010
    F_NODELAY = 0x0020
    F_TS = 0x0040
    F_WS = 0x0080
    F_SACK = 0x0100
    F_KEEPALIVE = 0x0200
    F_PASSIVE = 0x0400
    F_SHUT_RD = 0x0800
    F_OOO_FIN = 0x1000
    F_PENDING = 0x2000
    F_TIMING = 0x4000
    F_DUPACK_OK = 0x8000
    ECN_OFF = 0
    ECN_ON = 1
    ECN_PASSIVE = 2
    F_ECN = 0x10000
    F_ECN_ECHO = 0x20000
    F_ECN_CWR = 0x40000
    F_ECN_POINT = 0x80000
    F_TSO = 0x100000
    F_ACK_BURST = 0x200000
    F_DSACK = 0x400000
    F_ORPHAN = 0x800000
    F_TIMED = 0x1000000
