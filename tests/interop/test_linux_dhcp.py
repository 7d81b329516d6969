"""`ustack up --dhcp` against the DHCP servers Linux users run, in a throwaway namespace: Debian's
dnsmasq and ISC Kea on the kernel side of the TAP. The TAP is made persistent first, with the
server's address on it, so the server is listening before the stack sends its DISCOVER."""
import json
import os
import re
import signal
import struct
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

    def wait_for(self, text, n, timeout):
        """Until the server's log shows `text` n times (or `timeout` seconds): waits for the
        server's own answer instead of sleeping through a guess of the protocol's timers.
        (`ustack stats` does not show the DHCP client's counters.)"""
        end = time.monotonic() + timeout
        while self.text().count(text) < n and time.monotonic() < end:
            time.sleep(0.2)

    def kill(self):
        """The server vanishes: SIGKILL to its PID, no goodbye."""
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self.f.close()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.f.close()


def dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.60", lease="2m", extra=(),
            port=0):
    argv = ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=%d" % port,
            "--user=root",
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


# RFC 5227 probing takes ~5 s before every lease is used (PROBE_NUM 3, 1-2 s apart, then
# ANNOUNCE_WAIT 2 s). Tests of something else lease without it; the probing itself is proved
# against the kernel by the conflict test and the first dnsmasq test, which keep the default.
NO_PROBES = ("--config", "DHCP_ARP_PROBES=0")
# Kea opens its raw socket once the TAP has carrier, that is once the stack has opened it: the
# first DISCOVER is mostly lost. The retransmission (RFC 2131 4.1) comes 1 s later, not 4 s.
KEA_RETRY = ("--config", "DHCP_RETRY_MS=1000")
KEA_ACK = "DHCPACK (type 5)"  # Kea's log line for each ACK it sends


def ping_ok(ns, ip):
    return ns.run(["ping", "-c", "1", "-W", "2", ip]).returncode == 0


def pcap_frames(path, times=False):
    """The frames of a classic pcap file (`ustack up --pcap`), in order; with times, as
    (seconds since the epoch, frame)."""
    with open(path, "rb") as f:
        data = f.read()
    o = 24
    out = []
    while o + 16 <= len(data):
        sec, usec, n = struct.unpack("<III", data[o:o + 12])
        f = data[o + 16:o + 16 + n]
        out.append((sec + usec / 1e6, f) if times else f)
        o += 16 + n
    return out


class Bootp:
    """A DHCP message the stack sent (UDP 68 -> 67), parsed from its Ethernet frame."""

    def __init__(self, f):
        self.eth_dst = f[0:6]
        ihl = (f[14] & 15) * 4
        self.ip_src = socket_ntoa(f[26:30])
        self.ip_dst = socket_ntoa(f[30:34])
        m = f[14 + ihl + 8:]
        self.ciaddr = socket_ntoa(m[12:16])
        self.opts = {}
        i = 240
        while i < len(m) and m[i] != 255:
            if m[i] == 0:
                i += 1
                continue
            self.opts[m[i]] = m[i + 2:i + 2 + m[i + 1]]
            i += 2 + m[i + 1]
        self.type = self.opts[53][0]


def socket_ntoa(b):
    return ".".join(str(x) for x in b)


def sent_bootp(frames):
    """The DHCP messages among the frames that the stack (MAC) sent (as (time, message)
    for (time, frame) items)."""
    mac = bytes.fromhex(MAC.replace(":", ""))
    out = []
    for x in frames:
        f = x[1] if isinstance(x, tuple) else x
        if f[6:12] == mac and f[12:14] == b"\x08\x00" and f[23] == 17 and \
                f[14 + (f[14] & 15) * 4:14 + (f[14] & 15) * 4 + 4] == b"\x00\x44\x00\x43":
            out.append((x[0], Bootp(f)) if isinstance(x, tuple) else Bootp(f))
    return out


