"""Drivers ("links"): every one implements the small Driver interface.

    mac: bytes            6 bytes (b"" for L3 links such as SLIP)
    mtu: int              largest IP packet the link carries
    recv_into(buf) -> int non-blocking; copies one whole frame to buf[0:n]; 0 = none waiting
    send(buf, n) -> bool  the first n bytes of buf are one frame; False = busy (frame dropped)
    poll_obj()            something select/poll can wait on, or None
    service()             link state, interrupts, chip errata; cheap; called every poll
    link_up() -> bool
    close()

Explicit lengths instead of slices: on MicroPython a memoryview slice allocates.
"""


class Driver:
    """The interface's defaults for a link with nothing to wait on or service and that is
    always up: subclasses give mac, mtu, recv_into and send (test links, in-memory wires)."""

    def poll_obj(self):
        return None

    def service(self):
        pass

    def link_up(self):
        return True

    def close(self):
        pass
