"""A MicroPython program of one's own over ustack, with Linux as the peer: a throwaway
namespace whose TAP (192.0.2.1/24 on the kernel side, made before anything so that Linux
servers can bind that address) the program reaches through `network.LAN()` and the
`socket` facade (python -m ustack.ports.micropython.runtime run).

    with MpNet("libs") as net:
        net.serve(["mosquitto", "-c", conf])          # a Linux server in the namespace
        out = net.run_mpy(script_text, libs=[lib])    # stdout+stderr of the micropython run
"""
import os
import re
import subprocess
import sys
import tempfile
import time

from tests.netns import Netns, HOST_IP, STACK_IP

TAP = "ustk0"


class MpNet:
    def __init__(self, tag="mpnet"):
        self.ns = Netns(tag)
        self.work = tempfile.mkdtemp(prefix="ustack-mpnet-")
        try:
            for c in (["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                      ["ip", "addr", "add", HOST_IP + "/24", "dev", TAP],
                      ["ip", "link", "set", TAP, "up"]):
                self.ns.run(c, check=True)
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        for p in self.ns.procs:  # a run still going: SIGTERM lets it end its micropython
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        self.ns.close()  # ends the servers and runs started here (by PID), deletes the TAP
        import shutil
        shutil.rmtree(self.work, ignore_errors=True)

    def serve(self, argv, wait_port=None):
        """A Linux process in the namespace (ended at close); waits until wait_port
        listens on HOST_IP."""
        p = self.ns.popen(argv)
        if wait_port:
            end = time.monotonic() + 15
            while time.monotonic() < end:
                r = self.ns.run(["ss", "-ltnH", "src", "%s:%d" % (HOST_IP, wait_port)])
                if r.stdout.strip():
                    return p
                if p.poll() is not None:
                    raise RuntimeError("%s exited: %s" % (argv[0], p.stdout.read()))
                time.sleep(0.1)
            raise RuntimeError("%s does not listen on %d" % (argv[0], wait_port))
        return p

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_mpy(self, script, libs=(), timeout=90, name="prog.py"):
        """Start the program (its text); returns the Popen (stdout and stderr merged)."""
        path = self.write(name, script)
        argv = [sys.executable, "-m", "ustack.ports.micropython.runtime", "run", "--tap", TAP,
                "--ip", STACK_IP + "/24", "--host-ip", HOST_IP + "/24",
                "--timeout", str(timeout)]
        for lib in libs:
            argv += ["--lib", lib]
        return self.ns.popen(argv + [path])

    def run_mpy(self, script, libs=(), timeout=90):
        """Run the program to its end: (exit status, output)."""
        p = self.start_mpy(script, libs, timeout)
        out, _ = p.communicate(timeout=timeout + 30)
        return p.returncode, out


def mem_peak(out):
    """The `mem_peak N` a program printed (micropython.mem_peak())."""
    m = re.search(r"^mem_peak (\d+)$", out, re.M)
    assert m, "no mem_peak line in:\n" + out
    return int(m.group(1))
