"""The DPDK driver (hal/dpdk) against the Linux kernel: `ustack up --driver dpdk` in a
throwaway namespace, on DPDK's net_tap virtual device (a kernel TAP behind a poll-mode
driver, EAL without hugepages). Linux pings the stack and fetches a file from its HTTP
service through DPDK; SIGINT frees the port and EAL (the TAP goes with them). Bad values are
refused in one line before anything is made. The DPDK tests skip only where the binding is
not built (no libdpdk-dev); in CI that skip fails the run (tests/conftest.py)."""
import hashlib
import os
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP, one_line_error

pytestmark = [needs_netns]


def _binding():
    try:
        from ustack.hal.dpdk import _rte  # noqa: F401
        return None
    except ImportError as e:
        return "the DPDK binding is not built (apt-get install libdpdk-dev pkg-config; " \
               "invoke build): %s" % e


needs_dpdk = pytest.mark.skipif(_binding() is not None, reason=str(_binding()))
BIG = os.urandom(512 * 1024)
CPU = max(os.sched_getaffinity(0))  # not CPU 0, where EAL would pin it by default


@pytest.fixture(scope="module")
def ns():
    n = Netns("dpdk")
    yield n
    n.close()


@pytest.fixture(scope="module")
def dpdk_stack(ns, tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "big.bin").write_bytes(BIG)
    s = StackProc(ns, "--driver", "dpdk", "--serve", "http", "--http-root", str(root),
                  "--cpus", str(CPU), tap="dtap0")
    yield s
    if s.p.poll() is None:
        s.stop()


@needs_dpdk
def test_ready_line_names_the_dpdk_driver_its_tap_and_the_cpus_it_runs_on(dpdk_stack):
    r = dpdk_stack.ready
    assert "driver=dpdk" in r and "tap=dtap0" in r and "tcp/http" in r, r
    assert " numa=manual cpus=%d " % CPU in r, r


@needs_dpdk
def test_cpus_pins_the_stack_and_eal_keeps_it_there(dpdk_stack):
    """--cpus is set before the pools and EAL exist; EAL's main lcore takes the same CPUs
    (--lcores 0@(...)) instead of pinning the thread to CPU 0."""
    with open("/proc/%d/status" % dpdk_stack.p.pid) as f:
        allowed = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list:")]
    assert allowed == [str(CPU)], allowed


@needs_dpdk
def test_linux_pings_the_stack_through_dpdk(ns, dpdk_stack):
    r = ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", STACK_IP], timeout=20)
    assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout + r.stderr


@needs_dpdk
def test_curl_fetches_a_file_byte_identical_through_dpdk(ns, dpdk_stack, tmp_path):
    out = tmp_path / "got"
    r = ns.run(["curl", "-s", "-m", "20", "-o", str(out), "-w", "%{http_code}",
                "http://%s/big.bin" % STACK_IP], timeout=30)
    assert r.stdout == "200", r.stdout + r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(BIG).hexdigest()


@needs_dpdk
def test_sigint_frees_the_port_every_buffer_and_eal(ns, dpdk_stack):
    """Last in the module: the stack stops cleanly, its packet buffers are all back, the
    DPDK port counted the frames, and the TAP net_tap made is gone with the port."""
    c = dpdk_stack.stop()
    assert dpdk_stack.returncode == 0, "".join(dpdk_stack.lines)[-3000:]
    assert c["pbuf.free"] == c["pbuf.count"]
    # the file went out through the port in full-sized frames; pings, requests, ACKs came in
    assert c["link.dpdk_tx_frames"] >= len(BIG) // 1500 and c["link.dpdk_rx_frames"] > 10, c
    for k in ("rx_oversize", "tx_nombuf", "tx_busy"):
        assert c["link.dpdk_" + k] == 0, c
    assert ns.run(["ip", "link", "show", "dtap0"]).returncode != 0, "the TAP outlived EAL"
    from ustack.hal.dpdk.driver import runtime_dir
    assert not os.path.exists(runtime_dir("ustack%d" % dpdk_stack.p.pid)), "EAL's run dir"


