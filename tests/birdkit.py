"""BIRD 2 beside the stack, as the RIP tests (tests/interop/test_rip_bird.py, RIPv2;
test_ripng_bird.py, RIPng) run it: the router namespace and a far host behind it on a veth
pair, BIRD started with a configuration the test writes, birdc asked over its socket."""
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest

from tests.netns import Netns


def need(tool):
    if shutil.which(tool) is None:
        pytest.fail("%s is not installed (.ci/setup installs bird2)" % tool)


@contextmanager
def router_and_far(tag, router_cmds, far_cmds, tools=("bird", "birdc")):
    """Yields (ns, far, tmp): namespace ns (the stack's and the router daemon's), the far
    host's namespace joined to it by the veth pair vr0 (ns) - vf0 (far), a scratch folder.
    router_cmds and far_cmds run once the pair exists; everything goes afterwards. tools:
    the commands the caller needs (tests/frrkit.py names FRR's)."""
    for t in tools:
        need(t)
    ns = Netns(tag)
    far = Netns(tag + "f")
    tmp = tempfile.mkdtemp(prefix="ustack-%s-" % tag)
    try:
        subprocess.run(["ip", "link", "add", "vr0", "netns", ns.name, "type", "veth",
                        "peer", "name", "vf0", "netns", far.name], check=True)
        for cmd in router_cmds:
            ns.run(cmd, check=True)
        for cmd in far_cmds:
            far.run(cmd, check=True)
        yield ns, far, tmp
    finally:
        far.close()
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)


def start_bird(ns, tmp, conf_text):
    """BIRD in the foreground in ns with this configuration; (process, control socket) once
    it listens."""
    conf = os.path.join(tmp, "bird.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    sock = os.path.join(tmp, "bird.ctl")
    p = ns.popen(["bird", "-f", "-c", conf, "-s", sock])
    deadline = time.time() + 10
    while not os.path.exists(sock):
        assert p.poll() is None, "bird exited: %s" % p.stdout.read()
        assert time.time() < deadline, "bird did not open its control socket"
        time.sleep(0.1)
    return p, sock


def birdc(ns, sock, *args):
    return ns.run(["birdc", "-s", sock] + list(args), timeout=10).stdout


def wait_for(cond, secs, what):
    """cond()'s first true value within secs (a routing protocol converging), else fail
    naming what did not happen."""
    end = time.time() + secs
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    pytest.fail("%s within %d s" % (what, secs))
