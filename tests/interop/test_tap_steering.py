"""The TAP's steering program (hal/tapsteer.py) in the Linux kernel: a multi-queue TAP in a
throwaway namespace gets it attached, frames sent into the TAP from the kernel's side (an
AF_PACKET socket: dev_queue_xmit, the same path as the kernel's own traffic) land on the
queue their kind says, read back from each queue's fd; and without it (too few queues,
turned off, after close) the kernel's own steering is back."""
import json

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns

pytestmark = [needs_netns]

PRELUDE = r"""
import json, os, socket, struct, subprocess, time
from ustack.hal.tap import Tap
from ustack.hal import tapsteer
SMAC = b"\x02\0\0\0\0\x02"; HMAC = b"\x02\0\0\0\0\x01"
S4 = bytes([192, 0, 2, 2]); H4 = bytes([192, 0, 2, 1])
S6 = bytes.fromhex("20010db8000000000000000000000002")
H6 = bytes.fromhex("20010db8000000000000000000000001")
def eth(t, p, dst=SMAC, src=HMAC): return dst + src + struct.pack(">H", t) + p
def ip4(proto, pl, frag=0, src=H4, dst=S4):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(pl), 1, frag, 64, proto, 0, src,
                       dst) + pl
def ip6(nh, pl, src=H6, dst=S6):
    return struct.pack(">IHBB16s16s", 0x60000000, len(pl), nh, 64, src, dst) + pl
def tcp(sp, dp, flags, seq=1):
    return struct.pack(">HHIIBBHHH", sp, dp, seq, 0, 0x50, flags, 1000, 0, 0)
def udp(sp, dp): return struct.pack(">HHHH", sp, dp, 8, 0)
def up(name):
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    time.sleep(0.2)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((name, 0))
    return s
def drain(t):
    for fd in t.fds:
        try:
            while True:
                os.read(fd, 4096)
        except BlockingIOError:
            pass
def where(t, s, f):
    # the queues f arrived on (one, or none if dropped), read back from each queue's fd
    drain(t)
    s.send(f)
    got = []
    end = time.monotonic() + 1.0
    while not got and time.monotonic() < end:
        time.sleep(0.005)
        for q, fd in enumerate(t.fds):
            try:
                while True:
                    if os.read(fd, 4096) == f:
                        got.append(q)
            except BlockingIOError:
                pass
    return got
"""


@pytest.fixture
def ns():
    n = Netns("steer")
    yield n
    n.close()


def run(ns, body):
    r = ns.python(PRELUDE + body, timeout=60)
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    assert r.returncode == 0 and lines, r.stdout + r.stderr
    return json.loads(lines[-1])


def test_each_kind_of_frame_lands_on_its_queue(ns):
    """8 queues: 0 OURS, 1-4 REST, 5 AGAIN, 6 SYN, 7 FRAG."""
    got = run(ns, r"""
t = Tap("stq0", queues=8)
s = up("stq0")
r = {"steer": t.steer is not None, "refused": t.steer_refused}
r["arp"] = where(t, s, eth(0x0806, bytes(28), dst=b"\xff" * 6))
r["ns6"] = where(t, s, eth(0x86DD, ip6(58, bytes([135, 0, 0, 0]) + bytes(20))))
r["echo6"] = where(t, s, eth(0x86DD, ip6(58, bytes([128, 0, 0, 0]) + bytes(8))))
r["syn"] = where(t, s, eth(0x0800, ip4(6, tcp(40000, 7, 0x02))))
r["syn_again"] = where(t, s, eth(0x0800, ip4(6, tcp(40000, 7, 0x02))))
r["syn_new_seq"] = where(t, s, eth(0x0800, ip4(6, tcp(40000, 7, 0x02, seq=99))))
g = time.monotonic_ns()
t.steer.rotate(g - (1 << 30))      # the reader's clearing: this generation,
t.steer.rotate(g - (2 << 30))      # and the last one: the SYN is new again
r["syn_cleared"] = where(t, s, eth(0x0800, ip4(6, tcp(40000, 7, 0x02))))
r["syn_ece_cwr"] = where(t, s, eth(0x0800, ip4(6, tcp(40001, 7, 0xC2))))
r["syn6"] = where(t, s, eth(0x86DD, ip6(6, tcp(40002, 7, 0x02))))
r["synack"] = where(t, s, eth(0x0800, ip4(6, tcp(40003, 7, 0x12))))
r["frag_mf"] = where(t, s, eth(0x0800, ip4(17, bytes(16), frag=0x2000)))
r["frag_off"] = where(t, s, eth(0x0800, ip4(17, bytes(16), frag=0x0002)))
r["frag_df"] = where(t, s, eth(0x0800, ip4(17, udp(5, 9), frag=0x4000)))
r["frag6"] = where(t, s, eth(0x86DD, ip6(44, bytes([17, 0, 0, 1]) + bytes(4) + udp(5, 9))))
r["runt"] = where(t, s, eth(0x0800, bytes(6)))
r["vlan"] = where(t, s, eth(0x8100, bytes(46)))
r["udp"] = [where(t, s, eth(0x0800, ip4(17, udp(1000 + i, 9)))) for i in range(40)]
r["tcp6"] = [where(t, s, eth(0x86DD, ip6(6, tcp(1000 + i, 80, 0x10)))) for i in range(40)]
c = {}
t.report(c)
r["counters"] = c
t.close()
print(json.dumps(r))
""")
    assert got["steer"] and got["refused"] == 0, got
    assert got["arp"] == [0] and got["ns6"] == [0], got           # ARP and ND: OURS
    assert got["syn"] == [6] and got["syn6"] == [6], got          # a SYN: SYN
    assert got["syn_again"] == [5], got                           # the same SYN again: AGAIN
    assert got["syn_new_seq"] == [6], got                         # its flow, a new one: SYN
    assert got["syn_cleared"] == [6], got                         # ... not once forgotten
    assert got["syn_ece_cwr"] == [6], got                         # RFC 3168's SYN is a SYN
    assert got["frag_mf"] == got["frag_off"] == got["frag6"] == [7], got   # FRAG
    for k in ("synack", "frag_df", "echo6", "runt", "vlan"):
        assert len(got[k]) == 1 and 1 <= got[k][0] <= 4, (k, got)  # REST
    assert got["runt"] == got["vlan"] == [1], got
    # flows spread over every REST queue
    for k in ("udp", "tcp6"):
        assert all(len(q) == 1 for q in got[k]), got[k]
        assert sorted(set(q[0] for q in got[k])) == [1, 2, 3, 4], (k, got[k])
    c = got["counters"]
    assert c["link.tap_queues"] == 8 and c["link.tap_steering"] == 1, c
    assert "link.tap_steer_refused" not in c, c


