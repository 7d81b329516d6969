"""`import network` on MicroPython over ustack (ports/micropython/netif.py)."""
from ustack.ports.micropython.netif import *  # noqa: F401,F403
from ustack.ports.micropython.usock import install

install()  # `import socket` / `import usocket` give the facade too
