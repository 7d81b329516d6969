"""SACK blocks on ustack's data segments against the Linux kernel (RFC 2018 4: while the
receiver holds data out of order, every ACK it sends carries SACK, a segment with data
too): Linux B streams into ustack's TCP echo service across vde2's wirefilter (3 % random
loss each way, tests/impaired.py), so ustack holds Linux's data with holes while it sends the
echo back. (A netfilter drop on Linux's own output would not do: its TCP sees the local drop
and sends the segment again before anything leaves.) tshark reads ustack's capture: ustack's
data segments carry SACK blocks (beside timestamps, at most 3), every frame within the MTU,
no malformed option; the echo arrives intact (SHA-256)."""
import subprocess
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import STACK_IP

pytestmark = [needs_netns]

N = 3 * 1000 * 1000

# Linux's side: send N bytes to ustack's echo port while reading the echo back
CLIENT = r"""
import hashlib, socket, sys, threading
host, n = sys.argv[1], int(sys.argv[2])
data = bytes((i * 7) % 253 for i in range(n))
s = socket.create_connection((host, 7), timeout=120)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
h = hashlib.sha256()
got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    h.update(b)
    got += len(b)
t.join()
print("ECHO", got, h.hexdigest() == hashlib.sha256(data).hexdigest())
"""


@pytest.fixture
def imp():
    from tests.impaired import ImpairedPath
    p = ImpairedPath(loss=3, tag="sdt")
    yield p
    p.close()


def tshark(pcap, flt, *extra):
    t = subprocess.run(["tshark", "-n", "-r", pcap, "-o", "tcp.desegment_tcp_streams:FALSE",
                        "-Y", flt] + list(extra), capture_output=True, text=True, timeout=300)
    assert t.returncode == 0, t.stderr
    return [ln for ln in t.stdout.splitlines() if ln.strip()]


def test_our_data_segments_carry_sack_while_linux_data_has_holes(imp, tmp_path):
    pcap = str(tmp_path / "echo.pcap")
    imp.start_stack("--serve", "echo", "--pcap", pcap, "--offload", "off")
    try:
        r = imp.b.run([sys.executable, "-c", CLIENT, STACK_IP, str(N)], timeout=240)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["ECHO", str(N), "True"], r.stdout + r.stderr
    finally:
        c = imp.stop_stack()
    # ustack's data segments with SACK blocks: (frame length, payload, blocks, TSval)
    rows = tshark(pcap, "ip.src == %s && tcp.len > 0 && tcp.options.sack_le" % STACK_IP,
                  "-T", "fields", "-e", "frame.len", "-e", "tcp.len", "-e",
                  "tcp.options.sack.count", "-e", "tcp.options.timestamp.tsval")
    print("%d of our data segments carried SACK; %s" % (
        len(rows), {k: v for k, v in c.items() if k.startswith("tcp.") and v and
                    ("sack" in k or "ooo" in k or "retrans" in k or "rto" in k)}))
    assert c["tcp.tx_retransmits"] > 0        # the path lost some of ours too
    assert len(rows) > 20, rows[:5]
    for row in rows:
        flen, tlen, count, tsval = row.split("\t")
        assert tsval and 1 <= int(count) <= 3, row   # beside timestamps: at most 3 blocks
        assert int(flen) <= 1514, row                 # within the MTU
    # nothing malformed, no frame of ours beyond the MTU
    assert tshark(pcap, "_ws.malformed || tcp.options.sack.count > 3") == []
    assert tshark(pcap, "ip.src == %s && frame.len > 1514" % STACK_IP) == []
    assert c.get("tcp.rx_sack_bad", 0) == 0 and c["pbuf.free"] == c["pbuf.count"]
