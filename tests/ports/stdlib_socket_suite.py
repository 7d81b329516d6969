"""Run CPython's own socket tests against ustack.socket, over ustack's loopback interface or
over TAPs with Linux routing between two stacks.

    python -m tests.ports.stdlib_socket_suite [-q] [socket|socketserver|selectors|asyncio ...]
    python -m tests.ports.stdlib_socket_suite socket:BasicTCPTest     # one class
    ip netns exec NS python -m tests.ports.stdlib_socket_suite --tap  # as root, in a namespace

lo (the default): one stack, no link at all: `socket` is patched to ustack.socket for the
whole process, and every test's server and client (threads or not) talk through "lo"
(127.0.0.1), exactly as the suites expect of an OS.

--tap: two stacks in this process, A (192.0.2.2 on TAP ustk0) and B (198.51.100.2 on
ustk1), and the Linux kernel of the network namespace the run is in forwarding between the
two TAPs. The suites' HOST is A's address, so servers bind there. A socket opens on A; when
it first connects or sends to A's address while still unbound (a test's client) it moves to
B, keeping its descriptor number and the options set on it, so client and server are two
hosts and every segment between them leaves by one TAP and comes back by the other through
Linux. Tests whose two ends are in one socket or bound to A stay on A (its lo); each suite's
line counts the passed tests that moved frames through the TAPs (tap=N).

Suites: the interpreter's `test.test_socket`, `test_socketserver`, `test_selectors` (its
socketpair() replaced by a ustack TCP pair over lo, or across the TAPs, so the selectors
watch ustack sockets' descriptors) and asyncio's low-level socket tests
(`test.test_asyncio.test_sock_lowlevel`). The included classes and every excluded test with
its reason are in stdlib_socket_tests.md beside this file; the pytest wrapper is
test_stdlib_socket_suite.py. Prints one result line per suite."""
import os
import sys
import unittest

# test_socket classes that apply to a user-space TCP/UDP stack over IPv4
INCLUDED = (
    "GeneralModuleTests", "BasicTCPTest", "BasicUDPTest", "TCPCloserTest", "NonBlockingTCPTests",
    "FileObjectClassTestCase", "UnbufferedFileObjectClassTestCase",
    "LineBufferedFileObjectClassTestCase", "SmallBufferedFileObjectClassTestCase",
    "UnicodeReadFileObjectClassTestCase", "UnicodeWriteFileObjectClassTestCase",
    "UnicodeReadWriteFileObjectClassTestCase", "BasicTCPTest2", "NetworkConnectionNoServer",
    "NetworkConnectionAttributesTest", "NetworkConnectionBehaviourTest", "TCPTimeoutTest",
    "UDPTimeoutTest", "TestExceptions", "BufferIOTest", "ContextManagersTest",
    "SendfileUsingSendTest", "CreateServerTest",
    "CreateServerFunctionalTest", "InterruptedRecvTimeoutTest", "InterruptedSendTimeoutTest",
    "NonblockConstantTest", "InheritanceTest", "SendmsgTCPTest", "RecvmsgTCPTest",
    "SendmsgUDPTest", "RecvmsgUDPTest", "RecvmsgIntoTCPTest", "RecvmsgIntoUDPTest",
)
SOCKETSERVER = ("SocketServerTest", "ErrorHandlerTest", "SocketWriterTest", "MiscTestCase")
SELECTORS = ("DefaultSelectorTestCase", "SelectSelectorTestCase", "PollSelectorTestCase",
             "EpollSelectorTestCase")
ASYNCIO = ("SelectEventLoopTests",)
SUITES = {"socket": ("test.test_socket", INCLUDED),
          "socketserver": ("test.test_socketserver", SOCKETSERVER),
          "selectors": ("test.test_selectors", SELECTORS),
          "asyncio": ("test.test_asyncio.test_sock_lowlevel", ASYNCIO)}

# test id (Class.method) -> why it cannot pass on ustack; skipped, and listed in the .md
EXCLUDED = {
    "GeneralModuleTests.test_SocketType_is_socketobject":
        "asserts SocketType is the C type _socket.socket, which a ustack socket cannot be",
}
FORK = ("fork(): the stack and the thread that drives it stay in the parent; in the child a "
        "ustack socket raises EBADF at once (socketmod), so the forked handler cannot echo")
