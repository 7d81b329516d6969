"""ustack as a router between two Linux hosts, as the forwarding tests and the forwarding
benchmark build it: `ustack up` in namespace A (A's kernel is host A on ustk0) with one more
link, the TAP ustk1, whose kernel end moves into namespace B (host B). The caller names the
stack's flags and the commands that give B its addresses and routes and A its routes."""
from contextlib import contextmanager

from tests.netns import Netns, StackProc


@contextmanager
def stack_between(tag, flags, b_cmds=(), a_cmds=(), a_before=(), runtime=None):
    """Yields (a, b, stack). a_before: commands in A before the stack starts (sysctls);
    b_cmds: in B once ustk1 is there; a_cmds: in A after that. Every command must succeed.
    The stack is stopped (if still running) and both namespaces deleted afterwards."""
    a = Netns(tag + "a")
    b = Netns(tag + "b")
    stack = None
    try:
        for cmd in a_before:
            a.run(cmd, check=True)
        stack = StackProc(a, *flags, runtime=runtime)
        a.run(["ip", "link", "set", "ustk1", "netns", b.name], check=True)
        for cmd in b_cmds:
            b.run(cmd, check=True)
        for cmd in a_cmds:
            a.run(cmd, check=True)
        yield a, b, stack
    finally:
        if stack is not None and stack.p.poll() is None:
            stack.stop()
        b.close()
        a.close()
