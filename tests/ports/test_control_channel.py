"""The control channel's CPython transport (ports/cpython/control.py) in one process: a
stack on the in-memory wire behind a Runner, its control socket in the abstract namespace,
and the client's side; plus the tables the CLI prints (ports/cpython/ctlcli.py)."""
import json
import os
import socket
import struct
import time

import pytest

from ustack.core import ctl
from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.cpython import control as cc
from ustack.ports.cpython import ctlcli
from ustack.ports.cpython.runner import Runner


@pytest.fixture
def served():
    wire = Wire()
    st = Stack({"PBUF_COUNT": 32})
    st.add_interface("eth0", wire.port(b"\x02\x00\x00\x00\x00\x02"), ip="192.0.2.2/24")
    peer = Stack({"PBUF_COUNT": 32})
    peer.add_interface("eth0", wire.port(b"\x02\x00\x00\x00\x00\x01"), ip="192.0.2.1/24")
    runner = Runner(st).start()
    name = "t%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
    srv = cc.ControlServer(name, {"runtime": "cpython"})
    srv.attach(runner)
    yield srv, runner, peer
    srv.close()
    runner.stop()
    st.close()
    peer.close()


def test_a_stack_is_listed_found_by_name_and_answers_hello(served):
    srv, _, _ = served
    assert srv.name in cc.running()
    c = cc.find(srv.name)
    try:
        h = c.call("hello")
        assert h["pid"] == os.getpid() and h["version"] == ctl.VERSION and "ss" in h["ops"]
        assert c.call("addr")[0]["ip"] == "192.0.2.2"
        with pytest.raises(cc.ClientError) as e:
            c.call("route.del", dst="10.0.0.0/8")
        assert "no route to 10.0.0.0/8" in str(e.value)
    finally:
        c.close()
    assert cc.find(pid=os.getpid()).call("hello")["name"] == srv.name


def test_a_second_stack_of_the_same_name_is_refused(served):
    srv, _, _ = served
    with pytest.raises(ValueError) as e:
        cc.ControlServer(srv.name)
    assert "runs already" in str(e.value)


def test_an_over_long_request_is_refused_and_the_connection_closed(served):
    srv, _, _ = served
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(cc.address(srv.name))
    s.sendall(b"{" + b" " * (ctl.MAX_LINE + 10) + b"}\n")
    r = s.makefile("rb").readline()
    assert not json.loads(r)["ok"] and "longer than" in json.loads(r)["error"]
    s.close()
    assert srv.srv.stats.rx_too_long == 1


def test_capture_streams_pcap_of_frames_in_and_out(served):
    srv, runner, peer = served
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(cc.address(srv.name))
    s.sendall(ctl.request("capture", snaplen=100))
    f = s.makefile("rb")
    assert json.loads(f.readline())["data"] == {"linktype": 1, "snaplen": 100}
    magic, major, minor, _, _, snap, link = struct.unpack("<IHHiIII", f.read(24))
    assert (magic, major, minor, snap, link) == (0xA1B2C3D4, 2, 4, 100, 1)
    p = peer.icmp.pinger("192.0.2.2", 200)
    p.send(0, 0)
    for _ in range(50):  # the peer is driven here, the served stack by its runner
        peer.poll(int(time.monotonic() * 1000))
        time.sleep(0.01)
        if p.received:
            break
    assert p.received == 1
    kinds = []
    while kinds.count(b"\x08\x00") < 2:  # ARP in and out, then the echo request and reply
        sec, usec, caplen, length = struct.unpack("<IIII", f.read(16))
        frame = f.read(caplen)
        assert caplen == min(length, 100) and abs(sec - time.time()) < 60
        assert len(kinds) < 10, kinds
        kinds.append(frame[12:14])
        if frame[12:14] == b"\x08\x00":
            assert length == 14 + 20 + 8 + 200 and caplen == 100  # cut at snaplen
    assert b"\x08\x06" in kinds
    f.close()
    s.close()
    time.sleep(1.2)  # the server sees the close and takes its tap off the stack
    assert runner.stack.capture is None and srv.stats["capture_frames"] >= 3


