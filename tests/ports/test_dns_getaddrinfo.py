"""ustack.socket's getaddrinfo/gethostbyname through the stack's resolver (core/dns.py):
names answered by a name server on the other stack, failures as the stdlib's gaierror."""
import socket as stdsocket
import threading
import time

import pytest

from tests.ports.test_socketmod import net, on, echo_server, B_IP  # noqa: F401 - fixture
from tests.unit.test_dns import zone, rr, ADDR1, ADDR2, ADDR6, WWW
from ustack.core.wire import dns as w


def name_server(us, hb, handler):
    """A UDP name server on stack B (port 53) in a thread, answering with handler."""
    s = on(us, hb, us.socket, us.AF_INET, us.SOCK_DGRAM)
    s.bind(("", 53))
    s.settimeout(0.2)
    stop = []

    def serve():
        while not stop:
            try:
                q, src = s.recvfrom(1500)
            except OSError:
                continue
            r = handler(q, "udp")
            if r is not None:
                s.sendto(r, src)
        s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close():
        # the server closes its socket before the stacks go (their teardown closes every
        # socket: a close() after it is EBADF, as CPython's would be)
        stop.append(1)
        t.join(5)
    return close


@pytest.fixture
def dns(net):  # noqa: F811 - the fixture imported above
    us, ha, hb = net
    z = dict(WWW)
    z[("echo.example.com", w.TYPE_A)] = [rr("echo.example.com", w.TYPE_A, 60,
                                             stdsocket.inet_aton(B_IP))]
    z[("v4only.example.com", w.TYPE_A)] = [rr("v4only.example.com", w.TYPE_A, 60, ADDR1)]
    close = name_server(us, hb, zone(z))
    with ha.lock:
        ha.stack.dns.set_servers([B_IP], search="example.com")
    yield net
    close()


def test_getaddrinfo_resolves_a_name(dns):
    us, _, _ = dns
    got = us.getaddrinfo("www.example.com", 80, type=us.SOCK_STREAM)
    assert got == [(stdsocket.AF_INET, stdsocket.SOCK_STREAM, 6, "", (a, 80))
                   for a in (stdsocket.inet_ntoa(ADDR1), stdsocket.inet_ntoa(ADDR2))]


def test_gethostbyname_uses_the_search_domain_and_ex_lists_every_address(dns):
    us, _, _ = dns
    assert us.gethostbyname("www") == stdsocket.inet_ntoa(ADDR1)
    assert us.gethostbyname_ex("www.example.com")[2] == [stdsocket.inet_ntoa(ADDR1),
                                                         stdsocket.inet_ntoa(ADDR2)]


def test_af_inet6_asks_for_aaaa(dns):
    us, _, _ = dns
    got = us.getaddrinfo("www.example.com", 443, us.AF_INET6, us.SOCK_STREAM)
    assert got == [(stdsocket.AF_INET6, stdsocket.SOCK_STREAM, 6, "",
                    (stdsocket.inet_ntop(stdsocket.AF_INET6, ADDR6), 443, 0, 0))]


def test_unknown_name_is_gaierror_eai_noname(dns):
    us, _, _ = dns
    with pytest.raises(stdsocket.gaierror) as e:
        us.getaddrinfo("nope.example.com", 80)
    assert e.value.errno == stdsocket.EAI_NONAME
    assert e.value.strerror == "Name or service not known"


def test_name_without_an_address_of_the_family_is_gaierror_eai_nodata(dns):
    us, _, _ = dns
    with pytest.raises(stdsocket.gaierror) as e:
        us.getaddrinfo("v4only.example.com", 80, us.AF_INET6)
    assert e.value.errno == stdsocket.EAI_NODATA


def test_numeric_host_flag_never_queries(dns):
    us, ha, _ = dns
    with pytest.raises(stdsocket.gaierror) as e:
        us.getaddrinfo("www.example.com", 80, flags=us.AI_NUMERICHOST)
    assert e.value.errno == stdsocket.EAI_NONAME
    assert ha.stack.dns.stats.queries == 0


def test_server_not_running_is_gaierror_eai_again(net):  # noqa: F811
    us, ha, _ = net
    with ha.lock:
        ha.stack.dns.set_servers([B_IP])  # nothing listens on B's port 53: refused at once
    t0 = time.monotonic()
    with pytest.raises(stdsocket.gaierror) as e:
        us.gethostbyname("www.example.com")
    assert time.monotonic() - t0 < ha.stack.config["DNS_TIMEOUT_MS"] / 1000.0
    assert e.value.errno == stdsocket.EAI_AGAIN


