"""AF_PACKET link (hal/afpacket.py) against the Linux kernel: a veth pair whose far end lives in
a throwaway network namespace with 192.0.2.1/24. We speak ARP (and ICMP echo) by hand on our
end (192.0.2.2) through AfPacket. Needs root, iproute2 and AF_PACKET; skipped otherwise."""
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root

PEER_IP = "192.0.2.1"
OUR_IP = "192.0.2.2"


def _skip_reason():
    if not hasattr(socket, "AF_PACKET"):
        return "AF_PACKET is Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN for netns/veth, CAP_NET_RAW for AF_PACKET)"
    if not shutil.which("ip"):
        return "iproute2 ('ip') not installed"
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)

from ustack.hal.afpacket import AfPacket  # noqa: E402


def ip(*args, ns=None, check=True):
    cmd = ["ip"] + list(args)
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=20)


@pytest.fixture
def veth():
    tag = "%d-%06x" % (os.getpid(), random.getrandbits(24))
    ns = "ustk-afp-" + tag
    host_if = "uafp%07x" % random.getrandbits(28)   # 11 chars (IFNAMSIZ is 16)
    peer_if = "uafq%07x" % random.getrandbits(28)
    try:
        r = ip("netns", "add", ns, check=False)
        if r.returncode:
            pytest.skip("cannot create a network namespace: " + r.stderr.strip())
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        ip("link", "set", peer_if, "netns", ns)
        # keep the root namespace quiet on our end: no IPv6 RS/MLD/DAD from it
        knob = "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % host_if
        if os.path.exists(knob):
            with open(knob, "w") as f:
                f.write("1")
        ip("link", "set", host_if, "up")
        ip("link", "set", "lo", "up", ns=ns)
        ip("addr", "add", PEER_IP + "/24", "dev", peer_if, ns=ns)
        ip("link", "set", peer_if, "up", ns=ns)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open("/sys/class/net/%s/carrier" % host_if) as f:
                    if f.read().strip() == "1":
                        break
            except OSError:
                pass
            time.sleep(0.02)
        peer_mac = bytes.fromhex(ip("netns", "exec", ns, "cat", "/sys/class/net/%s/address" % peer_if)
                                 .stdout.strip().replace(":", ""))
        yield {"ns": ns, "host_if": host_if, "peer_if": peer_if, "peer_mac": peer_mac}
    finally:
        ip("link", "del", host_if, check=False)
        ip("netns", "del", ns, check=False)


# --- tiny hand-written L2/L3 -----------------------------------------------------------------

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def arp(op, sha, spa, tha, tpa, dst):
    return (dst + sha + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
            + sha + socket.inet_aton(spa) + tha + socket.inet_aton(tpa))


def parse_arp(f):
    if len(f) < 42 or f[12:14] != b"\x08\x06":
        return None
    op = struct.unpack("!H", f[20:22])[0]
    return op, f[22:28], socket.inet_ntoa(f[28:32]), f[32:38], socket.inet_ntoa(f[38:42])


def wait_frames(link, seconds, buf=None):
    """Yield frames received within `seconds`."""
    buf = buf or bytearray(2048)
    deadline = time.monotonic() + seconds
    while True:
        n = link.recv_into(buf)
        if n:
            yield bytes(buf[:n])
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return
        select.select([link.poll_obj()], [], [], min(left, 0.1))


def answer_arp(link, f, our_mac):
    a = parse_arp(f)
    if a and a[0] == 1 and a[4] == OUR_IP:
        reply = arp(2, our_mac, OUR_IP, a[1], a[2], a[1])
        assert link.send(bytearray(reply), len(reply))
        return True
    return False


# --- tests -----------------------------------------------------------------------------------

def test_mac_mtu_and_link_state(veth):
    link = AfPacket(veth["host_if"], link_check_s=0)
    try:
        with open("/sys/class/net/%s/address" % veth["host_if"]) as f:
            assert link.mac == bytes.fromhex(f.read().strip().replace(":", ""))
        assert link.mtu == 1500 and len(link.mac) == 6
        assert link.poll_obj() is not None
        link.service()
        assert link.link_up()
        ip("link", "set", veth["host_if"], "down")
        link.service()
        assert not link.link_up()
    finally:
        link.close()


def test_no_such_interface():
    with pytest.raises(OSError):
        AfPacket("ustk-nonexist0")


def test_arp_request_gets_kernel_reply(veth):
    link = AfPacket(veth["host_if"])
    try:
        me = link.mac
        req = arp(1, me, OUR_IP, b"\0" * 6, PEER_IP, b"\xff" * 6)
        assert link.send(bytearray(req), len(req))
        reply = None
        for f in wait_frames(link, 5):
            assert f != req, "our own outgoing frame came back"
            a = parse_arp(f)
            if a and a[0] == 2:
                reply = (f, a)
                break
        assert reply is not None, "no ARP reply from the kernel"
        f, (op, sha, spa, tha, tpa) = reply
        assert f[0:6] == me and f[6:12] == veth["peer_mac"]
        assert (sha, spa, tha, tpa) == (veth["peer_mac"], PEER_IP, me, OUR_IP)
        assert link.tx_frames == 1 and link.rx_frames >= 1
        # the kernel learned us from the request
        neigh = ip("neigh", "show", OUR_IP, ns=veth["ns"]).stdout
        assert ":".join("%02x" % b for b in me) in neigh
    finally:
        link.close()


