"""Built-in services for `ustack up --serve`: echo (RFC 862) and discard (RFC 863) over UDP,
and over TCP when the core has it: echo, discard, chargen (RFC 864) and http.

UDP services are event-driven hooks run by the driver thread after each poll (no threads):
they drain their non-blocking sockets and answer in place.
"""
from ustack.core import socket as so

PORTS = {"echo": 7, "discard": 9, "chargen": 19, "http": 80}


def bound(sock, family, port):
    """sock bound to every address of its family at port; an IPv6 one only IPv6, beside the
    IPv4 one on the same port (as on Linux)."""
    sock.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
    if family == so.AF_INET6:
        sock.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
    sock.bind(("", port))
    return sock


class UdpEcho:
    def __init__(self, stack, port=7, reply=True, family=so.AF_INET):
        self.sock = bound(stack.socket(family, so.SOCK_DGRAM), family, port)
        self.sock.setblocking(False)
        self.reply = reply
        self.count = 0

    def __call__(self):
        s = self.sock
        while s.qlen:
            # recvfrom + sendto in one core call (issue 13: no address string made and
            # parsed back per datagram)
            s.echo(self.reply)
            self.count += 1


def start(runner, names, http_root=None):
    """Start the named services; returns a list of what started."""
    started = []
    st = runner.stack
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in PORTS:
            raise ValueError("unknown service %r (known: %s)" % (name, ", ".join(sorted(PORTS))))
        with runner.lock:
            if name in ("echo", "discard"):
                # called through the runner's one hook for the services, only while the
                # socket holds datagrams (tcp_services.ServiceHooks)
                from ustack.ports.cpython.tcp_services import hooks_of
                hooks = hooks_of(runner)
                hooks.udp.append(UdpEcho(st, PORTS[name], reply=(name == "echo")))
                started.append("udp/" + name)
                if st.ipv6 is not None:   # the same service on IPv6 (its own socket)
                    hooks.udp.append(UdpEcho(st, PORTS[name], name == "echo", so.AF_INET6))
        if st.tcp is not None:
            from ustack.ports.cpython import tcp_services
            started.extend(tcp_services.start(runner, name, PORTS[name], http_root))
    return started
