"""The seed's basic TCP server: listen on 8080, one thread per client, echo what it sends."""
import threading

from ustack.core.socket import AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR
from common import stack_from_args


def handle_client(sock):
    while True:
        data = sock.recv(1024)
        if not data:
            break  # connection closed
        print("Received: %r" % data, flush=True)
        sock.sendall(data)  # echo back
    sock.close()


def main():
    net, args = stack_from_args(__doc__, lambda ap: ap.add_argument("--port", type=int, default=8080))
    srv = net.socket(AF_INET, SOCK_STREAM)
    srv.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    srv.bind(("", args.port))
    srv.listen(128)
    print("TCP server listening on port %d" % args.port, flush=True)
    try:
        while True:
            client, (host, port) = srv.accept()
            print("Client connected from %s:%d" % (host, port), flush=True)
            threading.Thread(target=handle_client, args=(client,), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        net.close()


if __name__ == "__main__":
    main()