@pytest.mark.parametrize("ignore_outgoing", [False, True])
def test_host_outgoing_frames_skipped(veth, ignore_outgoing):
    """Frames this host transmits on the interface (here: from a second packet socket) are
    never returned: dropped in the kernel with PACKET_IGNORE_OUTGOING, else skipped by their
    PACKET_OUTGOING pkttype (and counted). (The kernel never loops a socket's own
    transmissions back to it, so the second socket is what makes this visible.)"""
    link = AfPacket(veth["host_if"], ignore_outgoing=ignore_outgoing)
    other = AfPacket(veth["host_if"])
    try:
        me = link.mac
        req = arp(1, me, OUR_IP, b"\0" * 6, PEER_IP, b"\xff" * 6)
        assert other.send(bytearray(req), len(req))
        frames = []
        for f in wait_frames(link, 3):
            frames.append(f)
            a = parse_arp(f)
            if a and a[0] == 2:
                break
        assert req not in frames
        assert any(parse_arp(f) and parse_arp(f)[0] == 2 for f in frames)  # the reply still arrives
        assert link.rx_outgoing == (0 if link.ignore_outgoing else 1)
    finally:
        other.close()
        link.close()


SENDER = r'''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"U" * int(sys.argv[2]), (sys.argv[1], 9))
    time.sleep(0.3)
'''


def test_receives_frames_the_kernel_sends(veth):
    """A UDP sender in the netns makes the kernel ARP for us (we answer by hand), then send
    the datagrams. A too-small receive buffer drops a frame and counts it (never truncates)."""
    link = AfPacket(veth["host_if"])
    proc = subprocess.Popen(["ip", "netns", "exec", veth["ns"], sys.executable, "-c", SENDER, OUR_IP,
                             "1200", "12"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        me = link.mac
        saw_request = False
        # phase 1: a 300-byte buffer; ARP fits, the 1242-byte UDP frame must not
        small = bytearray(300)
        deadline = time.monotonic() + 8
        while link.rx_oversize == 0 and time.monotonic() < deadline:
            for f in wait_frames(link, 0.2, small):
                if answer_arp(link, f, me):
                    saw_request = True
        assert saw_request, "the kernel never asked who-has " + OUR_IP
        assert link.rx_oversize >= 1
        # phase 2: a full-size buffer gets the datagram intact
        got = None
        for f in wait_frames(link, 8):
            answer_arp(link, f, me)
            if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[23] == 17:
                got = f
                break
        assert got is not None, "no UDP frame from the kernel"
        assert got[0:6] == me and got[6:12] == veth["peer_mac"]
        ihl = (got[14] & 0x0F) * 4
        assert socket.inet_ntoa(got[26:30]) == PEER_IP and socket.inet_ntoa(got[30:34]) == OUR_IP
        dport = struct.unpack("!H", got[14 + ihl + 2:14 + ihl + 4])[0]
        assert dport == 9 and got[14 + ihl + 8:] == b"U" * 1200
        assert csum(bytes(got[14:14 + ihl])) == 0
    finally:
        proc.kill()
        proc.wait()
        link.close()


def test_kernel_ping_answered_through_afpacket(veth):
    """The kernel pings our address; we answer ARP and ICMP echo by hand."""
    if not shutil.which("ping"):
        pytest.skip("ping (iputils-ping) not installed")
    link = AfPacket(veth["host_if"])
    proc = subprocess.Popen(["ip", "netns", "exec", veth["ns"], "ping", "-c", "3", "-i", "0.2", "-W", "2",
                             "-s", "1000", OUR_IP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        me = link.mac
        answered = 0
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            for f in wait_frames(link, 0.2):
                if answer_arp(link, f, me):
                    continue
                if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 1:
                    continue
                ihl = (f[14] & 0x0F) * 4
                icmp = f[14 + ihl:]
                if icmp[0] != 8 or socket.inet_ntoa(f[30:34]) != OUR_IP:
                    continue
                assert csum(bytes(icmp)) == 0
                iph = bytearray(f[14:14 + ihl])
                iph[12:16], iph[16:20] = f[30:34], f[26:30]
                iph[8] = 64
                iph[10:12] = b"\0\0"
                iph[10:12] = struct.pack("!H", csum(bytes(iph)))
                rep = bytearray(icmp)
                rep[0] = 0
                rep[2:4] = b"\0\0"
                rep[2:4] = struct.pack("!H", csum(bytes(rep)))
                out = bytearray(f[6:12] + me + b"\x08\x00") + iph + rep
                assert link.send(out, len(out))
                answered += 1
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out.decode(errors="replace")
        assert answered >= 3 and b"3 received" in out
        assert link.rx_outgoing == 0 or not link.ignore_outgoing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        link.close()