def syn_mss(frames, dport):
    """The MSS option of the stack's SYN to dport."""
    mac = bytes.fromhex(MAC.replace(":", ""))
    for f in frames:
        if f[6:12] != mac or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        t = 14 + (f[14] & 15) * 4
        if struct.unpack("!H", f[t + 2:t + 4])[0] != dport or not f[t + 13] & 0x02:
            continue
        i = t + 20
        end = t + (f[t + 12] >> 4) * 4
        while i < end:
            if f[i] == 0:
                break
            if f[i] == 1:
                i += 1
                continue
            if f[i] == 2:
                return struct.unpack("!H", f[i + 2:i + 4])[0]
            i += f[i + 1]
    return None


def dnsmasq_leases(tmp_path):
    """dnsmasq's lease file: {ip: (mac, hostname, client-id)}."""
    out = {}
    try:
        text = (tmp_path / "leases").read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 5:
            out[w[2]] = (w[1], w[3], w[4])
    return out


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
        assert ip in dnsmasq_leases(tmp_path)
        c = s.stop()
        assert c["dhcp.leases"] == 1 and c["dhcp.tx_release"] == 1
        assert c["pbuf.free"] == c["pbuf.count"]
        assert not any(k.startswith("dhcp.rx_") for k in c), c
        time.sleep(0.5)
        log = srv.text()
        assert "DHCPACK" in log and "DHCPRELEASE" in log, log
        assert ip not in dnsmasq_leases(tmp_path)  # the server's lease file lost the entry
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_lease_on_the_micropython_runtime(ns, tmp_path):
    from tests.micropython.mpyhelp import MPY
    if not MPY:
        pytest.skip("needs the micropython unix port (invoke mpy)")
    srv = dnsmasq(ns, tmp_path)
    try:
        s = up(ns, "--serve", "echo", "--dhcp-hostname", "mpyboard", runtime="micropython",
               timeout=90)
        assert "runtime=micropython" in s.ready, s.ready
        ip = field(s.ready, "ip").split("/")[0]
        assert 50 <= int(ip.split(".")[3]) <= 60, s.ready
        assert field(s.ready, "dhcp") == HOST_IP and field(s.ready, "lease") == "120s"
        assert field(s.ready, "dns") == HOST_IP, s.ready
        assert ping_ok(ns, ip)
        assert dnsmasq_leases(tmp_path)[ip][1:] == ("mpyboard", "01:" + MAC), \
            dnsmasq_leases(tmp_path)
        c = s.stop()
        assert c["dhcp.leases"] == 1, c
        assert "DHCPACK" in srv.text()
        time.sleep(0.5)
        assert ip not in dnsmasq_leases(tmp_path)  # RELEASE on exit
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_conflict_on_a_planted_address_is_declined_and_another_is_leased(ns, tmp_path):
    # the kernel side already holds the first address of the pool: the ARP probe (RFC 5227
    # 2.1.1) finds it, the client DECLINEs it, waits 10 s (RFC 2131 3.1 (5)) and is given
    # the other one. (Kea, not dnsmasq: dnsmasq unicasts its OFFER to the address, which the
    # kernel then delivers to itself; Kea's raw socket sends it to our MAC.)
    ns.run(["ip", "addr", "add", "192.0.2.50/24", "dev", TAP], check=True)
    srv = kea(ns, tmp_path, pool="192.0.2.50 - 192.0.2.51", valid=60, renew=30, rebind=50)
    try:
        s = up(ns, *KEA_RETRY, timeout=60)
        assert field(s.ready, "ip") == "192.0.2.51/24", (s.ready, srv.text()[-2500:])
        assert ping_ok(ns, "192.0.2.51")
        c = s.stop()
        assert c["dhcp.conflicts"] == 1 and c["dhcp.tx_decline"] == 1, c
        assert c["dhcp.leases"] == 1 and c["dhcp.tx_probes"] >= 4, c
        time.sleep(0.3)
        log = srv.text()
        assert "DHCP4_DECLINE" in log or "DHCPDECLINE" in log, log[-3000:]
        assert "192.0.2.50" in log[log.find("DECLINE"):], log[-3000:]
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_lease_is_renewed_with_short_lease_times(ns, tmp_path):
    # without probing the lease's clock (RFC 2131 4.4.1: from the REQUEST) starts about
    # at `ready`: T1 2 s after it, and again 2 s after each renewal; T2 and expiry far off
    srv = kea(ns, tmp_path, valid=8, renew=2, rebind=6)
    try:
        pcap = str(tmp_path / "renew.pcap")
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000", "--pcap", pcap, *NO_PROBES,
               *KEA_RETRY)
        assert field(s.ready, "lease") == "8s" and field(s.ready, "dhcp") == HOST_IP, s.ready
        ip = field(s.ready, "ip").split("/")[0]
        srv.wait_for(KEA_ACK, 3, 20)  # the first ACK, then two renewals
        assert ping_ok(ns, ip)  # (its reply comes after the last ACK on the wire)
        c = s.stop()
        assert c["dhcp.renewed"] >= 2 and c["dhcp.leases"] == 1, c
        assert "dhcp.expired" not in c
        # RFC 2131 4.4.5: RENEWING REQUESTs go to the server alone, from the leased address,
        # with ciaddr and without the requested-address and server-id options (4.3.2)
        renews = [m for m in sent_bootp(pcap_frames(pcap)) if m.type == 3 and m.ciaddr == ip]
        assert len(renews) >= 2, renews
        for m in renews:
            assert m.ip_dst == HOST_IP and m.eth_dst != b"\xff" * 6 and m.ip_src == ip
            assert 50 not in m.opts and 54 not in m.opts
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_rebinding_when_the_server_vanishes_and_comes_back(ns, tmp_path):
    # the lease's clock starts at the REQUEST (RFC 2131 4.4.1), about at `ready` without
    # probing: T1 2 s and T2 5 s after `ready`, expiry 12 s after it
    srv = kea(ns, tmp_path, valid=12, renew=2, rebind=5)
    s = None
    try:
        pcap = str(tmp_path / "rebind.pcap")
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000", "--pcap", pcap, *NO_PROBES,
               *KEA_RETRY)
        ip = field(s.ready, "ip").split("/")[0]
        srv.kill()  # by its PID
        gone = time.time()
        time.sleep(5.5)  # T1 and T2 pass without a server: RENEWING, then REBINDING
        assert ping_ok(ns, ip), "the address must stay until the lease ends"
        srv = kea(ns, tmp_path, valid=12, renew=2, rebind=5, name="kea2")
        back = time.time()
        srv.wait_for(KEA_ACK, 1, 10)  # the returning server answers a REBINDING request
        assert ping_ok(ns, ip), "the address was lost"
        c = s.stop()
        assert c["dhcp.rebound"] >= 1, c
        assert "dhcp.expired" not in c and c["dhcp.leases"] == 1
        # RFC 2131 4.4.5: unicast REQUESTs after T1, broadcast ones after T2, all from the
        # leased address; the one the returning server answered is a broadcast
        req = [(t, m) for t, m in sent_bootp(pcap_frames(pcap, times=True))
               if m.type == 3 and m.ciaddr == ip and t > gone]
        renewing = [t for t, m in req if m.ip_dst == HOST_IP]
        rebinding = [t for t, m in req if m.ip_dst == "255.255.255.255" and m.ip_src == ip]
        # (once the returning server has ACKed the last REBINDING one, the new lease may be
        # RENEWING at once: its T1 counts from the first REBINDING request, RFC 2131 4.4.1)
        assert rebinding, req
        before = [t for t in renewing if t < max(rebinding)]
        assert before and max(before) < min(rebinding), req
        assert [t for t in rebinding if t > back], "no REBINDING request reached the new server"
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_nak_after_the_pool_changes_leads_to_a_new_lease(ns, tmp_path):
    # dnsmasq's shortest lease is 2 minutes; T1 is set to 3 s. (Kea drops a RENEWING request
    # for an address outside its pool instead of NAKing it.)
    t1 = ["--dhcp-option=option:T1,3", "--dhcp-option=option:T2,100", "--dhcp-authoritative"]
    srv = dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.50", extra=t1)
    try:
        s = up(ns, "--config", "DHCP_RENEW_MIN_MS=1000", *NO_PROBES)
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


