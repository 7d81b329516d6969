"""FRR (Debian's `frr`) beside the stack, as tests/interop/test_rip_frr.py runs it: zebra and
one routing daemon (ripd or ripngd) started directly, not through systemd, in the router
namespace of tests/birdkit.py's shape, with a state folder of their own (configuration, pid
files, zebra's API socket, the vty sockets vtysh talks to) so that parallel tests never meet.
The daemons run as the package's user `frr` (FRR insists that its user be in the vty group,
frrvty, which root is not) and are stopped by their PIDs."""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

FRR_DIR = "/usr/lib/frr"


def need_frr(daemon):
    for path in (os.path.join(FRR_DIR, "zebra"), os.path.join(FRR_DIR, daemon)):
        if not os.access(path, os.X_OK):
            pytest.fail("%s is not installed (.ci/setup installs frr)" % path)
    if shutil.which("vtysh") is None:
        pytest.fail("vtysh is not installed (.ci/setup installs frr)")


class Frr:
    """zebra and `daemon` in namespace ns with this configuration (zebra's is empty); once
    the daemon's vty socket is there. `vtysh(cmd)` asks the daemon; `stop()` ends both."""

    def __init__(self, ns, daemon, conf_text):
        need_frr(daemon)
        self.ns = ns
        self.daemon = daemon
        self.dir = tempfile.mkdtemp(prefix="ustack-frr-")
        self.procs = []
        try:
            pw = pwd.getpwnam("frr")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
            self.zsock = os.path.join(self.dir, "zserv.api")
            self._start("zebra", "hostname zebra\n", self.zsock)
            self._start(daemon, conf_text, os.path.join(self.dir, daemon + ".vty"))
        except BaseException:
            self.stop()
            raise

    def _start(self, name, conf_text, ready_path):
        conf = os.path.join(self.dir, name + ".conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        # -P 0: no vty TCP port (vtysh uses the socket in --vty_socket)
        p = self.ns.popen([os.path.join(FRR_DIR, name), "-f", conf,
                           "-i", os.path.join(self.dir, name + ".pid"), "-z", self.zsock,
                           "--vty_socket", self.dir, "-u", "frr", "-g", "frr", "-P", "0",
                           "--log", "file:" + os.path.join(self.dir, name + ".log")])
        self.procs.append(p)
        deadline = time.time() + 15
        while not os.path.exists(ready_path):
            if p.poll() is not None:
                pytest.fail("%s exited: %s %s" % (name, p.stdout.read(), self.log(name)))
            if time.time() > deadline:
                pytest.fail("%s did not open %s: %s" % (name, ready_path, self.log(name)))
            time.sleep(0.1)

    def log(self, name=None):
        try:
            with open(os.path.join(self.dir, (name or self.daemon) + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def vtysh(self, *cmds):
        argv = ["vtysh", "--vty_socket", self.dir, "-d", self.daemon]
        for c in cmds:
            argv += ["-c", c]
        r = self.ns.run(argv, timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def stop(self):
        """The routing daemon, then zebra: SIGTERM by PID, SIGKILL if one lingers."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)
