"""IPv6 host details against the Linux kernel and Debian's tools (issue 9), the stack on a TAP
in a throwaway namespace, driven line by line (STACK below):
- radvd advertises MTU 1400: Linux connecting over IPv6 sees our SYN-ACK's MSS 1340 (tshark
  reads Linux's capture), and `ss -ti`'s line for the connection says pmtu:1400;
- Linux already holds an address: configured, the stack marks it duplicate, counts and logs
  it and ndisc6 gets no answer for it from us; formed by SLAAC from radvd's prefix, the
  stack removes it (RFC 4862 5.4.5);
- an address removed: ndisc6 gets no answer for it any more, and Linux's capture holds the
  MLDv2 CHANGE_TO_INCLUDE {} report that leaves its solicited-node group (RFC 3810 6.1)."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, ROOT, one_line_error

pytestmark = [needs_netns, pytest.mark.skipif(
    not all(shutil.which(t) for t in ("radvd", "ndisc6", "tcpdump", "tshark")),
    reason="needs radvd ndisc6 tcpdump tshark (.ci/setup installs them)")]

TAP = "ustk0"
HOST6 = "2001:db8:1::1"
SLAAC6 = "2001:db8:1::ff:fe00:2"      # radvd's prefix and the TAP MAC's modified EUI-64
RADVD = """interface %s {
  AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 60;
  %s
  prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };
};
"""

# The stack in the namespace: commands on stdin, one JSON state line after each
STACK = r"""
import json, select, sys
sys.path.insert(0, %(root)r)
from ustack.core.stack import Stack
from ustack.core import addr6, ctl
from ustack.hal.tap import Tap
from ustack.ports.cpython import ctlcli
st = Stack({"IPV6": True})
logs = []
st.log = logs.append
iface = st.add_interface("eth0", Tap(%(tap)r), ip="192.0.2.2", prefix=24)
conns = []
lsock = []
srv = ctl.Server(st)

def ready():
    for ls in lsock:
        try:
            conns.append(ls.accept()[0])
        except OSError:
            pass
    return bool(select.select([sys.stdin], [], [], 0)[0])

def state():
    v6 = st.ipv6
    m = iface.mld
    return {"addrs": [list(a) for a in v6.addresses()], "mtu6": iface.mtu6,
            "ip6": dict(v6.stats.nonzero()), "dad": dict(v6.dad.stats.nonzero()),
            "groups": [addr6.ntop(m.group[k]) for k in range(m.size) if m.state[k] == 1],
            "logs": logs}

print("ready", flush=True)
while True:
    st.run_until(ready)
    cmd = sys.stdin.readline().split()
    if not cmd or cmd[0] == "quit":
        break
    out = {}
    if cmd[0] == "add":
        st.add_address6(iface, cmd[1])
    elif cmd[0] == "del":
        out["removed"] = st.ipv6.remove_address(addr6.pton(cmd[1]), 0)
    elif cmd[0] == "wait":
        st.run_for(int(cmd[1]))
    elif cmd[0] == "listen":
        s = st.socket(10, 1)
        s.bind(("", int(cmd[1])))
        s.listen(4)
        s.setblocking(False)
        lsock.append(s)
    elif cmd[0] == "ss":
        rows = json.loads(srv.handle_line(ctl.request("ss")))["data"]
        out["ss"] = ctlcli.fmt_ss(rows, tcp=True, info=True)
    out.update(state())
    print("state " + json.dumps(out), flush=True)