@needs_dpdk
def test_net_af_packet_on_a_veth_end_carries_ping_and_http(ns):
    """--dpdk-vdev net_af_packet0,iface=...: DPDK on an existing interface (a veth end), Linux
    on the other end. veth leaves the checksums of Linux's own TCP segments to an offload
    that never runs: `tx off` on Linux's end (hal/afpacket.py has the same note)."""
    for cmd in (["ip", "link", "add", "dafp0", "type", "veth", "peer", "name", "dafp1"],
                ["ip", "addr", "add", "198.51.100.1/24", "dev", "dafp1"],
                ["ethtool", "-K", "dafp1", "tx", "off"],
                ["ip", "link", "set", "dafp1", "up"]):
        r = ns.run(cmd)
        assert r.returncode == 0, (cmd, r.stderr)
    s = StackProc(ns, "--driver", "dpdk", "--dpdk-vdev", "net_af_packet0,iface=dafp0",
                  "--serve", "http", ip="198.51.100.2/24", host_ip=None)
    try:
        assert "driver=dpdk tap=dafp0" in s.ready, s.ready
        r = ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2"], timeout=20)
        assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
        r = ns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                    "http://198.51.100.2/"], timeout=20)
        assert r.stdout == "200", r.stdout + r.stderr
    finally:
        c = s.stop()
        ns.run(["ip", "link", "del", "dafp0"])
    assert s.returncode == 0 and c["pbuf.free"] == c["pbuf.count"]
    assert c["link.dpdk_rx_frames"] > 0 and c["link.dpdk_tx_frames"] > 0, c


# the driver alone, in a process of its own (EAL starts once per process): two frames each
# way through net_tap, an oversize frame dropped and counted, every mbuf back at close
DRIVER = r"""
import socket, sys, time
from ustack.hal.dpdk.driver import Dpdk
d = Dpdk(vdev="net_tap0,iface=dtap1", mac=b"\x02\x00\x00\x00\x00\x09", mtu=1500)
assert d.mac == b"\x02\x00\x00\x00\x00\x09", d.mac
assert d.caps == 0 and d.poll_obj() is None
import subprocess
with open("/proc/sys/net/ipv6/conf/dtap1/disable_ipv6", "w") as f:
    f.write("1")                                   # the kernel's side stays quiet: no ND, MLD
subprocess.run(["ip", "link", "set", "dtap1", "up"], check=True)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind(("dtap1", 0x88B5))
frame = bytearray(b"\x02\x00\x00\x00\x00\x09" + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(100))
buf = bytearray(200)
s.send(bytes(frame) + bytes(200))                  # 314 bytes: too long for buf, dropped, counted
s.send(bytes(frame))
end = time.monotonic() + 5
n = 0
while time.monotonic() < end:
    n = d.recv_into(buf)
    if n and buf[12:14] == b"\x88\xb5":
        break
assert d.port.rx_oversize == 1 and n == 114, (d.port.rx_oversize, n)
s.setblocking(False)
frame[12:14] = b"\x88\xb5"
assert d.send(frame, 60)
end = time.monotonic() + 5
seen = 0
while time.monotonic() < end and not seen:
    try:
        seen = len(s.recv(2048))
    except BlockingIOError:
        time.sleep(0.01)
assert seen == 60, seen
d.close()
print("leaked", d.leaked)
"""


@needs_dpdk
def test_driver_drops_an_oversize_frame_counts_it_and_frees_every_mbuf(ns):
    r = ns.run([sys.executable, "-c", DRIVER], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "leaked 0", r.stdout


def up(ns, *flags):
    return ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--ip",
                   STACK_IP + "/24", "--duration", "0.1"] + list(flags), timeout=60)


@pytest.mark.parametrize("flags,words", [
    (["--driver", "dpdk", "--dpdk-vdev", "tap0"], ["--dpdk-vdev tap0", "virtual device"]),
    (["--driver", "dpdk", "--dpdk-vdev", "net_tap0,iface=a/b"], ["--dpdk-vdev a/b", "'/'"]),
    (["--driver", "dpdk", "--dpdk-pci", "1:2"], ["--dpdk-pci 1:2", "PCI address"]),
    (["--driver", "dpdk", "--dpdk-pci", "0000:01:00.0", "--dpdk-vdev", "net_tap0"],
     ["--dpdk-pci", "one device"]),
    (["--dpdk-vdev", "net_tap0"], ["--dpdk-vdev net_tap0", "needs --driver dpdk"]),
    (["--driver", "dpdk", "--dpdk-vdev", "net_af_packet0,iface=lo", "--host-ip",
      "192.0.2.1/24"], ["--host-ip 192.0.2.1/24", "net_af_packet0"]),
    (["--driver", "dpdk", "--runtime", "micropython"], ["--driver dpdk", "cpython"]),
    (["--driver", "dpdk", "--dpdk-vdev", "net_tap0", "--runtime", "micropython"],
     ["--dpdk-vdev net_tap0", "runs under --runtime cpython only"]),
])
def test_bad_dpdk_values_are_refused_in_one_line_and_nothing_is_made(ns, flags, words):
    one_line_error(up(ns, *flags), *words)
    links = ns.run(["ip", "-o", "link", "show"]).stdout
    assert "dtap" not in links and "ustack0" not in links, links
