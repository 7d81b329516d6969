"""ustack ss -ti's TCP fields (ports/cpython/ctlcli.py fmt_ss) from the control channel's dump
(core/ctl.py): the options the connection agreed (ts, sack, ecn, as Linux's ss prints them),
rack when RACK (RFC 8985) detects losses, the reordering degree when not the default 3,
how often reordering was seen, and RACK's reordering window."""
import json

from ustack.ports.cpython import ctlcli

CONN = {"proto": "tcp", "state": "ESTABLISHED", "local": "192.0.2.2:80",
        "peer": "192.0.2.1:40000", "recv_q": 0, "send_q": 0, "mss": 1448, "rto": 204,
        "srtt": 20.5, "rttvar": 1.25, "cwnd": 14480, "ssthresh": 28960, "retrans": 0,
        "retrans_total": 1, "snd_wnd": 64240, "rcv_wscale": 7, "snd_wscale": 7,
        "orphan": False, "cc": "cubic"}


def info(**kw):
    return ctlcli.fmt_ss([dict(CONN, **kw)], tcp=True, info=True)[2]


def test_ss_shows_the_agreed_options_first_as_linux_does():
    line = info(ts=True, sack=True, ecn=True, rack=True)
    assert line.startswith("\t ts sack ecn rack cubic wscale:7,7 ")


def test_ss_leaves_out_what_was_not_agreed():
    assert info(ts=True, sack=False, ecn=False, rack=False).startswith("\t ts cubic wscale")
    assert info().startswith("\t cubic wscale")       # an older stack's dump: no such keys


def test_ss_shows_reordering_only_when_not_the_default_and_reord_seen_when_any():
    assert "reordering" not in info(sack=True, rack=True, reordering=3, reord_seen=0)
    line = info(sack=True, rack=True, reordering=7, reord_seen=2, reo_wnd=5)
    assert line.endswith(" retrans:0/1 reordering:7 reord_seen:2 rack_reo_wnd:5ms")


def test_ss_shows_the_path_mtu_after_mss_as_linux_does():
    line = info(pmtu=1400)
    assert " mss:1448 pmtu:1400 cwnd:10" in line
    assert "pmtu" not in info()                       # an older stack's dump: no such key


def ss_rows(stack):
    from ustack.core import ctl
    srv = ctl.Server(stack)
    return [r for r in json.loads(srv.handle_line(ctl.request("ss")))["data"]
            if r["proto"] == "tcp" and r["state"] == "ESTABLISHED"]


def test_ss_pmtu_is_each_familys_link_mtu_then_what_pmtud_learnt():
    from ustack.core import addr6
    from ustack.core import socket as so
    from tests.unit.test_ipv6_router_discovery import RMAC, ra_with
    from tests.unit.test_ipv6_two_stacks import Bench6, GB
    bench = Bench6()
    router = bench.wire.port(RMAC)
    f = ra_with(RMAC, "fe80::1", mtu=1400)            # the RA lowers IPv6's MTU only
    router.send(f, len(f))
    bench.run(5)
    for fam, addr, port in ((so.AF_INET6, GB, 80), (so.AF_INET, "192.0.2.11", 81)):
        ls = bench.b.socket(fam, so.SOCK_STREAM)
        ls.bind(("", port))
        ls.listen(1)
        c = bench.a.socket(fam, so.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((addr, port))
        assert bench.until(lambda: c.tcb is not None and c.tcb.state == 4)
    rows = dict((r["peer"], r) for r in ss_rows(bench.a))
    assert rows["[2001:db8::b]:80"]["pmtu"] == 1400
    assert rows["192.0.2.11:81"]["pmtu"] == 1500
    assert "[2001:db8::a]:" in rows["[2001:db8::b]:80"]["local"]
    bench.a.ip.learn_pmtu(addr6.pton(GB), 0, 16, 1280)   # a Packet Too Big said so
    bench.a.ip.learn_pmtu(bytes([192, 0, 2, 11]), 0, 4, 1300)
    rows = dict((r["peer"], r) for r in ss_rows(bench.a))
    assert rows["[2001:db8::b]:80"]["pmtu"] == 1280
    assert rows["192.0.2.11:81"]["pmtu"] == 1300
    lines = ctlcli.fmt_ss(ss_rows(bench.a), tcp=True, info=True)
    assert sum(" pmtu:1280 " in x for x in lines) == 1
    assert sum(" pmtu:1300 " in x for x in lines) == 1
