"""WIZnet W5500-EVB-Pico: a Raspberry Pi RP2040 (Cortex-M0+, 264 KB SRAM, 2 MB flash) wired
to a W5500 on SPI0. The W5500 runs socket 0 in MACRAW mode, so ustack does all of IP itself
and the chip's 32 KB of buffers hold frames (16 KB each way for socket 0).

Pinout (WIZnet's schematic): GP16 MISO, GP17 CSn, GP18 SCLK, GP19 MOSI, GP20 RSTn, GP21 INTn.
Driver: hal/w5500.py (W5500(bus, int_pin, reset_pin, mac=...)), built by appinit.make_driver.
"""
NAME = "w5500_evb_pico"
DESCRIPTION = "WIZnet W5500-EVB-Pico (RP2040 + W5500, MACRAW)"
URL = "https://docs.wiznet.io/Product/iEthernet/W5500/w5500-evb-pico"
MCU = "rp2040"
ARCH = "armv6m"              # Cortex-M0+
MPY_PORT = "rp2"            # MicroPython's port and board: invoke freeze builds ports/rp2
MPY_BOARD = "W5500_EVB_PICO"
RAM = 264 * 1024
HEAP = 190 * 1024            # about what gc.mem_free() shows after boot on rp2 v1.2x
FLASH = 2 * 1024 * 1024
DRIVER = "w5500"
BUS = {"id": 0, "baudrate": 33_000_000, "sck": 18, "mosi": 19, "miso": 16, "cs": 17}
PINS = {"int": 21, "rst": 20}
IP = "192.0.2.2/24"
GATEWAY = None
MAC = "02:08:dc:00:00:02"    # locally administered; WIZnet's OUI is 00:08:dc
MPY_OPT = 3                 # mpy-cross -O3: no line numbers in tracebacks, 5 % less heap
FEATURES = ("tcp", "sack", "dhcp", "dns", "socket")  # ports/micropython/build.py FEATURE_MODULES
TCP_PREALLOC = 2            # rings for the two connections a board serves, made at start
SERVE = "echo"
CONFIG = {
    "PBUF_COUNT": 8,         # the chip buffers 16 KB of RX itself
    "PBUF_SIZE": 1536,
    "RX_BATCH": 4,
    "PBUF_RESERVE_TX": 2,    # transmit, ARP and ICMP only: receive never takes these
    "SOCK_QUEUE_PBUFS": 4,   # all socket receive queues together
    "ARP_PENDING_PBUFS": 1,  # 4 + 1 + 2 leave one buffer to receive into
    "UDP_RCVBUF": 3072,      # two buffers per UDP/raw socket by default
    "ARP_ENTRIES": 8,
    "ROUTE_ENTRIES": 4,
    "REASS_SLOTS": 1,
    "REASS_SIZE": 3072,
    "SOCKETS": 8,
    "UDP_RX_QUEUE": 4,
    "TCP_MAX_CONNS": 4,
    "TCP_SND_BUF": 4096,
    "TCP_RCV_BUF": 4096,
    "TCP_BACKLOG": 2,
    "TCP_SYN_QUEUE": 2,       # below TCP_MAX_CONNS: half-open ones never hold every TCB
    "TCP_OOO_SEGMENTS": 4,
    "TCP_WSCALE": False,
}
