"""NUMA placement (CPython, Linux): run the I/O thread on the CPUs of the NIC's node, so the
packet pools it first touches are allocated there (Linux places a page on the node of the
CPU that first writes it) and frames cross no interconnect.

    p = place(nic="eth0")              # or pci="0000:01:00.0" (a NIC bound to DPDK)
    p.field()                          # 'numa=node1 cpus=8-15' for the ready line

The NIC's node is /sys/class/net/<if>/device/numa_node (or /sys/bus/pci/devices/<addr>/
numa_node); -1 or a missing file (a TAP, a veth, a one-node machine's NIC) means no
preference: nothing changes. The node's CPUs are /sys/devices/system/node/node<N>/cpulist,
kept to those this process may use. The affinity is set on the calling thread before the
pools exist; threads it starts later (the runner's I/O thread) inherit it. `root` is the
filesystem root the sysfs paths hang from (a fake tree in tests)."""
import os
import threading


def parse_cpulist(text):
    """The set of CPUs in sysfs's list syntax ('0-3,8,10-11'); ValueError when malformed."""
    out = set()
    text = text.strip()
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError("not a CPU list: %r" % text)
        a = int(lo)
        b = int(hi) if sep else a
        if b < a:
            raise ValueError("not a CPU list: %r (%d-%d runs backwards)" % (text, a, b))
        out.update(range(a, b + 1))
    return out


def format_cpulist(cpus):
    """'0-3,6': the shortest list syntax for a set of CPUs."""
    out = []
    run = []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(_run(run))
        run = [c]
    if run:
        out.append(_run(run))
    return ",".join(out)


def _run(run):
    return str(run[0]) if len(run) == 1 else "%d-%d" % (run[0], run[-1])


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def nic_node(nic=None, pci=None, root="/"):
    """The NUMA node of a network interface or a PCI device; -1 when not known."""
    if pci is not None:
        path = os.path.join(root, "sys/bus/pci/devices", pci, "numa_node")
    elif nic is not None:
        path = os.path.join(root, "sys/class/net", nic, "device/numa_node")
    else:
        return -1
    v = _read(path)
    try:
        return int(v) if v is not None else -1
    except ValueError:
        return -1


def node_cpus(node, root="/"):
    """The CPUs of NUMA node `node`, or an empty set when its list is missing or malformed."""
    v = _read(os.path.join(root, "sys/devices/system/node/node%d/cpulist" % node))
    if v is None:
        return set()
    try:
        return parse_cpulist(v)
    except ValueError:
        return set()


class Placement:
    """Where the I/O thread runs: node (-1: none chosen) and cpus (empty: unchanged)."""

    def __init__(self, node=-1, cpus=(), manual=False):
        self.node = node
        self.cpus = set(cpus)
        self.manual = manual

    def field(self):
        """The ready line's fields: numa=node1 cpus=2-3, numa=manual cpus=0 (--cpus), or
        numa=none."""
        if self.manual:
            return "numa=manual cpus=%s" % format_cpulist(self.cpus)
        if self.node < 0 or not self.cpus:
            return "numa=none"
        return "numa=node%d cpus=%s" % (self.node, format_cpulist(self.cpus))


def _tid():
    get = getattr(threading, "get_native_id", None)
    return get() if get is not None else 0


def check_cpus(flag, text, allowed=None):
    """--cpus LIST: a CPU list within the CPUs this process may use; ValueError naming the
    flag otherwise."""
    try:
        cpus = parse_cpulist(text)
    except ValueError as e:
        raise ValueError("%s %s: %s" % (flag, text, e))
    if not cpus:
        raise ValueError("%s %s: no CPU" % (flag, text))
    allowed = os.sched_getaffinity(0) if allowed is None else allowed
    if not cpus <= allowed:
        raise ValueError("%s %s: CPU %s not available to this process (it may use %s)"
                         % (flag, text, format_cpulist(cpus - allowed),
                            format_cpulist(allowed)))
    return cpus


def place(nic=None, pci=None, cpus=None, root="/", tid=None, setaffinity=None,
          getaffinity=None):
    """Pin thread `tid` (default: the calling one) to `cpus` if given, else to the CPUs of
    the NIC's node that it may use; no preference, an unknown node or no usable CPU there
    changes nothing. Returns the Placement."""
    setaffinity = setaffinity or os.sched_setaffinity
    getaffinity = getaffinity or os.sched_getaffinity
    tid = _tid() if tid is None else tid
    if cpus:
        setaffinity(tid, cpus)
        return Placement(-1, cpus, manual=True)
    node = nic_node(nic, pci, root)
    if node < 0:
        return Placement()
    want = node_cpus(node, root) & set(getaffinity(tid))
    if not want:
        return Placement()
    setaffinity(tid, want)
    return Placement(node, want)
