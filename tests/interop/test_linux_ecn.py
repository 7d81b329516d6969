"""ECN (RFC 3168) against the Linux kernel in a throwaway netns (net.ipv4.tcp_ecn=1 there),
the stack with TCP_ECN=1 and a pcap of its TAP read back by tshark. nftables plays the
congested router: `ip ecn set ce` on some ECT(0) packets.

- ustack sends: the handshake negotiates ECN (ECN-setup SYN, SYN-ACK with ECE only), the
  data leaves ECT(0), marks on it come back as ECE from Linux, the stack reduces its window
  (ecn_reductions, no retransmission) and answers with CWR;
- Linux sends: marks on Linux's data make the stack echo ECE, and Linux answers with CWR."""
import json
import subprocess
import sys

import pytest

from tests import pcapcheck
from tests.conftest import needs_netns
from tests.netns import Netns, STACK_IP, HOST_IP, sha256_sink
from tests.interop.test_linux_tcp import pattern_sha

pytestmark = [needs_netns]
MB = 1000 * 1000
PORT = 9200

CLIENT = r"""
import json, time
from ustack.ports.cpython.host import open_stack
from ustack.core import socket as so
net = open_stack(tap="ustk9", ip="{stack}/24", host_ip="{host}/24", pcap={pcap!r},
                 config={{"TCP_ECN": 1}}, offload="off")  # CE marks per wire segment
# Linux's segments one by one at the output hook, as a router would see them: TCP always
# builds GSO packets (segmented after the hooks), so at most one segment each
import subprocess
subprocess.run(["ip", "link", "set", "ustk9", "gso_max_segs", "1"], check=True)
for _ in range(50):
    try:
        s = net.socket(so.AF_INET, so.SOCK_STREAM)
        s.settimeout(30)
        s.connect(("{host}", {port}))
        break
    except OSError:
        time.sleep(0.1)
{body}
s.close()
time.sleep(0.2)
c = net.counters()
print("RESULT " + json.dumps(dict((k, v) for k, v in c.items() if k.startswith("tcp."))))
net.close()
"""

UPLOAD = r"""
blk = bytes(range(251)) * 261
left = {n}
while left:
    k = min(left, len(blk))
    s.sendall(blk if k == len(blk) else blk[:k])
    left -= k
s.shutdown(so.SHUT_WR)
s.recv(10)
"""

DOWNLOAD = r"""
import hashlib
h = hashlib.sha256(); total = 0
buf = bytearray(65536)
while True:
    k = s.recv_into(buf)
    if not k:
        break
    h.update(memoryview(buf)[:k]); total += k
print("GOT", total, h.hexdigest())
"""


@pytest.fixture
def ns():
    n = Netns("ecn")
    r = n.run(["sysctl", "-w", "net.ipv4.tcp_ecn=1"])
    assert r.returncode == 0, r.stderr
    yield n
    n.close()


def nft(ns, *args):
    r = ns.run(["nft"] + list(args))
    assert r.returncode == 0, r.stderr
    return r.stdout


def mark_ce(ns, hook, match, percent):
    """The congested router: `percent` % of the ECT(0) packets matching `match` (nft
    words) are marked CE at `hook` (input: the stack's packets, before Linux's TCP reads
    them; output: Linux's, before they reach the stack's TAP)."""
    nft(ns, "add", "table", "inet", "aqm")
    nft(ns, "add", "chain", "inet", "aqm", "c",
        "{ type filter hook %s priority 0 ; policy accept ; }" % hook)
    nft(ns, *(["add", "rule", "inet", "aqm", "c"] + match +
              ["ip", "ecn", "ect0", "numgen", "random", "mod", "100", "<", str(percent),
               "counter", "ip", "ecn", "set", "ce"]))


def marked(ns):
    rules = nft(ns, "list", "chain", "inet", "aqm", "c")
    return int(rules.split("counter packets ")[1].split()[0])


def tshark(pcap, flt):
    t = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-o",
                        "ip.check_checksum:TRUE", "-Y", flt], capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    return [ln for ln in t.stdout.splitlines() if ln.strip()]