# the program under `ustack run --dhcp`: every option of the lease put to use
OPTIONS_PROG = r"""
import json, socket, sys
out = {}
with open(sys.argv[1]) as f:
    out["leases"] = f.read()  # dnsmasq's lease file while the lease is held
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"via-router", ("203.0.113.7", 9999))  # off the subnet: through the lease's router
out["www"] = socket.gethostbyname("www")  # the lease's name server and domain
c = socket.create_connection(("192.0.2.1", 9998), timeout=10)  # its SYN's MSS: the MTU's
c.close()
print("RESULT " + json.dumps(out), flush=True)
"""

# the kernel side of OPTIONS_PROG: a host beyond the router, and a TCP listener
SINK = r"""
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("203.0.113.7", 9999))
u.settimeout(60)
t = socket.socket()
t.bind(("192.0.2.1", 9998))
t.listen(1)
t.settimeout(60)
print("listening", flush=True)
d, a = u.recvfrom(100)
print("udp", d.decode(), a[0], flush=True)
c, a = t.accept()
print("tcp", a[0], flush=True)
"""


def counters_in(text):
    line = [x for x in text.splitlines() if x.startswith("counters ")]
    assert line, text
    return json.loads(line[-1][len("counters "):])


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
def test_dnsmasq_options_are_applied_and_hostname_and_client_id_reach_the_server(ns, tmp_path):
    # RFC 2132: subnet mask (3.3), router (3.5), name servers (3.8), host name (3.14), domain
    # (3.17), interface MTU (5.1), client identifier (9.14), each seen at work
    ns.run(["ip", "addr", "add", "203.0.113.7/32", "dev", "lo"], check=True)
    srv = dnsmasq(ns, tmp_path, first="192.0.2.50", last="192.0.2.50", port=53,
                  extra=["--dhcp-option=option:mtu,1400", "--no-resolv", "--no-hosts",
                         "--local=/example.test/",
                         "--host-record=www.example.test,198.51.100.10"])
    sink = ns.popen([sys.executable, "-c", SINK])
    assert sink.stdout.readline().strip() == "listening"
    pcap = str(tmp_path / "opts.pcap")
    try:
        r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap", TAP,
                    "--dhcp", "--mac", MAC, "--host-ip", HOST_IP + "/24", "--json",
                    "--dhcp-hostname", "board7", "--pcap", pcap] + list(NO_PROBES) + ["--",
                    "python", "-c", OPTIONS_PROG, str(tmp_path / "leases")], timeout=90)
        assert r.returncode == 0, r.stdout + r.stderr
        ready = [x for x in r.stderr.splitlines() if x.startswith("ready ")][0]
        assert field(ready, "ip") == "192.0.2.50/24", ready
        assert field(ready, "router") == HOST_IP and field(ready, "dns") == HOST_IP, ready
        assert field(ready, "domain") == "example.test", ready
        res = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][0][7:])
        assert res["www"] == "198.51.100.10", res   # via the lease's server and domain
        assert "192.0.2.50 board7 01:02:00:00:00:00:02" in res["leases"], res["leases"]
        out = sink.communicate(timeout=30)[0]
        assert "udp via-router 192.0.2.50" in out, out  # the router took it beyond the subnet
        assert "tcp 192.0.2.50" in out, out
        assert syn_mss(pcap_frames(pcap), 9998) == 1400 - 40  # the lease's MTU, applied
        c = counters_in(r.stderr)
        assert c["dhcp.leases"] == 1 and c["dhcp.tx_release"] == 1, c
        assert c["dns.tx_udp"] >= 1 and "dhcp.domain_ignored" not in c, c
        # RELEASE on exit (RFC 2131 3.1 (8)): the server's lease file loses the entry
        time.sleep(0.5)
        assert "192.0.2.50" not in dnsmasq_leases(tmp_path), (tmp_path / "leases").read_text()
        assert "DHCPRELEASE" in srv.text()
    finally:
        srv.stop()


