"""The control channel on CPython: core/ctl.py's protocol over a UNIX stream socket.

`ustack up` listens on the abstract socket "@ustack/<name>" (name: --name, default the TAP's).
Abstract UNIX sockets belong to the network namespace, leave no file behind when the process
dies, and are listed in /proc/net/unix, so a client finds the stacks of its own namespace
without a run directory: by name, by pid (asked with hello), or the only one there is. Only
the stack's own user and root may talk to it (SO_PEERCRED): the channel changes routes.

Capture: after a "capture" request the connection carries a pcap stream (the classic libpcap
format tcpdump and Wireshark read) of every frame in and out until the client closes it. The
stack's thread (for a stack in another process: the bridge's) copies each frame into a
bounded queue; a full queue drops the frame (counted as capture_dropped and reported to the
client's summary), never stalls the stack.
"""
import errno
import json
import os
import queue
import select
import socket
import struct
import threading
import time

from ustack.core import ctl

PREFIX = "ustack/"
CAPTURE_QUEUE = 4096   # frames a slow capture reader may lag behind before they are dropped
CAPTURE_SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
CONNECT_TIMEOUT_S = 5.0
MAX_CLIENTS = 16       # concurrent control connections; more are refused (clients_refused)

PORT_COUNTERS = ("clients", "clients_refused", "peer_refused", "capture_frames",
                 "capture_dropped")


def address(name):
    return "\0" + PREFIX + name


