"""The seed's raw packet processing: a raw socket for all IP traffic, headers included."""
from ustack.core.socket import AF_INET, SOCK_RAW, IPPROTO_IP, IP_HDRINCL
from ustack.core.wire import ipv4
from common import stack_from_args

NAMES = {1: "ICMP", 6: "TCP", 17: "UDP"}


def main():
    net, args = stack_from_args(__doc__, lambda ap: ap.add_argument("--count", type=int, default=0))
    sock = net.socket(AF_INET, SOCK_RAW, IPPROTO_IP)
    sock.setsockopt(IPPROTO_IP, IP_HDRINCL, 1)
    print("Raw packet capture started", flush=True)
    n = 0
    try:
        while not args.count or n < args.count:
            pkt = sock.recv(65535)
            ihl = (pkt[0] & 0x0F) * 4
            proto = pkt[9]
            print("IP Packet: %s -> %s, Protocol: %d (%s), Length: %d, payload %d" % (
                ipv4.ntoa(pkt, 12), ipv4.ntoa(pkt, 16), proto, NAMES.get(proto, "?"),
                (pkt[2] << 8) | pkt[3], len(pkt) - ihl), flush=True)
            n += 1
    except KeyboardInterrupt:
        pass
    finally:
        net.close()


if __name__ == "__main__":
    main()
