"""Every entry point checks its values with the same check per kind of value as `ustack up`
(ports/cpython/cli.py check_*), before anything is made (issue 11): the MicroPython runtime's
`run`, the bridge, the HIL runner and the examples end in one line naming the flag; the
Python API behind ustack.patch / ustack.socket (host.open_stack) raises ValueError naming
the argument, or PermissionError, as the stdlib would."""
import os
import subprocess
import sys

import pytest

from tests.netns import Netns, ROOT

TAP = "ustke0"
NO_NET_ADMIN = ["setpriv", "--bounding-set", "-net_admin,-net_raw",
                "--inh-caps", "-net_admin,-net_raw"]


@pytest.fixture(scope="module")
def ns():
    n = Netns("ent")
    yield n
    n.close()


def only_lo(ns):
    links = ns.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
    return len(links) == 1 and ": lo:" in links[0]


def one_line(r, prog, *words):
    """Refused in one line starting with `prog` and naming `words`: non-zero, no traceback."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(prog), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def run(ns, argv, pre=(), cwd=None):
    return subprocess.run(ns.cmd(list(pre) + [sys.executable] + list(argv)), capture_output=True,
                          text=True, timeout=60, cwd=cwd)


MPY_RUN = ["-m", "ustack.ports.micropython.runtime", "run", "--tap", TAP]
MPY_BAD = (
    (["--ip", "192.0.2.300/24"], ("--ip 192.0.2.300/24", "not an IPv4 address")),
    (["--ip", "192.0.2.2"], ("--ip 192.0.2.2", "prefix")),
    (["--host-ip", "192.0.2.1"], ("--host-ip 192.0.2.1", "prefix")),
    (["--host-ip", "192.0.2.2/24"], ("--host-ip 192.0.2.2/24", "--ip")),
    (["--mac", "ff:ff:ff:ff:ff:ff"], ("--mac ff:ff:ff:ff:ff:ff", "broadcast")),
    (["--mac", "zz"], ("--mac zz", "not a MAC")),
    (["--tap", "ustke0123456789abc"], ("--tap ustke0123456789abc", "too long", "15")),
    (["--pcap", "/nonexistent/x.pcap"], ("--pcap /nonexistent/x.pcap", "no such directory")),
)


@pytest.mark.parametrize("flags,words", MPY_BAD, ids=[" ".join(c[0]) for c in MPY_BAD])
def test_micropython_run_refuses_a_bad_flag_in_one_line_and_makes_nothing(ns, flags, words):
    r = run(ns, MPY_RUN + flags + ["/nonexistent/prog.py"])
    one_line(r, "ustack", *words)
    assert only_lo(ns)


BRIDGE = ["-m", "ustack.ports.cpython.bridge", "--tap", TAP]
BRIDGE_BAD = (
    (["--host-ip", "192.0.2.1"], ("--host-ip 192.0.2.1", "prefix")),
    (["--host-ip", "192.0.2.300/24"], ("--host-ip 192.0.2.300/24", "not an IPv4")),
    (["--tap", "ustke0123456789abc"], ("--tap ustke0123456789abc", "too long")),
    (["--probe", "foo"], ("--probe foo", "not an IPv4 address")),
    (["--pcap", "/nonexistent/x.pcap"], ("--pcap /nonexistent/x.pcap", "no such directory")),
)


@pytest.mark.parametrize("flags,words", BRIDGE_BAD, ids=[" ".join(c[0]) for c in BRIDGE_BAD])
def test_bridge_refuses_a_bad_flag_in_one_line_and_makes_nothing(ns, flags, words):
    r = run(ns, BRIDGE + flags + ["--listen", "unix:/nonexistent/b.sock"])
    one_line(r, "ustack-bridge", *words)
    assert only_lo(ns)


@pytest.mark.parametrize("ip,words", [("foo", ("--ip foo", "not an IPv4 address")),
                                      ("192.0.2.2/24", ("--ip 192.0.2.2/24", "not an IPv4")),
                                      ("224.0.0.1", ("--ip 224.0.0.1", "multicast"))])
def test_hil_refuses_a_bad_board_address_in_one_line(ns, ip, words):
    r = run(ns, ["-m", "ustack.ports.micropython.hil", "--ip", ip])
    one_line(r, "ustack-hil", *words)


def test_hil_refuses_an_unknown_board_and_a_bad_setting_in_one_line(ns):
    hil = ["-m", "ustack.ports.micropython.hil", "--port", "/nonexistent/ttyACM0"]
    one_line(run(ns, hil + ["--board", "nosuch"]), "ustack-hil", "--board nosuch",
             "unknown board")
    one_line(run(ns, hil + ["--board", "w5500_evb_pico", "--set", "PBUF_COUNT"]), "ustack-hil",
             "--set PBUF_COUNT", "KEY=VALUE")


@pytest.mark.parametrize("flags,words", [
    (["--ip", "192.0.2.2"], ("--ip 192.0.2.2", "prefix")),
    (["--mac", "01:00:5e:00:00:01"], ("--mac 01:00:5e:00:00:01", "multicast")),
    (["--gateway", "198.51.100.1"], ("--gateway 198.51.100.1", "not on")),
    (["--tap", "ustke0123456789abc"], ("--tap", "too long")),
    (["--count", "-1"], ("--count -1", "0 (no limit) or more")),
    (["--interval", "-1"], ("--interval -1.0", "0 or more"))])
def test_examples_refuse_a_bad_flag_in_one_line_and_make_nothing(ns, flags, words):
    r = run(ns, ["udp_broadcast_sender.py", "--tap", TAP, "--count", "1"] + flags,
            cwd=os.path.join(ROOT, "examples"))
    one_line(r, "udp_broadcast_sender.py", *words)
    assert only_lo(ns)


# ---- the Python API: exceptions naming the argument -----------------------------------------
API = """
from ustack.ports.cpython.host import open_stack
try:
    open_stack(tap=%r, %s)
