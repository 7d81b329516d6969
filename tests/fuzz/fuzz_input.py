"""Coverage-guided fuzzing of the frame input path with atheris, on the pure-Python core.

    USTACK_PURE=1 .venv/bin/python tests/fuzz/fuzz_input.py WORKDIR tests/fuzz/corpus
    invoke fuzz --seconds 600          (corpus in build/fuzz, crashes in build/fuzz/crashes)

One input is a script of records, each `op:u8 len:u16be payload[len]` (tests/fuzz/corpus.py
writes the seeds):
    op & 0x0F  0 frame    payload is an Ethernet frame, fed through the driver and polled
               1 time     advance the virtual clock by the payload's first two bytes, in ms
               2 read     the application reads everything queued for it
               3 send     the payload is written on the established connection
               4 close    the application closes the established connection
               5 burst    the frame queued 40 times, drained RX_BATCH frames per poll
               6 route    forwarding on; with a payload byte, a forwarding filter that
                          refuses datagrams whose TTL is below it
    op & 0x80  the frame's IPv4/ICMP/UDP/TCP checksums are fixed first, so mutated frames get
               past the integrity checks into the protocols
The stack (tests/rig.py) has a UDP socket, a TCP listener, raw sockets, an established
connection and a connection being opened. After the script every socket is closed and every
timer runs out. A crash is any exception, a received frame not accounted for by exactly one
counted outcome (rig.accounting), or a packet buffer not back in the pool.
"""
import os
import sys

if __name__ == "__main__":
    # before ustack is imported: atheris instruments .py. Only when run as the fuzzer: a test
    # importing run_one must not turn every stack its process starts later into the pure core
    os.environ.setdefault("USTACK_PURE", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OP_FRAME = 0
OP_TIME = 1
OP_READ = 2
OP_SEND = 3
OP_CLOSE = 4
OP_BURST = 5
OP_ROUTE = 6
FIX_CSUM = 0x80
MAX_RECORDS = 64


def records(data):
    """(op, payload) pairs of one input; a short tail is ignored."""
    i = 0
    n = len(data)
    k = 0
    while i + 3 <= n and k < MAX_RECORDS:
        op = data[i]
        ln = (data[i + 1] << 8) | data[i + 2]
        yield op, data[i + 3:i + 3 + ln]
        i += 3 + ln
        k += 1


def record(op, payload=b""):
    return bytes([op, len(payload) >> 8, len(payload) & 0xFF]) + bytes(payload)


def run_one(data):
    """Run one input against a fresh stack; raises on any failure."""
    from tests.rig import Rig, fix_checksums
    rig = Rig({"PBUF_COUNT": 24, "REASS_SLOTS": 2})
    for op, p in records(data):
        kind = op & 0x0F
        if kind == OP_FRAME or kind == OP_BURST:
            f = bytearray(p[:1600])
            if op & FIX_CSUM:
                fix_checksums(f)
            if kind == OP_FRAME:
                rig.feed(f)
            else:
                rig.feed_many([f] * 40)
        elif kind == OP_TIME:
            ms = ((p[0] << 8) | p[1]) if len(p) >= 2 else 1
            rig.advance(ms)
        elif kind == OP_READ:
            rig.read_all()
        elif kind == OP_SEND:
            if not rig.conn.closed:
                try:
                    rig.conn.send(bytes(p))
                except OSError:
                    pass
        elif kind == OP_CLOSE:
            rig.conn.close()
        elif kind == OP_ROUTE:
            rig.stack.ipv4.forward = True
            if p:
                ttl = p[0]
                rig.stack.filter = lambda i, o, b, off, n: b[off + 8] >= ttl
    bad = rig.accounting()
    if bad:
        raise AssertionError("frames not accounted for: " + "; ".join(bad))
    rig.close()
    bad = rig.accounting()
    if bad:
        raise AssertionError("frames not accounted for after close: " + "; ".join(bad))
    if not rig.stack.pool.full():
        raise AssertionError("packet buffers leaked: %d of %d free" % (
            rig.stack.pool.nfree, rig.stack.pool.count))


def main():
    import atheris
    import ustack  # its pure-core import hook first: atheris's goes in front of it
    with atheris.instrument_imports(include=["ustack.core"]):
        import ustack.core.stack  # noqa: F401
        import ustack.core.tcp.proto  # noqa: F401
        import ustack.core.tcp.input  # noqa: F401
        import ustack.core.tcp.output  # noqa: F401
        import ustack.core.tcp.timers  # noqa: F401
        import ustack.core.raw  # noqa: F401
        import ustack.core.tcp.socket  # noqa: F401
    assert not ustack.compiled, "fuzz the pure-Python core (USTACK_PURE=1)"
    atheris.Setup(sys.argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
