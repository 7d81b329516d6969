"""The Linux kernel's side of the benchmark over a veth pair: the services the other peers
offer, on kernel sockets in the server namespace.

UDP echo (7); TCP echo (7) in one epoll loop, as ustack's echo service is one event handler
(a thread per connection made the connect+close rows measure thread start-up: 1 700-2 500/s
against 2 900-5 200/s for the same kernel with a loop); discard (9) and chargen (19)
(benchmarks/peer_servers.py, a thread per connection) and HTTP (80): one fixed page per request, keep-alive, the page ustack's http
service shows at / (the same fixed reply lwIP's and PyTCP's peers give).
"""
import selectors
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


def tcp_echo_loop(port):
    """TCP echo for every connection in one thread: accept and echo as epoll reports them."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("", port))
    ls.listen(256)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)

    def loop():
        while True:
            for key, _ in sel.select():
                s = key.fileobj
                if s is ls:
                    try:
                        c, _ = ls.accept()
                    except BlockingIOError:
                        continue
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    d = s.recv(65536)
                    if d:
                        s.sendall(d)  # blocking socket: a reply the peer is reading
                        continue
                except OSError:
                    pass
                sel.unregister(s)
                s.close()
    threading.Thread(target=loop, daemon=True).start()


def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 7))
    while True:
        d, a = s.recvfrom(65536)
        s.sendto(d, a)


if __name__ == "__main__":
    tcp_echo_loop(7)
    peer_servers.serve(9, peer_servers.discard)
    peer_servers.serve(19, peer_servers.chargen)
    peer_servers.serve(80, http)
    threading.Thread(target=udp_echo, daemon=True).start()
    print("ready linux", flush=True)
    threading.Event().wait()