# `ustack run --dhcp`: a socket bound to the leased address, told when the server is gone
EXPIRY_PROG = r"""
import errno, json, socket, sys, time
ip = sys.stdin.readline().strip()  # the leased address, from the ready line
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((ip, 5000))
u.settimeout(1)
print("bound", ip, flush=True)
sys.stdin.readline()
got = {}
end = time.monotonic() + 40
while time.monotonic() < end and "recv" not in got:
    try:
        u.recv(100)
    except (socket.timeout, TimeoutError):
        continue
    except OSError as e:
        got["recv"] = errno.errorcode.get(e.errno, e.errno)


def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


got["sendto"] = err(lambda: u.sendto(b"x", ("192.0.2.1", 9)))
got["bind"] = err(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((ip, 0)))
print("RESULT " + json.dumps(got), flush=True)
sys.stdin.readline()
"""

# the same calls on the kernel's own stack, for an address deleted under a bound socket
LINUX_ORACLE = r"""
import errno, json, socket, subprocess, sys
tap, ip = sys.argv[1], sys.argv[2]
subprocess.run(["ip", "addr", "add", ip + "/32", "dev", tap], check=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((ip, 5000))
subprocess.run(["ip", "addr", "del", ip + "/32", "dev", tap], check=True)


def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


print(json.dumps({"sendto": err(lambda: u.sendto(b"x", ("192.0.2.1", 9))),
                  "bind": err(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(
                      (ip, 0)))}))
"""


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_lease_expiry_removes_the_address_and_sockets_bound_to_it_get_errors(ns, tmp_path):
    srv = kea(ns, tmp_path, valid=6, renew=2, rebind=4)
    p = ns.popen([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap", TAP,
                  "--dhcp", "--mac", MAC, "--host-ip", HOST_IP + "/24", "--json",
                  "--config", "DHCP_RENEW_MIN_MS=1000"] + list(KEA_RETRY) + ["--",
                  "python", "-c", EXPIRY_PROG], stdin=subprocess.PIPE)
    try:
        lines = []
        while True:
            line = p.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("ready "):
                ip = field(line, "ip").split("/")[0]
                p.stdin.write(ip + "\n")
                p.stdin.flush()
            if line.startswith("bound "):
                break
        assert ping_ok(ns, ip)
        srv.kill()  # the server vanishes by its PID: nobody renews the lease
        p.stdin.write("go\n")
        p.stdin.flush()
        while True:
            line = p.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("RESULT "):
                break
        got = json.loads(line[7:])
        assert not ping_ok(ns, ip), "the expired address still answers"
        p.stdin.write("end\n")
        p.stdin.flush()
        out = "".join(lines) + p.communicate(timeout=60)[0]
        assert p.returncode == 0, out
        c = counters_in(out)
        assert c["dhcp.expired"] == 1 and c["dhcp.leases"] == 1, c
        # a blocked receive learns at once (the core's choice; Linux would wait forever),
        # sending and binding fail with the errno the kernel gives for a deleted address
        assert got["recv"] == "EADDRNOTAVAIL", got
        r = ns.run([sys.executable, "-c", LINUX_ORACLE, TAP, "192.0.2.77"])
        assert r.returncode == 0, r.stderr
        linux = json.loads(r.stdout)
        assert linux == {"sendto": "ENETUNREACH", "bind": "EADDRNOTAVAIL"}, linux
        assert {k: got[k] for k in linux} == linux, (got, linux)
    finally:
        srv.stop()
        if p.poll() is None:
            p.kill()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_dnsmasq_init_reboot_from_the_lease_file_after_a_restart(ns, tmp_path, runtime):
    # RFC 2131 3.2: restarted with a remembered, unexpired lease, the client asks for that
    # address with one REQUEST (INIT-REBOOT: no DISCOVER, no server id, ciaddr 0)
    srv = dnsmasq(ns, tmp_path, extra=["--dhcp-authoritative"])
    lf = tmp_path / "ustack.lease"
    try:
        s = up(ns, "--dhcp-lease-file", str(lf), *NO_PROBES, runtime=runtime, timeout=90)
        ip = field(s.ready, "ip").split("/")[0]
        rec = json.loads(lf.read_text())
        assert rec["ip"] == ip and rec["server"] == HOST_IP and rec["lease_s"] == 120, rec
        assert time.time() + 100 < rec["expires"] <= time.time() + 121, rec
        c = s.stop()
        assert c["dhcp.tx_release"] == 1 and c["dhcp.tx_discover"] == 1, c
        assert json.loads(lf.read_text())["ip"] == ip  # kept across the RELEASE
        discovers = srv.text().count("DHCPDISCOVER")
        pcap = str(tmp_path / "reboot.pcap")
        s = up(ns, "--dhcp-lease-file", str(lf), "--pcap", pcap, *NO_PROBES, runtime=runtime,
               timeout=90)
        assert field(s.ready, "ip") == ip + "/24", s.ready
        c = s.stop()
        assert "dhcp.tx_discover" not in c and c["dhcp.acks"] == 1, c
        first = sent_bootp(pcap_frames(pcap))[0]
        assert first.type == 3 and first.opts[50] == bytes(int(x) for x in ip.split("."))
        assert 54 not in first.opts and first.ciaddr == "0.0.0.0"
        time.sleep(0.3)
        log = srv.text()
        assert log.count("DHCPDISCOVER") == discovers, log  # the server saw no DISCOVER
        assert "DHCPREQUEST(%s) %s" % (TAP, ip) in log[-2000:], log[-2000:]
    finally:
        srv.stop()


