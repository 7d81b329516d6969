"""Issue 13, connections at scale: a connect, a close and a bind do the same work beside 100
connections and sockets as beside 2000 - the connection table's removal, the free-port checks
and the bound sockets' look-up visit a port's own entries, not every connection and socket.

Work is counted, not timed: the lines the core runs (sys.settrace) and the comparisons list
scans make (__eq__ on TCBs and sockets: list.remove and `in` call it per entry they pass).
That needs the pure-Python core, so the count runs in a child with USTACK_PURE=1 whichever
core this run uses (the compiled one is the same .py)."""
import json
import os
import subprocess
import sys

from ustack.core import socket as so

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def measure(n):
    """{op: work} for one connect, close (abortive and orderly), bind to port 0 and bind to
    a given port on a stack already holding n connections (n // 2 of them with sockets
    bound to ports of their own)."""
    import ustack
    assert not ustack.compiled
    from ustack.core.tcp import tcb as T
    from ustack.core.tcp.socket import TcpSocket
    from tests.twostack import Bench, IP_B
    eq = [0]

    def counted_eq(self, o):
        eq[0] += 1
        return self is o

    class CountedTCB(T.TCB):
        __eq__ = counted_eq
        __hash__ = object.__hash__

    T.TCB = CountedTCB
    TcpSocket.__eq__ = counted_eq
    TcpSocket.__hash__ = object.__hash__
    core = os.path.dirname(ustack.__file__) + os.sep + "core"
    lines = [0]

    def local(frame, event, arg):
        if event == "line":
            lines[0] += 1
        return local

    def tracer(frame, event, arg):
        if frame.f_code.co_filename.startswith(core):
            return local
        return None

    def work(f):
        eq[0] = lines[0] = 0
        sys.settrace(tracer)
        try:
            f()
        finally:
            sys.settrace(None)
        return lines[0] + eq[0]

    cfg = {"TCP_MAX_CONNS": 4096, "SOCKETS": 4096}
    b = Bench(config=cfg)
    ls = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 8080))
    ls.listen(8)
    ls.setblocking(False)
    a = b.a
    tcp = a.tcp
    lip = bytes([192, 0, 2, 10])
    for i in range(n):
        # connections no socket holds (closing ones, TIME-WAIT), and sockets holding ports
        # of their own, below the ephemeral range: a port search that meets a run of taken
        # ports walks it (RFC 6056), which is not the work counted here
        t = tcp.new_tcb(lip, 30000 + i, bytes([198, 51, 100, 1 + i % 200]), 1000 + i)
        t.state = T.TIME_WAIT
        t.t_conn = 1 << 40
        if i % 2:
            s = a.socket(so.AF_INET, so.SOCK_STREAM)
            s.bind(("", 20000 + i))
    b.pump(2)
    out = {}
    for how in ("abort", "fin"):
        c = a.socket(so.AF_INET, so.SOCK_STREAM)
        c.setblocking(False)
        out["connect_" + how] = work(lambda: c.connect_ex((IP_B, 8080)))
        b.pump(10)
        conn, _ = ls.accept()
        if how == "abort":
            c.setsockopt(so.SOL_SOCKET, so.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        out["close_" + how] = work(c.close)
        conn.close()
        b.pump(10)
    u = a.socket(so.AF_INET, so.SOCK_STREAM)
    out["bind_any_port"] = work(lambda: u.bind(("", 0)))
    v = a.socket(so.AF_INET, so.SOCK_STREAM)
    out["bind_port"] = work(lambda: v.bind(("", 7000)))
    w = a.socket(so.AF_INET, so.SOCK_STREAM)
    out["close_bound"] = work(w.close)
    return out


def _child(n):
    env = dict(os.environ, USTACK_PURE="1")
    code = "import json; from tests.ports.test_tcp_port_scale import measure; " \
           "print(json.dumps(measure(%d)))" % n
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_connect_close_and_bind_do_not_visit_every_connection_and_socket():
    small = _child(100)
    big = _child(2000)
    for op in small:
        # the same work, but for longer hash chains (a few entries more at 20x the load)
        assert big[op] <= small[op] + 40, (op, small, big)
        assert small[op] > 0, (op, small)

