"""The stack under the MicroPython unix port, reached by Linux over a TAP in a throwaway
network namespace (`ustack up --runtime micropython`: TAP <-> CPython bridge <-> StreamLink
<-> micropython): ping 200/200, UDP echo, a 1 MB TCP echo checked by SHA-256, and the same
with micropython.heap_lock() held through 1000 pings, 1000 UDP echoes and 1 MB of TCP."""
import json
import re
import subprocess

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP
from tests.micropython.mpyhelp import needs_micropython

pytestmark = [needs_netns, needs_micropython]

CONTROL = 4242


@pytest.fixture
def ns():
    n = Netns("mpy")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", "echo,discard", "--board", "unix", runtime="micropython",
                  env={"USTACK_MPY_CONTROL_PORT": str(CONTROL)})
    yield s
    if s.p.poll() is None:
        s.stop()


def ping(ns, *args):
    """ping with a deadline (-w): without one, ping waits only twice the largest RTT for the
    last reply, which a GC pass in the stack can exceed."""
    r = ns.run(["ping", "-n", "-w", "60"] + list(args), timeout=180)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    rtt = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)", r.stdout)
    return int(m.group(1)), int(m.group(2)), (float(rtt.group(2)) if rtt else None)


def every_echo_answered(result, count):
    """ping -c N with a deadline waits for N replies and may send one more meanwhile (a late
    reply under load): every echo sent was answered, and at least N."""
    sent, got = result[:2]
    return got == sent and got >= count


UDP_ECHO = r"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
t0 = time.perf_counter(); nbytes = 0
for i in range({n}):
    m = bytes([i % 256]) * (1 + (i * 7) % {maxlen})
    s.sendto(m, ('{ip}', 7))
    d, a = s.recvfrom(65535)
    assert d == m and a == ('{ip}', 7), (i, len(d))
    nbytes += len(m)
dt = time.perf_counter() - t0
print('ok %d %.3f %d' % ({n}, dt, nbytes))
"""

TCP_ECHO = r"""
import hashlib, os, socket, threading, time
N = {nbytes}
data = os.urandom(N)
s = socket.create_connection(('{ip}', 7), timeout=30)
got = bytearray()
def reader():
    while len(got) < N:
        b = s.recv(65536)
        if not b:
            break
        got.extend(b)
t = threading.Thread(target=reader); t.start()
t0 = time.perf_counter()
s.sendall(data)
t.join(120)
dt = time.perf_counter() - t0
s.close()
ok = hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(data).hexdigest()
print('sha256 %s %d %.3f' % ('match' if ok else 'MISMATCH', len(got), dt))
"""

TCP_ECHO_HELD = r"""
import hashlib, os, socket, sys, threading, time
s = socket.create_connection(('{ip}', 7), timeout=30)
def echo(n):
    data = os.urandom(n)
    got = bytearray()
    def reader():
        while len(got) < n:
            b = s.recv(65536)
            if not b:
                break
            got.extend(b)
    t = threading.Thread(target=reader); t.start()
    t0 = time.perf_counter()
    s.sendall(data)
    t.join(120)
    dt = time.perf_counter() - t0
    ok = hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(data).hexdigest()
    return ok, len(got), dt
ok, n, dt = echo(64 << 10)  # warm-up on this connection
print('warm %s %d' % (ok, n), flush=True)
sys.stdin.readline()        # the test locks the heap, then says go
ok, n, dt = echo({nbytes})
print('sha256 %s %d %.3f' % ('match' if ok else 'MISMATCH', n, dt), flush=True)
sys.stdin.readline()
s.close()
"""

CONTROL_CMD = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)
s.sendto(b'{cmd}', ('{ip}', {port}))
print(s.recvfrom(4096)[0].decode())
"""


def udp_echo(ns, n, maxlen=1400):
    r = ns.python(UDP_ECHO.format(n=n, ip=STACK_IP, maxlen=maxlen), timeout=180)
    assert r.stdout.startswith("ok "), r.stdout + r.stderr
    _, k, dt, nbytes = r.stdout.split()
    return float(dt), int(nbytes)


def tcp_echo(ns, nbytes):
    r = ns.python(TCP_ECHO.format(nbytes=nbytes, ip=STACK_IP), timeout=180)
    assert r.stdout.startswith("sha256 match %d " % nbytes), r.stdout + r.stderr
    return float(r.stdout.split()[3])


