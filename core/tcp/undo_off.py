"""undo.py's interface for a board built without it (FEATURES lacks "undo",
ports/micropython/build.py): no loss episode is ever recorded, so none is found spurious and
no congestion response is taken back (RFC 3522 and RFC 3708 detection are optional)."""
from ustack.core.compat import const

NONE = const(0)
FAST = const(1)
TLP = const(2)
RTO = const(3)


def start(tcp, tcb, kind, sent=0):
    pass


def reduced(tcb):
    pass


def end(tcb):
    pass


def dsack(tcb, s, e):
    pass


def eifel(tcp, tcb, acked, rtt, dsacked):
    return False


def tlp_spurious(tcp, tcb):
    return False


def check_dsack(tcp, tcb, acked):
    return False
