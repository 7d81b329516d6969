"""ustack main.py: start the stack from this board's config.

`invoke mpy --board B` writes board_cfg.py (the board's constants: DRIVER, BUS, PINS,
FEATURES, CONFIG sizes, IP/MAC defaults) next to this file and the compiled modules under
lib/; `invoke deploy --board B --port P` copies all of it to the board and runs it. On the
unix port, `ustack up --runtime micropython` runs this file with `--settings FILE` (the
runtime's flags as JSON) after the board's values.
"""
import sys

try:
    _here = __file__.rpartition("/")[0]
except NameError:
    _here = ""
for _p in ((_here + "/lib") if _here else "lib", "lib", "/lib"):
    if _p not in sys.path:
        sys.path.append(_p)

try:
    import board_cfg
except ImportError:
    board_cfg = None

from ustack.ports.micropython import app

app.main(board_cfg, sys.argv[1:] if hasattr(sys, "argv") else [])