@pytest.mark.skipif(not have("kea-dhcp4"), reason="needs kea-dhcp4-server")
def test_kea_silent_on_an_unknown_remembered_address_then_discover_gets_a_lease(ns, tmp_path):
    # Kea (not authoritative) ignores an INIT-REBOOT request for an address it never leased
    # (RFC 2131 3.2 step 4): two REQUESTs, then INIT - not a minute of silence first
    srv = kea(ns, tmp_path, valid=60, renew=30, rebind=50)
    lf = tmp_path / "ustack.lease"
    lf.write_text(json.dumps({"ip": "192.0.2.55", "expires": int(time.time()) + 3600,
                              "server": HOST_IP, "lease_s": 3600}))
    try:
        t0 = time.monotonic()
        s = up(ns, "--dhcp-lease-file", str(lf), runtime="cpython", timeout=60)
        took = time.monotonic() - t0
        ip = field(s.ready, "ip").split("/")[0]
        c = s.stop()
        assert c["dhcp.reboot_failed"] == 1 and c["dhcp.tx_discover"] >= 1, c
        assert c["dhcp.tx_request"] >= 3, c  # two INIT-REBOOT requests, then SELECTING's
        assert took < 35, took  # 4 + 8 s of INIT-REBOOT, ~5 s of probing, start-up
        assert json.loads(lf.read_text())["ip"] == ip  # the new lease is remembered
    finally:
        srv.stop()


