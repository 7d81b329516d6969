"""Board configs: one plain-data module per board (boards/<name>.py).

Names a board module may define (all optional except DRIVER):
    NAME DESCRIPTION URL MCU ARCH (mpy-cross -march) RAM HEAP HEAPSIZE FLASH
    DRIVER (tap, streamlink, enc28j60, w5500, ...) BUS PINS LINK TAP
    IP GATEWAY MAC HOST_IP FEATURES SERVE DNS (name servers, e.g. ["192.0.2.1"])
    TCP_PREALLOC  connections whose TCP rings the app allocates at start (ports/micropython/app.py)
    MPY_OPT  mpy-cross -O level for `invoke mpy` (3: smaller code, no line numbers)
    CONFIG   overrides of ustack.core.config.DEFAULTS (unknown keys are rejected)
"""

KEYS = ("NAME", "DESCRIPTION", "URL", "MCU", "ARCH", "RAM", "HEAP", "HEAPSIZE", "FLASH",
        "DRIVER", "BUS", "PINS", "LINK", "TAP", "IP", "GATEWAY", "MAC", "HOST_IP",
        "FEATURES", "SERVE", "CONFIG", "DNS", "TCP_PREALLOC", "MPY_OPT")


def load(name):
    """The board module boards/<name>.py (ImportError names the known boards)."""
    if not name or "." in name or "/" in name:
        raise ImportError("bad board name %r" % (name,))
    try:
        mod = __import__("ustack.boards." + name, None, None, ["NAME"])
    except ImportError as e:
        raise ImportError("unknown board %r (%s); known: %s" % (name, e, ", ".join(names())))
    return mod


def names():
    """Every board config in this folder."""
    import os
    here = os.path.dirname(__file__)
    return sorted(f[:-3] for f in os.listdir(here) if f.endswith(".py") and not f.startswith("_"))


def as_dict(board):
    """The board's config names and values (a module or a dict)."""
    if isinstance(board, dict):
        return dict(board)
    return dict((k, getattr(board, k)) for k in KEYS if hasattr(board, k))
