"""The seed's examples, written against our API, run against Linux in a throwaway netns."""
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, HOST_IP, STACK_IP

pytestmark = [needs_netns]
EX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
ARGS = ["--tap", "ustk0", "--ip", STACK_IP + "/24", "--host-ip", HOST_IP + "/24"]


@pytest.fixture
def ns():
    n = Netns("ex")
    yield n
    n.close()


def start(ns, script, *extra, wait_for):
    p = ns.popen([sys.executable, os.path.join(EX, script)] + ARGS + list(extra))
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
        if wait_for in line:
            return p, lines


def test_udp_broadcast_receiver_prints_linux_broadcasts(ns):
    p, lines = start(ns, "udp_broadcast_receiver.py", "--count", "3", wait_for="listening")
    time.sleep(0.2)
    r = ns.python("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                  "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n"
                  "for i in range(3):\n s.sendto(b'Hello %d' % i, ('192.0.2.255', 12345)); time.sleep(0.05)\n")
    assert r.returncode == 0, r.stderr
    out, _ = p.communicate(timeout=20)
    assert "Received from %s" % HOST_IP in out and "Hello 2" in out


def test_udp_broadcast_sender_reaches_a_linux_socket(ns):
    ns.run(["ip", "link", "add", "dummy0", "type", "dummy"])  # keeps the netns routable early
    r = subprocess.Popen(ns.cmd([sys.executable, "-c",
                                 "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                 "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                                 "s.bind(('',12345)); s.settimeout(15)\nprint('bound',flush=True)\n"
                                 "for i in range(3): print(s.recvfrom(100), flush=True)\n"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ns.procs.append(r)
    assert "bound" in r.stdout.readline()
    p, _ = start(ns, "udp_broadcast_sender.py", "--count", "3", "--interval", "0.3", wait_for="Broadcast sent")
    out, _ = r.communicate(timeout=20)
    assert out.count("Hello, network!") == 3, out
    assert p.wait(20) == 0


def test_raw_capture_sees_linux_traffic(ns):
    p, _ = start(ns, "raw_capture.py", "--count", "2", wait_for="capture started")
    ns.run(["ping", "-c", "4", "-i", "0.1", STACK_IP])
    out, _ = p.communicate(timeout=20)
    assert "%s -> %s, Protocol: 1 (ICMP)" % (HOST_IP, STACK_IP) in out, out


def test_threaded_tcp_echo_server_serves_linux_clients(ns):
    pytest.importorskip("ustack.core.tcp.proto")
    p, _ = start(ns, "tcp_echo_server.py", wait_for="listening on port 8080")
    r = ns.python(
        "import socket, threading\nres = []\n"
        "def one(i):\n"
        "    c = socket.create_connection(('%s', 8080), timeout=5)\n"
        "    m = (b'client %%d ' %% i) * 100\n"
        "    c.sendall(m); got = b''\n"
        "    while len(got) < len(m): got += c.recv(65536)\n"
        "    res.append(got == m); c.close()\n"
        "ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\nprint(sum(res))\n" % STACK_IP)
    assert r.stdout.strip() == "10", r.stdout + r.stderr
    p.kill()