def check_name(name):
    """A stack name: what fits an abstract socket address and reads well in a table."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError("must be 1..64 letters, digits, '-', '_' or '.', got %r" % (name,))
    return name


def running():
    """Names of the stacks listening in this network namespace (from /proc/net/unix)."""
    out = []
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                # Num RefCount Protocol Flags Type St Inode Path; listening: flags 00010000
                if len(parts) >= 8 and parts[7].startswith("@" + PREFIX) and \
                        int(parts[3], 16) & 0x10000:
                    n = parts[7][1 + len(PREFIX):]
                    if n not in out:
                        out.append(n)
    except OSError:
        pass
    return sorted(out)


class ControlServer:
    """The listening socket and one thread per client; requests run under the runner's lock."""

    def __init__(self, name, info=None):
        self.name = check_name(name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(address(name))
        except OSError as e:
            self.sock.close()
            if e.errno == errno.EADDRINUSE:
                raise ValueError("a stack named %r runs already in this network namespace "
                                 "(choose another --name)" % (name,))
            raise
        self.sock.listen(8)
        self.info = dict(info or {})
        self.info["pid"] = os.getpid()
        self.runner = None
        self.srv = None
        self.stats = {k: 0 for k in PORT_COUNTERS}
        self.captures = []     # queues of the live capture streams
        self.nclients = 0
        self.nlock = threading.Lock()  # nclients: the accept thread adds, client threads take
        self.thread = None
        self.closing = False
        self._prev_capture = None
        self.forward = None
        self.frames = None     # forward: the bridge whose frames a capture streams
        self.caplock = threading.Lock()  # forward: captures changes (copy on write)

    def attach(self, runner):
        """Serve this runner's stack (call once the stack exists)."""
        self.runner = runner
        self.srv = ctl.Server(runner.stack, self.name, self.info)
        self.srv.extra["capture"] = self._capture_refused  # handled per connection
        self.srv.extra["stats"] = self._stats
        self.thread = threading.Thread(target=self._accept, name="ustack-ctl", daemon=True)
        self.thread.start()

    def attach_forward(self, forward, frames=None):
        """Serve a stack in another process: each request line goes to forward(line), which
        returns the response line (UdpForward: the MicroPython runtime's control port).
        `frames`: the bridge between that stack and the TAP (bridge.Bridge), whose on_frame
        hook gives a capture every frame either way; None: capture is refused."""
        self.forward = forward
        if frames is not None:
            self.frames = frames
            frames.on_frame = self._frame
        self.thread = threading.Thread(target=self._accept, name="ustack-ctl", daemon=True)
        self.thread.start()

    def _stats(self, req):
        d = self.srv.op_stats(req)
        for k, v in self.stats.items():
            d["ctl." + k] = v
        return d

    def _capture_refused(self, req):
        raise ctl.CtlError("capture: start it on its own connection")

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for q in list(self.captures):
            q.put(None)

    # ---- connections ----------------------------------------------------------------------
    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            uid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                   struct.calcsize("3i")))[1]
            if uid not in (0, os.getuid()):
                self.stats["peer_refused"] += 1
                self._refuse(c, "uid %d may not control this stack" % uid)
                continue
            if self.nclients >= MAX_CLIENTS:
                self.stats["clients_refused"] += 1
                self._refuse(c, "too many control clients (%d)" % MAX_CLIENTS)
                continue
            with self.nlock:
                self.nclients += 1
            self.stats["clients"] += 1
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _refuse(self, c, why):
        try:
            c.sendall(ctl.encode({"v": ctl.VERSION, "ok": False, "error": why}))
        except OSError:
            pass
        c.close()

    def _client(self, c):
        try:
            f = c.makefile("rb")
            while True:
                line = f.readline(ctl.MAX_LINE + 2)
                if not line:
                    return
                if not line.endswith(b"\n") and len(line) > ctl.MAX_LINE:
                    c.sendall(self._handle(line))  # too long: refused, then the connection
                    return
                try:
                    req = json.loads(line)
                except ValueError:
                    req = None
                if isinstance(req, dict) and req.get("v") == ctl.VERSION and \
                        req.get("op") == "capture":
                    if self.forward is not None and self.frames is None:
                        c.sendall(ctl.encode({"v": ctl.VERSION, "ok": False, "error":
                                              "capture: not through this runtime's control "
                                              "port (use up --pcap)"}))
                        return
                    self._stream(c, req)
                    return
                c.sendall(self._handle(line))
        except OSError:
            pass
        finally:
            with self.nlock:
                self.nclients -= 1
            c.close()

    def call(self, op, **args):
        """Ask the stack served here (the port's own use, e.g. --stats-interval of a stack
        behind a forward): its data, or ctl.CtlError with its refusal."""
        return ctl.decode_response(self._handle(ctl.request(op, **args)))

    def _handle(self, line):
        if self.forward is not None:
            with self.nlock:  # one request at a time on the datagram socket
                out = self.forward(line)
            return self._port_facts(line, out)
        with self.runner.lock:
            return self.srv.handle_line(line)

    def _port_facts(self, line, out):
        """A forwarded answer as a stack in this process gives it: `stats` with this port's
        counters (ctl.clients, captures ...), `hello` with its name and facts (pid, driver,
        tap), so `ustack ... --pid/--name` find the stack behind the forward."""
        try:
            op = json.loads(line).get("op")
            if op not in ("stats", "hello"):
                return out
            r = json.loads(out)
        except (ValueError, AttributeError):
            return out
        if not isinstance(r, dict) or not r.get("ok") or not isinstance(r.get("data"), dict):
            return out
        d = r["data"]
        if op == "stats":
            for k, v in self.stats.items():
                d["ctl." + k] = v
        else:
            for k in self.info:
                d.setdefault(k, self.info[k])  # the stack's own facts first
            d["name"] = self.name
        return ctl.encode(r)

    # ---- capture --------------------------------------------------------------------------
    def _tap(self, iface, buf, n, outgoing):
        """stack.capture: under the lock, in the stack's thread. One copy per frame."""
        if self._prev_capture is not None:
            self._prev_capture(iface, buf, n, outgoing)
        if self.captures:
            self._frame(bytes(buf[:n]))

    def _frame(self, frame):
        """A frame (bytes) for every live capture: the stack's thread, or a bridge's."""
        t = time.time()
        for q in self.captures:
            try:
                q.put_nowait((t, frame))
                self.stats["capture_frames"] += 1
            except queue.Full:
                q.dropped += 1
                self.stats["capture_dropped"] += 1

    def _stream(self, c, req):
        snap = req.get("snaplen", CAPTURE_SNAPLEN)
        if not isinstance(snap, int) or not 1 <= snap <= CAPTURE_SNAPLEN:
            c.sendall(ctl.encode({"v": ctl.VERSION, "ok": False,
                                  "error": "capture: snaplen must be 1..%d" % CAPTURE_SNAPLEN}))
            return
        q = queue.Queue(CAPTURE_QUEUE)
        q.dropped = 0
        if self.forward is not None:
            link = LINKTYPE_ETHERNET  # the bridge carries Ethernet frames
            with self.caplock:
                self.captures = self.captures + [q]  # the bridge's threads read the old list
        else:
            st = self.runner.stack
            link = LINKTYPE_ETHERNET if st.ifaces and len(st.ifaces[0].mac) == 6 else \
                LINKTYPE_RAW
            with self.runner.lock:
                if not self.captures:
                    self._prev_capture = st.capture
                    st.capture = self._tap
                self.captures = self.captures + [q]
        try:
            c.sendall(ctl.encode({"v": ctl.VERSION, "ok": True,
                                  "data": {"linktype": link, "snaplen": snap}}))
            c.sendall(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, link))
            while not self.closing:
                try:
                    item = q.get(timeout=0.5)
                except queue.Empty:
                    item = False
                if item is None:
                    return
                if item is False:
                    r = select.select([c], [], [], 0)[0]
                    if r and c.recv(1, socket.MSG_PEEK) == b"":
                        return  # the client closed its end
                    continue
                t, frame = item
                s = int(t)
                k = min(len(frame), snap)
                c.sendall(struct.pack("<IIII", s, int((t - s) * 1e6), k, len(frame)) + frame[:k])
        except OSError:
            pass
        finally:
            if self.forward is not None:
                with self.caplock:
                    self.captures = [x for x in self.captures if x is not q]
            else:
                with self.runner.lock:
                    self.captures = [x for x in self.captures if x is not q]
                    if not self.captures:
                        st.capture = self._prev_capture
                        self._prev_capture = None


