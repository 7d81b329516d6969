# The integer constants of wire/icmp4.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module by
# (`cimport ... as w`), so w.X compiles to a literal; names not here stay Python attributes.
# tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    TYPE = 0
    CODE = 1
    CSUM = 2
    ID = 4
    SEQ = 6
    HDR_LEN = 8
    ECHO_REPLY = 0
    DEST_UNREACH = 3
    SOURCE_QUENCH = 4
    REDIRECT = 5
    ECHO_REQUEST = 8
    TIME_EXCEEDED = 11
    PARAM_PROBLEM = 12
    NET_UNREACH = 0
    HOST_UNREACH = 1
    PROTO_UNREACH = 2
    PORT_UNREACH = 3
    FRAG_NEEDED = 4
    ADMIN_PROHIBITED = 13
    TTL_EXCEEDED = 0
    FRAG_REASS_EXCEEDED = 1
