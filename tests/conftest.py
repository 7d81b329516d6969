import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _can_netns():
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and shutil.which("ip") is not None


def pytest_report_header(config):
    import ustack
    return "ustack compiled=%s (USTACK_PURE=%s), netns tests %s" % (
        ustack.compiled, os.environ.get("USTACK_PURE", ""), "enabled" if _can_netns() else "skipped")


needs_netns = pytest.mark.skipif(not _can_netns(),
                                 reason="needs root, /dev/net/tun and iproute2 for a throwaway netns")
