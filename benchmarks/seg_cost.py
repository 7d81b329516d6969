"""The stack's own CPU microseconds per bulk TCP segment (issue 13's no-offload floor rows),
no TAP and no kernel: `ustack up --serve discard,chargen`'s runner and services on a Stack
with pc_tap's settings, whose driver hands it frames a raw client built and keeps what it
sends, as a Linux peer over a TAP without offloads would see it.

recv: the client sends 1448-byte segments (timestamps on, as Linux's client does) to the
discard service in bursts of --burst frames per step, never beyond the window the stack's
last ACK offered; every ACK is checked (cumulative, never beyond what was sent) and the
last one must acknowledge every byte.
send: the chargen service sends; the driver offers software GSO (CAP_GSO_SOFT, as the TAP
with `--offload off`), so TCP builds segments of many MSS and core/offload.py cuts them into
frames; the client checks each frame's sequence number continues the last and ACKs every
second frame (Linux's quick ACKs), fed back with the next step.

CPU microseconds per 1448-byte segment of the runner's step (poll, services, hooks), the
client's work outside it; best of --rounds. Run it beside another build of the package
(PYTHONPATH=DIR, DIR/ustack) for a before/after on the same machine load.

    python -m benchmarks.seg_cost [--segments 20000] [--rounds 3] [--only recv,send]
                                  [--burst 32]"""
import argparse
import struct
import time

from tests import frames as F
from ustack.benchmarks.request_cost import FeedDriver, CIP, CMAC, _frame, _sum

MSS = 1448                  # a Linux peer's segment with timestamps on a 1500-byte link
CPORT = 40001
TS_OPT = b"\x01\x01\x08\x0a"


class GsoFeedDriver(FeedDriver):
    """FeedDriver offering software GSO (as the TAP with --offload off): the stack cuts its
    segments of many MSS into frames itself (core/offload.py)."""

    def __init__(self, caps):
        FeedDriver.__init__(self)
        self.caps = caps


def _server(caps=0):
    from ustack.boards import pc_tap
    from ustack.core.stack import Stack
    from ustack.ports.cpython.runner import Runner
    from ustack.ports.cpython import services
    st = Stack(dict(pc_tap.CONFIG))
    d = GsoFeedDriver(caps)
    st.add_interface("eth0", d, ip="192.0.2.2/24").arp.add_static(CIP, CMAC)
    r = Runner(st)
    services.start(r, ["discard", "chargen"])
    r.step()
    d.tx.clear()
    return r, d


