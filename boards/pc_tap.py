"""The default PC board: the stack on a Linux TAP device (run inside a network namespace)."""
NAME = "pc_tap"
MCU = "x86_64 (CPython)"
DRIVER = "tap"
TAP = "ustack0"
TAP_QUEUES = 8          # multi-queue TAP: flows we talk to keep queue 0 under a flood
MAC = "02:00:00:00:00:02"
IP = "192.0.2.2/24"
GATEWAY = None
HOST_IP = None          # e.g. "192.0.2.1/24" to configure the kernel side of the TAP
FEATURES = ("ipv4", "icmp", "udp", "tcp", "raw")
CONFIG = {
    "PBUF_COUNT": 256,
    "SOCKETS": 512,
    "TCP_MAX_CONNS": 512,
    "TCP_SND_BUF": 65536,
    "TCP_RCV_BUF": 65536,
    # the peer on a TAP is the Linux kernel mostly: a burst's in-order segments share one ACK
    # (at the poll's end, or at once every 32 - RX_BATCH: one ACK a burst read; out-of-order
    # data is still ACKed at once). A Linux sender takes stretch ACKs as from its own GRO
    # receivers; without offloads each ACK is a write the kernel answers in our time (it
    # sends the next segments inside that write): issue 13, 72 000 ACKs for 200 MB with
    # 2 -> 11 000 with 16 (9.2 -> 8.0 CPU s/GB); 16 still cut a burst of 32 in two, 32 gives
    # one ACK a poll (tx frames per rx frame 0.095 -> 0.063, Linux -> stack 60 -> 86 MB/s,
    # medians of 3 interleaved on a loaded machine). The core's default (2) stays for ustack
    # senders (core/config.py)
    "TCP_ACK_BURST": 32,
    "TCP_BACKLOG": 256,
    "TCP_SYN_QUEUE": 256,
    "ARP_ENTRIES": 32,
    "UDP_RX_QUEUE": 64,
    "REASS_SLOTS": 8,
    "REASS_SIZE": 65515,  # the largest IPv4 payload (65535 - 20)
    "FILTER_RULES": 256,
    "FILTER_CONNTRACK": 4096,
}
