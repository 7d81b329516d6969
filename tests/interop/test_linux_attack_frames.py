"""Frames that cannot be for us, sent by the Linux side of the TAP inside a throwaway
namespace (raw AF_PACKET frames, and hping3 for the spoofed LAND SYNs): teardrop, ping of
death, overlapping fragments with different data, RFC 1858 tiny fragments, LAND, a unicast
datagram in a broadcast frame, another VLAN's frame. Each is dropped and counted, nothing
answers them, and ping keeps working throughout."""
import json
import re
import struct
import sys

import pytest

from tests import frames as F
from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns]
CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]

SEND_RAW = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("ustk0", 0))
for h in sys.stdin.read().split():
    s.send(bytes.fromhex(h))
print("sent")
"""


@pytest.fixture
def ns():
    n = Netns("atk")
    yield n
    n.close()


def ping(ns, count, src=None):
    r = ns.run(["ping", "-n", "-c", str(count), "-i", "0.01", "-W", "2", STACK_IP] +
               (["-I", src] if src else []), timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2))


def attack_frames(stack_mac, host_mac, rnd):
    """One round of attack frames; each round's datagrams have their own Identifications."""
    hip = bytes(int(x) for x in HOST_IP.split("."))
    sip = bytes(int(x) for x in STACK_IP.split("."))
    echo = F.icmp_echo(0x7777, 1, bytes(i & 0xFF for i in range(64)))   # 72 bytes of ICMP

    def eth(ip, dst=stack_mac):
        return F.eth(dst, host_mac, 0x0800, ip)

    def frag(payload, ident, off, mf, proto=1):
        ident += rnd << 4
        return eth(F.ipv4(hip, sip, proto, payload, ident=ident, frag=(0x2000 if mf else 0) |
                          (off >> 3)))
    forged = bytearray(echo)
    forged[20] ^= 0xFF
    return [
        # teardrop: the last fragment ends inside the first
        frag(echo[0:48], 0x1001, 0, True), frag(echo[24:32], 0x1001, 24, False),
        # ping of death: a fragment reaching past 65535 bytes
        frag(echo[0:24], 0x1002, 0, True), frag(bytes(16), 0x1002, 65528, False),
        # the same bytes twice, different the second time
        frag(echo[0:32], 0x1003, 0, True), frag(bytes(forged[16:32]), 0x1003, 16, True),
        frag(echo[32:], 0x1003, 32, False),
        # RFC 1858: a TCP fragment at offset 8, and a first one without room for the header
        frag(bytes(16), 0x1004, 8, True, proto=6), frag(bytes(8), 0x1005, 0, True, proto=6),
        # a unicast echo request in a broadcast frame
        eth(F.ipv4(hip, sip, 1, echo, ident=0x1006), dst=b"\xff" * 6),
        # an echo request tagged for VLAN 5 (the stack's interface is untagged)
        stack_mac + host_mac + struct.pack("!HHH", 0x8100, 5, 0x0800) +
        F.ipv4(hip, sip, 1, echo, ident=0x1007),
        # LAND, crafted: our own address as the source
        eth(F.ipv4(sip, sip, 1, echo, ident=0x1008)),
    ]


def test_attack_frames_are_dropped_and_counted_while_ping_works(ns):
    stack = StackProc(ns, "--serve", "echo")
    try:
        stack_mac = bytes.fromhex(re.search(r"mac=([0-9a-f:]+)", stack.ready).group(1)
                                  .replace(":", ""))
        host_mac = bytes.fromhex(ns.run(["cat", "/sys/class/net/ustk0/address"]).stdout.strip()
                                 .replace(":", ""))
        assert ping(ns, 5) == (5, 5)                           # before
        frames = [f for rnd in range(3) for f in attack_frames(stack_mac, host_mac, rnd)]
        r = ns.run(["python3", "-c", SEND_RAW], input=" ".join(f.hex() for f in frames))
        assert "sent" in r.stdout, r.stderr
        # LAND with a real attack tool: SYNs to the echo port from the stack's own address
        r = ns.run(["hping3", "-S", "-a", STACK_IP, "-p", "7", "-s", "7", "-k", "-c", "3",
                    "-i", "u10000", STACK_IP], timeout=30)
        assert ping(ns, 20) == (20, 20)                        # during and after
    finally:
        c = stack.stop()
    assert c["reass.malformed"] == 3                           # teardrop
    assert c["reass.oversize"] == 3                            # ping of death
    assert c["reass.overlap_conflict"] == 3
    assert c["reass.tiny"] == 6
    assert c["ip.rx_link_bcast_unicast"] == 3
    assert c["eth0.rx_vlan_other"] == 3
    assert c["ip.rx_src_is_ours"] == 3 + 3                     # crafted + hping3
    assert "reass.reassembled" not in c
    assert c["icmp.tx_echo_replies"] == 25                     # only the real pings
    assert "tcp.rx_segments" not in c and c["pbuf.free"] == c["pbuf.count"]



