"""The test control service over UDP (app setting CONTROL_PORT; `ustack up --runtime
micropython` sets it): imported by app.App only when the setting is on, so a board that runs
without it carries none of this code (issue 15)."""
from ustack.ports.micropython import compat
from ustack.core import clock
from ustack.core import socket as so
from ustack.core.wire import fields
from ustack.ports.micropython.app import _dumps


# A control datagram longer than this is cut (then refused as malformed JSON): a request of
# core/ctl.py's protocol (ustack route add ...) fits in a few hundred bytes
CONTROL_REQUEST_BYTES = 512
PING_INTERVAL_MS = 200   # Control's `ping`: between two echo requests
PING_WAIT_MS = 2000      # and for the replies after the last one (ping -W 2)


class Control:
    """Test control over UDP (enabled by CONTROL_PORT): one-word commands, one reply each,
    and any request of the control protocol (core/ctl.py: a JSON object, one per datagram).

        lock     reply 'locked', then hold micropython.heap_lock()
        unlock   release the lock; reply with a JSON report (failures, locked polls, memory)
        stats    JSON counters          gc    collect, JSON memory figures
        quit     reply 'bye' and stop the loop
        ping ADDR [COUNT]   echo requests from the stack (ICMPv6 for an IPv6 ADDR), one per
                 PING_INTERVAL_MS; reply once all are answered or PING_WAIT_MS after the last:
                 JSON {sent, received, rtts}
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
        self.ping = None  # [pinger, count, next seq, next send ms, reply peer, reply port]

    def step(self):
        s = self.sock
        if self.ping is not None and not self.app.locked:
            self._ping_step()
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
            elif cmd.startswith("ping "):
                self._ping_start(cmd.split())
            else:
                self._reply("?")

    def report(self, c):
        c["ctl.peer_refused"] = self.peer_refused

    def _ping_start(self, words):
        st = self.stack
        dst = words[1]
        try:
            n = int(words[2]) if len(words) > 2 else 1
            if ":" in dst:
                if st.icmp6 is None:
                    raise ValueError("IPv6 is off (config IPV6)")
                p = st.icmp6.pinger(dst)
            else:
                p = st.icmp.pinger(dst)
        except (ValueError, OSError, IndexError) as e:
            self._reply(_dumps({"error": str(e)}))
            return
        if self.ping is not None:
            self.ping[0].close()
        self.ping = [p, n, 0, clock.now_ms(), bytes(self.peer), self.sport]

    def _ping_step(self):
        p, n, seq, due, peer, port = self.ping
        now = clock.now_ms()
        if seq < n and now >= due:
            p.send(seq, now)
            self.ping[2] = seq + 1
            self.ping[3] = now + (PING_INTERVAL_MS if seq + 1 < n else PING_WAIT_MS)
            return
        if seq >= n and (p.received >= n or now >= due):
            self.ping = None
            p.close()
            self.peer[0:4] = peer
            self.sport = port
            self._reply(_dumps({"sent": p.sent, "received": p.received,
                                "rtts": list(p.rtts)}))

    def _reply(self, text):
        data = text.encode()
        self.stack.udp.output(self.sock.local_ip, self.sock.local_port, self.peer, self.sport,
                              data, len(data))
