"""StreamLink's writes under MicroPython: connect to SPEC, send frames of the sizes given,
each through a recorder that counts the socket's write calls; print one JSON line
{"writes": N, "frames": F, "coalesced": bool}.

    micropython stream_writes.py LIB SPEC SIZE...
"""
import sys
sys.path.insert(0, sys.argv[1])
import json
from ustack.ports.micropython.streamlink import StreamLink


class Counting:
    def __init__(self, sock):
        self.sock = sock
        self.writes = 0

    def write(self, buf, n):
        self.writes += 1
        return self.sock.write(buf, n)

    def readinto(self, buf, n):
        return self.sock.readinto(buf, n)

    def close(self):
        self.sock.close()


link = StreamLink.connect(sys.argv[2], b"\x02\0\0\0\0\x02")
rec = Counting(link.sock)
link.sock = rec
sizes = [int(x) for x in sys.argv[3:]]
buf = bytearray(2048)
for n in sizes:
    for i in range(n):
        buf[i] = (n + i) & 0xFF
    assert link.send(buf, n)
print(json.dumps({"writes": rec.writes, "frames": link.tx_frames,
                  "coalesced": link._tbuf is not None}))
link.close()
