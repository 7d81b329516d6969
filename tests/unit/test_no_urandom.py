"""A port without os.urandom (MicroPython's WebAssembly port; some boards) still builds a
stack: the RFC 6528 ISN key falls back to the stack's own random numbers and its clock."""
from ustack.core.stack import Stack
from ustack.core.tcp import proto


def _no_urandom(n):
    return None


def test_a_stack_builds_and_keys_its_isns_without_urandom():
    saved = proto.urandom
    proto.urandom = _no_urandom
    try:
        a = Stack()
        b = Stack()
    finally:
        proto.urandom = saved
    assert a.tcp is not None and b.tcp is not None
    assert len(a.tcp.key) == 4
    # RFC 6528 3: the secret is not a constant - two stacks seeded apart key apart
    a.seed(1)
    b.seed(2)
    proto.urandom = _no_urandom
    try:
        a.tcp._secret(a)
        b.tcp._secret(b)
    finally:
        proto.urandom = saved
    assert a.tcp.key != b.tcp.key