def control(ns, cmd):
    r = ns.python(CONTROL_CMD.format(cmd=cmd, ip=STACK_IP, port=CONTROL), timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def test_ready_line_says_micropython(stack):
    assert "runtime=micropython" in stack.ready and "ip=192.0.2.2/24" in stack.ready


def test_linux_pings_the_micropython_stack_200_times(ns, stack):
    sent, got, rtt = ping(ns, "-c", "200", "-i", "0.002", "-W", "2", STACK_IP)
    assert (sent, got) == (200, 200)
    print("ping over the bridge to MicroPython: avg rtt %.3f ms" % rtt)
    c = stack.stop()
    assert c["icmp.tx_echo_replies"] >= 200
    assert c["pbuf.free"] == c["pbuf.count"]
    assert stack.returncode == 0


def test_big_and_fragmented_pings(ns, stack):
    assert every_echo_answered(ping(ns, "-c", "20", "-i", "0.005", "-s", "1472", "-M", "do", STACK_IP), 20)
    assert every_echo_answered(ping(ns, "-c", "5", "-i", "0.02", "-s", "4000", STACK_IP), 5)
    c = stack.stop()
    assert c["reass.reassembled"] >= 5


def test_linux_exchanges_udp_with_the_micropython_stack(ns, stack):
    dt, nbytes = udp_echo(ns, 500)
    print("UDP echo under MicroPython: 500 round trips in %.2f s (%.0f/s, %.0f KB/s each way)"
          % (dt, 500 / dt, nbytes / dt / 1024))
    c = stack.stop()
    assert c["udp.rx_delivered"] >= 500 and c["udp.tx_datagrams"] >= 500


def test_linux_tcp_transfer_of_1mb_with_matching_sha256(ns, stack):
    dt = tcp_echo(ns, 1 << 20)
    print("TCP echo under MicroPython: 1 MB each way in %.2f s (%.0f KB/s)" % (dt, 1024 / dt))
    c = stack.stop()
    assert c["tcp.conn_passive"] >= 1
    assert c["svc.tcp7.rx_bytes"] == 1 << 20 and c["svc.tcp7.tx_bytes"] == 1 << 20


def test_heap_locked_1000_pings_1000_udp_echoes_and_1mb_tcp(ns, stack):
    """Steady state: the TCP connection is set up (accept allocates its socket) and warmed
    up before the lock; 1 MB then moves over it with the heap locked."""
    import sys
    assert every_echo_answered(ping(ns, "-c", "10", "-i", "0.01", STACK_IP), 10)
    udp_echo(ns, 10)
    cli = ns.popen([sys.executable, "-u", "-c", TCP_ECHO_HELD.format(ip=STACK_IP, nbytes=1 << 20)],
                   stdin=subprocess.PIPE)
    try:
        warm = cli.stdout.readline()
        assert warm.startswith("warm True 65536"), warm + cli.stdout.read()
        assert control(ns, "lock") == "locked"
        sent, got, rtt = ping(ns, "-c", "1000", "-i", "0.001", "-W", "2", STACK_IP)
        dt_udp, _ = udp_echo(ns, 1000)
        cli.stdin.write("go\n")
        cli.stdin.flush()
        res = cli.stdout.readline()
        rep = json.loads(control(ns, "unlock"))
        cli.stdin.write("done\n")
        cli.stdin.flush()
        cli.wait(30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert res.startswith("sha256 match %d " % (1 << 20)), res
    dt_tcp = float(res.split()[3])
    print("heap locked: 1000 pings (avg %.3f ms), 1000 UDP echoes (%.2f s), 1 MB TCP echo "
          "(%.2f s, %.0f KB/s); %s" % (rtt, dt_udp, dt_tcp, 1024 / dt_tcp, rep))
    assert (sent, got) == (1000, 1000)
    assert rep["failures"] == 0, rep
    c = stack.stop()
    assert "heap_lock.failures" not in c


def test_sigterm_prints_the_counters_and_the_bridge_is_gone(ns, stack):
    import signal
    ping(ns, "-c", "3", "-i", "0.01", STACK_IP)
    stack.p.send_signal(signal.SIGTERM)
    out, _ = stack.p.communicate(timeout=30)
    assert stack.p.returncode == 0, out
    line = [ln for ln in out.splitlines() if ln.startswith("counters ")][-1]
    c = json.loads(line[9:])
    assert c["icmp.tx_echo_replies"] >= 3 and c["bridge.to_stack"] >= 3
    r = ns.run(["ip", "link", "show", "ustk0"])
    assert r.returncode != 0, "the TAP outlived ustack up"


def test_pcap_from_the_bridge(ns, tmp_path):
    pcap = str(tmp_path / "mpy.pcap")
    s = StackProc(ns, "--serve", "echo", "--board", "unix", "--pcap", pcap, runtime="micropython")
    ping(ns, "-c", "5", "-i", "0.01", STACK_IP)
    s.stop()
    with open(pcap, "rb") as f:
        data = f.read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    assert data.count(bytes([192, 0, 2, 2, 192, 0, 2, 1])) >= 5  # replies: src .2 dst .1


@pytest.mark.parametrize("board", ["pc_tap", "w5500_evb_pico", "pico_enc28j60", "esp32_w5500"])
def test_any_board_config_runs_under_micropython(ns, board):
    """A board's CONFIG and FEATURES under the unix port (its link replaced by the bridge),
    with --stats-interval and --duration as under the CPython runtime."""
    s = StackProc(ns, "--serve", "echo", "--board", board, "--stats-interval", "0.3",
                  "--duration", "4", runtime="micropython")
    # a reply may wait behind a periodic counters line (a GC pass): ping() gives a deadline
    sent, got, _ = ping(ns, "-c", "20", "-i", "0.01", STACK_IP)
    dt, _ = udp_echo(ns, 20)
    tcp_echo(ns, 64 << 10)
    out, _ = s.p.communicate(timeout=60)   # --duration ends it
    assert s.p.returncode == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith("counters ")]
    assert len(lines) >= 3, out            # periodic ones, then the exit counters
    c = json.loads(lines[-1][9:])
    assert (sent, got) == (20, 20)
    assert c["icmp.tx_echo_replies"] >= 20 and c["svc.tcp7.rx_bytes"] == 64 << 10
