"""The demo run as users run it (`invoke demo`: python -m ustack.ports.cpython.demo): it passes,
says what it checked, exits non-zero when a check fails, and never leaves its namespace behind."""
import os
import re
import shutil
import signal
import subprocess
import sys

from tests.conftest import needs_netns
from tests.netns import ROOT, STACK_IP

pytestmark = [needs_netns]

PY = os.path.join(ROOT, ".venv", "bin", "python")
if not os.path.exists(PY):
    PY = sys.executable


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {l.split()[0] for l in out.splitlines() if l.strip()}


def run_demo(env=None, timeout=120, args=()):
    """(exit code, output, namespaces of this demo run left behind). On a timeout the demo gets
    Ctrl-C (it cleans up on that); whatever it still left is removed here."""
    before = namespaces()
    p = subprocess.Popen([PY, "-m", "ustack.ports.cpython.demo"] + list(args), cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        out = "%s\n(demo timed out after %d s)" % (out, timeout)
    # the demo names its namespace ustk-demo-<its pid>-<random>: only those are ours
    left = sorted(n for n in namespaces() - before if n.startswith("ustk-demo-%d-" % p.pid))
    for n in left:
        pids = subprocess.run(["ip", "netns", "pids", n], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", n], capture_output=True)
    return p.returncode, out, left


def test_demo_passes_and_cleans_up():
    rc, out, left = run_demo()
    assert rc == 0, out[-4000:]
    assert left == [], "namespaces left behind: %s\n%s" % (left, out[-2000:])
    assert re.search(r"\(in netns ustk-demo-\d+-[0-9a-f]+\)", out), out[:2000]
    assert "== Linux pings the stack" in out
    assert re.search(r"5 packets transmitted, 5 received, 0% packet loss", out), out[-4000:]
    assert re.search(r"1000 UDP echoes in [\d.]+ s", out), out[-4000:]
    assert "== curl http://%s/" % STACK_IP in out and "Hello from ustack" in out, out[-4000:]
    assert re.search(r"100000000 bytes in .* sha256 [0-9a-f]{16} matches", out), out[-4000:]
    assert "pbuf.free" in out and "FAILED" not in out, out[-4000:]


def test_demo_makes_its_namespace_through_netlink_without_the_ip_command(tmp_path):
    """pyroute2 (netlink, setns(2)) makes the namespace and runs the Linux side in it: a PATH
    with ping and curl but no `ip` is enough."""
    for tool in ("ping", "curl"):
        where = shutil.which(tool)
        assert where, "%s not found" % tool
        os.symlink(where, str(tmp_path / tool))
    rc, out, left = run_demo(env=dict(os.environ, PATH=str(tmp_path)), args=["--bytes", "100000"])
    assert rc == 0, out[-4000:]
    assert left == [], "namespaces left behind: %s\n%s" % (left, out[-2000:])
    assert re.search(r"5 packets transmitted, 5 received, 0% packet loss", out), out[-4000:]
    assert re.search(r"100000 bytes in .* sha256 [0-9a-f]{16} matches", out), out[-4000:]


def test_demo_exits_non_zero_when_a_check_fails(tmp_path):
    # a PATH with ping but no curl: the HTTP checks cannot run, which is a failure
    for tool in ("ping",):
        where = shutil.which(tool)
        assert where, "%s not found" % tool
        os.symlink(where, str(tmp_path / tool))
    env = dict(os.environ, PATH=str(tmp_path))
    rc, out, left = run_demo(env=env)
    assert rc == 1, out[-4000:]
    assert left == [], "namespaces left behind: %s\n%s" % (left, out[-2000:])
    assert "FAILED: curl is not installed" in out, out[-4000:]
    assert "demo: 1 check(s) failed" in out, out[-4000:]     # ping and UDP still passed
    assert "pbuf.free" in out, out[-4000:]                    # and it still stopped the stack
