"""Offloads through the TAP's virtio-net header (issue 13) against the Linux kernel.

The stack runs in one namespace (A) on its TAP; a second namespace (B), joined to A by a
veth pair through which A routes, holds the Linux peer. The veth ends do no segmentation or
checksumming of their own (ethtool -K ... tso off gso off tx off), so what crosses it is what
a wire would carry: the stack's TSO segments cut by A's kernel, its partial checksums
completed. A capture on B's end, read by tshark, must show no bad checksum, nothing
malformed and no frame over the MTU, while the stack's counters show segments of many MSS
out and GRO super-frames in."""
import hashlib
import os
import subprocess
import sys

import pytest

from tests import pcapcheck
from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP

pytestmark = [needs_netns]
PEER_IP = "198.51.100.2"   # B's end of the veth
ROUTER_IP = "198.51.100.1"  # A's end
STACK_IP6 = "2001:db8:1::2"
HOST_IP6 = "2001:db8:1::1"
MB = 1000 * 1000

# the Linux peer: N bytes of a pattern to the stack's echo service, everything echoed read
# back, SHA-256 of both printed (sending and reading in two threads: the echo holds only its
# socket buffers)
ECHO_CLIENT = r"""
import hashlib, socket, sys, threading
n = %d
c = socket.create_connection((%r, 7), timeout=30)
blk = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 16))
hs = hashlib.sha256()
def send():
    left = n
    while left:
        k = min(left, len(blk)); c.sendall(blk[:k]); hs.update(blk[:k]); left -= k
t = threading.Thread(target=send); t.start()
hr = hashlib.sha256(); got = 0; buf = bytearray(1 << 20)
while got < n:
    k = c.recv_into(buf)
    if not k: break
    hr.update(memoryview(buf)[:k]); got += k
t.join(); c.close()
print(got, hs.hexdigest(), hr.hexdigest())
"""


def echo_through(ns, n, ip=STACK_IP):
    r = ns.python(ECHO_CLIENT % (n, ip), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got, sent_sha, echoed_sha = r.stdout.split()
    return int(got), sent_sha, echoed_sha


def ethtool_plain(ns, dev):
    """No offloads on a veth end: the kernel cuts and checksums before it (software GSO)."""
    r = ns.run(["ethtool", "-K", dev, "tso", "off", "gso", "off", "tx", "off"])
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def nets():
    a = Netns("offa")
    b = Netns("offb")
    try:
        va, vb = "voa%06x" % (os.getpid() & 0xFFFFFF), "vob%06x" % (os.getpid() & 0xFFFFFF)
        a.run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb], check=True)
        a.run(["ip", "link", "set", vb, "netns", b.name], check=True)
        a.run(["ip", "addr", "add", ROUTER_IP + "/24", "dev", va], check=True)
        a.run(["ip", "link", "set", va, "up"], check=True)
        a.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        b.run(["ip", "addr", "add", PEER_IP + "/24", "dev", vb], check=True)
        b.run(["ip", "link", "set", vb, "up"], check=True)
        b.run(["ip", "route", "add", "default", "via", ROUTER_IP], check=True)
        ethtool_plain(a, va)
        ethtool_plain(b, vb)
        a.run(["ethtool", "-K", va, "gro", "on"])  # GRO on A's end: super-frames to the TAP
        yield a, b, vb
    finally:
        b.close()
        a.close()


