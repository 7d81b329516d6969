"""`ustack up --dhcp`'s port side (ports/cpython/cli.py, ports/cpython/leasefile.py): the
remembered lease that INIT-REBOOT starts from (RFC 2131 3.2), the flags that go with --dhcp,
and name servers the user chose winning over the lease's. The daemons' side is in
tests/interop/test_linux_dhcp.py."""
import json
import subprocess
import sys

import pytest

from ustack.ports.cpython import cli, leasefile
from tests.feed import FeedDriver
from tests.unit.test_dhcp import from_server, bootp, lease_opts, Sent, OFFERED


def stack_for(tmp_path, **r):
    base = {"config": {"DHCP_ARP_PROBES": 0}, "features": ("tcp",), "dhcp": True,
            "dhcp_hostname": None, "dhcp_lease_file": None, "dns": [], "mtu": 1500}
    base.update(r)
    drv = FeedDriver()
    st = cli.make_stack(base, drv)
    t = [1000]
    st.clock = lambda: t[0]
    return st, drv, t


def lease_it(st, drv, t, lease=3600):
    """Answer the DISCOVER and the REQUEST: the stack is bound to OFFERED."""
    def last():
        m = [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][-1]
        drv.tx.clear()
        return m
    drv.rx.append(from_server(bootp(last().xid, 2)))
    st.poll(t[0])
    drv.rx.append(from_server(bootp(last().xid, 5, options=lease_opts(lease))))
    st.poll(t[0])
    assert st.dhcp.bound()


def test_user_name_servers_win_over_the_leases(tmp_path):
    st, drv, t = stack_for(tmp_path, dns=["198.51.100.53"])
    lease_it(st, drv, t)
    assert st.dns.servers == [bytes([198, 51, 100, 53])]
    st.close()


def test_without_dns_flags_the_leases_name_servers_are_used(tmp_path):
    st, drv, t = stack_for(tmp_path)
    lease_it(st, drv, t)
    assert st.dns.servers == [bytes([192, 0, 2, 53]), bytes([192, 0, 2, 54])]
    st.close()


def test_hostname_flag_reaches_the_requests(tmp_path):
    st, drv, t = stack_for(tmp_path, dhcp_hostname="board7")
    d = [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][0]
    assert d.opts[12] == b"board7"
    st.close()


def test_lease_file_written_when_bound_kept_after_release_and_starts_init_reboot(tmp_path):
    lf = str(tmp_path / "lease.json")
    st, drv, t = stack_for(tmp_path, dhcp_lease_file=lf)
    assert [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][0].type == 1  # no file: INIT
    lease_it(st, drv, t, lease=600)
    rec = json.load(open(lf))
    assert rec["ip"] == "192.0.2.50" and rec["lease_s"] == 600 and rec["server"] == "192.0.2.1"
    st.close()  # RELEASE: the file stays, the address is asked for again next time
    assert json.load(open(lf))["ip"] == "192.0.2.50"
    st, drv, t = stack_for(tmp_path, dhcp_lease_file=lf)
    r = [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][0]
    assert r.type == 3 and r.opts[50] == OFFERED and 54 not in r.opts  # INIT-REBOOT
    st.close()


def test_nak_removes_the_lease_file(tmp_path):
    lf = tmp_path / "lease.json"
    leasefile.save(str(lf), {"ip": "192.0.2.50", "remaining_s": 600, "server": "192.0.2.1",
                             "lease_s": 600})
    st, drv, t = stack_for(tmp_path, dhcp_lease_file=str(lf))
    r = [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][0]
    assert r.type == 3
    drv.rx.append(from_server(bootp(r.xid, 6, yiaddr=bytes(4))))
    st.poll(t[0])
    assert not lf.exists()
    st.close()


@pytest.mark.parametrize("text", ["", "{", '{"ip": "192.0.2.300"}', '{"ip": "224.0.0.1"}',
                                  '{"ip": 5}', '{"ip": "192.0.2.50", "expires": 100}', "[]"])
def test_a_broken_or_expired_lease_file_means_a_fresh_discover(tmp_path, text):
    lf = tmp_path / "lease.json"
    lf.write_text(text)
    assert leasefile.load(str(lf)) is None
    st, drv, t = stack_for(tmp_path, dhcp_lease_file=str(lf))
    assert [Sent(f) for f in drv.tx if f[12:14] == b"\x08\x00"][0].type == 1
    st.close()


def test_an_unexpired_or_infinite_lease_is_remembered(tmp_path):
    lf = tmp_path / "lease.json"
    lf.write_text('{"ip": "192.0.2.50", "expires": 2000}')
    assert leasefile.load(str(lf), now=1999) == "192.0.2.50"
    assert leasefile.load(str(lf), now=2000) is None
    lf.write_text('{"ip": "192.0.2.50", "expires": null}')
    assert leasefile.load(str(lf), now=10 ** 12) == "192.0.2.50"


@pytest.mark.parametrize("flags,msg", [
    (["--dhcp-hostname", "board7"], "ustack: --dhcp-hostname: needs --dhcp"),
    (["--dhcp", "--dhcp-hostname", "bad name"], "ustack: --dhcp-hostname bad name: hostname"),
    (["--dhcp", "--dhcp-hostname", "x" * 64], "ustack: --dhcp-hostname " + "x" * 64),
    (["--dhcp-lease-file", "/tmp/x.lease"], "ustack: --dhcp-lease-file: needs --dhcp"),
    (["--dhcp", "--dhcp-lease-file", "/nonexistent/x.lease"],
     "ustack: --dhcp-lease-file /nonexistent/x.lease: directory /nonexistent does not exist"),
])
def test_dhcp_flags_are_checked_before_anything_is_made(flags, msg):
    r = subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--tap",
                        "ustk-never"] + flags, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(msg), r.stderr


def test_micropython_app_user_name_servers_win_over_the_leases_too():
    # the board app (ports/micropython/app.py and its start, appinit.py, imported here under
    # CPython): DNS = [...] with DHCP = True, as --dns with --dhcp under --runtime micropython
    from ustack.ports.micropython import appinit
    s = dict(appinit.DEFAULTS, DHCP=True, DNS=["198.51.100.53"], SEED=7,
             CONFIG={"DHCP_ARP_PROBES": 0})
    drv = FeedDriver()
    st = appinit.make_stack(s, drv)
    t = [1000]
    st.clock = lambda: t[0]
    lease_it(st, drv, t)
    assert st.dns.servers == [bytes([198, 51, 100, 53])]
    st.close()