class UdpForward:
    """Requests to a stack's UDP control port (ports/micropython/app.py Control), one
    datagram each way; a stack that does not answer in time is one error response."""

    def __init__(self, ip, port, timeout=3.0):
        self.addr = (ip, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)

    def __call__(self, line):
        try:
            self.sock.sendto(line.rstrip(b"\n"), self.addr)
            while True:
                data, src = self.sock.recvfrom(65535)
                if src == self.addr:
                    return data.rstrip(b"\n") + b"\n"
        except OSError as e:
            return ctl.encode({"v": ctl.VERSION, "ok": False,
                               "error": "the stack does not answer on its control port %s:%d "
                                        "(%s)" % (self.addr[0], self.addr[1],
                                                  e.strerror or "timed out")})

    def close(self):
        self.sock.close()


# ---- the client ---------------------------------------------------------------------------
class ClientError(Exception):
    """One line for the user: which stack could not be found or what it refused."""


class Client:
    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            self.sock.connect(address(name))
        except OSError as e:
            self.sock.close()
            raise ClientError("cannot reach the stack %r: %s" % (name, e.strerror or e))
        self.f = self.sock.makefile("rb")

    def call(self, op, **args):
        try:
            self.sock.sendall(ctl.request(op, **args))
            line = self.f.readline()
        except OSError as e:
            raise ClientError("stack %r: %s" % (self.name, e.strerror or e))
        if not line:
            raise ClientError("stack %r closed the control connection" % (self.name,))
        try:
            return ctl.decode_response(line)
        except ctl.CtlError as e:
            raise ClientError(str(e))

    def close(self):
        self.f.close()
        self.sock.close()


def find(name=None, pid=None):
    """A Client for the stack named, or with that pid, or the only one in this namespace."""
    names = running()
    if name is not None:
        if name not in names:
            raise ClientError("no stack named %r in this network namespace (running: %s)"
                              % (name, ", ".join(names) or "none"))
        return Client(name)
    if pid is not None:
        for n in names:
            try:
                c = Client(n)
            except ClientError:
                continue
            try:
                if c.call("hello").get("pid") == pid:
                    return c
            except ClientError:
                pass
            c.close()
        raise ClientError("no stack with pid %d in this network namespace" % pid)
    if not names:
        raise ClientError("no running `ustack up` in this network namespace")
    if len(names) > 1:
        raise ClientError("%d stacks run here (%s): name one with --name or --pid"
                          % (len(names), ", ".join(names)))
    return Client(names[0])
