"""The host side of ustack's links through netlink (ports/cpython/hostlink.py), each error the
kernel gives mapped to one line, every one triggered for real in a throwaway namespace; and
`--driver afpacket` never deleting an interface it did not make, and removing the veth pair
and the host address it did make however it ends (its end, SIGINT, SIGTERM)."""
import json
import signal
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, HOST_IP, STACK_IP, one_line_error

pytestmark = [needs_netns]
CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
# root without CAP_NET_ADMIN (what a user without the capability meets)
NO_NET_ADMIN = ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"]


@pytest.fixture
def ns():
    n = Netns("hl")
    yield n
    n.close()


def links(ns):
    return {x["ifname"]: x for x in json.loads(ns.run(["ip", "-j", "-d", "link"]).stdout)}


def addrs(ns):
    return ns.run(["ip", "-4", "-o", "addr"]).stdout


def made_elsewhere(ns, name):
    """An interface ustack did not make: one end of a veth pair (named NAME and NAME-x)."""
    ns.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "-x"],
           check=True)




def hostlink(ns, body):
    """Run `body` (with nl = Netlink()) in the namespace; its HostError's line, or 'ok'."""
    code = ("from ustack.ports.cpython.hostlink import Netlink, HostError\n"
            "try:\n    nl = Netlink()\n" + "".join("    %s\n" % ln for ln in body.splitlines())
            + "    print('ok')\nexcept HostError as e:\n    print('HostError: %s' % e)\n")
    r = ns.python(code)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    return r.stdout.strip()


# ---- netlink errors, each one line ---------------------------------------------------------
def test_configure_sets_the_address_mtu_and_state_like_ip_did(ns):
    made_elsewhere(ns, "ustkd")
    assert hostlink(ns, "nl.configure('ustkd', '192.0.2.1/24', 1400)") == "ok"
    link = links(ns)["ustkd"]
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert "inet 192.0.2.1/24" in addrs(ns)
    # replace, not add: a second run with the same address is no error
    assert hostlink(ns, "nl.configure('ustkd', '192.0.2.1/24')") == "ok"


def test_the_host_side_is_configured_without_importing_pyroute2(ns):
    """rtnetlink spoken on a plain socket: pyroute2's import mapped about 22 MB (sqlite3, ssl,
    asyncio, its whole package) into every `ustack up`, half an idle stack's RSS (issue 13)."""
    made_elsewhere(ns, "ustkd")
    out = hostlink(ns, "nl.configure('ustkd', '192.0.2.1/24', 1400)\n"
                       "nl.configure6('ustkd', '2001:db8::1/64')\n"
                       "import sys\nprint(sorted(m for m in sys.modules if 'pyroute2' in m or "
                       "'sqlite' in m))")
    assert out == "[]\nok", out
    assert "inet6 2001:db8::1/64" in ns.run(["ip", "-6", "-o", "addr"]).stdout


def test_an_existing_interface_is_named(ns):
    made_elsewhere(ns, "ustkd")
    out = hostlink(ns, "nl.add_veth('ustkd', 'ustkdp')")
    assert out == "HostError: cannot create the veth pair ustkd/ustkdp: interface ustkd " \
                  "already exists", out
    made_elsewhere(ns, "ustkep")
    out = hostlink(ns, "nl.add_veth('ustke', 'ustkep')")
    assert out.endswith("interface ustkep already exists"), out
    assert "ustke" not in links(ns)


def test_a_missing_interface_is_named(ns):
    out = hostlink(ns, "nl.configure('ustk9', '192.0.2.1/24')")
    assert out == "HostError: no interface ustk9", out


def test_without_cap_net_admin_the_line_says_it_needs_root(ns):
    made_elsewhere(ns, "ustkd")
    r = ns.run(NO_NET_ADMIN + [sys.executable, "-c",
               "from ustack.ports.cpython.hostlink import configure, HostError\n"
               "try:\n    configure('ustkd', '192.0.2.1/24')\n"
               "except HostError as e:\n    print(e)\n"])
    assert r.stdout.strip() == "cannot add 192.0.2.1/24 to ustkd: needs root (CAP_NET_ADMIN)", \
        r.stdout + r.stderr
    r = ns.run(NO_NET_ADMIN + CLI + ["up", "--tap", "ustk0", "--ip", STACK_IP + "/24"])
    one_line_error(r, "tap", "ustk0", "needs root", "CAP_NET_ADMIN")


