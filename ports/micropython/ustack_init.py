"""ustack on MicroPython: the package root that builds and staging trees install as
ustack/__init__.py (the repository's own __init__.py is CPython-only: os, importlib)."""
compiled = False
__version__ = "0.1.0"