def _seg(dport, seq, ack, flags, tsval, tsecr, data=b"", win=0xFFFF, syn=False, dsum=None):
    """A client segment's frame; dsum: data's one's complement sum (RFC 1071), when known."""
    if syn:
        opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + \
            struct.pack("!BBII", 8, 10, tsval, 0) + b"\x01\x03\x03\x07"
    else:
        opts = TS_OPT + struct.pack("!II", tsval, tsecr)
    hl = 20 + len(opts)
    h = bytearray(struct.pack("!HHIIBBHHH", CPORT, dport, seq, ack, (hl // 4) << 4, flags,
                              win, 0, 0)) + opts
    ph = CIP + bytes((192, 0, 2, 2)) + struct.pack("!BBH", 0, 6, hl + len(data)) + bytes(h)
    if dsum is None:
        c = _sum(ph + data)
    else:   # both even-length: the sums add (RFC 1071), then fold and complement
        s = ((~_sum(ph)) & 0xFFFF) + dsum
        s = (s & 0xFFFF) + (s >> 16)
        c = (~((s & 0xFFFF) + (s >> 16))) & 0xFFFF
    struct.pack_into("!H", h, 16, c)
    return _frame(6, bytes(h) + data)


def _ts_of(f):
    """TSval of a frame the stack sent (0 without one)."""
    return F.tsval(f) or 0


def _connect(r, d, dport):
    """The handshake: client ISN, server ISN + 1, the server's TSval."""
    cseq = 100000
    d.rx.append(_seg(dport, cseq, 0, 0x02, 5000, 0, syn=True))
    r.step()
    sa = d.tx.pop()
    sseq = struct.unpack_from("!I", sa, 38)[0] + 1
    tsecr = _ts_of(sa)
    cseq += 1
    d.rx.append(_seg(dport, cseq, sseq, 0x10, 5000, tsecr))
    return cseq, sseq, tsecr


def recv(n, burst):
    r, d = _server()
    cseq, sseq, tsecr = _connect(r, d, 9)
    r.step()
    d.tx.clear()
    payload = bytes((i * 7 + 3) & 0xFF for i in range(MSS))
    ps = (~_sum(payload)) & 0xFFFF
    frames = [_seg(9, (cseq + MSS * i) & 0xFFFFFFFF, sseq, 0x10, 5001 + i // 32, tsecr, payload,
                   dsum=ps) for i in range(n)]
    end = (cseq + MSS * n) & 0xFFFFFFFF
    acked = cseq
    wnd_end = cseq + 0xFFFF   # what the SYN-ACK offered (unscaled), at least
    i = 0
    t = 0.0
    step = r.step
    cpu = time.process_time
    while i < n:
        k = 0
        batch = []
        while i < n and k < burst and cseq + MSS * (i + 1) <= wnd_end:
            batch.append(frames[i])
            i += 1
            k += 1
        if not batch:
            raise SystemExit("recv: the window closed at segment %d" % i)
        d.rx = batch[::-1]
        t0 = cpu()
        step()
        t += cpu() - t0
        if d.rx:
            raise SystemExit("recv: %d frames left unread by a step" % len(d.rx))
        for f in d.tx:
            a = struct.unpack_from("!I", f, 42)[0]
            if (a - acked) & 0x80000000 or a > cseq + MSS * i:
                raise SystemExit("recv: ACK %d after %d (%d sent)" % (a, acked, MSS * i))
            acked = a
            wnd_end = a + (struct.unpack_from("!H", f, 48)[0] << 7)
        d.tx.clear()
    if acked != end:
        raise SystemExit("recv: last ACK %d, expected %d" % (acked, end))
    got = r.stack.tcp.stats.rx_data_bytes
    if got != MSS * n:
        raise SystemExit("recv: %d bytes delivered, expected %d" % (got, MSS * n))
    return t


def send(n, burst):
    from ustack.core.iface import CAP_GSO_SOFT
    r, d = _server(CAP_GSO_SOFT)
    cseq, sseq, tsecr = _connect(r, d, 19)
    nxt = sseq
    got = 0
    frames = 0
    t = 0.0
    step = r.step
    cpu = time.process_time
    ts = 5001
    while got < n:
        t0 = cpu()
        step()
        t += cpu() - t0
        if not d.tx:
            raise SystemExit("send: a step sent nothing (%d frames so far)" % got)
        acks = []
        for f in d.tx:
            s = struct.unpack_from("!I", f, 38)[0]
            if s != nxt:
                raise SystemExit("send: segment at %d, expected %d" % (s, nxt))
            ln = ((f[16] << 8) | f[17]) - 20 - ((f[46] >> 4) << 2)
            nxt = (nxt + ln) & 0xFFFFFFFF
            if ln:
                got += 1
                frames += 1
                if frames % 2 == 0:     # Linux ACKs every second full-sized segment
                    acks.append(_seg(19, cseq, nxt, 0x10, ts, _ts_of(f)))
        d.tx.clear()
        if frames % 2:
            frames += 1
            acks.append(_seg(19, cseq, nxt, 0x10, ts, tsecr))
        ts += 1
        d.rx = acks[::-1]
        d.open = True
    return t * n / got


ROWS = {"recv": ("TCP bulk, stack receives", recv), "send": ("TCP bulk, stack sends", send)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--segments", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--burst", type=int, default=32, help="frames the client hands per step")
    p.add_argument("--only", default="recv,send")
    a = p.parse_args(argv)
    import ustack
    out = {}
    for k in a.only.split(","):
        label, fn = ROWS[k]
        out[k] = min(fn(a.segments, a.burst) for _ in range(a.rounds)) * 1e6 / a.segments
        print("%s: %.2f us CPU per %d-byte segment (ustack %s, compiled=%s)" % (
            label, out[k], MSS, ustack.__file__.rsplit("/", 1)[0], ustack.compiled))
    return out


if __name__ == "__main__":
    main()
