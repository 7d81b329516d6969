"""DPDK link (CPython, Linux): a poll-mode driver's port through the small Cython binding in
_rte.pyx, against Debian's libdpdk-dev (22.11).

    link = Dpdk(vdev="net_tap0,iface=dtap0")     # a virtual device: a kernel TAP through DPDK
    link = Dpdk(pci="0000:01:00.0")              # a NIC bound to vfio-pci (hal/dpdk/README.md)

EAL starts once per process: without hugepages or shared files (--no-huge --no-shconf) for a
virtual device, under a file prefix of its own, so parallel processes never meet;
its main lcore keeps the CPUs this thread may run on (ports/cpython/numa.py chose them), so
EAL does not pin us to CPU 0. One port, one queue each way, a mempool on the port's NUMA node.
recv_into copies one frame from a burst of at most _rte.BURST mbufs and frees it at once;
send copies into a fresh mbuf and transmits it. close() frees every mbuf, the port, the pool
and EAL. The driver advertises no offloads (caps = 0).

Poll mode: nothing to wait on (poll_obj() is None), so the runner polls it every millisecond.
"""
import atexit
import os
import time

# the mbufs of the port's pool: the receive ring (RX_DESC) is filled from it, a burst holds
# BURST more, the transmit ring (TX_DESC) as many, plus one being filled by send
MBUFS = 2047
RX_DESC = 512
TX_DESC = 512
# memory EAL takes without hugepages (-m, MB): the pool (2047 x 2.3 KB) and the PMD's rings
MEM_MB = 64
LINK_CHECK_S = 1.0


def binding():
    """The compiled binding, or ImportError naming why (built only where DPDK's headers are:
    apt-get install libdpdk-dev pkg-config, then invoke build)."""
    try:
        from ustack.hal.dpdk import _rte
    except ImportError as e:
        raise ImportError("the DPDK binding (hal/dpdk/_rte.pyx) is not built here: install "
                          "libdpdk-dev and pkg-config, then `invoke build` (%s)" % e)
    return _rte


def default_prefix():
    return "ustack%d" % os.getpid()


def runtime_dir(prefix):
    """Where EAL makes its (here empty) runtime directory: eal_get_runtime_dir()."""
    base = "/var/run" if os.geteuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix)


def eal_args(vdev=None, pci=None, cpus=None, mem_mb=MEM_MB, prefix=None):
    """EAL's command line: a virtual device runs without hugepages or PCI; a PCI device is
    allowed alone (-a) and takes hugepages (most PMDs DMA into them)."""
    if (vdev is None) == (pci is None):
        raise ValueError("one of vdev or pci")
    if cpus is None:
        cpus = os.sched_getaffinity(0)
    prefix = prefix or default_prefix()
    args = ["ustack", "--file-prefix", prefix,
            # lcore 0 runs on the CPUs we may use (not pinned to the first of them)
            "--lcores", "0@(%s)" % ",".join(str(c) for c in sorted(cpus)),
            "--no-telemetry", "--log-level", "lib.eal:error",
            # net_tap's notes about the qdiscs and flow rules it could not set up (rte_flow
            # is not used here) and a secondary process that cannot exist (--no-shconf)
            "--log-level", "pmd.net.tap:critical"]
    if vdev is not None:
        # --no-huge implies legacy memory, which --in-memory refuses: no shared config then
        args += ["--no-huge", "--no-shconf", "--no-pci", "-m", str(mem_mb), "--vdev", vdev]
    else:
        args += ["--in-memory", "-a", pci]
    return args


class Dpdk:
    def __init__(self, vdev=None, pci=None, mac=None, mtu=1500, cpus=None, mbufs=MBUFS,
                 mem_mb=MEM_MB, prefix=None):
        rte = binding()
        self.prefix = prefix or default_prefix()
        args = eal_args(vdev, pci, cpus, mem_mb, self.prefix)
        self.vdev = vdev
        self.pci = pci
        self.caps = 0
        self.port = None
        self.leaked = 0
        self._rte = rte
        rte.eal_init(args)
        atexit.register(self.close)  # an exit without close() still frees EAL
        try:
            if rte.port_count() != 1:
                raise OSError(19, "EAL found %d ports for %s (one expected)"
                              % (rte.port_count(), vdev or pci))
            self.port = rte.Port(rte.port_by_name(None), mbufs, RX_DESC, TX_DESC, mtu, mac)
        except BaseException:
            self.close()
            raise
        # the stack's own MAC, added to the port's filter (a PMD without one is promiscuous):
        # the port's primary address stays (net_tap's is the kernel side's own)
        self.mac = bytes(mac) if mac is not None else self.port.mac()
        self.mtu = mtu
        self.socket = self.port.socket  # the port's NUMA node (-1: not known)
        self._next_check = 0.0
        self._up = True
        self.recv_into = self.port.recv_into  # the hot path: no Python frame in between
        self.send = self.port.send

    def poll_obj(self):
        return None

    def service(self):
        now = time.monotonic()
        if now >= self._next_check and self.port is not None:
            self._next_check = now + LINK_CHECK_S
            self._up = self.port.link_up()

    def link_up(self):
        return self._up

    def report(self, c, prefix="link."):
        """The port's frames and every place one was dropped: too long for a packet buffer
        (rx_oversize), no mbuf to send (tx_nombuf), transmit queue full (tx_busy), and the
        PMD's own (imissed: receive ring full; rx_nombuf: no mbuf to refill it; ierrors,
        oerrors)."""
        p = self.port
        if p is None:
            return
        c[prefix + "dpdk_rx_frames"] = p.rx_frames
        c[prefix + "dpdk_tx_frames"] = p.tx_frames
        c[prefix + "dpdk_rx_oversize"] = p.rx_oversize
        c[prefix + "dpdk_tx_nombuf"] = p.tx_nombuf
        c[prefix + "dpdk_tx_busy"] = p.tx_busy
        s = p.stats()
        for k in ("imissed", "rx_nombuf", "ierrors", "oerrors"):
            if k in s:
                c[prefix + "dpdk_" + k] = s[k]

    def close(self):
        """Stop the port, free every mbuf and the pool, then EAL. leaked: mbufs that were not
        back in the pool when it was freed (0; a test checks)."""
        p, self.port = self.port, None
        if p is not None:
            self.leaked = p.close()
        if self._rte.eal_running():
            self._rte.eal_cleanup()
            try:
                os.rmdir(runtime_dir(self.prefix))  # rte_eal_cleanup leaves it, empty
            except OSError:
                pass
