"""`ustack up --dhcp` against the DHCP servers Linux users run, in a throwaway namespace: Debian's
dnsmasq and ISC Kea on the kernel side of the TAP. The TAP is made persistent first, with the
server's address on it, so the server is listening before the stack sends its DISCOVER."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP

pytestmark = [needs_netns]

TAP = "ustk0"
MAC = "02:00:00:00:00:02"


def have(exe):
    return any(os.path.exists(os.path.join(d, exe)) for d in ("/usr/sbin", "/usr/bin", "/sbin"))


@pytest.fixture
def ns():
    n = Netns("dhcp")
    n.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
    n.run(["ip", "addr", "add", HOST_IP + "/24", "dev", TAP], check=True)
    n.run(["ip", "link", "set", TAP, "up"], check=True)
    yield n
    n.close()


class Server:
    """A DHCP server process in the namespace, ended by its PID."""

    def __init__(self, ns, argv, log):
        self.log = log
        self.f = open(log, "w")
        self.p = subprocess.Popen(ns.cmd(argv), stdout=self.f, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        assert self.p.poll() is None, "server exited: " + self.text()

    def text(self):
        self.f.flush()
        with open(self.log) as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.f.close()


def dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.60", lease="2m", extra=()):
    argv = ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
            "--interface=" + TAP, "--bind-interfaces", "--no-ping", "--log-dhcp",
            "--pid-file=" + str(tmp_path / "dnsmasq.pid"),
            "--dhcp-leasefile=" + str(tmp_path / "leases"),
            "--dhcp-range=%s,%s,255.255.255.0,%s" % (first, last, lease),
            "--dhcp-option=option:router," + HOST_IP,
            "--dhcp-option=option:dns-server," + HOST_IP,
            "--domain=example.test"] + list(extra)
    return Server(ns, argv, str(tmp_path / "dnsmasq.log"))


def kea(ns, tmp_path, pool="192.0.2.50 - 192.0.2.60", valid=8, renew=3, rebind=5, name="kea",
        authoritative=False):
    conf = {"Dhcp4": {
        "authoritative": authoritative,  # True: NAK a request for an address it did not lease
        # the TAP has no carrier until ustack opens it: Kea retries opening its socket
        "interfaces-config": {"interfaces": [TAP], "dhcp-socket-type": "raw",
                              "service-sockets-max-retries": 200,
                              "service-sockets-retry-wait-time": 100},
        "lease-database": {"type": "memfile", "persist": True,
                           "name": str(tmp_path / (name + "-leases.csv"))},
        "valid-lifetime": valid, "renew-timer": renew, "rebind-timer": rebind,
        "subnet4": [{"id": 1, "subnet": "192.0.2.0/24", "pools": [{"pool": pool}],
                     "option-data": [{"name": "routers", "data": HOST_IP},
                                     {"name": "domain-name-servers", "data": HOST_IP}]}],
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}],
                     "severity": "DEBUG", "debuglevel": 40}],
    }}
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(conf))
    env_dir = tmp_path / "kea-run"
    env_dir.mkdir(exist_ok=True)
    argv = ["env", "KEA_PIDFILE_DIR=" + str(env_dir), "KEA_LOCKFILE_DIR=" + str(env_dir),
            "kea-dhcp4", "-c", str(path)]
    return Server(ns, argv, str(tmp_path / (name + ".log")))


def field(ready, key):
    m = re.search(r"\b%s=(\S+)" % key, ready)
    return m.group(1) if m else None


def up(ns, *flags, timeout=40, runtime=None):
    return StackProc(ns, "--dhcp", "--mac", MAC, *flags, tap=TAP, ip=None,
                     host_ip=HOST_IP + "/24", timeout=timeout, runtime=runtime)


def ping_ok(ns, ip):
    return ns.run(["ping", "-c", "1", "-W", "2", ip]).returncode == 0


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_lease_obtained_ready_shows_it_and_released_on_exit(ns, tmp_path):
    srv = dnsmasq(ns, tmp_path)
    try:
        s = up(ns, "--serve", "echo")
        ip = field(s.ready, "ip").split("/")[0]
        assert ip.startswith("192.0.2.") and 50 <= int(ip.split(".")[3]) <= 60, s.ready
        assert field(s.ready, "ip").endswith("/24")
        assert field(s.ready, "dhcp") == HOST_IP and field(s.ready, "lease") == "120s"
        assert field(s.ready, "router") == HOST_IP and field(s.ready, "dns") == HOST_IP
        assert field(s.ready, "domain") == "example.test"
        assert ping_ok(ns, ip), "the leased address does not answer ping"
        c = s.stop()
        assert c["dhcp.leases"] == 1 and c["dhcp.tx_release"] == 1
        assert c["pbuf.free"] == c["pbuf.count"]
        assert not any(k.startswith("dhcp.rx_") for k in c), c
        time.sleep(0.5)
        log = srv.text()
        assert "DHCPACK" in log and "DHCPRELEASE" in log, log
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_lease_on_the_micropython_runtime(ns, tmp_path):
    from tests.micropython.mpyhelp import MPY
    if not MPY:
        pytest.skip("needs the micropython unix port (invoke mpy)")
    srv = dnsmasq(ns, tmp_path)
    try:
        s = up(ns, "--serve", "echo", runtime="micropython", timeout=90)
        assert "runtime=micropython" in s.ready, s.ready
        ip = field(s.ready, "ip").split("/")[0]
        assert 50 <= int(ip.split(".")[3]) <= 60, s.ready
        assert field(s.ready, "dhcp") == HOST_IP and field(s.ready, "lease") == "120s"
        assert field(s.ready, "dns") == HOST_IP, s.ready
        assert ping_ok(ns, ip)
        c = s.stop()
        assert c["dhcp.leases"] == 1, c
        assert "DHCPACK" in srv.text()
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_conflict_on_a_planted_address_is_declined(ns, tmp_path):
    # the kernel side already holds the only address of the pool: the ARP probe finds it.
    # (Kea, not dnsmasq: dnsmasq unicasts its OFFER to the address, which the kernel then
    # delivers to itself; Kea's raw socket sends it to our MAC.)
    ns.run(["ip", "addr", "add", "192.0.2.50/24", "dev", TAP], check=True)
    srv = kea(ns, tmp_path, pool="192.0.2.50 - 192.0.2.50", valid=60, renew=30, rebind=50)
    try:
        r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up",
                    "--tap", TAP, "--dhcp", "--mac", MAC, "--host-ip", HOST_IP + "/24",
                    "--duration", "16", "--json"], timeout=60)
        line = [x for x in r.stdout.splitlines() if x.startswith("counters ")]
        assert line, r.stdout + r.stderr
        c = json.loads(line[0][len("counters "):])
        assert not r.stdout.startswith("ready"), r.stdout
        assert c.get("dhcp.conflicts", 0) >= 1 and c["dhcp.tx_decline"] >= 1, \
            (c, srv.text()[-2500:])
        assert "dhcp.leases" not in c
        time.sleep(0.3)
        assert "DHCPDECLINE" in srv.text() or "DHCP4_DECLINE" in srv.text(), srv.text()[-3000:]
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_lease_is_renewed_with_short_lease_times(ns, tmp_path):
    srv = kea(ns, tmp_path)
    try:
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000")
        assert field(s.ready, "lease") == "8s" and field(s.ready, "dhcp") == HOST_IP, s.ready
        ip = field(s.ready, "ip").split("/")[0]
        time.sleep(10)  # T1 at 3 s, and again 3 s after each renewal
        assert ping_ok(ns, ip)
        c = s.stop()
        assert c["dhcp.renewed"] >= 2 and c["dhcp.leases"] == 1, c
        assert "dhcp.expired" not in c
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_rebinding_when_the_server_vanishes_and_comes_back(ns, tmp_path):
    srv = kea(ns, tmp_path, valid=12, renew=2, rebind=4)
    s = None
    try:
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000")
        ip = field(s.ready, "ip").split("/")[0]
        srv.stop()
        time.sleep(5)  # T1 and T2 pass without a server: RENEWING, then REBINDING
        srv = kea(ns, tmp_path, valid=12, renew=2, rebind=4, name="kea2")
        time.sleep(5)
        assert ping_ok(ns, ip), "the address was lost"
        c = s.stop()
        assert c["dhcp.rebound"] >= 1, c
        assert "dhcp.expired" not in c
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_nak_after_the_pool_changes_leads_to_a_new_lease(ns, tmp_path):
    # dnsmasq's shortest lease is 2 minutes; T1 is set to 3 s. (Kea drops a RENEWING request
    # for an address outside its pool instead of NAKing it.)
    t1 = ["--dhcp-option=option:T1,3", "--dhcp-option=option:T2,100", "--dhcp-authoritative"]
    srv = dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.50", extra=t1)
    try:
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000")
        assert field(s.ready, "ip") == "192.0.2.50/24", s.ready
        srv.stop()
        (tmp_path / "leases").write_text("")
        srv = dnsmasq(ns, tmp_path, first="192.0.2.70", last="192.0.2.70", extra=t1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ping_ok(ns, "192.0.2.70"):
            time.sleep(0.5)
        assert ping_ok(ns, "192.0.2.70"), srv.text()[-3000:]
        assert not ping_ok(ns, "192.0.2.50")
        c = s.stop()
        assert c.get("dhcp.naks", 0) >= 1 and c["dhcp.leases"] == 2, c
        assert "dhcp.expired" not in c  # the NAK, not the lease's end, moved it
        assert "DHCPNAK" in srv.text()
    finally:
        srv.stop()


INIT_REBOOT = """
import json, sys
from ustack.core.stack import Stack
from ustack.hal.tap import Tap
st = Stack({"DHCP_ARP_PROBES": 1})
st.add_interface("eth0", Tap(%(tap)r, mac=bytes.fromhex("020000000002")))
c = st.start_dhcp("eth0", remembered=%(addr)r)
st.run_until(lambda: c.bound() or c.stats.naks, 20)
print(json.dumps({"state": c.state_name(), "lease": c.lease(),
                  "counters": dict(c.stats.nonzero())}))
