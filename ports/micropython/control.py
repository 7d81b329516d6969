"""The test control service over UDP (app setting CONTROL_PORT; `ustack up --runtime
micropython` sets it): imported by app.App only when the setting is on, so a board that runs
without it carries none of this code (issue 15)."""
from ustack.ports.micropython import compat
from ustack.core import socket as so
from ustack.core.wire import fields
from ustack.ports.micropython.app import _dumps


# A control datagram longer than this is cut (then refused as malformed JSON): a request of
# core/ctl.py's protocol (ustack route add ...) fits in a few hundred bytes
CONTROL_REQUEST_BYTES = 512


class Control:
    """Test control over UDP (enabled by CONTROL_PORT): one-word commands, one reply each,
    and any request of the control protocol (core/ctl.py: a JSON object, one per datagram).

        lock     reply 'locked', then hold micropython.heap_lock()
        unlock   release the lock; reply with a JSON report (failures, locked polls, memory)
        stats    JSON counters          gc    collect, JSON memory figures
        quit     reply 'bye' and stop the loop
    While locked, a datagram is matched by index against preallocated words; everything but
    'unlock' is ignored (a reply would allocate)."""

    def __init__(self, app, port, peer=None):
        from ustack.core.wire import ipv4 as ip4
        self.app = app
        self.stack = app.stack
        self.sock = s = app.stack.socket(so.AF_INET, so.SOCK_DGRAM)
        s.bind(("", port))
        s.setblocking(False)
        self.only = ip4.aton(peer) if peer else None  # CONTROL_PEER
        self.peer_refused = 0
        self.buf = bytearray(CONTROL_REQUEST_BYTES)
        self.ctl = None  # core/ctl.py's server, made by the first JSON request
        self.peer = bytearray(4)
        self.sport = 0
        self.word_unlock = b"unlock"

    def step(self):
        s = self.sock
        while s.qlen:
            self.sport = s.peek_source(self.peer)
            n = s.recv_into(self.buf)
            if self.only is not None and not fields.eq(self.peer, 0, self.only, 4):
                self.peer_refused += 1  # not the host that runs us: no answer
                continue
            app = self.app
            if app.locked:
                if n >= 6 and fields.eq(self.buf, 0, self.word_unlock, 6):
                    app.unlock()
                    self._reply(app.lock_report())
                continue
            if n and self.buf[0] == 0x7B:  # '{': a request of the control protocol (core/ctl.py)
                if self.ctl is None:
                    from ustack.core import ctl
                    self.ctl = ctl.Server(self.stack, "micropython", {"runtime": "micropython"})
                self._reply(self.ctl.handle_line(bytes(self.buf[0:n])).decode())
                continue
            cmd = bytes(self.buf[0:n]).decode().strip()
            if cmd == "lock":
                self._reply("locked")
                app.lock()
            elif cmd == "unlock":
                self._reply(app.lock_report())
            elif cmd == "stats":
                self._reply(app.counters_json())
            elif cmd == "gc":
                import gc
                gc.collect()
                m = compat.mem_info()
                m["code"] = app.heap_code
                m["setup"] = app.heap_setup
                self._reply(_dumps(m))
            elif cmd == "quit":
                self._reply("bye")
                app.running = False
            else:
                self._reply("?")

    def report(self, c):
        c["ctl.peer_refused"] = self.peer_refused

    def _reply(self, text):
        data = text.encode()
        self.stack.udp.output(self.sock.local_ip, self.sock.local_port, self.peer, self.sport,
                              data, len(data))
