"""The seed's UDP broadcast sender: 'Hello, network!' to 255.255.255.255:12345, once a second."""
import time

from ustack.core.socket import AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_BROADCAST
from common import stack_from_args


def main():
    net, args = stack_from_args(__doc__, lambda ap: (ap.add_argument("--count", type=int, default=10),
                                                     ap.add_argument("--interval", type=float, default=1.0)))
    sock = net.socket(AF_INET, SOCK_DGRAM)
    sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)
    message = b"Hello, network!"
    for _ in range(args.count):
        sent = sock.sendto(message, ("255.255.255.255", 12345))
        print("Broadcast sent: %d bytes" % sent, flush=True)
        time.sleep(args.interval)
    sock.close()
    net.close()


if __name__ == "__main__":
    main()