def tshark_problems(pcap):
    """Frames tshark finds malformed, with a bad IP or TCP checksum, or longer than an
    Ethernet frame at MTU 1500; and how many TCP checksums it found good."""
    base = ["tshark", "-n", "-r", str(pcap), "-o", "tcp.desegment_tcp_streams:FALSE",
            "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    bad = pcapcheck.tshark(pcap, pcapcheck.bad_frames(STACK_IP, STACK_IP6) + " || frame.len > 1514")
    good = subprocess.run(base + ["-Y", "tcp.checksum.status == 1 && tcp.len > 1000",
                                  "-T", "fields", "-e", "frame.number"],
                          capture_output=True, text=True, timeout=300)
    return "\n".join(bad), len(good.stdout.split())


def test_linux_across_a_wire_moves_megabytes_both_ways_through_the_stack_with_offloads(
        nets, tmp_path):
    """4 MB from B through the stack's echo and back, SHA-256 both ways; the capture on the
    wire holds only segments up to the MTU with correct checksums; the stack sent segments
    of many MSS (cut by the kernel) and took GRO super-frames. Then A's own TCP over IPv4
    and IPv6 (super-frames straight from its TCP)."""
    a, b, vb = nets
    stack = StackProc(a, "--serve", "echo,discard", "--offload", "on",
                      "--gateway", HOST_IP, "--ip6", STACK_IP6 + "/64",
                      "--host-ip6", HOST_IP6 + "/64")
    pcap = tmp_path / "wire.pcap"
    cap = b.popen(["tcpdump", "-i", vb, "-w", str(pcap), "-U", "--immediate-mode", "-n", "tcp"])
    try:
        assert "offload=csum,tso,gro" in stack.ready, stack.ready
        got, sent_sha, echoed_sha = echo_through(b, 4 * MB)
        assert got == 4 * MB and sent_sha == echoed_sha
        # A's own kernel as a sender too: its TCP hands the TAP GSO super-frames directly
        got, sent_sha, echoed_sha = echo_through(a, 2 * MB)
        assert got == 2 * MB and sent_sha == echoed_sha
        got, sent_sha, echoed_sha = echo_through(a, 2 * MB, STACK_IP6)  # TCPV6 both ways
        assert got == 2 * MB and sent_sha == echoed_sha
    finally:
        cap.terminate()
        cap.wait(10)
        c = stack.stop()
    assert c["eth0.tx_tso_frames"] > 0 and c["tcp.tx_tso_segments"] > 0, c
    assert c["eth0.rx_gro_frames"] > 0, c
    assert c.get("tcp.rx_bad_csum", 0) == 0 and c.get("link.tap_rx_truncated", 0) == 0
    assert c["pbuf.free"] == c["pbuf.count"] and c["pbuf.large_free"] == c["pbuf.large"]
    bad, good = tshark_problems(pcap)
    assert bad == "", bad
    assert good > 4 * MB // 1448, good  # both directions' data seen, checksums verified


def test_offload_off_sends_and_takes_plain_frames(nets, tmp_path):
    """--offload off: the TAP without the virtio-net header, plain frames each way. The
    stack's TCP still builds segments of many MSS and cuts them itself before the TAP
    (software GSO): the wire sees only whole frames up to the MTU, checksums right."""
    a, b, vb = nets
    stack = StackProc(a, "--serve", "echo", "--offload", "off", "--gateway", HOST_IP)
    pcap = tmp_path / "wire.pcap"
    cap = b.popen(["tcpdump", "-i", vb, "-w", str(pcap), "-U", "--immediate-mode", "-n", "tcp"])
    try:
        assert "offload=none" in stack.ready, stack.ready
        got, sent_sha, echoed_sha = echo_through(b, 1 * MB)
        assert got == 1 * MB and sent_sha == echoed_sha
    finally:
        cap.terminate()
        cap.wait(10)
        c = stack.stop()
    assert "eth0.tx_tso_frames" not in c and "eth0.rx_gro_frames" not in c
    assert c["eth0.tx_gso_frames"] > 0 and c["tcp.tx_tso_segments"] == c["eth0.tx_gso_frames"]
    assert c["eth0.tx_packets"] > 1 * MB // 1448 > c["tcp.tx_segments"], c
    assert c["pbuf.free"] == c["pbuf.count"] and c["pbuf.large_free"] == c["pbuf.large"]
    bad, good = tshark_problems(pcap)
    assert bad == "", bad
    assert good > 1 * MB // 1448, good


# the CLI with the kernel's TUNSETOFFLOAD answering EINVAL to TSO (as a kernel or a TAP that
# cannot take super-frames would): the ioctl is refused at the syscall wrapper, the rest real
REFUSING = r"""
import errno, fcntl, sys
real = fcntl.ioctl
def ioctl(fd, req, arg=0, *more):
    if req == 0x400454D0 and isinstance(arg, int) and arg & 0x06:
        raise OSError(errno.EINVAL, "Invalid argument")
    return real(fd, req, arg, *more)
fcntl.ioctl = ioctl
from ustack.ports.cpython import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_offload_on_against_a_tap_that_refuses_fails_in_one_line_naming_the_flag(nets):
    a, b, vb = nets
    r = a.run([sys.executable, "-c", REFUSING, "up", "--tap", "ustk2", "--ip",
               "203.0.113.2/24", "--offload", "on", "--duration", "1"], timeout=60)
    assert r.returncode not in (0, None), r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "--offload on" in lines[0] and "TUN_F_TSO4" in lines[0], lines[0]
    # auto takes what the kernel grants: checksums, TSO out, no GRO in
    r = a.run([sys.executable, "-c", REFUSING, "up", "--tap", "ustk2", "--ip",
               "203.0.113.2/24", "--offload", "auto", "--duration", "1"], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "offload=csum,tso " in r.stdout, r.stdout


def test_offload_on_with_a_driver_that_has_none_is_refused_before_anything_is_made(nets):
    a, b, vb = nets
    r = a.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--driver",
               "sim-enc28j60", "--tap", "ustk3", "--offload", "on"], timeout=60)
    assert r.returncode not in (0, None)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--offload on" in lines[0] and "--driver tap" in lines[0], \
        r.stderr
    assert a.run(["ip", "link", "show", "ustk3"]).returncode != 0  # no TAP was made


# Linux (A's kernel: its TCP hands the TAP GSO super-frames) sends n bytes to the stack's
# discard, then reads n from its chargen
BULK_CLIENT = r"""
import socket
n = %d
c = socket.create_connection((%r, 9), timeout=30)
blk = b"x" * 65536; left = n
while left > 0:
    c.sendall(blk[:min(left, 65536)]); left -= 65536
c.shutdown(socket.SHUT_WR); assert c.recv(10) == b""; c.close()
c = socket.create_connection((%r, 19), timeout=30)
got = 0; buf = bytearray(1 << 20)
while got < n:
    k = c.recv_into(buf)
    assert k; got += k
c.close()
print(got)
"""


def test_bulk_with_offloads_keeps_more_than_a_segment_in_flight_and_acks_bursts_once(
        nets, tmp_path):
    """Issue 13, against Linux's TCP: with offloads the stack's buffers are OFFLOAD_TCP_BUF
    (1 MB), so it offers Linux a window of more than 64 KB and keeps more than one 64 KB
    segment in flight (a 64 KB ring held one: a round trip per segment), and a receiving
    stack sends at most about one ACK per GRO super-frame - not one at once for each and a
    window update after each read, as before."""
    a, b, vb = nets
    pcap = tmp_path / "tap.pcap"
    stack = StackProc(a, "--serve", "discard,chargen", "--offload", "on", "--pcap", str(pcap))
    try:
        r = a.python(BULK_CLIENT % (8 * MB, STACK_IP, STACK_IP), timeout=120)
        assert r.returncode == 0 and int(r.stdout) >= 8 * MB, r.stdout + r.stderr
    finally:
        c = stack.stop()
    assert c["eth0.rx_gro_frames"] > 50, c

    def column(field, shown):
        t = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", shown, "-T", "fields",
                            "-e", field], capture_output=True, text=True, timeout=300)
        assert t.returncode == 0, t.stderr
        return [int(x) for x in t.stdout.split() if x.strip()]
    # Linux -> discard: the super-frames in, and every segment the stack sent back
    frames = len(column("frame.len", "ip.dst == %s && tcp.dstport == 9 && tcp.len > 1448"
                        % STACK_IP))
    acks = len(column("frame.len", "ip.src == %s && tcp.srcport == 9" % STACK_IP))
    assert frames > 50 and acks <= frames * 11 // 10 + 10, (frames, acks)
    # the window the stack offered Linux (scaled: tshark saw the SYNs' window scale)
    assert max(column("tcp.window_size", "ip.src == %s && tcp.srcport == 9" % STACK_IP)) > \
        4 * 65536
    # bytes the stack had in flight to Linux's reader
    assert max(column("tcp.analysis.bytes_in_flight",
                      "ip.src == %s && tcp.srcport == 19" % STACK_IP)) > 2 * 65536
