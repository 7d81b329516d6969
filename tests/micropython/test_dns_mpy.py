"""socket.getaddrinfo on the MicroPython unix port over ustack (ports/micropython/usock.py,
core/dns.py), with dnsmasq in a throwaway namespace as the name server: names, an answer
too big for UDP (TC, fetched over TCP through ustack's TCP), an unknown name as
MicroPython's OSError(-2) and a name without an IPv4 address as OSError(-5) (glibc's codes,
which MicroPython's own getaddrinfo raises)."""
import os

import pytest

from tests.conftest import needs_netns
from tests.micropython.mpyhelp import needs_micropython
from tests.micropython.mpnet import MpNet
from tests.netns import HOST_IP
from tests.interop.test_linux_dns import BIG

pytestmark = [needs_netns, needs_micropython]

PROG = r"""
import network, socket
nic = network.LAN()
nic.active(True)
nic.ifconfig(("192.0.2.2", "255.255.255.0", "192.0.2.1", "192.0.2.1"))
for name in ("www.test", "alias.test", "big.test", "nope.test", "x.invalid", "six.test"):
    try:
        print("got", name, socket.getaddrinfo(name, 80)[0][-1][0])
    except OSError as e:
        print("err", name, e.args[0])
s = nic.stack.dns.stats
print("dns", s.truncated, s.tx_tcp, s.nxdomain)
"""


@pytest.fixture
def net(tmp_path):
    n = MpNet("dns")
    hosts = tmp_path / "big.hosts"
    hosts.write_text("".join("%s big.test\n" % a for a in BIG))
    n.serve(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root", "--pid-file=",
             "--listen-address=" + HOST_IP, "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--local=/test/", "--host-record=www.test,198.51.100.10",
             "--cname=alias.test,www.test", "--host-record=six.test,2001:db8::10",
             "--addn-hosts=" + str(hosts)], wait_port=53)
    yield n
    n.close()


def test_micropython_getaddrinfo_resolves_names_through_dnsmasq(net):
    rc, out = net.run_mpy(PROG, timeout=60)
    got = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] in ("got", "err"):
            got[w[1]] = w[0] + " " + w[2]
        elif w[:1] == ["dns"]:
            got["dns"] = w[1:]
    assert got["www.test"] == "got 198.51.100.10", out
    assert got["alias.test"] == "got 198.51.100.10", out
    assert got["big.test"].split()[1] in BIG, out
    assert got["nope.test"] == "err -2" and got["x.invalid"] == "err -2", out
    assert got["six.test"] == "err -5", out  # EAI_NODATA: a name with no IPv4 address
    assert got["dns"] == ["1", "1", "1"], out  # truncated, tx_tcp, nxdomain


DHCP_PROG = r"""
import network, socket, time
nic = network.LAN()
nic.ifconfig("dhcp")
nic.active(True)
t0 = time.ticks_ms()
while not nic.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < 40000:
    nic.poll()
    time.sleep_ms(10)
print("ifconfig", " ".join(nic.ifconfig()))
print("got www", socket.getaddrinfo("www", 80)[0][-1][0])
s = nic.stack.dns
print("search", s.search, "queries", s.stats.tx_udp)
"""


def test_micropython_getaddrinfo_uses_the_name_server_and_domain_from_dhcp():
    # network.LAN().ifconfig('dhcp') on the MicroPython unix port: dnsmasq leases the address
    # and names itself as the name server (RFC 2132 3.8) and example.test as the domain
    # (3.17); 'www' then resolves as www.example.test through it
    n = MpNet("dnsdhcp")
    try:
        n.serve(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root",
                 "--pid-file=", "--interface=ustk0", "--bind-interfaces", "--no-resolv",
                 "--no-hosts", "--no-ping", "--local=/example.test/",
                 "--domain=example.test",
                 "--host-record=www.example.test,198.51.100.10",
                 "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,2m",
                 "--dhcp-leasefile=" + os.path.join(n.work, "leases"),
                 "--dhcp-option=option:router," + HOST_IP,
                 "--dhcp-option=option:dns-server," + HOST_IP], wait_port=53)
        rc, out = n.run_mpy(DHCP_PROG, timeout=90)
        got = {}
        for line in out.splitlines():
            w = line.split()
            if w[:1] in (["ifconfig"], ["got"], ["search"]):
                got[w[0]] = w[1:]
        ip, mask, gw, dns = got["ifconfig"]
        assert ip.startswith("192.0.2.") and 50 <= int(ip.split(".")[3]) <= 60, out
        assert (mask, gw, dns) == ("255.255.255.0", HOST_IP, HOST_IP), out
        assert got["got"] == ["www", "198.51.100.10"], out
        assert got["search"][:1] == ["example.test"], out
    finally:
        n.close()
