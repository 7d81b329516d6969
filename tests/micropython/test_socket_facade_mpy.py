"""MicroPython's `network` and `socket` conventions over ustack (ports/micropython/netif.py,
usock.py), on the unix port with Linux in a throwaway namespace as the peer: what each call
answers, checked line by line against what MicroPython's own socket module answers."""
import json
import sys

import pytest

from tests.conftest import needs_netns
from tests.micropython.mpyhelp import needs_micropython, MPY
from tests.micropython.mpnet import MpNet, mem_peak
from tests.netns import HOST_IP

pytestmark = [needs_netns, needs_micropython]

LINUX_ECHO = """
import socket, socketserver, sys, threading
class T(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
class E(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                return
            self.request.sendall(d)
class U(socketserver.BaseRequestHandler):
    def handle(self):
        self.request[1].sendto(self.request[0], self.client_address)
class Bye(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"bye\\n")   # then the connection closes: end of stream
threading.Thread(target=T((sys.argv[1], 7781), Bye).serve_forever, daemon=True).start()
silent = socket.socket()
silent.bind((sys.argv[1], 7779))
silent.listen(8)             # accepts and never answers: for timeouts
threading.Thread(target=socketserver.UDPServer((sys.argv[1], 7778), U).serve_forever,
                 daemon=True).start()
T((sys.argv[1], 7777), E).serve_forever()
"""

NIC_UP_PLAIN = """
import network
network.LAN().active(True)
"""

# each check prints one line: `check NAME JSON`
HEAD = r"""
import json, sys
def check(name, value):
    if isinstance(value, list):
        value = [v.decode() if isinstance(v, bytes) else v for v in value]
    print("check", name, json.dumps(value))

import socket, usocket, select, errno
"""

# the NIC and the facade's own answers (skipped by the oracle run on MicroPython's sockets)
NIC_PART = r"""
import network
check("modules", [hasattr(socket, "USTACK_FACADE"), usocket is socket, network.LAN.__module__])

nic = network.LAN()
check("inactive", [nic.active(), nic.isconnected(), nic.status()])
nic.active(True)
check("active", [nic.active(), nic.isconnected(), nic.status() == network.STAT_GOT_IP])
check("ifconfig", list(nic.ifconfig()))
nic.ifconfig(("192.0.2.2", "255.255.255.0", "192.0.2.1", "192.0.2.1"))
check("ifconfig_set", list(nic.ifconfig()))
check("ipconfig", [list(nic.ipconfig("addr4")), nic.ipconfig("gw4"), nic.ipconfig("dhcp4")])
check("mac", [len(nic.config("mac")), nic.config("mac") == b"\x02\x00\x00\x00\x00\x02"])
ai = socket.getaddrinfo("192.0.2.1", 7777)
check("getaddrinfo", [ai[0][0] == socket.AF_INET, ai[0][1] == socket.SOCK_STREAM,
                      list(ai[0][-1])])
try:
    socket.getaddrinfo("example.invalid", 80)
    check("getaddrinfo_name", "no error")
except OSError as e:
    check("getaddrinfo_name", e.args[0])
"""