def test_an_address_that_is_not_there_is_named(ns):
    made_elsewhere(ns, "ustkd")
    out = hostlink(ns, "nl.del_addr('ustkd', '203.0.113.9/24')")
    assert out == "HostError: cannot remove 203.0.113.9/24 from ustkd: no such address on " \
                  "ustkd", out


def test_a_tap_another_process_holds_is_named(ns):
    ns.run(["ip", "tuntap", "add", "mode", "tap", "ustk0"], check=True)
    holder = ns.popen([sys.executable, "-c",
                       "from ustack.hal.tap import Tap\nimport time\n"
                       "t = Tap('ustk0')\nprint('holding', flush=True)\ntime.sleep(60)\n"])
    assert holder.stdout.readline().strip() == "holding"
    r = ns.run(CLI + ["up", "--tap", "ustk0", "--ip", STACK_IP + "/24", "--duration", "1"])
    one_line_error(r, "TAP ustk0 is in use by another process")
    holder.kill()
    holder.wait()


def test_a_name_the_kernel_finds_too_long_is_named(ns):
    long_name = "ustk" + "x" * 12   # 16 bytes: one past IFNAMSIZ - 1
    out = hostlink(ns, "nl._do('cannot create %s', %r, nl.new_link, %r, 'dummy')"
                   % (long_name, long_name, long_name))
    assert out == "HostError: cannot create %s: interface name %r is longer than 15 " \
                  "characters (IFNAMSIZ)" % (long_name, long_name), out
    out = hostlink(ns, "nl.configure(%r)" % long_name)
    assert "longer than 15 characters" in out, out


def test_an_mtu_the_device_refuses_is_one_line(ns):
    ns.run(["ip", "link", "add", "ustkv", "type", "veth", "peer", "name", "ustkw"], check=True)
    out = hostlink(ns, "nl.configure('ustkv', None, 70000)")
    assert out.startswith("HostError: cannot set MTU 70000 on ustkv: ") and \
        "errno 22" in out, out


