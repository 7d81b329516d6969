"""The namespace helpers' children: a program the tests (and `invoke bench`) end with SIGINT
must see SIGINT even when the suite itself was started with it ignored, as a background job
of a non-interactive shell is (the bench's uiperf3 row was lost that way: `ustack run`
ignored the SIGINT meant to end it)."""
import signal
import sys

from tests.conftest import needs_netns
from tests.netns import Netns

pytestmark = [needs_netns]


def test_a_child_in_a_namespace_gets_sigint_back_at_its_default():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    ns = Netns("sig")
    try:
        p = ns.popen([sys.executable, "-c",
                      "import signal; print(signal.getsignal(signal.SIGINT))"])
        out, _ = p.communicate(timeout=30)
    finally:
        signal.signal(signal.SIGINT, old)
        ns.close()
    assert "default_int_handler" in out, out