# what MicroPython's socket, select and asyncio answer: the same lines on both
SOCK_PART = r"""
ai = socket.getaddrinfo("192.0.2.1", 7777)

# blocking stream: write/readline/read/readinto, write(buf, n), makefile()
s = socket.socket()
s.connect(ai[0][-1])
f = s.makefile("rwb", 0)
check("makefile", [hasattr(f, "readline"), hasattr(f, "write")])
check("write", s.write(b"line one\nline two\nrest"))
check("readline", [s.readline().decode(), s.readline().decode()])
check("read_n", s.read(4).decode())
check("write_n", s.write(b"abcdefgh", 3))
buf = bytearray(3)
check("readinto", [s.readinto(buf), bytes(buf).decode()])
big = bytes(range(256)) * 256                  # 64 KB: more than one send buffer
s.sendall(big)
check("read_big", s.read(len(big)) == big)
check("send_recv", [s.send(b"xyz"), s.recv(10).decode()])

# a timeout is OSError(ETIMEDOUT), as MicroPython raises it
s.settimeout(0.3)
try:
    s.read(1)
    check("timeout", "no error")
except OSError as e:
    check("timeout", e.args[0] == errno.ETIMEDOUT)

# non-blocking: read/readinto/readline/write-less calls return None, recv raises EAGAIN
s.setblocking(False)
check("nb_read", [s.read(10), s.readinto(buf), s.readline()])
try:
    s.recv(10)
    check("nb_recv", "no error")
except OSError as e:
    check("nb_recv", e.args[0] == errno.EAGAIN)

# select.poll and ipoll on the socket: nothing, then readable once the echo is back
p = select.poll()
p.register(s, select.POLLIN)
check("poll_idle", len(p.poll(0)))
s.write(b"poll me\n")
r = p.poll(3000)
check("poll_ready", [len(r), r[0][0] is s, r[0][1] & select.POLLIN != 0])
check("poll_read", s.readline().decode())
p.modify(s, select.POLLOUT)
n = 0
for obj, ev in p.ipoll(1000):
    n += 1
    check("ipoll_writable", [obj is s, ev & select.POLLOUT != 0])
check("ipoll_count", n)
s.close()
check("poll_closed", [ev & 32 != 0 for _, ev in p.poll(0)])   # POLLNVAL

# non-blocking connect: EINPROGRESS, then writable
c = socket.socket()
c.setblocking(False)
try:
    c.connect(socket.getaddrinfo("192.0.2.1", 7777)[0][-1])
    check("nb_connect", "no error")
except OSError as e:
    check("nb_connect", e.args[0] == errno.EINPROGRESS)
p = select.poll()
p.register(c, select.POLLOUT)
check("nb_connected", len(p.poll(3000)))
check("nb_write", c.write(b"after connect\n"))
p.modify(c, select.POLLIN)
p.poll(3000)
check("nb_readline", c.readline().decode())
c.close()

# the end of the stream: b"" from read and readline, and readable for poll
e = socket.socket()
e.connect(socket.getaddrinfo("192.0.2.1", 7781)[0][-1])
check("eof_line", e.readline().decode())
p = select.poll()
p.register(e, select.POLLIN)
r = p.poll(3000)
check("eof_poll", [len(r), r[0][1] & select.POLLIN != 0])
check("eof_read", [e.readline(), e.read(5), e.recv(5)])
e.close()

# UDP
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"datagram", socket.getaddrinfo("192.0.2.1", 7778)[0][-1])
d, a = u.recvfrom(100)
check("udp", d.decode())
u.close()

# asyncio streams (MicroPython's asyncio, over the same sockets)
import asyncio
async def main():
    r, w = await asyncio.open_connection("192.0.2.1", 7777)
    w.write(b"through asyncio\n")
    await w.drain()
    line = await r.readline()
    w.write(b"x" * 100000)
    await w.drain()
    got = await r.readexactly(100000)
    w.close()
    await w.wait_closed()
    r2, w2 = await asyncio.open_connection("192.0.2.1", 7779)
    try:
        await asyncio.wait_for(r2.read(1), 0.3)
        t = "no timeout"
    except asyncio.TimeoutError:
        t = "timeout"
    w2.close()
    return [line.decode(), got == b"x" * 100000, t]
check("asyncio", asyncio.run(main()))

import micropython
print("mem_peak", micropython.mem_peak())
"""

