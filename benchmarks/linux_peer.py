"""The Linux kernel's side of the benchmark over a veth pair: the services the other peers
offer, on kernel sockets in the server namespace.

UDP echo (7), TCP echo (7), discard (9), chargen (19) (benchmarks/peer_servers.py, a thread per
connection) and HTTP (80): one fixed page per request, keep-alive, the page ustack's http
service shows at / (the same fixed reply lwIP's and PyTCP's peers give).
"""
import socket
import threading

from benchmarks import peer_servers

PAGE = b"<html><body><h1>ustack</h1><p>a TCP/IP stack in Python</p></body></html>\n"
REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
         % len(PAGE)) + PAGE


def http(c):
    """One REPLY per request head (a blank line ends each); pipelined requests answered in
    order."""
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""
    while True:
        d = c.recv(65536)
        if not d:
            return
        pending += d
        n = pending.count(b"\r\n\r\n")
        if n:
            pending = pending[pending.rindex(b"\r\n\r\n") + 4:]
            c.sendall(REPLY * n)


def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 7))
    while True:
        d, a = s.recvfrom(65536)
        s.sendto(d, a)


if __name__ == "__main__":
    peer_servers.serve(7, peer_servers.echo)
    peer_servers.serve(9, peer_servers.discard)
    peer_servers.serve(19, peer_servers.chargen)
    peer_servers.serve(80, http)
    threading.Thread(target=udp_echo, daemon=True).start()
    print("ready linux", flush=True)
    threading.Event().wait()
