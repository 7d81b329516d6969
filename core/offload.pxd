import cython
from ustack.core.buf cimport PacketBuffer, Pool
from ustack.core.iface cimport Interface
cimport ustack.core.checksum_c as CS
from ustack.core.stats cimport Counters

# Types for offload.py under Cython (CPython only: no board ships the module): software GSO
# cuts a super-frame with C-integer offsets, lengths, sums and header fields, the frames
# indexed as bytearrays, the pool and buffers as C structs, checksums as C calls. The
# super-frame and each frame are typed views (src, dst): a frame's copies are memcpy and its
# header stores C stores, and csum takes the view as it is (no buffer acquired per call).

@cython.locals(pool=Pool, f=PacketBuffer, b=bytearray, fb=bytearray, mss=Py_ssize_t,
               l3=Py_ssize_t, ihl=Py_ssize_t, l4=Py_ssize_t, thl=Py_ssize_t, hdr=Py_ssize_t,
               data=Py_ssize_t, ident=cython.long, shi=cython.long, slo=cython.long,
               fl=cython.int, f2=cython.int, p=Py_ssize_t,
               k=Py_ssize_t, m=Py_ssize_t, t=Py_ssize_t, i=cython.long, c=cython.ulonglong,
               lo=cython.long, hi=cython.long, fn=Py_ssize_t, ipsum=cython.ulonglong,
               tsum=cython.ulonglong, sent=Py_ssize_t, nbytes=Py_ssize_t, busy=Py_ssize_t,
               st=Counters, src=cython.uchar[::1], dst=cython.uchar[::1])
cpdef gso_send(Interface iface, PacketBuffer pb, Py_ssize_t n)

# the GRO read (CAP_GRO), twice a poll on a TAP with offloads (a frame, then the empty look):
# the pool, buffers and interface as C structs
@cython.locals(pool=Pool, spill=PacketBuffer, big=PacketBuffer, k=Py_ssize_t, size=Py_ssize_t,
               n=Py_ssize_t)
cpdef recv_large(Interface iface, PacketBuffer pb)