def test_tables_read_like_ip_and_ss():
    routes = [{"dst": "192.0.2.0", "prefix": 24, "via": None, "dev": "eth0", "metric": 0,
               "src": "192.0.2.2"},
              {"dst": "0.0.0.0", "prefix": 0, "via": "192.0.2.1", "dev": "eth0", "metric": 5,
               "src": "192.0.2.2", "proto": "static"},
              {"dst": "198.51.100.0", "prefix": 24, "via": "192.0.2.1", "dev": "eth0",
               "metric": 2, "src": "192.0.2.2", "proto": "rip"},
              {"dst": "203.0.113.0", "prefix": 24, "via": "192.0.2.1", "dev": "eth0",
               "metric": 0, "src": "192.0.2.2", "proto": "dhcp"}]
    assert ctlcli.fmt_route(routes) == [
        "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2",
        "default via 192.0.2.1 dev eth0 metric 5",
        "198.51.100.0/24 via 192.0.2.1 dev eth0 proto rip metric 2",
        "203.0.113.0/24 via 192.0.2.1 dev eth0 proto dhcp"]
    # `ustack route -6` (core/ctl.py op route6): no source address on an IPv6 row
    assert ctlcli.fmt_route([
        {"dst": "2001:db8:1::", "prefix": 64, "via": None, "dev": "eth0", "metric": 0,
         "proto": "connected", "src": None},
        {"dst": "::", "prefix": 0, "via": "fe80::1", "dev": "eth0", "metric": 0,
         "proto": "ra", "src": None},
        {"dst": "2001:db8:2::", "prefix": 64, "via": "fe80::1", "dev": "eth0", "metric": 2,
         "proto": "rip", "src": None}]) == [
        "2001:db8:1::/64 dev eth0 proto kernel",
        "default via fe80::1 dev eth0 proto ra",
        "2001:db8:2::/64 via fe80::1 dev eth0 proto rip metric 2"]
    assert ctlcli.fmt_neigh([{"ip": "192.0.2.1", "dev": "eth0", "lladdr": None,
                              "state": "INCOMPLETE", "queued": 1}]) == [
        "192.0.2.1 dev eth0 INCOMPLETE"]
    conn = {"proto": "tcp", "state": "ESTABLISHED", "local": "192.0.2.2:80",
            "peer": "192.0.2.1:40000", "recv_q": 0, "send_q": 2896, "mss": 1448, "rto": 204,
            "srtt": 3.5, "rttvar": 1.25, "cwnd": 14480, "ssthresh": None, "retrans": 0,
            "retrans_total": 2, "snd_wnd": 64240, "rcv_wscale": 7, "snd_wscale": 7,
            "orphan": False, "cc": "cubic"}
    lis = {"proto": "tcp", "state": "LISTEN", "local": "0.0.0.0:80", "peer": "*:*",
           "recv_q": 0, "send_q": 5}
    out = ctlcli.fmt_ss([conn, lis], tcp=True, info=True)
    assert out[1].split() == ["tcp", "ESTAB", "0", "2896", "192.0.2.2:80", "192.0.2.1:40000"]
    assert out[2] == "\t cubic wscale:7,7 rto:204 rtt:3.5/1.25 mss:1448 cwnd:10 snd_wnd:64240 " \
                     "retrans:0/2"
    assert len(out) == 3  # the listener only with -l or -a
    assert ctlcli.fmt_ss([conn, lis], listening=True)[1].split()[:2] == ["tcp", "LISTEN"]


def test_a_stack_speaking_another_version_is_one_clear_line(capsys):
    """A client meeting a stack of another protocol version says both versions, in one line
    naming the command, instead of misreading the answer."""
    import threading
    name = "v2-%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(cc.address(name))
    ls.listen(1)

    def newer_stack():
        c, _ = ls.accept()
        c.makefile("rb").readline()
        c.sendall(b'{"v": 2, "ok": true, "data": {"addrs": []}}\n')
        c.close()
    t = threading.Thread(target=newer_stack, daemon=True)
    t.start()
    try:
        with pytest.raises(SystemExit) as e:
            ctlcli.run(["addr", "--name", name])
        assert str(e.value) == "ustack addr: the stack speaks control protocol version 2, " \
                               "this client 1"
    finally:
        t.join(5)
        ls.close()