except %s as e:
    print(type(e).__name__, e)
else:
    print("opened")
"""


@pytest.mark.parametrize("kw,words", [
    ("ip='192.0.2.300/24'", ("ip='192.0.2.300/24'", "not an IPv4 address")),
    ("ip='192.0.2.2'", ("ip='192.0.2.2'", "prefix")),
    ("mac='ff:ff:ff:ff:ff:ff'", ("mac='ff:ff:ff:ff:ff:ff'", "broadcast")),
    ("host_ip='192.0.2.2/24'", ("host_ip='192.0.2.2/24'", "ip")),
    ("gateway='198.51.100.1'", ("gateway='198.51.100.1'", "not on")),
    ("config={'PBUF_COUNT': 0}", ("config", "PBUF_COUNT")),
    ("driver='bogus'", ("driver", "bogus")),
    ("pcap='/nonexistent/x.pcap'", ("pcap='/nonexistent/x.pcap'", "no such directory"))])
def test_open_stack_raises_value_error_naming_the_argument_and_makes_nothing(ns, kw, words):
    r = run(ns, ["-c", API % (TAP, kw, "ValueError")])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    line = r.stdout.strip()
    assert line.startswith("ValueError open_stack"), line
    for w in words:
        assert w in line, (w, line)
    assert only_lo(ns)


def test_open_stack_refuses_an_over_long_tap_name_before_the_kernel_cuts_it(ns):
    r = run(ns, ["-c", API % ("ustke0123456789abc", "ip='192.0.2.2/24'", "ValueError")])
    assert r.stdout.strip().startswith("ValueError open_stack(tap='ustke0123456789abc')"), \
        (r.stdout, r.stderr)
    assert "too long" in r.stdout
    assert only_lo(ns)


def test_open_stack_without_cap_net_admin_raises_permission_error(ns):
    r = run(ns, ["-c", API % (TAP, "ip='192.0.2.2/24'", "PermissionError")], pre=NO_NET_ADMIN)
    line = r.stdout.strip()
    assert line.startswith("PermissionError"), (r.stdout, r.stderr)
    assert "CAP_NET_ADMIN" in line
    assert only_lo(ns)
