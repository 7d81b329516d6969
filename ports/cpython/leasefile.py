"""`--dhcp-lease-file PATH` on CPython: the checks before anything starts; the file itself is
ports/micropython/leasefile.py (the same code runs on boards, setting DHCP_LEASE_FILE)."""
import os

from ustack.ports.micropython.leasefile import load, save, follow  # noqa: F401 - re-exported


def check(path):
    """ValueError naming what is wrong with PATH, before anything is started."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ValueError("directory %s does not exist" % d)
    if os.path.isdir(path):
        raise ValueError("is a directory")
    if not os.access(d, os.W_OK):
        raise ValueError("directory %s is not writable" % d)