st.close()
"""


class Lab:
    def __init__(self):
        self.ns = Netns("v6h")
        ns = self.ns
        ns.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])   # radvd wants it
        ns.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
        ns.run(["ip", "link", "set", TAP, "up"], check=True)
        ns.run(["ip", "-6", "addr", "add", HOST6 + "/64", "dev", TAP, "nodad"], check=True)
        self.stack = None
        self.files = []

    def start(self):
        self.stack = self.ns.popen([sys.executable, "-c", STACK % {"root": ROOT, "tap": TAP}],
                                   stdin=subprocess.PIPE)
        line = self.stack.stdout.readline()
        assert line.startswith("ready"), line + self.stack.stdout.read()

    def do(self, *cmd):
        self.stack.stdin.write(" ".join(str(c) for c in cmd) + "\n")
        self.stack.stdin.flush()
        while True:
            line = self.stack.stdout.readline()
            assert line, "the stack exited"
            if line.startswith("state "):
                return json.loads(line[6:])

    def until(self, pred, timeout_ms=10000):
        """The stack's state once pred(state) holds (driven 200 ms at a time)."""
        s = self.do("wait", 0)
        for _ in range(timeout_ms // 200):
            if pred(s):
                return s
            s = self.do("wait", 200)
        return s

    def radvd(self, extra=""):
        conf = "/tmp/%s-radvd.conf" % self.ns.name
        with open(conf, "w") as fh:
            fh.write(RADVD % (TAP, extra))
        self.files += [conf, "/tmp/%s-radvd.pid" % self.ns.name]
        self.ns.popen(["radvd", "-n", "-C", conf, "-p", "/tmp/%s-radvd.pid" % self.ns.name,
                       "-m", "stderr"])

    def capture(self):
        pcap = "/tmp/%s.pcap" % self.ns.name
        self.files.append(pcap)
        p = self.ns.popen(["tcpdump", "-i", TAP, "-n", "-U", "--immediate-mode", "-w", pcap,
                           "ip6"])
        time.sleep(1)           # tcpdump listening before anything is sent
        return p, pcap

    def ndisc6(self, target):
        """Linux's ndisc6 asks for target on the link: the MAC that answered, or None."""
        r = self.ns.run(["ndisc6", "-1", "-n", "-r", "2", "-w", "500", target, TAP])
        for line in r.stdout.splitlines():
            if "Target link-layer address" in line:
                return line.split(":", 1)[1].strip().lower()
        return None

    def close(self):
        if self.stack is not None and self.stack.poll() is None:
            try:
                self.stack.stdin.write("quit\n")
                self.stack.stdin.flush()
                self.stack.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.ns.close()
        for f in self.files:
            try:
                os.remove(f)
            except OSError:
                pass


@pytest.fixture
def lab():
    lab = Lab()
    yield lab
    lab.close()


def tshark(pcap, flt, *fields):
    args = ["tshark", "-r", pcap, "-Y", flt, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def usable(state, addr):
    return [addr, 64, ""] in state["addrs"] or [addr, 128, ""] in state["addrs"]


def test_linux_sees_our_syn_ack_mss_from_radvds_mtu_and_ss_shows_pmtu(lab):
    lab.radvd("AdvLinkMTU 1400;")
    tcpdump, pcap = lab.capture()
    lab.start()
    lab.do("add", "2001:db8:1::2/64")
    lab.do("listen", 7)
    s = lab.until(lambda s: s["mtu6"] == 1400 and usable(s, "2001:db8:1::2"))
    assert s["mtu6"] == 1400, s
    client = lab.ns.popen([sys.executable, "-c",
                           "import socket, sys\n"
                           "c = socket.create_connection(('2001:db8:1::2', 7), timeout=10)\n"
                           "c.sendall(b'x'); print('connected', flush=True)\n"
                           "sys.stdin.readline()\n"], stdin=subprocess.PIPE)
    assert "connected" in client.stdout.readline()
    ss = lab.do("ss")["ss"]
    lines = [x for x in ss if "[2001:db8:1::2]:7" in x]
    assert lines, ss
    info = ss[ss.index(lines[0]) + 1]
    assert " pmtu:1400 " in info and " mss:" in info, info
    client.stdin.write("bye\n")
    client.stdin.flush()
    client.wait(10)
    time.sleep(0.5)
    tcpdump.terminate()
    tcpdump.wait(10)
    got = tshark(pcap, "tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.srcport == 7",
                 "tcp.options.mss_val")
    assert got == [["1340"]], got        # 1400 - 40 - 20: not the link's 1440


def test_a_configured_address_linux_holds_is_marked_duplicate_and_never_answered(lab):
    lab.ns.run(["ip", "-6", "addr", "add", "2001:db8:1::5/64", "dev", TAP, "nodad"],
               check=True)
    lab.start()
    lab.do("add", "2001:db8:1::5/64")
    s = lab.until(lambda s: ["2001:db8:1::5", 64, "tentative"] not in s["addrs"])
    assert ["2001:db8:1::5", 64, "duplicate"] in s["addrs"], s
    assert s["ip6"].get("addr_duplicate") == 1 and "addr_dad_removed" not in s["ip6"], s
    assert any("2001:db8:1::5" in m and "duplicate" in m for m in s["logs"]), s
    assert lab.ndisc6("2001:db8:1::5") is None     # nobody on the link answers for it


def test_a_slaac_address_linux_holds_is_removed(lab):
    lab.ns.run(["ip", "-6", "addr", "add", SLAAC6 + "/64", "dev", TAP, "nodad"], check=True)
    lab.start()
    lab.radvd()
    s = lab.until(lambda s: s["ip6"].get("addr_dad_removed"), 15000)
    assert s["ip6"].get("addr_dad_removed") == 1, s
    assert s["ip6"].get("addr_duplicate") == 1, s
    assert [a for a in s["addrs"] if a[0] == SLAAC6] == [], s
    assert any(SLAAC6 in m and "removed" in m for m in s["logs"]), s
    assert lab.ndisc6(SLAAC6) is None


def test_a_removed_address_is_no_longer_answered_and_its_group_is_left(lab):
    tcpdump, pcap = lab.capture()
    lab.start()
    lab.do("add", "2001:db8:1::c/64")
    s = lab.until(lambda s: usable(s, "2001:db8:1::c"))
    assert "ff02::1:ff00:c" in s["groups"], s
    assert lab.ndisc6("2001:db8:1::c") == "02:00:00:00:00:02"
    s = lab.do("del", "2001:db8:1::c")
    assert s["removed"] and "ff02::1:ff00:c" not in s["groups"], s
    assert "ff02::1:ff00:2" in s["groups"]          # the link-local address's stays
    lab.do("wait", 2500)                             # the leave report's repetition
    assert lab.ndisc6("2001:db8:1::c") is None
    assert lab.ndisc6("fe80::ff:fe00:2") == "02:00:00:00:00:02"
    time.sleep(0.5)
    tcpdump.terminate()
    tcpdump.wait(10)
    recs = tshark(pcap, "icmpv6.type == 143", "icmpv6.mldr.mar.record_type",
                  "icmpv6.mldr.mar.multicast_address")
    joins = [r for r in recs if r == ["4", "ff02::1:ff00:c"]]     # CHANGE_TO_EXCLUDE {}
    leaves = [r for r in recs if r == ["3", "ff02::1:ff00:c"]]    # CHANGE_TO_INCLUDE {}
    assert joins and len(leaves) == 2, recs          # Robustness Variable 2 (RFC 3810 9.1)


def ustack(ns, *args):
    return ns.run([sys.executable, "-m", "ustack.ports.cpython.cli"] + list(args), timeout=60)


def test_ustack_addr_adds_and_deletes_an_ipv6_address_of_a_running_stack():
    from tests.netns import StackProc
    ns = Netns("v6ha")
    try:
        s = StackProc(ns, "--ip6", "2001:db8:1::2/64", "--host-ip6", HOST6 + "/64")
        r = ustack(ns, "addr", "add", "2001:db8:1::c/64")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "inet6 2001:db8:1::c/64 scope global tentative" in r.stdout, r.stdout
        end = time.monotonic() + 10
        while "inet6 2001:db8:1::c/64 scope global\n" not in r.stdout + "\n" and \
                time.monotonic() < end:
            time.sleep(0.3)
            r = ustack(ns, "addr")
        assert "    inet6 2001:db8:1::c/64 scope global" in r.stdout.splitlines(), r.stdout
        nd = ns.run(["ndisc6", "-1", "-n", "-r", "2", "-w", "500", "2001:db8:1::c", TAP])
        assert "02:00:00:00:00:02" in nd.stdout.lower(), nd.stdout
        r = ustack(ns, "addr", "del", "2001:db8:1::c/64")
        assert r.returncode == 0 and "2001:db8:1::c" not in r.stdout, r.stdout + r.stderr
        nd = ns.run(["ndisc6", "-1", "-n", "-r", "2", "-w", "500", "2001:db8:1::c", TAP])
        assert nd.returncode != 0 and "02:00:00:00:00:02" not in nd.stdout.lower(), nd.stdout
        r = ustack(ns, "addr", "del", "2001:db8:1::c/64")
        assert r.returncode != 0 and "not on" in r.stderr, r.stdout + r.stderr
        one_line_error(ustack(ns, "addr", "add", "2001:db8::zz/64"), "2001:db8::zz/64")
        one_line_error(ustack(ns, "addr", "add", "ff02::1/64"), "unicast")
        one_line_error(ustack(ns, "addr", "replace", "2001:db8:1::d/64"), "not replaced")
        c = s.stop()
        assert c["ip6.addr_removed"] == 1
    finally:
        ns.close()
