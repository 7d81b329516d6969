"""Spurious retransmissions against the Linux kernel: ustack sends to Linux over a TAP in a
throwaway netns while hal/impair.py reorders ~2 % of the frames ustack sends (held back 2 ms:
on a sub-millisecond path that is dozens of segments, so Linux's duplicate ACKs start a fast
retransmit the original then overtakes). Linux reports each needless retransmission with a
D-SACK (RFC 2883); ustack finds the recoveries spurious (RFC 3708, and RFC 3522 when the
ACK's timestamp tells first) and undoes their reductions. The body arrives intact."""
import hashlib
import json
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, HOST_IP, STACK_IP

pytestmark = [needs_netns]

TAP = "ustk0"
SIZE = 8 * 1000 * 1000

# ustack's side, in the namespace: a stack on the persistent TAP behind Impair, sending
# SIZE bytes of a pattern to the first connection on port 80
SENDER = r"""
import json, sys
from ustack.core.stack import Stack
from ustack.hal.tap import Tap
from ustack.hal.impair import Impair
cfg = json.loads(sys.argv[1])
reorder = cfg.pop("reorder")
st = Stack(cfg)
drv = Impair(Tap(%(tap)r), reorder=reorder, reorder_ms=2, seed=7, clock=st.clock)
st.add_interface("eth0", drv, ip=%(ip)r, prefix=24)
srv = st.socket()
srv.bind(("", 80))
srv.listen(1)
srv.setblocking(False)
print("listening", flush=True)
box = []
def acc():
    try:
        box.append(srv.accept()[0])
        return True
    except OSError:
        return False
assert st.run_until(acc, 30)
c = box[0]
c.setblocking(False)
data = (bytes(range(251)) * (%(size)d // 251 + 1))[:%(size)d]
mv = memoryview(data)
sent = [0]
def push():
    try:
        sent[0] += c.send(mv[sent[0]:sent[0] + 65536])
    except OSError:
        pass
    return sent[0] >= len(data)
assert st.run_until(push, 200)
c.close()
st.run_until(lambda: not st.tcp.closing(), 20)   # our FIN acknowledged (TIME-WAIT is ours)
print("counters " + json.dumps(dict(st.tcp.stats.nonzero())), flush=True)
st.close()
"""

RECEIVER = r"""
import hashlib, socket
s = socket.create_connection((%(ip)r, 80), timeout=60)
h = hashlib.sha256()
n = 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), flush=True)
"""


@pytest.fixture
def ns():
    n = Netns("undo")
    n.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
    n.run(["ip", "addr", "add", HOST_IP + "/24", "dev", TAP], check=True)
    n.run(["ip", "link", "set", TAP, "up"], check=True)
    yield n
    n.close()


def send_to_linux(ns, cfg, size=SIZE):
    """ustack sends `size` bytes to a Linux receiver; the body checked, ustack's TCP
    counters."""
    p = ns.popen([sys.executable, "-c", SENDER % {"tap": TAP, "ip": STACK_IP, "size": size},
                  json.dumps(cfg)])
    line = p.stdout.readline()
    assert line.startswith("listening"), line + p.stdout.read()
    r = ns.python(RECEIVER % {"ip": STACK_IP}, timeout=240)
    assert r.returncode == 0, r.stderr
    n, digest = r.stdout.split()
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    assert int(n) == size and digest == hashlib.sha256(data).hexdigest()
    out, _ = p.communicate(timeout=60)
    lines = [x for x in out.splitlines() if x.startswith("counters ")]
    assert lines, out
    return json.loads(lines[0][len("counters "):])


@pytest.mark.parametrize("ts", [True, False], ids=["timestamps", "dsack-only"])
def test_linux_dsacks_turn_reordering_recoveries_into_undos(ns, ts):
    c = send_to_linux(ns, {"TCP_SND_BUF": 262144, "TCP_TIMESTAMPS": ts, "reorder": 0.02})
    print("ts=%s: %s" % (ts, {k: v for k, v in c.items() if "spurious" in k or "undo" in k or
                              "dsack" in k or "retrans" in k or "recover" in k or "rto" in k}))
    assert c.get("rx_dsack", 0) > 0                     # Linux reported the duplicates
    if ts:
        # With timestamps Eifel (RFC 3522 3.2) decides at the first ACK after a
        # retransmission: one echoing the retransmission's TSval (it reached Linux before the
        # held-back original) ends the episode as a real loss; only one carrying the D-SACK
        # leaves it to RFC 3708. Which comes first is Linux's ACK timing: under load none of a
        # run's recoveries may be found spurious (2 of 3 CI runs; 1 in 24 idle, the session
        # 12 start's code alike), so only an undo without a finding is wrong here
        assert c.get("cc_undos", 0) <= c.get("spurious_recoveries", 0) + \
            c.get("spurious_rtos", 0) + c.get("tlp_recoveries", 0)
    else:
        # no timestamps: D-SACK is the only witness, and it always comes
        assert c.get("spurious_recoveries", 0) > 0 and c.get("cc_undos", 0) > 0
        assert c.get("spurious_dsack", 0) == c.get("spurious_recoveries", 0) + \
            c.get("spurious_rtos", 0)                   # D-SACK was the only witness
    assert c.get("cc_undos", 0) <= c.get("fast_retransmits", 0) + c.get("rto_expired", 0) + \
        c.get("tlp_recoveries", 0)


def test_real_losses_are_never_undone(ns):
    """Linux's input drops ~2 % of ustack's data segments (nftables, no reordering): every
    fast retransmission repairs a loss, no ACK echoes an original's TSval for it and no D-SACK
    reports it - no recovery is found spurious. A timeout can be (the ACK of an earlier
    retransmission still on its way when the timer fired, RFC 3522): only those are undone."""
    from tests.interop.test_linux_sack import drop_data_segments, dropped
    drop_data_segments(ns, 2)
    c = send_to_linux(ns, {"TCP_SND_BUF": 262144, "reorder": 0.0})
    print({k: v for k, v in c.items() if "spurious" in k or "undo" in k or "dsack" in k or
           "retrans" in k or "recover" in k or "rto" in k})
    assert dropped(ns) > 50 and c.get("fast_retransmits", 0) > 0
    assert c.get("spurious_recoveries", 0) == 0
    assert c.get("cc_undos", 0) == c.get("spurious_rtos", 0) <= c.get("rto_expired", 0)
