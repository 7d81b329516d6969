"""ustack ss -ti's TCP fields (ports/cpython/ctlcli.py fmt_ss) from the control channel's dump
(core/ctl.py): the options the connection agreed (ts, sack, ecn, as Linux's ss prints them),
rack when RACK (RFC 8985) detects losses, the reordering degree when not the default 3,
how often reordering was seen, and RACK's reordering window."""
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
