"""core/socket.py Slots (issue 13): Stack.sockets and TCP.conns in creation order with O(1)
removal; the work per close at scale is tests/ports/test_tcp_port_scale.py's."""
from ustack.core import socket as so


class _O:
    def __init__(self, i):
        self.i = i
        self.slot = -1


def test_slots_keep_the_order_through_removals_and_closing_up():
    s = so.Slots()
    objs = [_O(i) for i in range(100)]
    for o in objs:
        s.append(o)
    gone = [o for o in objs if o.i % 3]   # two of three leave: the holes get closed up
    for o in gone:
        s.remove(o)
        assert o not in s and o.slot == -1
    left = [o for o in objs if not o.i % 3]
    assert len(s) == len(left) and list(s) == left and s == left
    assert len(s.slots) <= 2 * len(left) + 16   # closed up, in place
    assert all(o in s and s.slots[o.slot] is o for o in left)
    assert s[0] is left[0] and s[-1] is left[-1] and s[5] is left[5]
    s.append(objs[1])
    assert list(s)[-1] is objs[1] and len(s) == len(left) + 1
    for o in list(s):
        s.remove(o)
    assert len(s) == 0 and s == [] and not list(s)
