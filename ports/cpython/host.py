"""One call to get a running stack on a TAP for CPython programs:

    from ustack.ports.cpython.host import open_stack
    net = open_stack(tap="ustack0", ip="192.0.2.2/24", host_ip="192.0.2.1/24")
    s = net.socket(AF_INET, SOCK_DGRAM)      # thread-safe, blocking by default
    ...
    net.close()
"""
from ustack.ports.cpython import cli
from ustack.ports.cpython.runner import Runner


class _Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def open_stack(tap="ustack0", ip="192.0.2.2/24", host_ip=None, gateway=None,
               mac="02:00:00:00:00:02", board="pc_tap", driver=None, pcap=None, config=None, mtu=None):
    args = _Args(board=board, driver=driver, tap=tap, ip=ip, gateway=gateway, mac=mac,
                 host_ip=host_ip, mtu=mtu,
                 config=["%s=%s" % kv for kv in (config or {}).items()])
    r = cli.resolve(args)
    drv = cli.make_driver(r, pcap)
    st = cli.make_stack(r, drv)
    return Host(st)


class Host:
    def __init__(self, stack):
        self.stack = stack
        self.runner = Runner(stack).start()
        self.lock = self.runner.lock

    def socket(self, family=2, type=1, proto=0):
        return self.runner.socket(family, type, proto)

    def ping(self, dst, count=1, size=56, interval_ms=200, timeout_ms=1000):
        with self.lock:
            return self.stack.ping(dst, count, size, interval_ms, timeout_ms)

    def counters(self):
        with self.lock:
            return self.stack.counters()

    def close(self):
        self.runner.stop()
        with self.lock:
            self.stack.close()
            self.runner._update_fds()  # the closed sockets' readiness descriptors too

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
