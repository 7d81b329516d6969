"""TCP against the Linux kernel in a throwaway netns over TAP: curl, bulk transfers both ways
with SHA-256, many concurrent connections, refusals, close sequences, keepalive, clean pcaps."""
import hashlib
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests import pcapcheck
from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns]
MB = 1000 * 1000


def pattern_sha(n):
    p = bytes(range(251)) * (65536 // 251 + 1)
    h = hashlib.sha256()
    block = p[:251 * 261]
    left = n
    while left:
        k = min(left, len(block))
        h.update(block[:k])
        left -= k
    return h.hexdigest()


@pytest.fixture
def ns():
    n = Netns("tcp")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", "echo,discard,chargen,http")
    assert "tcp/echo" in s.ready, "TCP services missing: no tcp/echo in the ready line: " + s.ready
    yield s
    if s.p.poll() is None:
        c = s.stop()
        assert c["pbuf.free"] == c["pbuf.count"]


def test_curl_downloads_a_large_body_intact(ns, stack):
    n = 100 * MB
    r = subprocess.run(ns.cmd(["sh", "-c", "curl -s -m 300 http://%s/bytes/%d | sha256sum" % (STACK_IP, n)]),
                       capture_output=True, text=True, timeout=320)
    assert r.stdout.split()[0] == pattern_sha(n)


def test_curl_keep_alive_reuses_one_connection(ns, stack):
    r = ns.run(["curl", "-s", "-v", "-m", "10", "http://%s/" % STACK_IP, "http://%s/index.html" % STACK_IP])
    assert "ustack" in r.stdout
    assert re.search(r"Re-?using existing connection", r.stderr), r.stderr
    c = stack.stop()
    assert c["tcp.conn_passive"] == 1


def test_200_concurrent_connections_each_echo_64k(ns, stack):
    r = ns.python(
        "import socket, threading, os\nok = []\n"
        "def one(i):\n"
        "    m = os.urandom(65536)\n"
        "    c = socket.create_connection(('%s', 7), timeout=60)\n"
        "    t = threading.Thread(target=c.sendall, args=(m,)); t.start()\n"
        "    got = bytearray()\n"
        "    while len(got) < len(m):\n"
        "        d = c.recv(65536)\n"
        "        if not d: break\n"
        "        got += d\n"
        "    t.join(); c.close(); ok.append(bytes(got) == m)\n"
        "ts = [threading.Thread(target=one, args=(i,)) for i in range(200)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\nprint(sum(ok), len(ok))\n" % STACK_IP, timeout=300)
    assert r.stdout.split() == ["200", "200"], r.stdout + r.stderr[-2000:]


def test_linux_connecting_to_a_closed_port_is_refused(ns, stack):
    r = ns.python("import socket\ntry:\n    socket.create_connection(('%s', 4444), timeout=3)\n"
                  "except ConnectionRefusedError:\n    print('refused')\n" % STACK_IP)
    assert r.stdout.strip() == "refused"


def test_linux_closing_first_leaves_linux_in_time_wait_without_rsts(ns, stack):
    r = ns.python("import socket\nc = socket.create_connection(('%s', 7), timeout=5)\n"
                  "c.sendall(b'bye'); assert c.recv(10) == b'bye'\nc.shutdown(socket.SHUT_WR)\n"
                  "assert c.recv(10) == b''\nc.close()\n" % STACK_IP)
    assert r.returncode == 0, r.stderr
    time.sleep(0.3)
    ss = ns.run(["ss", "-tan", "state", "time-wait"]).stdout
    assert "%s:7" % STACK_IP in ss, ss
    c = stack.stop()
    assert c.get("tcp.tx_rst", 0) == 0 and c.get("tcp.rx_rst", 0) == 0


def test_chargen_streams_rfc864_lines(ns, stack):
    r = ns.python("import socket\nc = socket.create_connection(('%s', 19), timeout=5)\n"
                  "d = b''\nwhile len(d) < 7400: d += c.recv(8192)\nc.close()\nprint(repr(d[:74]))\n" % STACK_IP)
    line = bytes(range(32, 104)) + b"\r\n"
    assert repr(line) in r.stdout


CLIENT = r"""
import hashlib, socket as pysock, subprocess, sys, threading, time, os
from ustack.ports.cpython.host import open_stack
from ustack.core import socket as so
from ustack.core.tcp import tcb as T
net = open_stack(tap="ustk9", ip="{stack}/24", host_ip="{host}/24", config={config},
                 offload={offload!r})
def conn(port):
    s = net.socket(so.AF_INET, so.SOCK_STREAM)
    s.settimeout(30)
    s.connect(("{host}", port))
    return s
{body}
net.close()
"""


def stack_client(ns, body, config=None, timeout=300, offload=None):
    code = CLIENT.format(stack=STACK_IP, host=HOST_IP, body=body, config=repr(config or {}),
                         offload=offload)
    r = ns.python(code, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return r.stdout


def test_stack_downloads_100mb_from_linux_http_server(ns, tmp_path):
    n = 100 * MB
    data_file = tmp_path / "big.bin"
    with open(data_file, "wb") as f:
        blk = bytes(range(251)) * 261
        left = n
        while left:
            k = min(left, len(blk))
            f.write(blk[:k])
            left -= k
    srv = ns.popen([sys.executable, "-m", "http.server", "8080", "-d", str(tmp_path)])
    body = r'''
for _ in range(50):
    try:
        s = conn(8080); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"GET /big.bin HTTP/1.0\r\nHost: x\r\n\r\n")
h = hashlib.sha256(); head = b""; total = 0
buf = bytearray(65536)
while b"\r\n\r\n" not in head:
    head += s.recv(4096)
head, rest = head.split(b"\r\n\r\n", 1)
h.update(rest); total += len(rest)
t0 = time.perf_counter()
while True:
    k = s.recv_into(buf)
    if not k: break
    h.update(memoryview(buf)[:k]); total += k
dt = time.perf_counter() - t0
s.close()
print(total, h.hexdigest(), "%.1f MB/s" % (total / dt / 1e6))
'''
    out = stack_client(ns, body)
    total, sha = out.split()[:2]
    assert int(total) == n and sha == pattern_sha(n), out
    srv.kill()


def test_stack_uploads_100mb_to_a_linux_sink(ns):
    n = 100 * MB
    sink = ns.popen([sys.executable, "-c",
                     "import socket, hashlib\nl = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                     "l.bind(('', 9100)); l.listen(1); print('listening', flush=True)\n"
                     "c, a = l.accept(); h = hashlib.sha256(); t = 0\n"
                     "while True:\n    d = c.recv(1 << 20)\n    if not d: break\n    h.update(d); t += len(d)\n"
                     "print(t, h.hexdigest(), flush=True)\n"])
    body = r'''
for _ in range(50):
    try:
        s = conn(9100); break
    except OSError:
        time.sleep(0.1)
blk = bytes(range(251)) * 261
left = {n}
t0 = time.perf_counter()
while left:
    k = min(left, len(blk))
    s.sendall(blk if k == len(blk) else blk[:k])
    left -= k
s.shutdown(so.SHUT_WR)
s.recv(10)
print("%.1f MB/s" % ({n} / (time.perf_counter() - t0) / 1e6))
s.close()
'''.replace("{n}", str(n))
    stack_client(ns, body)
    out, _ = sink.communicate(timeout=120)
    assert "%d %s" % (n, pattern_sha(n)) in out, out


def test_stack_connecting_to_a_closed_linux_port_gets_econnrefused(ns):
    body = r'''
import errno
s = net.socket(so.AF_INET, so.SOCK_STREAM); s.settimeout(5)
try:
    s.connect(("{host}", 4321))
except OSError as e:
    print("errno", e.errno == errno.ECONNREFUSED)
s.close()
'''.replace("{host}", HOST_IP)
    assert "errno True" in stack_client(ns, body)


def test_stack_closing_first_ends_in_time_wait_on_the_stack(ns):
    ns.popen([sys.executable, "-c",
              "import socket\nl = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "l.bind(('', 9200)); l.listen(1)\nc, a = l.accept()\n"
              "while c.recv(100): pass\nc.close()\n"])
    body = r'''
for _ in range(50):
    try:
        s = conn(9200); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"hello")
core = s._sock
tcb = core.tcb
s.close()
for _ in range(100):
    with net.lock:
        if tcb.state == T.TIME_WAIT: break
    time.sleep(0.02)
with net.lock:
    print("state", T.NAMES[tcb.state] if hasattr(T, "NAMES") else tcb.state == T.TIME_WAIT)
c = net.counters()
print("rst", c.get("tcp.tx_rst", 0) + c.get("tcp.rx_rst", 0))
'''
    out = stack_client(ns, body)
    assert ("state TIME_WAIT" in out or "state True" in out) and "rst 0" in out, out


def test_keepalive_detects_a_vanished_peer(ns):
    ns.popen([sys.executable, "-c",
              "import socket, time\nl = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "l.bind(('', 9300)); l.listen(1)\nc, a = l.accept()\ntime.sleep(60)\n"])
    body = r'''
import errno
for _ in range(50):
    try:
        s = conn(9300); break
    except OSError:
        time.sleep(0.1)
s.setsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE, 1)
s.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE, 1)
s.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPINTVL, 1)
s.setsockopt(so.IPPROTO_TCP, so.TCP_KEEPCNT, 2)
time.sleep(1.5)
# the peer vanishes: its side of the link goes away without a word
subprocess.run(["ip", "link", "set", "ustk9", "down"])
s.settimeout(20)
t0 = time.time()
try:
    s.recv(10)
    print("no error")
except OSError as e:
    print("errno", e.errno == errno.ETIMEDOUT, "after %.1f s" % (time.time() - t0))
c = net.counters()
print("probes", c.get("tcp.keepalive_probes", 0))
'''
    out = stack_client(ns, body, timeout=60)
    assert "errno True" in out, out
    assert int(re.search(r"probes (\d+)", out).group(1)) >= 2


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_tcp_pcap_has_no_malformed_segments_or_bad_checksums(ns, tmp_path):
    pcap = str(tmp_path / "tcp.pcap")
    s = StackProc(ns, "--serve", "echo,http", "--pcap", pcap)
    assert "tcp/echo" in s.ready, "TCP services missing: no tcp/echo in the ready line: " + s.ready
    ns.run(["curl", "-s", "-m", "20", "-o", "/dev/null", "http://%s/bytes/3000000" % STACK_IP])
    ns.python("import socket\nc = socket.create_connection(('%s', 7), timeout=5)\nc.sendall(b'x' * 100000)\n"
              "got = 0\nwhile got < 100000: got += len(c.recv(65536))\nc.close()\n" % STACK_IP)
    ns.python("import socket\ntry:\n    socket.create_connection(('%s', 81), timeout=2)\nexcept OSError: pass\n" % STACK_IP)
    s.stop()
    bad = pcapcheck.tshark(pcap, pcapcheck.bad_frames(STACK_IP))
    assert bad == [], bad[:20]
    n = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp"], capture_output=True, text=True).stdout.count("\n")
    assert n > 100