# Send each frame and wait for a tagged echo reply. The kernel may take the 802.1Q tag out of
# a received frame into PACKET_AUXDATA (tpacket_auxdata: status, len, snaplen, mac, net,
# vlan_tci, vlan_tpid; TP_STATUS_VLAN_VALID 0x10), so look there as well as in the frame.
TAGGED_PINGS = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("ustk0", 0))
s.setsockopt(263, 8, 1)
s.settimeout(0.2)
replies = {}
for h in sys.stdin.read().split():
    s.send(bytes.fromhex(h))
    end = time.time() + 0.5
    while time.time() < end:
        try:
            data, anc, flags, addr = s.recvmsg(4096, 256)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        vid, off = None, 14
        if data[12:14] == b"\x81\x00":
            vid, off = struct.unpack("!H", data[14:16])[0] & 0xFFF, 18
        for lvl, typ, d in anc:
            if lvl == 263 and typ == 8:
                st, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", d[:20])
                if st & 0x10:
                    vid = tci & 0xFFF
        if data[off - 2:off] == b"\x08\x00" and data[off + 9] == 1 and data[off + 20] == 0:
            replies[vid] = replies.get(vid, 0) + 1
            break
print("replies", sorted(replies.items()))
"""


def test_stack_on_a_vlan_answers_its_vlan_tagged_and_ignores_the_rest(ns):
    """`ustack up --config ETH_VLAN=5`: echo requests tagged for VLAN 5 get replies tagged
    for VLAN 5; the same requests untagged or for VLAN 6 get none, and are counted."""
    stack = StackProc(ns, "--config", "ETH_VLAN=5")
    try:
        stack_mac = bytes.fromhex(re.search(r"mac=([0-9a-f:]+)", stack.ready).group(1)
                                  .replace(":", ""))
        host_mac = bytes.fromhex(ns.run(["cat", "/sys/class/net/ustk0/address"]).stdout.strip()
                                 .replace(":", ""))
        hip = bytes(int(x) for x in HOST_IP.split("."))
        sip = bytes(int(x) for x in STACK_IP.split("."))
        # the stack must know the host: a tagged ARP request for the stack teaches it
        arp = stack_mac + host_mac + struct.pack("!HH", 0x8100, 5) + b"\x08\x06" + \
            F.arp(1, host_mac, hip, bytes(6), sip)
        frames = [arp]
        for k in range(5):
            ip = F.ipv4(hip, sip, 1, F.icmp_echo(0x5555, k, b"vlan five"), ident=k)
            frames.append(stack_mac + host_mac + struct.pack("!HH", 0x8100, 5) +
                          b"\x08\x00" + ip)
            frames.append(stack_mac + host_mac + struct.pack("!HH", 0x8100, 6) +
                          b"\x08\x00" + ip)
            frames.append(stack_mac + host_mac + b"\x08\x00" + ip)
        r = ns.run(["python3", "-c", TAGGED_PINGS], input=" ".join(f.hex() for f in frames),
                   timeout=60)
    finally:
        c = stack.stop()
    # the ARP reply (tagged 5) and five echo replies, all tagged 5, nothing else
    assert "replies [(5, 5)]" in r.stdout, r.stdout + r.stderr
    assert c["eth0.rx_vlan_other"] == 5 and c["eth0.rx_vlan_untagged"] >= 5
    assert c["icmp.tx_echo_replies"] == 5


NEIGH = "192.0.2.3"
UDP_ECHO_FROM_NEIGH = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("%s", 0))
s.settimeout(2)
s.sendto(b"hi", ("%s", 7))
print(s.recv(16))
""" % (NEIGH, STACK_IP)


def test_an_arp_request_flood_from_random_senders_never_evicts_the_neighbour_in_use(ns):
    # RFC 826's merge adds each request's sender; 400 requests for the stack's address from
    # ever new on-link senders (more than its entries) must not push out the neighbour the
    # stack is talking to (a second address of the host; a UDP echo's answer is resolved,
    # an ICMP echo reply is not): every asker is answered, and the neighbour is never asked
    # for again
    stack = StackProc(ns, "--serve", "echo")
    try:
        ns.run(["ip", "addr", "add", NEIGH + "/24", "dev", "ustk0"])
        sip = bytes(int(x) for x in STACK_IP.split("."))
        assert "hi" in ns.python(UDP_ECHO_FROM_NEIGH).stdout
        before = stack.live_counters()
        frames = []
        for k in range(400):
            mac = bytes([2, 0, 0x5e, 0x10, k >> 8, k & 0xFF])
            spa = bytes([192, 0, 2, 10 + k % 240])   # never .1-.3
            frames.append(F.eth(b"\xff" * 6, mac, 0x0806, F.arp(1, mac, spa, bytes(6), sip)))
        r = ns.run(["python3", "-c", SEND_RAW], input=" ".join(f.hex() for f in frames))
        assert "sent" in r.stdout, r.stderr
        neigh = json.loads(ns.run(CLI + ["neigh", "--json"]).stdout)
        assert any(e["ip"] == NEIGH and e["state"] == "REACHABLE" for e in neigh), neigh
        assert "hi" in ns.python(UDP_ECHO_FROM_NEIGH).stdout
        after = stack.live_counters()
    finally:
        c = stack.stop()

    def d(k):
        return after.get(k, 0) - before.get(k, 0)
    assert d("eth0.arp.rx_requests") == 400 and d("eth0.arp.tx_replies") == 400
    assert d("eth0.arp.tx_requests") == 0, {k: d(k) for k in after if ".arp." in k}
    assert d("eth0.arp.evicted") > 0
    assert c["pbuf.free"] == c["pbuf.count"]
