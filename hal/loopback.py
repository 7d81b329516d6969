"""An in-memory wire joining two (or more) drivers: what one sends, the others receive.
For two-stack tests; frames are copied into fixed per-port queues (overflow counted)."""


class Wire:
    def __init__(self, depth=256):
        self.ports = []
        self.depth = depth
        self.taps = []  # callables(frame_bytes, sender) — for impairment/recording

    def port(self, mac, mtu=1500):
        p = WirePort(self, mac, mtu, self.depth)
        self.ports.append(p)
        return p

    def carry(self, sender, frame):
        for p in self.ports:
            if p is not sender:
                p._arrive(frame)


class WirePort:
    def __init__(self, wire, mac, mtu, depth):
        self.wire = wire
        self.mac = bytes(mac)
        self.mtu = mtu
        self.q = []
        self.depth = depth
        self.dropped = 0
        self.sent = 0
        self.received = 0
        self.up = True

    def _arrive(self, frame):
        if len(self.q) >= self.depth:
            self.dropped += 1
            return
        self.q.append(frame)

    def recv_into(self, buf):
        if not self.q:
            return 0
        f = self.q.pop(0)
        n = len(f)
        buf[0:n] = f
        self.received += 1
        return n

    def send(self, buf, n):
        if not self.up:
            return False
        self.sent += 1
        self.wire.carry(self, bytes(buf[0:n]))
        return True

    def pending(self):
        return len(self.q)

    def poll_obj(self):
        return None

    def service(self):
        pass

    def link_up(self):
        return self.up

    def close(self):
        self.up = False
