"""The stack's own microseconds per request (issue 13's echo and ping rows), no TAP and no
kernel: `ustack up --serve echo`'s runner and services (ports/cpython runner.py, services.py,
tcp_services.py) on a Stack whose driver hands it, one per poll, frames a raw client built
beforehand - a 64-byte TCP echo on an established connection (timestamps on, as Linux's
client sends), a 64-byte UDP echo and a 56-byte ping - and keeps what it sends. Every
request must get exactly its one answer (the echoed bytes and the right ACK; a reply that
is missing, doubled or wrong stops the run). CPU microseconds per request of the runner's
step (poll, services, hooks), best of --rounds; run it beside another build of the package
(PYTHONPATH=DIR, DIR/ustack) for a before/after on the same machine load.

--gap MS sleeps that long before each request, as a stack waits between a ping's requests
(the bench pings every 2 ms): what a request costs once the machine ran other work since the
last one, its code and data out of the caches. On this 2-core VM under load a ping's step
took about 7 us back to back and 130-150 us after a 2 ms sleep (issue 13: most of the ping
row's gap to lwIP, whose own ping grows 4 -> 21 us the same way).

--base DIR runs each row in child processes, this package and DIR/ustack (PYTHONPATH=DIR)
in turn, one round each at a time and the order swapped every round, so both see the same
machine load: the before/after of a change (DIR: /tmp/s12-base, a copy of main).

    python -m benchmarks.request_cost [--requests 20000] [--rounds 3] [--only tcp,udp,ping]
                                      [--gap MS] [--base DIR]"""
import argparse
import os
import re
import struct
import subprocess
import sys
import time

from ustack.hal import Driver

SMAC = b"\x02\x00\x00\x00\x00\x02"
CMAC = b"\x02\x00\x00\x00\x00\x01"
SIP = bytes((192, 0, 2, 2))
CIP = bytes((192, 0, 2, 1))
CPORT = 40000


def _sum(b):
    if len(b) & 1:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _frame(proto, l4):
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0,
                               CIP, SIP))
    struct.pack_into("!H", ip, 10, _sum(bytes(ip)))
    return SMAC + CMAC + b"\x08\x00" + bytes(ip) + l4


