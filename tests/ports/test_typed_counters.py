"""Counters compiled (core/stats.pxd, issue 13): the counters every frame and segment moves are
C fields of one class for all groups, the rest instance attributes; what a group shows
(items, nonzero, reset: `ustack stats`, the exit counters) is its own names only, on both
cores."""
import os
import re

from tests.ports.test_typed_core import _run as run_core

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHECK = r"""
import ustack
from ustack.core.stack import Stack
from ustack.core.stats import Counters
from ustack.core.iface import IFACE_COUNTERS
from ustack.core.ipv4 import IP_COUNTERS
from ustack.core.tcp.proto import TCP_COUNTERS
from ustack.core.udp import UDP_COUNTERS
st = Stack()
groups = ((st.tcp.stats, TCP_COUNTERS), (st.ipv4.stats, IP_COUNTERS),
          (st.udp.stats, UDP_COUNTERS))
for c, names in groups:
    assert type(c) is Counters
    assert [n for n, _ in c.items()] == list(names), names
    if "rx_packets" in names:
        c.rx_packets += 3
    if "rx_segments" in names:
        c.rx_segments += 5
    if "rx_bad_csum" in names:
        c.rx_bad_csum += 1
# a hot name of another group is no counter of this one: never shown
assert "rx_segments" not in dict(st.ipv4.stats.items())
assert st.tcp.stats.nonzero() == [("rx_segments", 5), ("rx_bad_csum", 1)]
assert st.ipv4.stats.nonzero() == [("rx_packets", 3), ("rx_bad_csum", 1)]
st.tcp.stats.reset()
assert st.tcp.stats.nonzero() == [] and st.ipv4.stats.nonzero() != []
c = Counters(("rx_segments", "rx_listen_rst"))
if ustack.compiled:
    assert not (Counters.__flags__ & (1 << 9)), "Counters is not a cdef class"
    assert "rx_segments" not in c.__dict__ and "rx_listen_rst" in c.__dict__
    try:
        c.rx_segments = "1"
        raise SystemExit("rx_segments took a str: not a C integer")
    except TypeError:
        pass
print("ok")
"""


def _run(pure):
    return run_core(CHECK, pure)


def test_compiled_counters_show_each_group_its_own_names():
    r = _run(pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_pure_counters_show_the_same():
    r = _run(pure=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_every_c_field_is_a_counter_of_a_group():
    """A C field no group counts would be a misspelling the compiled core silently accepts."""
    from ustack.core.iface import IFACE_COUNTERS
    from ustack.core.ipv4 import IP_COUNTERS
    from ustack.core.tcp.proto import TCP_COUNTERS
    from ustack.core.udp import UDP_COUNTERS
    known = set(IFACE_COUNTERS) | set(IP_COUNTERS) | set(TCP_COUNTERS) | set(UDP_COUNTERS)
    fields = []
    for line in open(os.path.join(ROOT, "core", "stats.pxd")):
        m = re.match(r"^\s+cdef public long long (.*)$", line)
        if m:
            fields += [f.strip() for f in m.group(1).split(",")]
    assert len(fields) >= 15 and not set(fields) - known, set(fields) - known