def test_a_flow_we_send_on_comes_back_on_queue_0_for_3_s(ns):
    """The frames we send note their flow (not a RST, a fragment, or a reply that keeps no
    state); the program sends that flow's frames to OURS until 3 s after the last one, as
    tun's own steering did, in both families."""
    got = run(ns, r"""
t = Tap("stq1", queues=8)
s = up("stq1")
r = {}
def send(f):
    b = bytearray(f)
    assert t.send(b, len(b))
def flow4(flags=0x10):
    return eth(0x0800, ip4(6, tcp(33000, 7, flags)))
def back4(flags):
    return eth(0x0800, ip4(6, tcp(7, 33000, flags), src=S4, dst=H4), dst=HMAC, src=SMAC)
r["before"] = where(t, s, flow4())
send(back4(0x14))   # a RST ends its flow
r["after_rst"] = where(t, s, flow4())
t.stateless = True  # a SYN cookie's SYN-ACK (core/tcp/output.py) keeps no state
send(back4(0x12))
t.stateless = False
r["after_cookie"] = where(t, s, flow4())
send(back4(0x12))   # a half-open connection's SYN-ACK: the client's ACK comes to OURS
r["after_synack"] = where(t, s, flow4())
k = tapsteer.bucket(bytearray(back4(0x10)), 54)
t.steer.stamps[k] = 0
r["forgotten"] = where(t, s, flow4())
send(back4(0x10))   # an ACK: a flow we talk to
r["after_ack"] = where(t, s, flow4())
r["its_syn"] = where(t, s, flow4(0x02))     # a SYN stays a SYN
r["other_port"] = where(t, s, eth(0x0800, ip4(6, tcp(33001, 7, 0x10))))
t.steer.stamps[k] = time.monotonic_ns() - 3100000000   # 3.1 s of silence
r["expired"] = where(t, s, flow4())
t.steer.stamps[k] = time.monotonic_ns() - 2000000000   # 2 s: still ours
r["not_yet"] = where(t, s, flow4())
u6 = eth(0x86DD, ip6(17, udp(5353, 4000)))
r["udp6_before"] = where(t, s, u6)
send(eth(0x86DD, ip6(17, udp(4000, 5353), src=S6, dst=H6), dst=HMAC, src=SMAC))
r["udp6_after"] = where(t, s, u6)
ping = eth(0x0800, ip4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])))
r["ping_before"] = where(t, s, ping)
send(eth(0x0800, ip4(1, bytes([0, 0, 0, 0, 0, 1, 0, 1]), src=S4, dst=H4), dst=HMAC, src=SMAC))
r["ping_after"] = where(t, s, ping)
r["frag_after"] = where(t, s, eth(0x0800, ip4(1, bytes(16), frag=0x2000)))
t.close()
print(json.dumps(r))
""")
    assert got["before"] != [0] and len(got["before"]) == 1, got
    assert got["after_rst"] == got["after_cookie"] == got["before"], got  # not noted
    assert got["after_synack"] == [0] and got["forgotten"] == got["before"], got
    assert got["after_ack"] == [0] and got["not_yet"] == [0], got
    assert got["its_syn"] in ([5], [6]), got
    assert got["other_port"] != [0] and got["expired"] == got["before"], got
    assert got["udp6_before"] != [0] and got["udp6_after"] == [0], got
    assert got["ping_before"] != [0] and got["ping_after"] == [0], got
    assert got["frag_after"] == [7], got   # a fragment of that flow: FRAG all the same


