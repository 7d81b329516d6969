import cython

# Types for buf.py under Cython (the .py stays MicroPython's): buffers and the pool are C
# structs with C-integer offsets, lengths and counters; alloc/free touch no Python ints.

cdef class PacketBuffer:
    cdef public bytearray buf
    cdef public object mv
    cdef public Py_ssize_t size, index, off, n
    cdef public bint in_use
    cdef public object next
    cdef public object tag        # owner-defined: an arrival time, a datagram's source
    cdef public long long epoch
    cdef public Py_ssize_t nbufs
    cdef public int family
    cdef public long long offload # core/buf.py OFL_*: what an offloading driver said or is asked

cdef class Pool:
    cdef public Py_ssize_t count, size
    cdef public list bufs, _free
    cdef public Py_ssize_t nfree, alloc_fail, low_water
    cdef public long long epoch
    cdef public Py_ssize_t reserve, rx_reserve_hit, queue_cap, queued, queue_cap_hit
    cdef public Py_ssize_t large, nlarge, large_fail   # the offloads' large buffers
    cdef public list large_free
    @cython.locals(pb=PacketBuffer)
    cpdef alloc_large(self)
    @cython.locals(pb=PacketBuffer)
    cpdef alloc(self)
    cpdef bint rx_room(self, Py_ssize_t k)
    cpdef alloc_rx(self)
    cpdef bint queue_take(self, Py_ssize_t k)
    cpdef queue_give(self, Py_ssize_t k)
    cpdef free(self, PacketBuffer pb)
    @cython.locals(pb=PacketBuffer, n=Py_ssize_t)
    cpdef Py_ssize_t reclaim(self, long long epoch, held)
    cpdef bint full(self)
