"""SYN cookies against the Linux kernel (issue 8, RFC 4987): a stack whose one-entry SYN
queue is held by a half-open connection from a spoofed address answers real Linux clients
with cookies; the connections they complete move data both ways intact (SHA-256), with and
without TCP timestamps (without them only the MSS survives the cookie)."""

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]

SPOOFED = "192.0.2.77"  # nobody answers ARP for it: our SYN-ACKs to it go nowhere

HALF_OPEN = r"""
import socket, struct
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
src, dst = socket.inet_aton("SRC"), socket.inet_aton("DST")
if FLAGS == 0x02:
    tcp = struct.pack("!HHIIBBHHH", 33333, 7, 12345, 0, 6 << 4, FLAGS, 65535, 0, 0) + \
        struct.pack("!BBH", 2, 4, 1460) + b"\1\1\1\0"
else:
    tcp = struct.pack("!HHIIBBHHH", 33333, 7, 12346, 0, 5 << 4, FLAGS, 0, 0, 0)
c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + tcp, ("DST", 0))
print("sent")
"""

ECHO = r"""
import hashlib, os, socket, threading
ok = []
def one(i):
    m = os.urandom(%(n)d)
    c = socket.create_connection((%(dst)r, 7), timeout=60)
    t = threading.Thread(target=c.sendall, args=(m,)); t.start()
    got = bytearray()
    while len(got) < len(m):
        d = c.recv(65536)
        if not d: break
        got += d
    t.join(); c.close()
    ok.append(hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(m).hexdigest())
ts = [threading.Thread(target=one, args=(i,)) for i in range(%(conns)d)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(ok), len(ok))
"""


@pytest.mark.parametrize("timestamps", [1, 0], ids=["timestamps", "no_timestamps"])
def test_linux_clients_connect_through_syn_cookies_and_echo_intact(timestamps):
    ns = Netns("cookie")
    try:
        r = ns.run(["sysctl", "-w", "net.ipv4.tcp_timestamps=%d" % timestamps])
        assert r.returncode == 0, r.stderr
        st = StackProc(ns, "--serve", "echo", "--config", "TCP_SYN_QUEUE=1")
        half_open = HALF_OPEN.replace("SRC", SPOOFED).replace("DST", STACK_IP)
        r = ns.python(half_open.replace("FLAGS", "0x02"))  # SYN
        assert r.stdout.strip() == "sent", r.stderr
        r = ns.python(ECHO % {"dst": STACK_IP, "n": 1 << 20, "conns": 4}, timeout=240)
        assert r.stdout.split() == ["4", "4"], r.stdout + r.stderr[-2000:]
        r = ns.python(half_open.replace("FLAGS", "0x04"))  # RST: the half-open one goes
        assert r.stdout.strip() == "sent", r.stderr
        # its last SYN-ACK waits for ARP (3 tries a second apart), then is freed
        st.wait_counters(lambda c: c["pbuf.free"] == c["pbuf.count"], 10)
        c = st.stop()
        assert c["tcp.syncookies_sent"] >= 4 and c["tcp.syncookies_ok"] >= 4, c
        # no data segment of a live cookie connection was refused (they are dropped, not
        # reset, until they can prove the cookie); a pure ACK arriving after its connection
        # ended (the multi-queue TAP can hold an early one back) is refused as RFC 9293 says
        assert c.get("tcp.syncookies_unproven", 0) <= c["tcp.syncookies_ok"] * 64, c
        assert c["pbuf.free"] == c["pbuf.count"]
    finally:
        ns.close()
