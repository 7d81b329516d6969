# The integer constants of wire/ethernet.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module
# by (`cimport ... as T`), so T.X compiles to a literal; names not here stay Python
# attributes. tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    DST = 0
    SRC = 6
    TYPE = 12
    HDR_LEN = 14
    VLAN_LEN = 4
    MIN_FRAME = 60
    MAX_FRAME = 1514
    ETH_P_IPV4 = 0x0800
    ETH_P_ARP = 0x0806
    ETH_P_VLAN = 0x8100
    ETH_P_QINQ = 0x88A8
    ETH_P_IPV6 = 0x86DD
