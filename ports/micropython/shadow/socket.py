"""`import socket` on MicroPython over ustack (ports/micropython/usock.py)."""
from ustack.ports.micropython.usock import *  # noqa: F401,F403
from ustack.ports.micropython.usock import install

install()  # `usocket` too: an alias MicroPython resolves before the path
