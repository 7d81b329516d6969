"""`ustack run` and `ustack.patch()`: the program's last FIN still arrives when the path loses
it (issue 12's impaired-path stall). The program's stack lives in its process, so when the program ends
its connections still closing - the FIN (and any data before it) not yet acknowledged - must
be carried on, as a kernel carries on a closed socket after its process exits; the stack
used to stop at once, and a lost FIN was never resent: the Linux peer waited for the end of
the stream for ever (tests/interop/test_impaired_path.py's 60 s timeout in CI).

nftables in the namespace drops the first FIN ustack sends on each connection (a quota rule
per port), so the only way the peer sees its end of stream is a retransmission."""
import re
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import HOST_IP, STACK_IP, Netns, ProgramRun

pytestmark = [needs_netns]

N = 300 * 1000  # more than the send buffer: data is still queued when close() returns

# a Linux peer per port: reads until the end of the stream (or 20 s of silence), prints
# what it got; on "echo" ports it first sends 1000 bytes and shuts its side (so ustack's
# program closes second, from CLOSE-WAIT, as test_impaired_path's sink does)
PEER = r"""
import socket, sys
port, first = int(sys.argv[1]), sys.argv[2] == "first"
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("", port)); l.listen(1); print("listening", flush=True)
c, _ = l.accept(); c.settimeout(20); n = 0
if first:
    c.sendall(b"y" * 1000); c.shutdown(socket.SHUT_WR)
try:
    while True:
        d = c.recv(65536)
        if not d:
            print("EOF", n, flush=True); break
        n += len(d)
except OSError as e:
    print("NOEOF", n, type(e).__name__, flush=True)
"""

# the program over ustack: on A it sends N bytes and closes (FIN-WAIT-1 at exit, data still
# queued); on B it reads the peer's 1000 bytes to their end, sends N and closes (LAST-ACK);
# on C it sends N and leaves the socket open (process exit closes it)
PROG = r"""
import socket, sys
host = sys.argv[1]
a = socket.create_connection((host, 9301)); b = socket.create_connection((host, 9302))
c = socket.create_connection((host, 9303))
got = 0
while True:
    d = b.recv(4096)
    if not d:
        break
    got += len(d)
for s in (a, b, c):
    s.sendall(b"x" * %d)
a.close(); b.close()
print("closing", got, flush=True)
""" % N


@pytest.fixture
def ns():
    n = Netns("rexit")
    yield n
    n.close()


def drop_first_fin(ns, ports):
    """nft: the first FIN from ustack to each port is dropped, however much data it carries
    (the connection's conntrack mark notes it: a byte quota let a FIN riding on a full data
    segment through)."""
    rules = "table ip finloss {\n chain input {\n  type filter hook input priority 0;\n"
    for p in ports:
        rules += ("  ip saddr 192.0.2.2 tcp dport %d tcp flags & fin == fin ct mark != 7 "
                  "ct mark set 7 counter drop\n" % p)
    rules += " }\n}\n"
    r = ns.run(["nft", "-f", "-"], input=rules)
    assert r.returncode == 0, r.stderr


def fins_dropped(ns):
    r = ns.run(["nft", "list", "table", "ip", "finloss"])
    assert r.returncode == 0, r.stderr
    return [int(x) for x in re.findall(r"counter packets (\d+)", r.stdout)]


def peers(ns, ports):
    drop_first_fin(ns, ports)
    ps = [ns.popen([sys.executable, "-c", PEER, str(p), "first" if p == 9302 else "last"])
          for p in ports]
    for p in ps:
        assert "listening" in p.stdout.readline()
    return ps


def test_the_fin_lost_after_the_program_ended_is_resent(ns):
    ports = (9301, 9302, 9303)
    peers_ = peers(ns, ports)
    run = ProgramRun(ns, ["-c", PROG, HOST_IP], "closing 1000")
    out = run.output(timeout=60)
    got = [p.communicate(timeout=30)[0].strip() for p in peers_]
    # every peer has all the data and the end of the stream, though each first FIN was lost
    assert got == ["EOF %d" % N] * 3, (got, out)
    assert fins_dropped(ns) == [1, 1, 1], out
    assert run.p.returncode == 0, out
    c = [ln for ln in out.splitlines() if ln.startswith("counters ")]
    assert c and '"tcp.tx_retransmits": ' in c[0], out


# a plain CPython process whose `ustack.patch(...)` started the stack: at its exit too
PATCHED = r"""
import sys, ustack
ustack.patch(tap="ustk0", ip="%s/24", host_ip="%s/24")
import socket
a = socket.create_connection((sys.argv[1], 9301))
a.sendall(b"x" * %d)
a.close()
print("closing", flush=True)
""" % (STACK_IP, HOST_IP, N)


def test_the_fin_lost_at_a_patched_process_exit_is_resent(ns):
    peers_ = peers(ns, (9301,))
    r = ns.run([sys.executable, "-c", PATCHED, HOST_IP], timeout=60)
    assert r.returncode == 0 and "closing" in r.stdout, r.stdout + r.stderr
    got = peers_[0].communicate(timeout=30)[0].strip()
    assert got == "EOF %d" % N, (got, r.stdout + r.stderr)
    assert fins_dropped(ns) == [1]