def test_without_the_program_the_kernel_steers_as_before(ns):
    """Fewer than 5 queues, USTACK_TAP_STEER=0, or the program's TAP closed: the kernel's
    own flow steering (a flow keeps its queue: a SYN sent twice lands on the same one), the
    reason in the counters; the old reader reads what comes."""
    got = run(ns, r"""
r = {}
t = Tap("stq2", queues=4)
s = up("stq2")
r["q4"] = [t.steer is None, t.steer_refused]
syn = eth(0x0800, ip4(6, tcp(41000, 7, 0x02)))
r["q4_syns"] = [where(t, s, syn), where(t, s, syn)]
c = {}
t.report(c)
r["q4_counters"] = c
s.send(syn)
buf = bytearray(2048)
end = time.monotonic() + 5  # a loaded machine delivers late: read until it comes
n = 0
while not n and time.monotonic() < end:
    n = t.recv_into(buf)
    time.sleep(0 if n else 0.01)
r["q4_read"] = n == len(syn)
t.close()
os.environ["USTACK_TAP_STEER"] = "0"
t = Tap("stq3", queues=8)
r["off"] = [t.steer is None, t.steer_refused]
t.close()
del os.environ["USTACK_TAP_STEER"]
# a persistent TAP: its next user (here without a program) gets the kernel's steering back
t = Tap("stq4", queues=8, persist=True)
s = up("stq4")
r["persist_steered"] = [where(t, s, syn), where(t, s, syn)]
t.close()
t = Tap("stq4", queues=8, steer=False)
s = up("stq4")
r["persist_after"] = [where(t, s, syn), where(t, s, syn)]
import fcntl
from ustack.hal.tap import TUNSETPERSIST
fcntl.ioctl(t.fds[0], TUNSETPERSIST, 0)
t.close()
print(json.dumps(r))
""")
    assert got["q4"] == [True, 22], got  # EINVAL: a program needs 5 queues
    a, b = got["q4_syns"]
    assert len(a) == 1 and a == b, got
    assert got["q4_counters"]["link.tap_steer_refused"] == 22, got
    assert "link.tap_steering" not in got["q4_counters"], got
    assert got["q4_read"], got
    assert got["off"] == [True, -1], got
    assert got["persist_steered"] == [[6], [5]], got
    a, b = got["persist_after"]
    assert len(a) == 1 and a == b, got


def test_a_flood_of_new_syns_leaves_again_to_the_syns_sent_again(ns):
    """hping3's one-source SYN flood: 100 000 SYNs (a second of it), each new (ports and
    sequence numbers from a seeded generator), few of them may be taken for a SYN seen again
    (SEEN's false positives), or they crowd the AGAIN queue and the clients' retransmitted
    SYNs are dropped there (session 8: SEEN with one bit per SYN in 2**21 put 1 flood SYN
    in 8 there, more than the stack read from it). A real SYN sent again still lands there."""
    got = run(ns, r"""
import random
t = Tap("stq5", queues=8)
s = up("stq5")
rng = random.Random(8)
per_q = [0] * 8
buf = bytearray(2048)
def drain_count():
    for q, fd in enumerate(t.fds):
        try:
            while True:
                os.readv(fd, [buf])
                per_q[q] += 1
        except BlockingIOError:
            pass
sent = 0
while sent < 100000:
    t.steer.rotate(time.monotonic_ns())   # as the reader does each round
    for _ in range(200):   # fewer than a queue's ring holds (500) between two drains
        s.send(eth(0x0800, ip4(6, tcp(rng.randrange(1024, 65536), 80, 0x02,
                                      seq=rng.getrandbits(32)))))
        sent += 1
    drain_count()
time.sleep(0.05)
drain_count()
client = eth(0x0800, ip4(6, tcp(40000, 7, 0x02, seq=12345)))
r = {"per_q": per_q, "first": where(t, s, client), "again": where(t, s, client)}
t.close()
print(json.dumps(r))
""")
    per_q = got["per_q"]
    assert per_q[6] + per_q[5] == 100000, per_q   # none dropped (the rest: the kernel's ND)
    assert per_q[5] < 200, per_q   # at most 1 flood SYN in 500 on AGAIN
    assert got["first"] == [6] and got["again"] == [5], got
