"""PyTCP 2.7.x (PyPI) as a benchmark peer: the same services `ustack up --serve` offers.

    build/pytcp-venv/bin/python -O benchmarks/pytcp_peer.py TAP IP/PREFIX

Run by that venv's python (benchmarks/peers.py builds it), never by ustack's: PyTCP is GPL
and a separate program here. It opens the TAP itself (TUNSETIFF, which creates it), answers ping
and ARP natively, and serves through its own socket API, one thread per connection as
PyTCP's examples do: UDP echo (7), TCP echo (7), discard (9), chargen (19), HTTP (80: the
fixed page of benchmarks/linux_peer.py per request, keep-alive). `-O` drops
PyTCP's `__debug__ and log(...)` calls; the log channels are emptied too.

Start-up is shortened (IPv4 only, ARP probes 50 ms apart): see main(). PyTCP's TCP send()
appends to an unbounded buffer and returns at once, so chargen waits while more than
CHARGEN_QUEUE bytes are queued (else it would queue the whole run in RAM).
"""
import sys
import threading
import time

CHARGEN_QUEUE = 256 * 1024
PAGE = b"<html><body><h1>ustack</h1><p>a TCP/IP stack in Python</p></body></html>\n"
REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
         % len(PAGE)) + PAGE
LINES = b"".join((bytes(range(32, 127)) * 2)[i:i + 72] + b"\r\n" for i in range(95))


def main(tap, ip):
    from pytcp import config
    config.LOG_CHANEL = set()
    config.LOG_DEBUG = False
    from pytcp import TcpIpStack
    from pytcp.lib import socket as psock
    from pytcp.subsystems import packet_handler
    st = TcpIpStack(interface=tap, mac_address="02:00:00:00:00:02", ip4_address=ip)
    # start-up only, nothing measured: IPv4 alone (no IPv6 DAD and router solicitation, 1 s
    # each), and the three RFC 5227 ARP probes 50 ms apart instead of 1-2 s
    config.IP6_SUPPORT = False
    packet_handler.random = type("ProbeGap", (), {"uniform": staticmethod(lambda a, b: 0.05)})
    st.start()

    def udp_echo():
        s = psock.socket(psock.AF_INET4, psock.SOCK_DGRAM)
        s.bind(("0.0.0.0", 7))
        while True:
            d, a = s.recvfrom()
            s.sendto(d, a)

    def echo(c):
        while True:
            d = c.recv()
            if not d:
                return
            c.send(d)

    def discard(c):
        while c.recv():
            pass

    def chargen(c):
        block = LINES * 16
        sess = c.tcp_session
        while True:
            while len(sess._tx_buffer) > CHARGEN_QUEUE:
                time.sleep(0.0005)
            c.send(block)

    def http(c):
        pending = b""
        while True:
            d = c.recv()
            if not d:
                return
            pending += d
            n = pending.count(b"\r\n\r\n")
            if n:
                pending = pending[pending.rindex(b"\r\n\r\n") + 4:]
                c.send(REPLY * n)

    def serve(port, handler):
        ls = psock.socket(psock.AF_INET4, psock.SOCK_STREAM)
        ls.bind(("0.0.0.0", port))
        ls.listen()
        while True:
            c, _ = ls.accept()
            threading.Thread(target=run, args=(handler, c), daemon=True).start()

    def run(h, c):
        try:
            h(c)
        except Exception:  # noqa: BLE001 - the peer closed; PyTCP raises its own kinds
            pass
        finally:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass

    threading.Thread(target=udp_echo, daemon=True).start()
    for port, h in ((7, echo), (9, discard), (19, chargen), (80, http)):
        threading.Thread(target=serve, args=(port, h), daemon=True).start()
    time.sleep(0.2)
    print("ready pytcp", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