st.close()
"""


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
@pytest.mark.parametrize("addr,ok", [("192.0.2.55", True), ("192.0.2.99", False)])
def test_dnsmasq_init_reboot_with_a_remembered_address(ns, tmp_path, addr, ok):
    # RFC 2131 3.2: a client that remembers its address asks for it again (no DISCOVER); an
    # authoritative server ACKs it when it is still valid there and NAKs it when not
    srv = dnsmasq(ns, tmp_path, extra=["--dhcp-authoritative"])
    try:
        r = ns.python(INIT_REBOOT % {"tap": TAP, "addr": addr}, timeout=60)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        c = out["counters"]
        assert "tx_discover" not in c or not ok, c
        if ok:
            assert out["state"] == "bound" and out["lease"]["ip"] == addr, out
            assert c["tx_request"] >= 1 and c["acks"] == 1
        else:
            assert c["naks"] == 1 and c["tx_discover"] == 1, out
            assert "DHCPNAK" in srv.text()
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_ustack_run_with_dhcp_starts_the_program_once_leased(ns, tmp_path):
    srv = dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.50")
    try:
        # the program's first act - binding the leased address - works: the lease came first
        prog = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                "s.bind((sys.argv[1], 0)); print('bound', s.getsockname()[0])")
        r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap", TAP,
                    "--dhcp", "--mac", MAC, "--host-ip", HOST_IP + "/24", "--",
                    "python", "-c", prog, "192.0.2.50"], timeout=60)
        assert r.returncode == 0, r.stderr
        ready = [x for x in r.stderr.splitlines() if x.startswith("ready ")][0]
        assert field(ready, "ip") == "192.0.2.50/24", ready
        assert field(ready, "dhcp") == HOST_IP, ready
        assert "bound 192.0.2.50" in r.stdout, r.stdout
    finally:
        srv.stop()