EXPECTED = {
    "modules": [True, True, "ustack.ports.micropython.netif"],
    "inactive": [False, False, 0],
    "active": [True, True, True],
    "ifconfig": ["192.0.2.2", "255.255.255.0", "0.0.0.0", "0.0.0.0"],
    "ifconfig_set": ["192.0.2.2", "255.255.255.0", "192.0.2.1", "192.0.2.1"],
    "ipconfig": [["192.0.2.2", "255.255.255.0"], "192.0.2.1", False],
    "mac": [6, True],
    "getaddrinfo": [True, True, ["192.0.2.1", 7777]],
    "getaddrinfo_name": -2,
    "makefile": [True, True],
    "write": 22,
    "readline": ["line one\n", "line two\n"],
    "read_n": "rest",
    "write_n": 3,
    "readinto": [3, "abc"],
    "read_big": True,
    "send_recv": [3, "xyz"],
    "timeout": True,
    "nb_read": [None, None, None],
    "nb_recv": True,
    "poll_idle": 0,
    "poll_ready": [1, True, True],
    "poll_read": "poll me\n",
    "ipoll_writable": [True, True],
    "ipoll_count": 1,
    "poll_closed": [True],
    "nb_connect": True,
    "nb_connected": 1,
    "nb_write": 14,
    "nb_readline": "after connect\n",
    "eof_line": "bye\n",
    "eof_poll": [1, True],
    "eof_read": ["", "", ""],
    "udp": "datagram",
    "asyncio": ["through asyncio\n", True, "timeout"],
}


def checks(out):
    got = {}
    for line in out.splitlines():
        if line.startswith("check "):
            _, name, value = line.split(" ", 2)
            got[name] = json.loads(value)
    return got


@pytest.fixture
def net():
    n = MpNet("sock")
    yield n
    n.close()


def test_socket_and_network_facades_answer_as_micropython_does(net):
    net.serve([sys.executable, net.write("echo.py", LINUX_ECHO), HOST_IP], wait_port=7777)
    rc, out = net.run_mpy(HEAD + NIC_PART + SOCK_PART)
    got = checks(out)
    wrong = [(k, got.get(k, "missing"), EXPECTED[k]) for k in EXPECTED
             if got.get(k, "missing") != EXPECTED[k]]
    assert not wrong, (wrong, out)
    assert rc == 0, out
    print("mem_peak facade checks: %d bytes" % mem_peak(out))


def test_the_same_program_on_micropythons_own_sockets_gives_the_same_answers(net):
    """The oracle: SOCK_PART with MicroPython's built-in socket (the kernel's, inside the
    namespace) prints what EXPECTED says the facade must print."""
    net.serve([sys.executable, net.write("echo.py", LINUX_ECHO), HOST_IP], wait_port=7777)
    r = net.ns.run([MPY, net.write("native.py", HEAD + SOCK_PART)], timeout=120)
    got = checks(r.stdout)
    keys = [k for k in EXPECTED if k in got or 'check("%s"' % k in SOCK_PART]
    assert len(keys) > 15
    wrong = [(k, got.get(k, "missing"), EXPECTED[k]) for k in keys
             if got.get(k, "missing") != EXPECTED[k]]
    assert not wrong, (wrong, r.stdout + r.stderr)


LINUX_SINK = """
import hashlib, socket, sys, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a small window: data waits

ls.bind((sys.argv[1], 7780))
ls.listen(1)
c, _ = ls.accept()
time.sleep(0.5)                 # the program has ended by now
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    n += len(d)
    h.update(d)
print("sink", n, h.hexdigest(), flush=True)
"""


def test_data_written_before_the_program_ends_reaches_the_peer(net):
    """A program that writes, closes and ends at once (as on a board whose main.py returns):
    the unix port's stack has no one to drive it once the program is over, so the NIC
    drives it at exit until every connection has delivered its data and its FIN (bounded
    by netif.EXIT_LINGER_MS), as an OS or lwIP would in the background."""
    import hashlib
    sink = net.serve([sys.executable, net.write("sink.py", LINUX_SINK), HOST_IP],
                     wait_port=7780)
    rc, out = net.run_mpy(NIC_UP_PLAIN + r'''
import socket
s = socket.socket()
s.connect(socket.getaddrinfo("192.0.2.1", 7780)[0][-1])
s.write(bytes(range(256)) * 1024)
s.close()
print("written")
''')
    assert rc == 0 and "written" in out, out
    log = sink.communicate(timeout=30)[0]
    data = bytes(range(256)) * 1024
    assert "sink %d %s" % (len(data), hashlib.sha256(data).hexdigest()) in log, log
