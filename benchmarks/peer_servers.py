"""The baseline's TCP services on the Linux side: echo (7), discard (9), chargen (19), one thread
per client, the same shapes as ustack's built-in services."""
import socket
import threading

LINES = b"".join((bytes(range(32, 127)) * 2)[i:i + 72] + b"\r\n" for i in range(95))


def serve(port, handler):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("", port))
    ls.listen(256)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=run, args=(handler, c), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def run(h, c):
    try:
        h(c)
    except OSError:
        pass
    finally:
        c.close()


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)


def discard(c):
    while c.recv(1 << 20):
        pass


def chargen(c):
    block = LINES * 64
    while True:
        c.sendall(block)


if __name__ == "__main__":
    serve(7, echo)
    serve(9, discard)
    serve(19, chargen)
    print("servers ready", flush=True)
    threading.Event().wait()
