"""A board's configuration under MicroPython with its real driver stack on a virtual chip:
appinit.make_driver builds machine.SPI/Pin (fakemachine -> hal/sim chip) + MachineSpi + the
ENC28J60 or W5500 driver from the board's BUS/PINS; appinit.make_stack applies its CONFIG. A
second ustack on the chip's wire is the peer; heaplock_bench runs UDP, TCP and ping with
the heap locked. Prints one JSON line.

    micropython board_heaplock.py LIB BOARD_JSON_FILE [N] [TCP_BYTES]

(The board comes in a file: this unix port aborts on a script argument of 256+ characters.)
"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
import json
import micropython
import fakemachine
sys.modules["machine"] = fakemachine
from ustack.core.stack import Stack
from ustack.core.wire import fields
from ustack.hal import Driver
from ustack.ports.micropython import app, appinit
import heaplock_bench

with open(sys.argv[2]) as f:
    board = json.load(f)
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
TCP_BYTES = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
MAC_A = b"\x02\0\0\0\0\x0a"

if board["DRIVER"] == "enc28j60":
    from ustack.hal.sim.enc28j60 import Enc28j60Sim as Chip
else:
    from ustack.hal.sim.w5500 import W5500Sim as Chip
chip = Chip()
fakemachine.attach(chip, board["BUS"], board["PINS"])

s = appinit.settings_from(None, [])
for k in board:
    s[k] = board[k]
s["IP"] = "192.0.2.11/24"
mac_b = appinit.parse_mac(s["MAC"])
drv = appinit.make_driver(s, mac_b)
b = appinit.make_stack(s, drv)
pre = s["TCP_PREALLOC"]
app.prealloc_rings(b, min(b.config["TCP_MAX_CONNS"], 4) if pre is None else pre)


class ChipWire(Driver):
    """The peer's NIC: the chip's network side. Frames into the chip go through exact-length
    views made once (wire_rx takes len(frame); a slice per frame would allocate). The chip
    model's wire_rx (the network delivering a frame: RX status header, CRC) allocates, so
    it runs with the heap lock lifted; everything on the board's side stays locked."""

    def __init__(self, chip, mac):
        self.chip = chip
        self.mac = mac
        self.mtu = 1500
        self.buf = bytearray(1514)
        mv = memoryview(self.buf)
        self.views = [mv[0:n] for n in range(1515)]

    def recv_into(self, buf):
        return self.chip.wire_tx_into(buf)

    def send(self, buf, n):
        fields.copy(self.buf, 0, buf, 0, n)
        if heaplock_bench.LOCKED[0]:
            micropython.heap_unlock()
            ok = self.chip.wire_rx(self.views[n])
            micropython.heap_lock()
            return ok
        return self.chip.wire_rx(self.views[n])


wire = ChipWire(chip, MAC_A)
a = Stack()
a.add_interface("a0", wire, ip="192.0.2.10/24")


def inject(frame, n):
    wire.send(frame, n)


def take(buf):
    return chip.wire_tx_into(buf)


res = heaplock_bench.run(a, b, bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11]), MAC_A, mac_b,
                         inject, take, N, TCP_BYTES)
res["driver"] = type(drv).__name__
res["chip"] = type(chip).__name__
res["spi_transactions"] = getattr(chip, "spi_transactions", None)
print(json.dumps(res))