def _segment(seq, ack, flags, opts=b"", data=b""):
    hl = 20 + len(opts)
    h = bytearray(struct.pack("!HHIIBBHHH", CPORT, 7, seq, ack, (hl // 4) << 4, flags, 64240,
                              0, 0)) + opts + data
    struct.pack_into("!H", h, 16, _sum(CIP + SIP + struct.pack("!BBH", 0, 6, len(h)) + bytes(h)))
    return _frame(6, bytes(h))


class FeedDriver(Driver):
    """Hands the stack the frames in `rx` (popped from the end), one per poll while `gate`
    is set (a request-response client sends the next request after the answer); keeps
    what the stack sends in `tx`."""
    mac = SMAC
    mtu = 1500
    caps = 0

    def __init__(self):
        self.rx = []
        self.tx = []
        self.gate = False
        self.open = True

    def recv_into(self, buf):
        if not self.rx or (self.gate and not self.open):
            return 0
        self.open = False
        f = self.rx.pop()
        buf[0:len(f)] = f
        return len(f)

    def send(self, buf, n):
        self.tx.append(bytes(buf[0:n]))
        return True


def _server():
    from ustack.core.stack import Stack
    from ustack.ports.cpython.runner import Runner
    from ustack.ports.cpython import services
    st = Stack()
    d = FeedDriver()
    st.add_interface("eth0", d, ip="192.0.2.2/24").arp.add_static(CIP, CMAC)
    r = Runner(st)
    services.start(r, ["echo"])   # UDP and TCP echo on port 7, as `ustack up --serve echo`
    r.step()
    d.tx.clear()
    return r, d


GAP = [0.0]   # seconds slept before each request (--gap)


def _run(r, d, n, check):
    """n requests queued in d.rx, one per step: CPU seconds."""
    d.gate = True
    tx = d.tx
    step = r.step
    gap = GAP[0]
    sleep = time.sleep
    t = time.process_time()
    for i in range(n):
        if gap:
            sleep(gap)   # not CPU time: process_time counts none of it
        d.open = True
        step()
        if len(tx) != 1 or not check(i, tx[0]):
            raise SystemExit("request %d: answered by %r" % (i, tx))
        tx.pop()
    t = time.process_time() - t
    assert not d.rx
    return t


def tcp_echo(n):
    r, d = _server()
    ts = 5000
    cseq = 100000
    d.rx.append(_segment(cseq, 0, 0x02, struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" +
                         struct.pack("!BBII", 8, 10, ts, 0) + b"\x01\x03\x03\x07"))
    r.step()
    sa = d.tx.pop()
    sseq = struct.unpack_from("!I", sa, 38)[0] + 1
    o, end, tsecr = 54, 34 + ((sa[46] >> 4) << 2), 0
    while o < end and sa[o]:   # the SYN-ACK's timestamp, echoed back
        if sa[o] == 1:
            o += 1
            continue
        if sa[o] == 8:
            tsecr = struct.unpack_from("!I", sa, o + 2)[0]
        o += sa[o + 1]
    cseq += 1
    tsopt = b"\x01\x01" + struct.pack("!BBII", 8, 10, ts, tsecr)
    d.rx.append(_segment(cseq, sseq, 0x10, tsopt))
    r.step()
    assert not d.tx, "a pure ACK answered"
    msg = b"r" * 64
    d.rx = [_segment(cseq + 64 * i, sseq + 64 * i, 0x18,
                     b"\x01\x01" + struct.pack("!BBII", 8, 10, ts + 1 + i, tsecr), msg)
            for i in range(n)][::-1]

    def check(i, f):
        return f[-64:] == msg and struct.unpack_from("!I", f, 42)[0] == cseq + 64 * (i + 1)
    return _run(r, d, n, check)


def udp_echo(n):
    r, d = _server()
    msg = b"u" * 64
    d.rx = [_frame(17, struct.pack("!HHHH", CPORT, 7, 72, 0) + msg)] * n
    return _run(r, d, n, lambda i, f: f[-64:] == msg and f[34:38] == b"\x00\x07\x9c\x40")


def ping(n):
    r, d = _server()
    ic = bytearray(struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + bytes(56))
    struct.pack_into("!H", ic, 2, _sum(bytes(ic)))
    d.rx = [_frame(1, bytes(ic))] * n
    return _run(r, d, n, lambda i, f: f[34] == 0 and f[38:] == bytes(ic[4:]))


ROWS = {"tcp": ("TCP echo 64 B", tcp_echo), "udp": ("UDP echo 64 B", udp_echo),
        "ping": ("ping 56 B", ping)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="tcp,udp,ping")
    p.add_argument("--gap", type=float, default=0.0,
                   help="milliseconds to sleep before each request (cold caches)")
    p.add_argument("--base", default=None,
                   help="another build's directory (DIR/ustack): rounds alternate between "
                        "it and this package in child processes")
    a = p.parse_args(argv)
    if a.base is not None:
        return compare(a)
    GAP[0] = a.gap / 1000.0
    import ustack
    out = {}
    for k in a.only.split(","):
        label, fn = ROWS[k]
        out[k] = min(fn(a.requests) for _ in range(a.rounds)) * 1e6 / a.requests
        print("%s: %.2f us CPU per request (ustack %s, compiled=%s%s)" % (
            label, out[k], ustack.__file__.rsplit("/", 1)[0], ustack.compiled,
            ", %g ms before each" % a.gap if a.gap else ""))
    return out


def _child(k, a, base):
    """One round of row k in a child process: this package, or base's with PYTHONPATH."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if base:
        env["PYTHONPATH"] = os.path.abspath(base)
    cmd = [sys.executable, os.path.abspath(__file__), "--only", k, "--rounds", "1",
           "--requests", str(a.requests), "--gap", str(a.gap)]
    # run from / : neither checkout's directory on sys.path by accident
    r = subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True)
    m = re.search(r": ([0-9.]+) us CPU per request \(ustack ([^,\s]+)", r.stdout)
    if r.returncode or m is None:
        raise SystemExit("row %s%s failed: %s" % (k, " (base)" if base else "",
                                                 (r.stdout + r.stderr).strip()[-500:]))
    return float(m.group(1)), m.group(2)


def compare(a):
    """--base: best of --rounds for each build, rounds interleaved (order swapped each)."""
    out = {}
    for k in a.only.split(","):
        best = {"new": None, "base": None}
        where = {}
        for i in range(a.rounds):
            order = ("base", "new") if i & 1 else ("new", "base")
            for who in order:
                us, path = _child(k, a, a.base if who == "base" else None)
                where[who] = path
                if best[who] is None or us < best[who]:
                    best[who] = us
        out[k] = best
        print("%s: %.2f us CPU per request here (%s), %.2f base (%s): %.2fx" % (
            ROWS[k][0], best["new"], where["new"], best["base"], where["base"],
            best["base"] / best["new"]), flush=True)
    return out


if __name__ == "__main__":
    main()