def run_client(ns, pcap, body):
    code = CLIENT.format(stack=STACK_IP, host=HOST_IP, port=PORT, pcap=pcap, body=body)
    r = ns.python(code, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return r.stdout, json.loads(r.stdout.split("RESULT ", 1)[1].splitlines()[0])


def check_pcap(pcap):
    bad = pcapcheck.tshark(pcap, pcapcheck.bad_frames(STACK_IP))
    assert bad == [], bad[:20]
    # RFC 3168 6.1.1: our ECN-setup SYN, Linux's ECN-setup SYN-ACK; no ECT on either
    syn = "ip.src == %s && tcp.flags.syn == 1 && tcp.flags.ack == 0" % STACK_IP
    assert len(tshark(pcap, syn + " && tcp.flags.ece == 1 && tcp.flags.cwr == 1 && "
                            "ip.dsfield.ecn == 0")) == 1
    assert len(tshark(pcap, "ip.src == %s && tcp.flags.syn == 1 && tcp.flags.ack == 1 && "
                            "tcp.flags.ece == 1 && tcp.flags.cwr == 0" % HOST_IP)) == 1
    # no ECT on our pure ACKs (6.1.4 / 6.1.1)
    assert tshark(pcap, "ip.src == %s && tcp.len == 0 && ip.dsfield.ecn != 0" % STACK_IP) == []


def test_stack_as_sender_reduces_its_window_on_linux_ece_and_sends_cwr(ns, tmp_path):
    pcap = str(tmp_path / "ecn-up.pcap")
    n = 4 * MB
    mark_ce(ns, "input", ["iifname", "ustk9", "tcp", "dport", str(PORT)], 2)
    sink = sha256_sink(ns, PORT)
    out, c = run_client(ns, pcap, UPLOAD.replace("{n}", str(n)))
    got, _ = sink.communicate(timeout=120)
    assert "%d %s" % (n, pattern_sha(n)) in got, got
    m = marked(ns)
    print("upload: %d marked CE by nft; %s" % (m, {k: v for k, v in c.items() if "ecn" in k or
          k in ("tcp.rx_ece", "tcp.tx_cwr", "tcp.tx_retransmits", "tcp.rx_cwr")}))
    assert m > 20
    assert c["tcp.ecn_negotiated"] == 1
    assert c["tcp.rx_ece"] > 0 and c["tcp.ecn_reductions"] > 0 and c["tcp.tx_cwr"] > 0
    assert c["tcp.ecn_reductions"] <= m          # at most once per mark (per window)
    assert c.get("tcp.tx_retransmits", 0) <= 5   # marks are not losses: nothing resent
    check_pcap(pcap)
    # our data ECT(0); Linux echoed ECE; we answered with CWR on new (ECT) data
    assert len(tshark(pcap, "ip.src == %s && tcp.len > 0 && ip.dsfield.ecn == 2" % STACK_IP)) > 1000
    assert tshark(pcap, "ip.src == %s && tcp.len > 0 && ip.dsfield.ecn != 2 && "
                        "!tcp.analysis.retransmission" % STACK_IP) == []
    assert len(tshark(pcap, "ip.src == %s && tcp.flags.ece == 1 && tcp.flags.syn == 0"
                      % HOST_IP)) > 0
    cwr = tshark(pcap, "ip.src == %s && tcp.flags.cwr == 1 && tcp.flags.syn == 0 && "
                       "tcp.len > 0 && ip.dsfield.ecn == 2" % STACK_IP)
    assert len(cwr) == c["tcp.tx_cwr"]


def test_stack_as_receiver_echoes_ce_and_linux_answers_with_cwr(ns, tmp_path):
    pcap = str(tmp_path / "ecn-down.pcap")
    n = 4 * MB
    mark_ce(ns, "output", ["oifname", "ustk9", "tcp", "sport", str(PORT)], 2)
    src = ns.popen([sys.executable, "-c",
                    "import socket\nl = socket.socket(); "
                    "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                    "l.bind(('', %d)); l.listen(1); print('listening', flush=True)\n"
                    "c, a = l.accept()\nblk = bytes(range(251)) * 261\nleft = %d\n"
                    "while left:\n    k = min(left, len(blk))\n    c.sendall(blk[:k])\n"
                    "    left -= k\n"
                    "c.close(); print('sent', flush=True)\n" % (PORT, n)])
    assert "listening" in src.stdout.readline()
    out, c = run_client(ns, pcap, DOWNLOAD)
    assert "GOT %d %s" % (n, pattern_sha(n)) in out, out
    src.communicate(timeout=60)
    m = marked(ns)
    print("download: %d marked CE by nft; %s" % (m, {k: v for k, v in c.items() if "ecn" in k
          or k in ("tcp.rx_ce", "tcp.rx_cwr", "tcp.tx_cwr")}))
    assert m > 20
    assert c["tcp.ecn_negotiated"] == 1 and c["tcp.rx_ce"] == m
    assert c["tcp.rx_cwr"] > 0
    check_pcap(pcap)
    # Linux's data ECT(0) (the marks happen after it left; the pcap is our side: CE),
    # our ACKs echo ECE and Linux's CWR follows
    assert len(tshark(pcap, "ip.src == %s && tcp.len > 0 && ip.dsfield.ecn == 3" % HOST_IP)) == m
    assert len(tshark(pcap, "ip.src == %s && tcp.flags.ece == 1 && tcp.flags.syn == 0"
                      % STACK_IP)) >= m // 4
    # every CWR the stack took was on the wire (one may fall outside the window: dropped)
    assert 0 < c["tcp.rx_cwr"] <= len(tshark(pcap, "ip.src == %s && tcp.flags.cwr == 1"
                                             % HOST_IP))
    # we send no data: nothing of ours is ECT
    assert tshark(pcap, "ip.src == %s && ip.dsfield.ecn != 0" % STACK_IP) == []
