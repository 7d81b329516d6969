"""A board under MicroPython's WebAssembly port (ports/micropython/wasm.py WasmBoard): the
board's App (ports/micropython/app.py) on a link whose frames the host moves through two
preallocated rings, driven call by call so the port's collector runs between calls.

Every function takes one string; the measuring ones give back a0 a1 (in OUT, see _ret): a0
is gc.mem_alloc() when the call began (after the collection between calls: what was live) and
a1 when it ended (nothing is collected inside a call: a1 - a0 is all the call allocated).
    imp(module)       import one module (the board's code, one call each)
    linkup(json)      the test link (MAC, MTU of the settings)
    start(json)       the App with these settings (the board's, SERVE etc.) on the ring link
    step(n)           n turns of the App's loop
    locked(n)         n turns with micropython.heap_lock() held: "fails a0 a1"
    counters(keys)    the App's counters named (comma-separated), as JSON
    rings()           the ring addresses for the runner
Top level imports only what the firmware has frozen or built in (no heap)."""
import array
import gc
import micropython
import sys

if "/lib" not in sys.path:
    sys.path.insert(0, "/lib")

DEPTH = 8            # frames each way; the host moves them after every call
SIZE = 1536
app = None
link = None
# results go back as ints in OUT, the call returning -n for n of them: a str returned to
# JavaScript stays in the port's heap (about 20 bytes a call, measured)
OUT = array.array("i", [0] * 4)


def outaddr(*_):
    import uctypes
    return uctypes.addressof(OUT)


def _ret(x, y, z=0, n=2):
    """n results (x, y, z) in OUT (fixed arguments: a *args tuple stayed in the heap)."""
    OUT[0] = x
    OUT[1] = y
    OUT[2] = z
    return -n


def _used():
    return gc.mem_alloc()


def _memline():
    micropython.mem_info()  # the runner reads the heap's size from it


def imp(name):
    a0 = _used()
    __import__(name)
    a1 = _used()
    _memline()
    return _ret(a0, a1)


def _ring_link(mac, mtu):
    from ustack.hal import Driver
    from ustack.core.wire import fields

    class RingLink(Driver):
        """recv_into/send on the two rings: slots of SIZE bytes, a 2-byte length each, and a
        control block [count, head] the host updates too."""

        def __init__(self):
            self.mac = mac
            self.mtu = mtu
            self.caps = 0
            self.rxd = bytearray(DEPTH * SIZE)
            self.rxl = bytearray(2 * DEPTH)
            self.rxc = bytearray(2)
            self.txd = bytearray(DEPTH * SIZE)
            self.txl = bytearray(2 * DEPTH)
            self.txc = bytearray(2)
            self.tx_full = 0

        def recv_into(self, buf):
            c = self.rxc
            if not c[0]:
                return 0
            i = c[1]
            n = self.rxl[2 * i] | (self.rxl[2 * i + 1] << 8)
            fields.copy(buf, 0, self.rxd, i * SIZE, n)
            i += 1
            c[1] = 0 if i == DEPTH else i
            c[0] -= 1
            return n

        def send(self, buf, n):
            c = self.txc
            if c[0] >= DEPTH:
                self.tx_full += 1
                return False
            i = c[1] + c[0]
            if i >= DEPTH:
                i -= DEPTH
            fields.copy(self.txd, i * SIZE, buf, 0, n)
            self.txl[2 * i] = n & 0xFF
            self.txl[2 * i + 1] = n >> 8
            c[0] += 1
            return True

    return RingLink()


def linkup(settings):
    """The test link alone (its rings are the host's wire, not the board's: a chip driver
    keeps frames in the chip)."""
    global link
    import json
    s = json.loads(settings)
    a0 = _used()
    link = _ring_link(bytes(int(x, 16) for x in s["MAC"].split(":")), s.get("MTU", 1500))
    a1 = _used()
    _memline()
    return _ret(a0, a1)


def start(settings):
    global app
    import json
    from ustack.ports.micropython import app as appmod
    a0 = _used()
    s = appmod.appinit_call("settings_from", None)   # the defaults
    s.update(json.loads(settings))
    app = appmod.App(s, link)
    appmod.gc_threshold()
    a1 = _used()
    _memline()
    return _ret(a0, a1)


def rings(*_):
    import uctypes
    a = uctypes.addressof
    return "%d %d %d %d %d %d %d %d" % (a(link.rxd), a(link.rxl), a(link.rxc), a(link.txd),
                                        a(link.txl), a(link.txc), DEPTH, SIZE)


def step(n):
    a0 = _used()
    for _ in range(int(n)):
        app.step()
    a1 = _used()
    _memline()
    return _ret(a0, a1)


def locked(n):
    n = int(n)
    a0 = _used()
    fails = 0
    micropython.heap_lock()
    try:
        for _ in range(n):
            try:
                app.step()
            except MemoryError:
                fails += 1
    finally:
        micropython.heap_unlock()
    a1 = _used()
    _memline()
    return _ret(fails, a0, a1, 3)


def counters(keys):
    import json
    c = app.counters()
    return json.dumps(dict((k, c.get(k, 0)) for k in keys.split(",") if k))


def loaded(*_):
    """The ustack modules imported so far, comma-separated."""
    return ",".join(sorted(k for k in sys.modules if k.startswith("ustack")))


def bound(*_):
    """1 once the DHCP lease is bound, else 0."""
    d = app.stack.dhcp
    return 1 if d is not None and d.bound() else 0


def leased(*_):
    """The leased address."""
    return app.stack.dhcp.lease()["ip"]
