# cython: language_level=3, boundscheck=False, wraparound=False
"""The small part of DPDK (22.11, Debian's libdpdk-dev) the driver needs: EAL start and
stop, one Ethernet port with one receive and one transmit queue, a mempool, and bursts
copied into and out of ustack's packet buffers. Everything else is hal/dpdk/driver.py."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE

cdef extern from "rte_errno.h":
    int rte_errno
    const char *rte_strerror(int errnum)

cdef extern from "rte_eal.h":
    int rte_eal_init(int argc, char **argv)
    int rte_eal_cleanup()

cdef extern from "rte_lcore.h":
    int SOCKET_ID_ANY

cdef extern from "rte_mbuf.h":
    struct rte_mempool:
        pass

    struct rte_mbuf:
        void *buf_addr
        uint16_t data_off
        uint16_t data_len
        uint32_t pkt_len
        uint16_t nb_segs
        rte_mbuf *next

    int RTE_MBUF_DEFAULT_BUF_SIZE
    rte_mempool *rte_pktmbuf_pool_create(const char *name, unsigned int n,
                                         unsigned int cache_size, uint16_t priv_size,
                                         uint16_t data_room_size, int socket_id)
    void rte_mempool_free(rte_mempool *mp)
    unsigned int rte_mempool_avail_count(const rte_mempool *mp)
    rte_mbuf *rte_pktmbuf_alloc(rte_mempool *mp)
    void rte_pktmbuf_free(rte_mbuf *m)
    char *rte_pktmbuf_append(rte_mbuf *m, uint16_t len)

cdef extern from "rte_ethdev.h":
    struct rte_ether_addr:
        uint8_t addr_bytes[6]

    struct rte_eth_conf:
        pass

    struct rte_eth_link:
        uint32_t link_speed
        uint16_t link_status

    struct rte_eth_stats:
        uint64_t ipackets
        uint64_t opackets
        uint64_t ibytes
        uint64_t obytes
        uint64_t imissed
        uint64_t ierrors
        uint64_t oerrors
        uint64_t rx_nombuf

    int RTE_MAX_ETHPORTS
    int rte_eth_dev_get_port_by_name(const char *name, uint16_t *port_id)
    uint16_t rte_eth_dev_count_avail()
    uint64_t rte_eth_find_next(uint16_t port_id)
    int rte_eth_dev_socket_id(uint16_t port_id)
    int rte_eth_dev_configure(uint16_t port_id, uint16_t nb_rx_q, uint16_t nb_tx_q,
                              const rte_eth_conf *conf)
    int rte_eth_dev_adjust_nb_rx_tx_desc(uint16_t port_id, uint16_t *nb_rx_desc,
                                         uint16_t *nb_tx_desc)
    int rte_eth_rx_queue_setup(uint16_t port_id, uint16_t rx_queue_id, uint16_t nb_rx_desc,
                               unsigned int socket_id, const void *rx_conf, rte_mempool *mp)
    int rte_eth_tx_queue_setup(uint16_t port_id, uint16_t tx_queue_id, uint16_t nb_tx_desc,
                               unsigned int socket_id, const void *tx_conf)
    int rte_eth_dev_start(uint16_t port_id)
    int rte_eth_dev_stop(uint16_t port_id)
    int rte_eth_dev_close(uint16_t port_id)
    int rte_eth_macaddr_get(uint16_t port_id, rte_ether_addr *mac)
    int rte_eth_dev_mac_addr_add(uint16_t port_id, rte_ether_addr *mac, uint32_t pool)
    int rte_eth_promiscuous_enable(uint16_t port_id)
    int rte_eth_allmulticast_enable(uint16_t port_id)
    int rte_eth_dev_set_mtu(uint16_t port_id, uint16_t mtu)
    int rte_eth_link_get_nowait(uint16_t port_id, rte_eth_link *link)
    int rte_eth_stats_get(uint16_t port_id, rte_eth_stats *stats)
    uint16_t rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, rte_mbuf **rx_pkts,
                              uint16_t nb_pkts)
    uint16_t rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, rte_mbuf **tx_pkts,
                              uint16_t nb_pkts)

cdef enum:
    # frames taken from the receive queue in one rte_eth_rx_burst: recv_into hands them out
    # one by one; a bound, so a burst waiting here holds at most this many mbufs
    RX_BURST = 32
    # each transmit is retried this many times while the queue is full (the PMD frees sent
    # mbufs on its next tx_burst) before the frame is dropped as busy
    TX_TRIES = 4

BURST = RX_BURST

cdef bint _eal_up = False


def _err(what, rc):
    e = -rc if rc < 0 else rte_errno
    return OSError(e, "%s: %s" % (what, rte_strerror(e).decode()))


def eal_init(args):
    """rte_eal_init with args (argv[0] first); once per process. Returns the count parsed."""
    global _eal_up
    if _eal_up:
        raise OSError(114, "EAL already running in this process")  # EALREADY
    cdef int n = len(args)
    cdef char **argv = <char **>malloc((n + 1) * sizeof(char *))
    if argv == NULL:
        raise MemoryError()
    enc = [a.encode() for a in args]  # kept alive for the call: EAL may keep pointers
    cdef int i
    for i in range(n):
        argv[i] = enc[i]
    argv[n] = NULL
    try:
        rc = rte_eal_init(n, argv)
    finally:
        free(argv)
    if rc < 0:
        raise _err("rte_eal_init", -rte_errno)
    _eal_up = True
    return rc


def eal_cleanup():
    """rte_eal_cleanup: frees what EAL holds (hugepage files, threads); after every port is
    closed."""
    global _eal_up
    if _eal_up:
        _eal_up = False
        rte_eal_cleanup()


def eal_running():
    return _eal_up


def port_count():
    return rte_eth_dev_count_avail()


def port_by_name(name):
    """The port id of a device name (net_tap0, 0000:01:00.0), or the first port for None."""
    cdef uint16_t pid = 0
    if name is None:
        p = rte_eth_find_next(0)
        if p >= RTE_MAX_ETHPORTS:
            raise OSError(19, "no DPDK port (EAL found no device)")  # ENODEV
        return p
    if rte_eth_dev_get_port_by_name(name.encode(), &pid) != 0:
        raise OSError(19, "no DPDK port named %s" % name)
    return pid


cdef class Port:
    """One started port: queue 0 each way, its own mempool. recv_into/send follow the
    hal Driver contract; frames are copied (ustack's buffers are Python bytearrays)."""
    cdef uint16_t pid
    cdef rte_mempool *pool
    cdef rte_mbuf *rx[RX_BURST]
    cdef int rx_n, rx_i
    cdef bint started
    cdef unsigned int mbufs
    cdef public int leaked
    cdef public uint64_t rx_frames, rx_bytes, rx_oversize, tx_frames, tx_bytes, tx_busy, tx_nombuf
    cdef public int socket

    def __cinit__(self):
        self.pool = NULL
        self.rx_n = 0
        self.rx_i = 0
        self.started = False

    def __init__(self, int pid, unsigned int mbufs=2047, int rx_desc=512, int tx_desc=512,
                 int mtu=1500, bytes mac=None):
        cdef rte_eth_conf conf
        cdef uint16_t nrx = rx_desc, ntx = tx_desc
        cdef rte_ether_addr ea
        cdef int rc, i
        self.pid = pid
        self.mbufs = mbufs
        self.leaked = 0
        # the port's NUMA node (-1: any): its buffers live there (issue 13, NUMA)
        self.socket = rte_eth_dev_socket_id(pid)
        name = ("ustack_p%d" % pid).encode()
        self.pool = rte_pktmbuf_pool_create(name, mbufs, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                            self.socket)
        if self.pool == NULL:
            raise _err("rte_pktmbuf_pool_create(%d mbufs)" % mbufs, -rte_errno)
        memset(&conf, 0, sizeof(conf))
        rc = rte_eth_dev_configure(pid, 1, 1, &conf)
        if rc < 0:
            raise _err("rte_eth_dev_configure", rc)
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx)
        if rc < 0:
            raise _err("rte_eth_dev_adjust_nb_rx_tx_desc", rc)
        sock = self.socket if self.socket >= 0 else 0
        rc = rte_eth_rx_queue_setup(pid, 0, nrx, <unsigned int>sock, NULL, self.pool)
        if rc < 0:
            raise _err("rte_eth_rx_queue_setup", rc)
        rc = rte_eth_tx_queue_setup(pid, 0, ntx, <unsigned int>sock, NULL)
        if rc < 0:
            raise _err("rte_eth_tx_queue_setup", rc)
        rte_eth_dev_set_mtu(pid, mtu)  # a PMD without it keeps its own (1500)
        rc = rte_eth_dev_start(pid)
        if rc < 0:
            raise _err("rte_eth_dev_start", rc)
        self.started = True
        if mac is not None and mac != self.mac():
            for i in range(6):
                ea.addr_bytes[i] = mac[i]
            # the stack's MAC beside the port's own (a NIC's second unicast filter), or every
            # frame where the PMD has no such filter (net_tap, af_packet): the core filters
            if rte_eth_dev_mac_addr_add(pid, &ea, 0) != 0:
                rte_eth_promiscuous_enable(pid)
        rte_eth_allmulticast_enable(pid)  # IPv6 ND and MLD (RFC 4861 7.2.1) arrive multicast
        self.rx_frames = self.rx_bytes = self.rx_oversize = 0
        self.tx_frames = self.tx_bytes = self.tx_busy = self.tx_nombuf = 0

    def mac(self):
        cdef rte_ether_addr ea
        rte_eth_macaddr_get(self.pid, &ea)
        return bytes([ea.addr_bytes[i] for i in range(6)])

    def recv_into(self, buf):
        """One frame into buf (0: none waiting). Its mbuf is freed at once; a frame longer
        than buf is dropped (rx_oversize). The buffer is taken through the buffer protocol,
        not a typed memoryview: no Python object per frame."""
        cdef Py_buffer v
        PyObject_GetBuffer(buf, &v, PyBUF_WRITABLE)
        try:
            return self._recv(<unsigned char *>v.buf, <uint32_t>v.len)
        finally:
            PyBuffer_Release(&v)

    cdef uint32_t _recv(self, unsigned char *buf, uint32_t cap):
        cdef rte_mbuf *m
        cdef rte_mbuf *s
        cdef uint32_t n, off
        while True:
            if self.rx_i >= self.rx_n:
                if not self.started:
                    return 0
                self.rx_n = rte_eth_rx_burst(self.pid, 0, self.rx, RX_BURST)
                self.rx_i = 0
                if self.rx_n == 0:
                    return 0
            m = self.rx[self.rx_i]
            self.rx[self.rx_i] = NULL
            self.rx_i += 1
            n = m.pkt_len
            if n > cap:
                self.rx_oversize += 1
                rte_pktmbuf_free(m)
                continue
            s = m
            off = 0
            while s != NULL and off < n:  # a chained (multi-segment) frame: every segment
                memcpy(&buf[off], <char *>s.buf_addr + s.data_off, s.data_len)
                off += s.data_len
                s = s.next
            rte_pktmbuf_free(m)
            self.rx_frames += 1
            self.rx_bytes += n
            return n

    def send(self, buf, int n):
        """The first n bytes of buf as one frame; False when no mbuf or the queue stays full."""
        cdef Py_buffer v
        PyObject_GetBuffer(buf, &v, PyBUF_SIMPLE)
        try:
            if n <= 0 or n > v.len:
                return False
            return self._send(<const unsigned char *>v.buf, n)
        finally:
            PyBuffer_Release(&v)

    cdef bint _send(self, const unsigned char *buf, int n):
        cdef rte_mbuf *m
        cdef char *d
        cdef int t
        if not self.started:
            return False
        m = rte_pktmbuf_alloc(self.pool)
        if m == NULL:
            self.tx_nombuf += 1
            return False
        d = rte_pktmbuf_append(m, <uint16_t>n)
        if d == NULL:  # longer than one mbuf's room
            rte_pktmbuf_free(m)
            self.tx_nombuf += 1
            return False
        memcpy(d, &buf[0], n)
        for t in range(TX_TRIES):
            if rte_eth_tx_burst(self.pid, 0, &m, 1) == 1:
                self.tx_frames += 1
                self.tx_bytes += n
                return True
        rte_pktmbuf_free(m)
        self.tx_busy += 1
        return False

    def link_up(self):
        cdef rte_eth_link link
        memset(&link, 0, sizeof(link))
        if rte_eth_link_get_nowait(self.pid, &link) != 0:
            return True  # a PMD that cannot tell: assume up
        return link.link_status != 0

    def stats(self):
        """The port's own counters (rte_eth_stats_get), {} if the PMD has none."""
        cdef rte_eth_stats s
        if not self.started or rte_eth_stats_get(self.pid, &s) != 0:
            return {}
        return {"ipackets": s.ipackets, "opackets": s.opackets, "imissed": s.imissed,
                "ierrors": s.ierrors, "oerrors": s.oerrors, "rx_nombuf": s.rx_nombuf}

    def mbufs_free(self):
        """The mbufs in the pool now (the rest are in the PMD's rings or a pending burst)."""
        return rte_mempool_avail_count(self.pool) if self.pool != NULL else 0

    def close(self):
        """Free the mbufs of a burst not handed out yet, stop and close the port, free the
        mempool; leaked = the mbufs that were not back in it by then (0)."""
        self._release()
        return self.leaked

    cdef void _release(self):
        cdef int i
        for i in range(self.rx_i, self.rx_n):
            if self.rx[i] != NULL:
                rte_pktmbuf_free(self.rx[i])
                self.rx[i] = NULL
        self.rx_n = self.rx_i = 0
        if self.started:
            self.started = False
            rte_eth_dev_stop(self.pid)
            rte_eth_dev_close(self.pid)
        if self.pool != NULL:
            self.leaked = self.mbufs - rte_mempool_avail_count(self.pool)
            rte_mempool_free(self.pool)
            self.pool = NULL

    def __dealloc__(self):
        self._release()
