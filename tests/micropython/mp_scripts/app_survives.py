"""The MicroPython app loop (ports/micropython/app.py App.run) survives exceptions: one from
a protocol handler (caught inside Stack.poll) and one out of poll() itself (the driver),
and keeps answering a peer stack on an in-memory wire. A "service" stepped by the app after
every poll plays the peer and the fault injector. Prints one JSON line.

    micropython app_survives.py LIB       (or python app_survives.py LIB)
"""
import sys
sys.path.insert(0, sys.argv[1])
import json
from ustack.core.stack import Stack
from ustack.hal.loopback import Wire
from ustack.ports.micropython import app

wire = Wire()


class Flaky:
    """The app's NIC: a wire port whose recv_into raises when told to (once)."""

    def __init__(self, port):
        self.port = port
        self.mac = port.mac
        self.mtu = 1500
        self.fail = 0

    def recv_into(self, buf):
        if self.fail:
            self.fail -= 1
            raise RuntimeError("device hiccup")
        return self.port.recv_into(buf)

    def send(self, buf, n):
        return self.port.send(buf, n)

    def poll_obj(self):
        return None

    def service(self):
        pass

    def close(self):
        pass


nic = Flaky(wire.port(b"\x02\0\0\0\0\x0b"))
s = app.appinit_call("settings_from", None, [])
s["IP"] = "192.0.2.11/24"
s["MAC"] = "02:00:00:00:00:0b"
the_app = app.App(s, nic)
st = the_app.stack
peer = Stack()
peer.clock = st.clock
peer.add_interface("a0", wire.port(b"\x02\0\0\0\0\x0a"), ip="192.0.2.10/24")


class Scenario:
    """Stepped by the app after every poll: one ping at a time; between pings, a fault."""

    def __init__(self):
        self.pinger = peer.icmp.pinger("192.0.2.11")
        self.seq = 0
        self.want = 0
        self.sent_at = 0
        self.replies = []

    def step(self):
        now = st.clock()
        peer.poll(now)
        p = self.pinger
        if self.seq and (p.received >= self.want or now - self.sent_at > 300):
            self.replies.append(p.received >= self.want)
            if self.seq == 1:
                real = st.icmp.input

                def boom(*a):
                    st.icmp.input = real
                    raise ValueError("handler bug")
                st.icmp.input = boom  # the next echo request: caught inside poll
            if self.seq == 3:
                nic.fail = 1          # poll itself raises: the app loop must catch it
            if self.seq == 5:
                the_app.running = False
                return
            self.send(now)
        elif not self.seq:
            self.send(now)

    def send(self, now):
        self.want = self.pinger.received + 1
        self.sent_at = now
        self.pinger.send(self.seq, now)
        self.seq += 1

    def close(self):
        self.pinger.close()


sc = Scenario()
the_app.services.append(sc)
the_app.run()
c = st.counters()
print(json.dumps({"replies": sc.replies, "exceptions": c.get("stack.exceptions", 0),
                  "pool_full": st.pool.nfree == st.pool.count}))
