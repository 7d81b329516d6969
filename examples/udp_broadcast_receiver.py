"""The seed's UDP receiver: print every datagram arriving on port 12345."""
from ustack.core.socket import AF_INET, SOCK_DGRAM
from common import stack_from_args


def main():
    net, args = stack_from_args(__doc__, lambda ap: ap.add_argument("--count", type=int, default=0,
                                                                   help="stop after N (0 = never)"))
    sock = net.socket(AF_INET, SOCK_DGRAM)
    sock.bind(("", 12345))
    print("UDP receiver listening on port 12345", flush=True)
    n = 0
    try:
        while not args.count or n < args.count:
            data, (host, port) = sock.recvfrom(1024)
            print("Received from %s:%d: %s" % (host, port, data.decode(errors="replace")), flush=True)
            n += 1
    except KeyboardInterrupt:
        pass
    finally:
        net.close()


if __name__ == "__main__":
    main()