RUNTIMES = ["cpython", "micropython"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_up_with_an_over_long_tap_name_is_refused_before_anything_is_made(ns, runtime):
    r = ns.run(CLI + ["up", "--tap", "ustk0123456789ab", "--ip", STACK_IP + "/24",
                      "--host-ip", HOST_IP + "/24", "--duration", "1", "--runtime", runtime])
    one_line_error(r, "--tap ustk0123456789ab", "at most 15 characters")
    assert [n for n in links(ns) if n.startswith("ustk")] == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_up_on_an_interface_that_is_no_tap_says_so(ns, runtime):
    made_elsewhere(ns, "ustkd")
    r = ns.run(CLI + ["up", "--tap", "ustkd", "--ip", STACK_IP + "/24", "--duration", "1",
                      "--runtime", runtime])
    one_line_error(r, "interface ustkd exists and is not a TAP")
    assert links(ns)["ustkd"]["linkinfo"]["info_kind"] == "veth"


# ---- --driver afpacket: never delete what it did not make, clean up what it did -------------
def test_afpacket_refuses_an_interface_it_did_not_make_and_leaves_it_alone(ns):
    made_elsewhere(ns, "ustk0")
    ns.run(["ip", "addr", "add", "203.0.113.7/24", "dev", "ustk0"], check=True)
    r = ns.run(CLI + ["up", "--driver", "afpacket", "--tap", "ustk0", "--ip", STACK_IP + "/24",
                      "--host-ip", HOST_IP + "/24", "--duration", "1"])
    one_line_error(r, "--tap ustk0", "already exists")
    assert links(ns)["ustk0"]["linkinfo"]["info_kind"] == "veth"
    assert "inet 203.0.113.7/24" in addrs(ns) and HOST_IP not in addrs(ns)
    assert "ustk0p" not in links(ns)


def test_afpacket_refuses_when_the_peer_name_is_taken(ns):
    made_elsewhere(ns, "ustk0p")
    r = ns.run(CLI + ["up", "--driver", "afpacket", "--tap", "ustk0", "--ip", STACK_IP + "/24",
                      "--duration", "1"])
    one_line_error(r, "--tap ustk0", "ustk0p already exists")
    assert links(ns)["ustk0p"]["linkinfo"]["info_kind"] == "veth" and "ustk0" not in links(ns)


def test_afpacket_names_need_room_for_the_peer(ns):
    r = ns.run(CLI + ["up", "--driver", "afpacket", "--tap", "ustk0123456789a",
                      "--ip", STACK_IP + "/24", "--duration", "1"])
    one_line_error(r, "--tap ustk0123456789a", "14 characters")
    assert [n for n in links(ns) if n.startswith("ustk")] == []


@pytest.mark.parametrize("end", ["duration", "SIGINT", "SIGTERM"])
def test_afpacket_removes_its_veth_pair_and_host_address_on_exit(ns, end):
    flags = ("--driver", "afpacket") + (("--duration", "2") if end == "duration" else ())
    sp = StackProc(ns, *flags)
    assert {"ustk0", "ustk0p"} <= set(links(ns))
    assert "inet %s/24" % HOST_IP in addrs(ns)
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    if end != "duration":
        sp.p.send_signal(getattr(signal, end))
    out, _ = sp.p.communicate(timeout=20)
    assert sp.p.returncode == 0, out
    assert "counters " in out
    left = set(links(ns))
    assert "ustk0" not in left and "ustk0p" not in left, left
    assert HOST_IP not in addrs(ns)


def test_afpacket_turns_tx_checksum_offload_off_without_ethtool(ns):
    sp = StackProc(ns, "--driver", "afpacket")
    try:
        features = ns.run(["ethtool", "-k", "ustk0"]).stdout
        assert "tx-checksumming: off" in features, features
        r = ns.run(["cat", "/proc/sys/net/ipv6/conf/ustk0p/disable_ipv6"])
        assert r.stdout.strip() == "1"
    finally:
        c = sp.stop()
    assert c["pbuf.free"] == c["pbuf.count"]


# ---- a TAP someone else made (ip tuntap add: persistent) outlives us: so must it be left ------
def test_a_persistent_tap_is_left_as_found_without_the_host_address_ustack_added(ns):
    ns.run(["ip", "tuntap", "add", "mode", "tap", "ustk0"], check=True)
    sp = StackProc(ns)
    assert "inet %s/24" % HOST_IP in addrs(ns)
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    c = sp.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
    assert "ustk0" in links(ns) and HOST_IP not in addrs(ns)


def test_a_host_address_that_was_there_before_stays(ns):
    ns.run(["ip", "tuntap", "add", "mode", "tap", "ustk0"], check=True)
    ns.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
    sp = StackProc(ns)
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    sp.stop()
    assert "ustk0" in links(ns) and "inet %s/24" % HOST_IP in addrs(ns)


def test_afpacket_veth_goes_even_when_the_program_dies_of_an_exception(ns):
    r = ns.python("from ustack.ports.cpython import simdrivers\n"
                  "drv = simdrivers.afpacket('ustk0', b'\\x02\\x00\\x00\\x00\\x00\\x02')\n"
                  "import os\nprint(sorted(os.listdir('/sys/class/net')), flush=True)\n"
                  "raise RuntimeError('the program fails before it closes its link')\n")
    assert "'ustk0', 'ustk0p'" in r.stdout and "RuntimeError" in r.stderr, r.stdout + r.stderr
    assert "ustk0" not in links(ns) and "ustk0p" not in links(ns)


def test_a_tap_an_administrator_prepared_needs_no_cap_net_admin(ns):
    """ip tuntap add ... user U, its address and up done once by root: ustack up then runs
    without CAP_NET_ADMIN (nothing to change on the host side)."""
    ns.run(["ip", "tuntap", "add", "mode", "tap", "ustk0", "user", "0"], check=True)
    ns.run(["ip", "addr", "add", HOST_IP + "/24", "dev", "ustk0"], check=True)
    ns.run(["ip", "link", "set", "ustk0", "up"], check=True)
    p = ns.popen(NO_NET_ADMIN + CLI + ["up", "--tap", "ustk0", "--ip", STACK_IP + "/24",
                                       "--host-ip", HOST_IP + "/24", "--duration", "3"])
    ready = p.stdout.readline()
    assert ready.startswith("ready "), ready + p.stdout.read()
    assert ns.run(["ping", "-c", "1", "-W", "2", STACK_IP]).returncode == 0
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 0 and "counters" in out, out
    assert "ustk0" in links(ns) and "inet %s/24" % HOST_IP in addrs(ns)
