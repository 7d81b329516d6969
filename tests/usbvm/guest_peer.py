"""Runs INSIDE the QEMU guest, on the gadget side: the kernel's own sockets on the gadget's
usb0 address. UDP echo and TCP echo on port 7 of the given address. Prints PEER-READY."""
import socket
import sys
import threading

addr = sys.argv[1] if len(sys.argv) > 1 else "192.0.2.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def udp_echo(s):
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def tcp_conn(c):
    total = 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
            total += len(d)
        c.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("PEER tcp error after %d bytes: %s" % (total, e), flush=True)
    finally:
        c.close()
    print("PEER tcp echoed %d bytes" % total, flush=True)


def tcp_echo(ls):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(8)
us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
us.bind((addr, port))
threading.Thread(target=udp_echo, args=(us,), daemon=True).start()
threading.Thread(target=tcp_echo, args=(ls,), daemon=True).start()
print("PEER-READY", flush=True)
threading.Event().wait()