def test_create_connection_by_name(dns):
    us, _, hb = dns
    t = echo_server(us, hb)
    with us.create_connection(("echo", 7), timeout=5) as c:
        c.sendall(b"hello")
        assert c.recv(100) == b"hello"
    t.join(5)


# ---- the MicroPython facade (ports/micropython/usock.py), on CPython ---------------------------
class DnsPeer:
    """A stack at 192.0.2.1 answering DNS on port 53 from its own thread."""

    def __init__(self, wire, handler):
        from ustack.core import clock
        from ustack.core import socket as so
        from ustack.core.stack import Stack
        self.stack = Stack()
        self.stack.add_interface("p0", wire.port(b"\x02\x00\x00\x00\x00\x0b"), ip="192.0.2.1/24")
        self.s = self.stack.socket(so.AF_INET, so.SOCK_DGRAM)
        self.s.bind(("", 53))
        self.s.setblocking(False)
        self.running = True

        def run():
            import time
            while self.running:
                self.stack.poll(clock.now_ms())
                while self.s.readable():
                    q, src = self.s.recvfrom(1500)
                    r = handler(q, "udp")
                    if r is not None:
                        self.s.sendto(r, src)
                time.sleep(0.001)
        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()

    def stop(self):
        self.running = False
        self.t.join(2)


def test_micropython_getaddrinfo_resolves_through_ifconfigs_dns_server():
    from ustack.hal.loopback import Wire
    from ustack.ports.micropython import netif, usock
    wire = Wire()
    peer = DnsPeer(wire, zone(WWW))
    nic = netif.NIC(lambda mac: wire.port(mac), mac=b"\x02\x00\x00\x00\x00\x0a",
                    ip="192.0.2.2/24")
    try:
        nic.active(True)
        nic.ifconfig(("192.0.2.2", "255.255.255.0", "192.0.2.1", "192.0.2.1"))
        assert usock.getaddrinfo("www.example.com", 80) == [
            (usock.AF_INET, usock.SOCK_STREAM, usock.IPPROTO_TCP, "",
             (stdsocket.inet_ntoa(ADDR1), 80))]
        with pytest.raises(OSError) as e:
            usock.getaddrinfo("nope.example.com", 80)
        assert e.value.args[0] == -2  # EAI_NONAME, as MicroPython's getaddrinfo raises it
    finally:
        nic.active(False)
        peer.stop()


# ---- `ustack up/run --dns` ----------------------------------------------------------------------
def _resolve(*argv):
    from ustack.ports.cpython import cli
    return cli.resolve(cli.build_parser().parse_args(["up"] + list(argv)))


def test_dns_flags_set_the_stacks_servers_in_order():
    from ustack.hal.loopback import Wire
    from ustack.ports.cpython import cli
    r = _resolve("--dns", "192.0.2.53", "--dns", "198.51.100.53",
                 "--config", "DNS_SEARCH=lab.example")
    st = cli.make_stack(r, Wire().port(b"\x02\x00\x00\x00\x00\x02"))
    assert st.dns.servers == [stdsocket.inet_aton("192.0.2.53"),
                              stdsocket.inet_aton("198.51.100.53")]
    assert st.dns.search == "lab.example"
    st.close()


@pytest.mark.parametrize("argv,msg", [
    (["--dns", "resolver.example"], "ustack: --dns resolver.example: a server must be an IPv4 "
                                    "address like '192.0.2.1', got 'resolver.example'"),
    (["--dns", "192.0.2.1"] * 4, "ustack: --dns 192.0.2.1 192.0.2.1 192.0.2.1 192.0.2.1: at "
                                 "most 3 servers, got 4"),
    (["--config", "DNS_TIMEOUT_MS=0"], "ustack: --config DNS_TIMEOUT_MS=0: DNS_TIMEOUT_MS must "
                                       "be an int in 1..600000, got 0"),
])
def test_bad_dns_flags_are_one_line_naming_the_flag(argv, msg):
    with pytest.raises(SystemExit) as e:
        _resolve(*argv)
    assert str(e.value) == msg


def test_threads_resolving_at_once_each_get_their_own_answer(dns):
    us, _, _ = dns
    names = ["www.example.com", "echo.example.com", "v4only.example.com"] * 4
    want = {"www.example.com": stdsocket.inet_ntoa(ADDR1), "echo.example.com": B_IP,
            "v4only.example.com": stdsocket.inet_ntoa(ADDR1)}
    got = {}

    def one(i, name):
        got[i] = us.gethostbyname(name)
    with dns[1].lock:
        dns[1].stack.config["DNS_CACHE_ENTRIES"] = 0  # before the first query: no cache
    ts = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert got == dict((i, want[n]) for i, n in enumerate(names))
