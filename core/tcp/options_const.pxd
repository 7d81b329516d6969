# The integer constants of tcp/options.py as C constants, for the modules that import it under
# Cython: their .pxd cimports this file under the same name they import the module
# by (`cimport ... as T`), so T.X compiles to a literal; names not here stay Python
# attributes. tests/ports/test_typed_core.py checks every value against the .py.

cdef enum:
    SEEN_MSS = 1
    SEEN_WS = 2
    SEEN_SACK_PERM = 4
    SEEN_TS = 8
    SEEN_SACK = 16
    SYN_TS_OFF = 8
