"""The MicroPython unix port on a PC: the stack runs under `micropython`, its link is a
StreamLink to the CPython TAP bridge (ports/cpython/bridge.py).

    ustack up --board unix --runtime micropython --tap ustack0 --host-ip 192.0.2.1/24
    invoke mpy --board unix          # x64 .mpy files the unix port imports natively
"""
NAME = "unix"
DESCRIPTION = "MicroPython unix port (x86-64) behind the CPython TAP bridge"
URL = "https://docs.micropython.org/en/latest/unix/quickref.html"
MCU = "x86_64"
ARCH = "x64"                 # mpy-cross -march
RAM = 2 * 1024 * 1024        # the unix port's default GC heap (-X heapsize=2M)
HEAPSIZE = "2M"              # what the runtime passes as -X heapsize=
FLASH = 0                    # a filesystem, no flash budget
DRIVER = "streamlink"        # ports/micropython/streamlink.py
LINK = "unix:/tmp/ustack.sock"
BUS = {}
PINS = {}
TAP = "ustack0"              # the bridge's TAP (the kernel side)
TAP_QUEUES = 16              # hal/tap.py: this stack reads a flood ~3x slower than CPython's,
                             # so the queue kept for its flows takes a smaller share of one
IP = "192.0.2.2/24"
GATEWAY = None
HOST_IP = None               # e.g. "192.0.2.1/24" to configure the kernel side of the TAP
MAC = "02:00:00:00:00:02"
FEATURES = ("tcp", "sack", "undo", "cubic", "raw", "asyncio")
SERVE = ""
CONFIG = {
    "PBUF_COUNT": 48,
    "RX_BATCH": 16,
    "TCP_MAX_CONNS": 8,
    "TCP_SND_BUF": 32768,
    "TCP_RCV_BUF": 32768,
}
