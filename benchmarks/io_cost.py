"""The CPython I/O path's own cost per frame (issue 13): what hal/tap.py, hal/tapsteer.py and
the runner's wait add around the system calls, with no stack and no kernel TAP - the TAP's
reader and writer on a datagram socket pair (one queue; a frame each way), the steering
program's mark of a frame sent (the flow hash and its stamp; needs bpf(2), as root), and the
runner's wait finding one descriptor readable. Nanoseconds per call, best of --rounds; run it
beside another build of the package (PYTHONPATH=DIR, DIR/ustack) for a before/after on the
same machine load:

    python -m ustack.benchmarks.io_cost [--calls 50000] [--rounds 5]
    PYTHONPATH=/tmp/s12-base python -m ustack.benchmarks.io_cost"""
import argparse
import os
import socket
import time

FRAME = bytearray(bytes.fromhex(
    "020000000002020000000001080045000054000140004001f6ccc0000201c0000202"
    "0800f7ff00000000") + bytes(56))   # an ICMP echo request, 98 bytes


def _best(fn, calls, rounds):
    best = None
    for _ in range(rounds):
        t = time.perf_counter()
        fn(calls)
        d = (time.perf_counter() - t) / calls
        best = d if best is None or d < best else best
    return best * 1e9


def tap_pair():
    """A one-queue Tap whose queue is one end of a datagram socket pair; the other end."""
    from ustack.hal.tap import Tap
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    t = Tap.__new__(Tap)
    t._queues([a.fileno()], b"\x02\0\0\0\0\x02", 1500)
    return t, a, b


def cost_send(calls, rounds):
    """Tap.send of a 98-byte frame (the write and the driver around it), the peer draining;
    the kernel's part (an AF_UNIX datagram) is most of it."""
    t, a, b = tap_pair()
    buf = bytearray(2048)

    def run(n):
        for i in range(n):
            t.send(FRAME, 98)
            if i & 31 == 31:
                try:
                    while b.recv_into(buf):
                        pass
                except BlockingIOError:
                    pass
    try:
        return _best(run, calls, rounds)
    finally:
        a.close()
        b.close()


def cost_read(calls, rounds):
    """A frame's read and the look that finds no second (recv_into twice: a request's read),
    less the peer's send of the frame (timed alone)."""
    t, a, b = tap_pair()
    buf = bytearray(1600)
    frame = bytes(FRAME)

    def both(n):
        for _ in range(n):
            b.send(frame)
            t.recv_into(buf)
            t.recv_into(buf)

    def peer(n):
        for i in range(n):
            b.send(frame)
            if i & 31 == 31:
                try:
                    while a.recv_into(buf):
                        pass
                except BlockingIOError:
                    pass

    try:
        return _best(both, calls, rounds) - _best(peer, calls, rounds)
    finally:
        a.close()
        b.close()


def cost_mark(calls, rounds):
    """Steering.mark of a frame sent (hal/tapsteer.py: flow hash, stamp)."""
    from ustack.hal import tapsteer
    try:
        st = tapsteer.Steering(8)
    except OSError as e:
        print("io_cost: no steering program (%s): mark not measured" % e)
        return None
    now = time.monotonic_ns()

    def run(n):
        for _ in range(n):
            st.mark(FRAME, 98, now)
    try:
        return _best(run, calls, rounds)
    finally:
        st.close()


def cost_wait(calls, rounds):
    """The runner's wait over nine descriptors when one is readable (no sleep)."""
    from ustack.ports.cpython import runner
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(9)]
    fds = [p[0].fileno() for p in pairs]
    pairs[3][1].send(b"x")
    try:
        waiter = getattr(runner, "tapio", None)
        if waiter is not None:   # this session's runner: hal/tapio's Waiter
            w = waiter.Waiter(fds)
            out = [0] * w.nfds

            def run(n):
                for _ in range(n):
                    w.wait(0.0, out)
        else:                    # before: select.epoll, a list of tuples a wait
            w, scale = runner._poller(fds)

            def run(n):
                for _ in range(n):
                    for fd, _ev in w.poll(0.0):
                        pass
        r = _best(run, calls, rounds)
        w.close()
        return r
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=50000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    import ustack
    where = "%s, compiled=%s" % (os.path.dirname(ustack.__file__), ustack.compiled)
    for name, fn in (("Tap.send, 98 B", cost_send), ("Tap read + empty look", cost_read),
                     ("Steering.mark", cost_mark), ("runner wait, 1 of 9 ready", cost_wait)):
        ns = fn(a.calls, a.rounds)
        if ns is not None:
            print("%s: %.0f ns (%s)" % (name, ns, where))


if __name__ == "__main__":
    main()
