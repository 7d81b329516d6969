"""The packet filter allocates nothing per packet: two MicroPython stacks with a stateful rule
set (every packet matched against rules and looked up in conntrack) run the heap-locked UDP,
TCP and ping bench (tests/micropython/test_heap_lock.py's script)."""
import json
import os

from tests.micropython.mpyhelp import needs_micropython, run_mpy, HERE

pytestmark = [needs_micropython]

SCRIPT = os.path.join(HERE, "mp_scripts", "twostack_heaplock.py")
# (kept short: the MicroPython unix port dies on a command-line argument of 256 bytes or more)
RULES = ["policy input drop", "input drop ct invalid", "input accept ct established,related",
         "input icmp limit 9999/second burst 999 accept", "input accept tcp flags syn/syn,ack",
         "input accept udp dport 7", "output drop udp dport 9"]


def test_a_stateful_rule_set_runs_heap_locked(mpy_lib):
    cfg = {"FILTER": RULES}
    assert len(json.dumps(cfg)) < 256
    r = run_mpy([SCRIPT, mpy_lib, "300", str(128 << 10), json.dumps(cfg)], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["failure"] is None, res
    assert res["udp_echoes"] == 300 and res["pings"] == 300
    assert res["tcp_bytes_echoed"] == 128 << 10 and res["tcp_mismatches"] == 0
    pk = res["filter_pkts"]  # in list order: the rules above, input first then output
    assert pk[1] >= 300 and pk[2] >= 320          # established (UDP, TCP); the pings
    assert res["filter_ct_used"] >= 2             # the UDP and TCP flows at least