@pytest.mark.skipif(not have("dnsmasq"), reason="needs dnsmasq (apt-get install dnsmasq-base)")
@pytest.mark.parametrize("driver", ["sim-enc28j60", "sim-w5500", "sim-usb-ecm", "sim-usb-ncm"])
def test_dnsmasq_lease_through_every_driver(ns, tmp_path, driver):
    """The same client through each real driver on its virtual device (the chip's registers,
    the USB class protocol) bridged to the TAP: DHCP is the core's, the link is the driver's."""
    srv = dnsmasq(ns, tmp_path)
    try:
        s = up(ns, "--driver", driver, "--serve", "echo", *NO_PROBES, timeout=60)
        assert "driver=" + driver in s.ready, s.ready
        ip = field(s.ready, "ip").split("/")[0]
        assert 50 <= int(ip.split(".")[3]) <= 60, s.ready
        assert field(s.ready, "dhcp") == HOST_IP and field(s.ready, "router") == HOST_IP
        assert ping_ok(ns, ip), "the leased address does not answer ping"
        assert ip in dnsmasq_leases(tmp_path)
        c = s.stop()
        assert c["dhcp.leases"] == 1 and c["dhcp.tx_release"] == 1, c
        time.sleep(0.5)
        assert ip not in dnsmasq_leases(tmp_path)  # RELEASE went out through the driver too
    finally:
        srv.stop()
