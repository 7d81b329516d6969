"""`micropython mpyrun.py prog.py args...`: run prog.py with ustack's facades installed first
(usock.install: `import socket` / `import usocket` give ustack's socket module whatever the
order of the program's imports; `import network` gives netif.py through the shadow folder on
MICROPYPATH). What `python -m ustack.ports.micropython.runtime run` starts.

The program runs as __main__ with sys.argv[0] = its path and its folder first on sys.path,
as `micropython prog.py` would run it.
"""
import sys

from ustack.ports.micropython import usock

usock.install()
del sys.argv[0]
_path = sys.argv[0]
_dir = _path.rsplit("/", 1)[0] if "/" in _path else ""
sys.path[0] = _dir
with open(_path) as _f:
    _src = _f.read()
# compiled under its own name: tracebacks point into the program, not into this file
exec(compile(_src, _path, "exec"), {"__name__": "__main__", "__file__": _path})