EXCLUDED["SocketServerTest.test_ForkingTCPServer"] = FORK
EXCLUDED["SocketServerTest.test_ForkingUDPServer"] = FORK
# --tap only: what holds for a local socketpair but not across a network
TAP_EXCLUDED = {}
for _c in SELECTORS:
    TAP_EXCLUDED[_c + ".test_select_read_write"] = (
        "--tap only: expects the bytes sock2 sent to be readable on sock1 as send() returns, "
        "as on a socketpair; across the TAPs they arrive a round trip later, and select() "
        "returns at once for writability")

# --tap: (TAP, stack address/prefix, Linux's address on the TAP, gateway, MAC) of A and B
TAP_A = ("ustk0", "192.0.2.2/24", "192.0.2.1/24", "192.0.2.1", "02:00:00:00:00:02")
TAP_B = ("ustk1", "198.51.100.2/24", "198.51.100.1/24", "198.51.100.1", "02:00:00:00:00:03")
A_IP = TAP_A[1].split("/")[0]
TAP = {}  # --tap: "a" and "b", the two Hosts


def config():
    return {"SOCKETS": 512, "TCP_MAX_CONNS": 512, "PBUF_COUNT": 512, "TCP_SND_BUF": 65536,
            "TCP_RCV_BUF": 65536, "TCP_BACKLOG": 128, "UDP_RX_QUEUE": 64,
            "LOOPBACK_QUEUE": 256}


def one_stack():
    from ustack.core.stack import Stack
    from ustack.ports.cpython.host import Host
    return Host(Stack(config()))  # no link: "lo" only


