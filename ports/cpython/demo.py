"""The demo: ustack on a TAP in its own network namespace, answering the Linux kernel.

Makes a namespace, runs `ustack up` inside it with ICMP, UDP and TCP services, then from the
Linux side pings it, exchanges UDP echoes, fetches a page and a body (100 MB; --bytes) over
HTTP with curl when TCP is there, and prints the stack's counters. Cleans up on exit or Ctrl-C.
Exits 1 if any check failed (ping loss, a UDP echo missing or wrong, curl missing or
failing, a SHA-256 mismatch), after running the rest and cleaning up.

    python -m ustack.ports.cpython.demo [--bytes N]     (as root)
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HOST = "192.0.2.1"
STACK = "192.0.2.2"


# the namespace's network goes through netlink and setns(2) (pyroute2), not `ip netns`
NETNS_RUN_DIR = "/run/netns"  # where iproute2 and pyroute2 bind a named namespace


def make_netns(name):
    """A named network namespace (as `ip netns add`) with its loopback up: an open
    descriptor of it for in_netns. pyroute2.netns.create binds it under NETNS_RUN_DIR."""
    from pyroute2 import IPRoute, netns
    netns.create(name)
    fd = os.open(os.path.join(NETNS_RUN_DIR, name), os.O_RDONLY)
    netns.pushns(name)  # this process joins it for one netlink socket, then goes back
    try:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    finally:
        netns.popns()
    return fd


def remove_netns(name, fd):
    from pyroute2 import netns
    if fd is not None:
        os.close(fd)
    try:
        netns.remove(name)
    except OSError:
        pass  # not made (make_netns failed before binding it)


def in_netns(fd):
    """preexec_fn: the child enters the namespace (setns(2) on its descriptor) before it
    runs the command, as `ip netns exec` does for the network."""
    from pyroute2 import netns
    return lambda: netns.setns(fd)


def sh(ns, argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, preexec_fn=in_netns(ns), **kw)


def step(msg):
    print("\n== " + msg, flush=True)


def fail(failures, msg):
    """Note a failed check; the demo goes on, then exits non-zero."""
    failures.append(msg)
    print("FAILED: " + msg, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ustack.ports.cpython.demo",
                                description=__doc__.splitlines()[0])
    p.add_argument("--bytes", type=int, default=100 * 1000 * 1000, metavar="N",
                   help="size of the HTTP body fetched and checked (default 100 MB)")
    a = p.parse_args(argv)
    if a.bytes < 0:
        p.error("--bytes %d: 0 or more" % a.bytes)
    return a


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("demo: needs root (network namespace and TAP)", file=sys.stderr)
        return 1
    name = "ustk-demo-%d-%04x" % (os.getpid(), random.getrandbits(16))
    ns = None
    proc = None
    failures = []
    try:
        try:
            ns = make_netns(name)
        except ImportError:
            print("demo: needs pyroute2 (pip install pyroute2)", file=sys.stderr)
            return 1
        except Exception as e:  # pyroute2's NetlinkError is not an OSError everywhere
            print("demo: cannot make the network namespace %s: %s"
                  % (name, getattr(e, "strerror", None) or e), file=sys.stderr)
            return 1
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_www")
        argv = [sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--tap", "ustk0",
                "--ip", STACK + "/24", "--host-ip", HOST + "/24", "--json",
                "--serve", "echo,discard,chargen,http", "--http-root", root]
        step("starting: " + " ".join(argv[2:]) + "  (in netns %s)" % name)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, preexec_fn=in_netns(ns))
        line = proc.stdout.readline()
        print(line.rstrip(), flush=True)
        if not line.startswith("ready"):
            print(proc.stdout.read())
            return 1
        tcp = "tcp/" in line

        step("Linux pings the stack: ping -c 5 " + STACK)
        r = sh(ns, ["ping", "-c", "5", "-i", "0.2", STACK])
        print(r.stdout.strip())
        m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
        if r.returncode != 0 or not m or m.group(1) != m.group(2):
            fail(failures, "ping: not every echo request was answered " + r.stderr.strip())

        step("Linux exchanges UDP echoes with it (RFC 862, port 7)")
        r = sh(ns, [sys.executable, "-c",
                    "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
                    "t=time.perf_counter()\nfor i in range(1000):\n s.sendto(b'%%04d'%%i,('%s',7)); assert s.recv(64)==b'%%04d'%%i\n"
                    "print('1000 UDP echoes in %%.3f s' %% (time.perf_counter()-t))" % STACK])
        print((r.stdout + r.stderr).strip())
        if r.returncode != 0:
            fail(failures, "UDP echo: a reply was missing or wrong")

        if not tcp:
            step("TCP services not available in this build: skipped curl")
        elif not shutil.which("curl"):
            step("curl http://%s/" % STACK)
            fail(failures, "curl is not installed: the HTTP checks cannot run")
        else:
            step("curl http://%s/" % STACK)
            r = sh(ns, ["curl", "-s", "-f", "-m", "10", "http://%s/" % STACK])
            print(r.stdout.strip()[:400])
            if r.returncode != 0:
                fail(failures, "curl http://%s/ exited with %d %s" % (STACK, r.returncode, r.stderr.strip()))
            n = args.bytes
            step("curl a %s /bytes/ body and check its SHA-256" % (
                "%d MB" % (n // 1000000) if n >= 1000000 else "%d-byte" % n))
            t = time.perf_counter()
            r = subprocess.run(["curl", "-s", "-f", "-m", "300", "http://%s/bytes/%d" % (STACK, n)],
                               capture_output=True, preexec_fn=in_netns(ns))
            dt = time.perf_counter() - t
            body = r.stdout
            pattern = bytes(range(251))
            want = hashlib.sha256((pattern * (n // 251 + 1))[:n]).hexdigest()
            got = hashlib.sha256(body).hexdigest()
            print("%d bytes in %.1f s (%.1f MB/s), sha256 %s %s" % (
                len(body), dt, len(body) / dt / 1e6, got[:16], "matches" if got == want else "MISMATCH"))
            if r.returncode != 0:
                fail(failures, "curl /bytes/%d exited with %d" % (n, r.returncode))
            if got != want:
                fail(failures, "SHA-256 of the /bytes/ body does not match")

        step("the stack's counters")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        counters = [l for l in out.splitlines() if l.startswith("counters ")]
        for l in counters:
            c = json.loads(l[9:])
            for k in sorted(c):
                print("  %-34s %d" % (k, c[k]))
        if not counters:
            print(out.rstrip())
            fail(failures, "the stack printed no counters (exit code %s)" % proc.returncode)
        proc = None
        if failures:
            print("\ndemo: %d check(s) failed: %s" % (len(failures), "; ".join(failures)), flush=True)
            return 1
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_netns(name, ns)


if __name__ == "__main__":
    sys.exit(main())
