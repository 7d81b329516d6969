# Types for route.py under Cython (the .py stays MicroPython's): a connection's RouteCache is
# a C struct (issue 13): its generations and neighbour index are C integers, read and
# compared on every segment it sends without a generic attribute lookup. The table itself
# stays a Python class (its lookup runs once per connection and route change).

cdef class RouteCache:
    cdef public object iface, nexthop
    cdef public long long gen, nb_gen, nb_idx
