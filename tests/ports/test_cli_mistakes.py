"""Every mistake is one clear line (issue 11): each input a new user gets wrong ends `ustack
up` / `run` / `ping` / a control command with a non-zero exit status and exactly one line on
stderr naming the flag and the problem, no traceback, and nothing made on the system (no
interface left in the throwaway namespace, no pcap file). Signals at any moment of `ustack up`,
the first 50 ms included, end it without a traceback, with its counters once it was ready,
and leave no TAP behind."""
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import time

import pytest

from tests.netns import Netns

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]
TAP = "ustkm0"
# root without the capabilities `ip tuntap`/`ip link` need: what a plain user has
NO_NET_ADMIN = ["setpriv", "--bounding-set", "-net_admin,-net_raw",
                "--inh-caps", "-net_admin,-net_raw"]


@pytest.fixture(scope="module")
def ns():
    n = Netns("mis")
    yield n
    n.close()


def only_lo(ns):
    links = ns.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
    return len(links) == 1 and ": lo:" in links[0]


def one_line(r, *words):
    """Refused in one line naming `words`, non-zero, no traceback, nothing on stdout."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert r.stdout == "", r.stdout
    assert lines[0].startswith("ustack"), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def ustack(ns, *args, pre=(), env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(ns.cmd(list(pre) + CLI + list(args)), capture_output=True, text=True,
                          timeout=timeout, env=e)


UP = ("up", "--tap", TAP, "--host-ip", "192.0.2.1/24", "--duration", "2")

# (flags, the words the one line must hold)
BAD_LINK = (
    (["--ip", "192.0.2.300/24"], ("--ip 192.0.2.300/24", "not an IPv4 address")),
    (["--ip", "192.0.2.2/33"], ("--ip 192.0.2.2/33", "prefix")),
    (["--ip", "foo"], ("--ip foo", "not an IPv4 address")),
    (["--ip", "192.0.2.2"], ("--ip 192.0.2.2", "prefix")),
    (["--ip", "192.0.2.255/24"], ("--ip 192.0.2.255/24", "broadcast")),
    (["--ip", "224.0.0.1/24"], ("--ip 224.0.0.1/24", "multicast")),
    (["--ip", "0.0.0.0/24"], ("--ip 0.0.0.0/24", "unspecified")),
    (["--ip", "192.0.2.02/24"], ("--ip 192.0.2.02/24", "not an IPv4 address")),
    (["--mac", "zz"], ("--mac zz", "not a MAC")),
    (["--mac", "02:00:00:00:00"], ("--mac 02:00:00:00:00", "not a MAC")),
    (["--mac", "ff:ff:ff:ff:ff:ff"], ("--mac ff:ff:ff:ff:ff:ff", "broadcast")),
    (["--mac", "01:00:5e:00:00:01"], ("--mac 01:00:5e:00:00:01", "multicast")),
    (["--mac", "00:00:00:00:00:00"], ("--mac 00:00:00:00:00:00", "all-zero")),
    (["--gateway", "192.0.2.300"], ("--gateway 192.0.2.300", "not an IPv4 address")),
    (["--gateway", "198.51.100.1"], ("--gateway 198.51.100.1", "not on", "192.0.2.0/24")),
    (["--gateway", "192.0.2.2"], ("--gateway 192.0.2.2", "the stack's own")),
    (["--host-ip", "192.0.2.2/24"], ("--host-ip 192.0.2.2/24", "--ip")),
    (["--host-ip", "192.0.2.1"], ("--host-ip 192.0.2.1", "prefix")),
    (["--host-ip", "192.0.2.1/40"], ("--host-ip 192.0.2.1/40", "prefix")),
    (["--config", "NO_SUCH_KEY=1"], ("--config NO_SUCH_KEY=1", "unknown config key")),
    (["--config", "PBUF_COUNT"], ("--config PBUF_COUNT", "KEY=VALUE")),
    (["--config", "=3"], ("--config =3", "KEY=VALUE")),
    (["--config", "PBUF_COUNT="], ("--config PBUF_COUNT=", "PBUF_COUNT")),
    (["--config", "PBUF_COUNT=0"], ("--config PBUF_COUNT=0", "4..")),
    (["--serve", "http", "--http-root", "/nonexistent/www"],
     ("--http-root /nonexistent/www", "no such directory")),
    (["--http-root", "/"], ("--http-root", "--serve http")),
    (["--stats-interval", "-1"], ("--stats-interval -1", "0 or more")),
    (["--duration", "-1"], ("--duration -1", "0 or more")),
    (["--duration", "nan"], ("--duration nan", "0 or more")),
    (["--duration", "x"], ("--duration", "'x'")),
    (["--pcap", "/nonexistent/x.pcap"], ("--pcap /nonexistent/x.pcap", "no such directory")),
    (["--pcap", "/"], ("--pcap /", "a directory")),
    (["--tap", "ustkm0123456789abc"], ("--tap ustkm0123456789abc", "too long", "15")),
    (["--tap", "a/b"], ("--tap a/b", "'/'")),
    (["--driver", "w5500"], ("--driver w5500",)),
    (["--driver", "bogus"], ("--driver", "bogus")),
    (["--board", "nosuch"], ("--board nosuch", "unknown board")),
    (["--serve", "bogus"], ("--serve bogus", "no such service")),
    (["--mtu", "x"], ("--mtu", "'x'")),
    (["--no-such-flag"], ("--no-such-flag",)),
    (["--ip6", "2001:db8::2"], ("--ip6 2001:db8::2", "ADDR/PREFIX")),
    (["--ip6", "2001:db8::zz/64"], ("--ip6 2001:db8::zz/64", "ADDR/PREFIX")),
    (["--ip6", "2001:db8::2/129"], ("--ip6 2001:db8::2/129", "ADDR/PREFIX")),
    (["--ip6", "ff02::1/64"], ("--ip6 ff02::1/64", "unicast")),
    (["--host-ip6", "fe80::1"], ("--host-ip6 fe80::1", "ADDR/PREFIX")),
    (["--ip6", "2001:db8::2/64", "--host-ip6", "2001:db8::2/64"],
     ("--host-ip6 2001:db8::2/64", "--ip6")),
    (["--ripng", "--config", "IPV6=False"], ("--ripng",)),
)

# each only under CPython (the MicroPython runtime always bridges a TAP: its own line)
BAD_CPYTHON = (
    (["--driver", "w5500"], ("--driver w5500", "SPI bus", "pc_ft232h_w5500")),
    (["--board", "unix"], ("--board unix", "streamlink", "--runtime micropython")),
    (["--board", "esp32_w5500"], ("--board esp32_w5500", "MicroPython")),
    (["--driver", "usb-ecm", "--host-ip", "192.0.2.1/24"], ("--host-ip", "--driver usb-ecm")),
)


def _ids(cases):
    return [" ".join(c[0]) for c in cases]


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("flags,words", BAD_LINK, ids=_ids(BAD_LINK))
def test_ustack_up_refuses_a_bad_flag_in_one_line_and_makes_nothing(ns, runtime, flags, words):
    r = ustack(ns, *(UP + ("--runtime", runtime) + tuple(flags)))
    one_line(r, *words)
    assert only_lo(ns)
    assert not os.path.exists("/nonexistent/x.pcap")


@pytest.mark.parametrize("flags,words", BAD_CPYTHON, ids=_ids(BAD_CPYTHON))
def test_ustack_up_refuses_a_link_cpython_cannot_drive_in_one_line(ns, flags, words):
    one_line(ustack(ns, *(UP + tuple(flags))), *words)
    assert only_lo(ns)


@pytest.mark.parametrize("flags,words", BAD_LINK[:34], ids=_ids(BAD_LINK[:34]))
def test_ustack_run_refuses_the_same_flags_before_the_program_starts(ns, flags, words):
    r = ustack(ns, *(("run",) + UP[1:] + tuple(flags) + ("--", "python", "-c", "print('ran')")))
    one_line(r, *words)
    assert only_lo(ns)


PING_BAD = (
    (["--ip", "192.0.2.300/24"], ("--ip 192.0.2.300/24",)),
    (["--ip", "192.0.2.2"], ("--ip 192.0.2.2", "prefix")),
    (["--mac", "ff:ff:ff:ff:ff:ff"], ("--mac", "broadcast")),
    (["--gateway", "198.51.100.1"], ("--gateway 198.51.100.1", "not on")),
    (["--host-ip", "192.0.2.2/24"], ("--host-ip",)),
    (["--pcap", "/nonexistent/x.pcap"], ("--pcap /nonexistent/x.pcap",)),
    (["--tap", "ustkm0123456789abc"], ("--tap", "too long")),
    (["-i", "nan"], ("-i",)),
    (["-c", "x"], ("-c", "'x'")),
    (["--bogus"], ("--bogus",)),
)


@pytest.mark.parametrize("flags,words", PING_BAD, ids=_ids(PING_BAD))
def test_ustack_ping_refuses_a_bad_flag_in_one_line(ns, flags, words):
    r = ustack(ns, "ping", "192.0.2.1", "--tap", TAP, "--host-ip", "192.0.2.1/24", *flags)
    one_line(r, *words)
    assert only_lo(ns)


def test_ustack_ping_refuses_a_destination_that_is_not_a_dotted_quad(ns):
    for dest in ("192.0.2.01", "192.0.2.1.", " 192.0.2.1", "192.0.2.1_0"):
        one_line(ustack(ns, "ping", dest, "--tap", TAP), "not an IPv4 address")
    assert only_lo(ns)


def test_control_commands_refuse_bad_flags_and_a_missing_stack_in_one_line(ns):
    one_line(ustack(ns, "ss", "--bogus"), "ustack ss", "--bogus")
    one_line(ustack(ns, "stats", "--name", "nosuch"), "no stack named 'nosuch'")
    one_line(ustack(ns, "stats", "--count", "x"), "--count", "'x'")
    one_line(ustack(ns, "addr", "--pid", "x"), "--pid", "'x'")
    one_line(ustack(ns, "addr", "--pid", "1"), "no stack with pid 1")
    one_line(ustack(ns, "ss"), "no running `ustack up`")



def test_control_words_are_checked_like_the_flags_before_any_stack_is_asked(ns):
    """The same check per kind of value as `ustack up`'s flags, so no stack is needed to
    hear about a bad word."""
    for args, words in (
            (("route", "add", "198.51.100.5/24", "via", "192.0.2.1"), ("host bits set",
                                                                        "198.51.100.0/24")),
            # del as add, in the words of Linux's `ip route`
            (("route", "del", "198.51.100.5/24"), ("198.51.100.5/24", "Invalid prefix for "
                                                   "given prefix length", "198.51.100.0/24")),
            (("route", "add", "198.51.100.5/24", "dev", "eth0"), ("Invalid prefix for given "
                                                               "prefix length",)),
            (("route", "add", "198.51.100.0/24", "via", "192.0.2.01"), ("via 192.0.2.01",)),
            (("route", "-6", "add", "2001:db8:9::/48", "via", "fe80::1"),
             ("via fe80::1", "link-local", "dev")),
            (("route", "add", "2001:db8:9::1/48", "via", "2001:db8::1"), ("host bits set",
                                                                         "2001:db8:9::/48")),
            (("route", "add", "2001:db8:zz::/48", "dev", "eth0"), ("2001:db8:zz::/48",)),
            (("route", "-6", "add", "198.51.100.0/24", "dev", "eth0"), ("-6",
                                                                       "198.51.100.0/24")),
            (("neigh", "add", "192.0.2.9", "lladdr", "ff:ff:ff:ff:ff:ff"), ("broadcast",)),
            (("addr", "replace", "192.0.2.255/24"), ("192.0.2.255/24", "broadcast")),
            (("addr", "replace", "192.0.2.5/24", "gateway", "foo"), ("gateway foo",))):
        one_line(ustack(ns, *args), *words)


def test_run_without_a_program_and_run_under_micropython_are_one_line(ns):
    one_line(ustack(ns, "run", "--tap", TAP), "name the program")
    one_line(ustack(ns, "run", "--tap", TAP, "--runtime", "micropython", "--", "python", "-c",
                    "pass"), "--runtime micropython")
    assert only_lo(ns)


# ---- what the system lacks -----------------------------------------------------------------
@pytest.mark.parametrize("cmd", [
    ("up", "--tap", TAP),
    ("up", "--tap", TAP, "--runtime", "micropython"),
    ("up", "--tap", TAP, "--driver", "sim-w5500"),
    ("up", "--tap", TAP, "--driver", "afpacket"),
    ("run", "--tap", TAP, "--", "python", "-c", "print('ran')"),
    ("ping", "192.0.2.1", "--tap", TAP),
], ids=lambda c: " ".join(c[:1] + c[3:5]))
def test_without_cap_net_admin_one_line_says_what_is_needed(ns, cmd):
    r = ustack(ns, *cmd, pre=NO_NET_ADMIN)
    one_line(r, "CAP_NET_ADMIN", "root")
    assert only_lo(ns)


@pytest.fixture
def python_without_micropython(tmp_path):
    """A Python whose folder holds no `micropython` (as when the [mpy] extra is not
    installed), seeing the same packages as this one."""
    (tmp_path / "bin").mkdir()
    os.symlink(os.path.realpath(sys.executable), str(tmp_path / "bin" / "python"))
    (tmp_path / "pyvenv.cfg").write_text(
        "home = %s\ninclude-system-site-packages = false\n"
        % os.path.dirname(os.path.realpath(sys.executable)))
    dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    sp2 = tmp_path / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    sp2.mkdir(parents=True)
    (sp2 / "outer.pth").write_text("import site; list(map(site.addsitedir, %r))\n" % (dirs,))
    return str(tmp_path / "bin" / "python")


def test_micropython_runtime_without_micropython_names_the_extra(ns, python_without_micropython):
    path = "/usr/sbin:/usr/bin:/sbin:/bin"
    assert shutil.which("micropython", path=path) is None
    env = dict(os.environ, PATH=path)
    env.pop("USTACK_MICROPYTHON", None)
    r = subprocess.run(ns.cmd([python_without_micropython, "-m", "ustack.ports.cpython.cli"]
                              + list(UP) + ["--runtime", "micropython"]),
                       capture_output=True, text=True, timeout=60, env=env)
    one_line(r, "--runtime micropython", "ustack[mpy]")
    assert only_lo(ns)


def test_micropython_runtime_with_a_wrong_micropython_command_names_it(ns):
    r = ustack(ns, *(UP + ("--runtime", "micropython")),
               env={"USTACK_MICROPYTHON": "/nonexistent/micropython"})
    one_line(r, "USTACK_MICROPYTHON", "/nonexistent/micropython")
    assert only_lo(ns)


# ---- signals -------------------------------------------------------------------------------
def _start(ns, runtime):
    # its own process group, as a shell's foreground job: Ctrl-C is sent to the group
    return subprocess.Popen(ns.cmd(CLI + ["up", "--tap", TAP, "--host-ip", "192.0.2.1/24",
                                          "--runtime", runtime, "--json"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_ready(p, timeout):
    end = time.monotonic() + timeout
    lines = []
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready "):
            return lines
    raise AssertionError("no ready line: %r" % (lines,))


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI_PY = os.path.join(ROOT, "ports", "cpython", "cli.py")
# the package __init__ files Python runs on its way to cli.py (tests/ports/test_start_up.py
# keeps them importing nothing)
ON_THE_WAY = [os.path.join(ROOT, *p) for p in (("__init__.py",), ("ports", "__init__.py"),
                                               ("ports", "cpython", "__init__.py"))]


def _catch_line():
    """The line of cli.py that installs its handlers when it runs as `ustack up`."""
    with open(CLI_PY) as f:
        for n, line in enumerate(f, 1):
            if line.strip() == "catch_signals()":
                return n
    raise AssertionError("cli.py calls catch_signals() nowhere at module level")


def _in_interpreter_start_up(err):
    """A KeyboardInterrupt trace CPython itself prints when Ctrl-C lands before ustack's
    handler is in place: in its own start-up (site, the editable install's finder, runpy),
    in the package __init__ files on the way, or in cli.py's lines before catch_signals().
    Any frame of ustack's beyond those (core/, hal/, the rest of ports/, cli.py past that
    line) means ustack's handler missed a signal."""
    if not err.rstrip().endswith("KeyboardInterrupt"):
        return False
    frames = re.findall(r'File "([^"]+)", line (\d+)', err)
    catch = _catch_line()
    for path, line in frames:
        if path.startswith("<"):
            continue  # <frozen site>, <string>: Python's own start-up
        path = os.path.realpath(path)
        if not path.startswith(ROOT + os.sep) or ".venv" in path.split(os.sep):
            continue  # Python's own start-up
        if path in ON_THE_WAY or (path == CLI_PY and int(line) < catch):
            continue
        return False
    return True