def in_own_netns():
    """True inside a named network namespace (`ip netns identify` names it)."""
    import subprocess
    r = subprocess.run(["ip", "netns", "identify"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() != ""


def tap_stacks():
    """--tap: stacks A and B on their TAPs; this namespace's Linux forwards between them."""
    if not in_own_netns():
        raise SystemExit("stdlib_socket_suite --tap: run it inside a throwaway network "
                         "namespace (ip netns exec NS ...): it makes TAPs and turns on "
                         "IPv4 forwarding there")
    from ustack.ports.cpython.host import open_stack
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")  # this namespace's only
    hosts = []
    for tap, ip, host_ip, gw, mac in (TAP_A, TAP_B):
        hosts.append(open_stack(tap=tap, ip=ip, host_ip=host_ip, gateway=gw, mac=mac,
                                config=config()))
    TAP["a"], TAP["b"] = hosts
    return hosts


LO_IS_A = [False]  # --tap, asyncio's suite: its literal 127.0.0.1 stands for HOST (A)


def _lo_to_a(address):
    if LO_IS_A[0] and isinstance(address, tuple) and len(address) == 2 and \
            address[0] == "127.0.0.1":
        return (A_IP, address[1])
    return address


def tap_socket_class(us):
    """ustack.socket whose unbound sockets move from A to B on their first connect or send to
    A's address (see the module doc). Options set before the move are set again on B."""
    a, b = TAP["a"], TAP["b"]

    class socket(us.socket):
        def __init__(self, *args, **kw):
            self._opts = []
            us.socket.__init__(self, *args, **kw)

        def setsockopt(self, level, optname, value, optlen=None):
            us.socket.setsockopt(self, level, optname, value, optlen)
            self._opts.append((level, optname, value, optlen))

        def bind(self, address):
            return us.socket.bind(self, _lo_to_a(address))

        def connect(self, address):
            address = _lo_to_a(address)
            self._to_b(address)
            return us.socket.connect(self, address)

        def connect_ex(self, address):
            address = _lo_to_a(address)
            self._to_b(address)
            return us.socket.connect_ex(self, address)

        def sendto(self, data, *args):
            if args:
                args = args[:-1] + (_lo_to_a(args[-1]),)
                self._to_b(args[-1])
            return us.socket.sendto(self, data, *args)

        def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
            if address is not None:
                address = _lo_to_a(address)
                self._to_b(address)
            return us.socket.sendmsg(self, buffers, ancdata, flags, address)

        def _to_b(self, address):
            sh = getattr(self, "_sh", None)
            if sh is None or sh.host is not a or sh.refs != 1 or self._fd < 0:
                return
            if not isinstance(address, tuple) or len(address) != 2 or address[0] != A_IP:
                return
            old = sh.core
            if old.closed or old.getsockname()[1] != 0:
                return  # bound or listening: it stays A's
            new = b.runner.socket(self._family, self._type, self._proto)
            for level, optname, value, optlen in self._opts:
                new.setsockopt(level, optname, bytes(optlen or 0) if value is None else value)
            nfd = new.fileno()
            ra = a.runner
            with ra.lock:  # A's readiness descriptor: give up its number without closing it
                e = ra._fd_socks.pop(old._sock, None)
            if e is not None:
                e[0].detach()
                e[1].close()
            old.close()
            os.dup2(nfd, self._fd, inheritable=False)  # the number now signals B's socket
            sh.host, sh.core, sh.primary, sh.timeout = b, new, nfd, -1.0
            self._c = new
            self._fd_mode()

    return socket


def pair(family=None, type=None, proto=0):
    """A connected ustack TCP pair over lo, or across the TAPs (test_selectors' socketpair)."""
    import socket as patched
    import ustack.socket as us
    ls = patched.socket(us.AF_INET, us.SOCK_STREAM)
    try:
        ls.bind((A_IP if TAP else "127.0.0.1", 0))
        ls.listen(1)
        a = patched.socket(us.AF_INET, us.SOCK_STREAM)
        a.connect(ls.getsockname())
        b, _ = ls.accept()
    finally:
        ls.close()
    return a, b


def load(name):
    """The unittest suite for one of SUITES ("socket" or "socket:ClassName")."""
    import importlib
    key, _, only = name.partition(":")
    modname, classes = SUITES[key]
    if TAP:
        from test.support import socket_helper
        socket_helper.HOST = A_IP  # before the suites copy it into their own HOST
        socket_helper.bind_port.__defaults__ = (A_IP,)  # bind_port(sock, host=HOST)
    mod = importlib.import_module(modname)
    if TAP and hasattr(mod, "HOST"):
        mod.HOST = A_IP
    LO_IS_A[0] = bool(TAP) and key == "asyncio"
    if key == "selectors":
        mod.socketpair = pair
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for n in ((only,) if only else classes):
        cls = getattr(mod, n, None)
        if cls is None:
            continue  # a platform's selector (kqueue, devpoll) this host lacks
        for t in loader.loadTestsFromTestCase(cls):
            tid = "%s.%s" % (n, t._testMethodName)
            why = EXCLUDED.get(tid) or (TAP_EXCLUDED.get(tid) if TAP else None)
            if why:
                m = t._testMethodName
                setattr(t, m, unittest.skip(why)(getattr(t, m)))
            suite.addTest(t)
    return suite


class TapCountingResult(unittest.TextTestResult):
    """Also counts the passed tests during which stack B sent TCP or UDP on its TAP."""

    def startTest(self, test):
        self._tx = _tap_frames()
        unittest.TextTestResult.startTest(self, test)

    def addSuccess(self, test):
        unittest.TextTestResult.addSuccess(self, test)
        if _tap_frames() > self._tx:
            self.over_tap = getattr(self, "over_tap", 0) + 1


def _tap_frames():
    """TCP segments and UDP datagrams stack B has sent (ARP would count for nothing)."""
    b = TAP.get("b")
    if b is None:
        return 0
    st = b.stack
    return st.tcp.stats.tx_segments + st.udp.stats.tx_datagrams


def main(argv, tap=False):
    import socket as std
    import ustack.socket as us
    if tap:
        a, _ = tap_stacks()
        us.patch(a)
        std.socket = tap_socket_class(us)  # the stdlib helpers look the class up there
    else:
        us.patch(one_stack())
    import faulthandler
    # a hung test ends the run, with every thread's stack
    faulthandler.dump_traceback_later(int(os.environ.get("SUITE_HANG_S", "600")), exit=True)
    ok = True
    for name in argv or SUITES:
        r = unittest.TextTestRunner(verbosity=1 if "-q" in sys.argv else 2,
                                    resultclass=TapCountingResult).run(load(name))
        print("ustack %s: run=%d failures=%d errors=%d skipped=%d passed=%d%s" % (
            name, r.testsRun, len(r.failures), len(r.errors), len(r.skipped),
            r.testsRun - len(r.failures) - len(r.errors) - len(r.skipped),
            " tap=%d" % getattr(r, "over_tap", 0) if tap else ""), flush=True)
        ok = ok and r.wasSuccessful()
    us.unpatch()
    for h in TAP.values():
        h.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if not a.startswith("-")], tap="--tap" in sys.argv))
