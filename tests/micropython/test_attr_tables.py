"""MicroPython keeps an instance's attributes in an open-addressing table whose sizes step
through 17, 23, 29, 37, 47, 59, 73, 97, 127, ... and grows it only when an insert finds no
free slot, so an object with exactly that many attributes has a full table: every lookup of
a name it doesn't hold - each method call on it - probes all of its slots before the class.
The TCP object at 97 attributes made the core's unit tests 25 % slower under MicroPython
(test_tcp_small_ints: 46 -> 58 s; a method call 0.48 us instead of 0.14). The objects every
segment goes through must not sit at a table size."""
import subprocess

from tests.micropython.mpyhelp import MPY, needs_micropython, stage_lib

FULL = (17, 23, 29, 37, 47, 59, 73, 97, 127, 167, 223)

SCRIPT = r"""
import sys
sys.path.insert(0, %r)
from ustack.core.stack import Stack
from ustack.core import socket as so
s = Stack({})
objs = [("Stack", s), ("TCP", s.tcp), ("UDP", s.udp), ("IPv4", s.ip), ("ICMP", s.icmp)]
t = s.socket(so.AF_INET, so.SOCK_STREAM)
objs.append(("TcpSocket", t))
from ustack.core.tcp.tcb import TCB
objs.append(("TCB", TCB()))
for name, o in objs:
    if o is not None:
        print(name, len(o.__dict__))
"""


@needs_micropython
def test_per_segment_objects_do_not_fill_their_attribute_tables(tmp_path):
    lib = stage_lib(str(tmp_path / "lib"))
    script = tmp_path / "count.py"
    script.write_text(SCRIPT % lib)
    r = subprocess.run([MPY, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = dict((ln.split()[0], int(ln.split()[1])) for ln in r.stdout.split("\n") if ln)
    assert {"Stack", "TCP", "UDP", "IPv4", "TcpSocket", "TCB"} <= set(counts), counts
    full = {k: v for k, v in counts.items() if v in FULL}
    assert not full, full