# What CPython's start-up prints when Ctrl-C's KeyboardInterrupt lands in its import
# machinery's weakref callback (and is ignored there)
SWALLOWED = re.compile(r"Exception ignored in: <function [^\n]+>\nTraceback \(most recent call "
                       r"last\):\n(  File \"<frozen [^>]+>\", line \d+, in \w+\n)+"
                       r"KeyboardInterrupt\n")


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda s: s.name)
@pytest.mark.parametrize("at", [0.0, 0.02, 0.05, 0.2, "ready"])
def test_a_signal_at_any_moment_ends_up_cleanly(ns, runtime, sig, at):
    p = _start(ns, runtime)
    try:
        head = []
        if at == "ready":
            head = _wait_ready(p, 60)
        else:
            time.sleep(at)
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)  # Ctrl-C: the terminal signals the whole foreground group
        else:
            p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired as e:
            # CPython prints and ignores an exception raised in a weakref callback: Ctrl-C
            # landing in one during its own start-up (before ustack's first line) is gone, and
            # the stack comes up. A second Ctrl-C, as the user would press, must end it cleanly.
            if sig != signal.SIGINT or not SWALLOWED.search((e.stderr or b"").decode()):
                raise
            os.killpg(p.pid, sig)
            out, err = p.communicate(timeout=60)
            err = SWALLOWED.sub("", err, 1)
            at = "ready"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = "".join(head) + out
    if sig == signal.SIGINT and at != "ready" and _in_interpreter_start_up(err):
        assert "ready " not in out
    else:
        assert "Traceback" not in err and "Error" not in err, err
        assert len(err.strip().splitlines()) <= 1, err
    if "ready " in out:
        assert p.returncode == 0, (p.returncode, err)
        assert len(re.findall(r"^counters ", out, re.M)) == 1, out
        assert re.search(r"^limits ", out, re.M), out
    else:  # ended before it was up: by the signal, or in one line saying so
        assert p.returncode in (-sig, 128 + sig, 1), (p.returncode, err)
        assert out == "", out
        if err.strip() and not _in_interpreter_start_up(err):
            assert "stopped by %s before the stack was up" % sig.name in err, err
    if at == "ready":
        assert "ready " in out
    assert only_lo(ns)
