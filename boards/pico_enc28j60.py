"""Raspberry Pi Pico (RP2040, Cortex-M0+, 264 KB SRAM, 2 MB flash) with an ENC28J60 module
(10BASE-T MAC+PHY, 8 KB packet SRAM) on SPI0.

Wiring (module pin -> Pico pin): SO -> GP16 (MISO), CS -> GP17, SCK -> GP18, SI -> GP19
(MOSI), INT -> GP21, RESET -> GP20, VCC -> 3V3(OUT), GND -> GND. The ENC28J60 takes up to
20 MHz SPI (DS39662E); the errata recommend >= 8 MHz for reliable reads.
Driver: hal/enc28j60.py (Enc28j60(bus, int_pin, reset_pin, mac=...)), built by appinit.make_driver.
"""
NAME = "pico_enc28j60"
DESCRIPTION = "Raspberry Pi Pico + ENC28J60 SPI module"
URL = "https://www.microchip.com/en-us/product/ENC28J60"
MCU = "rp2040"
ARCH = "armv6m"
MPY_PORT = "rp2"            # MicroPython's port and board: invoke freeze builds ports/rp2
MPY_BOARD = "RPI_PICO"
RAM = 264 * 1024
HEAP = 190 * 1024
FLASH = 2 * 1024 * 1024
DRIVER = "enc28j60"
BUS = {"id": 0, "baudrate": 20_000_000, "sck": 18, "mosi": 19, "miso": 16, "cs": 17}
PINS = {"int": 21, "rst": 20}
IP = "192.0.2.2/24"
GATEWAY = None
MAC = "02:00:00:00:28:60"
MPY_OPT = 3                 # mpy-cross -O3: no line numbers in tracebacks, 5 % less heap
FEATURES = ("tcp", "sack", "dhcp", "dns", "socket")  # ports/micropython/build.py FEATURE_MODULES
TCP_PREALLOC = 2            # rings for the two connections a board serves, made at start
SERVE = "echo"
CONFIG = {
    "PBUF_COUNT": 10,        # the chip holds only ~6.5 KB of RX ring: drain it quickly
    "PBUF_SIZE": 1536,
    "RX_BATCH": 4,
    "PBUF_RESERVE_TX": 2,    # transmit, ARP and ICMP only: receive never takes these
    "SOCK_QUEUE_PBUFS": 5,   # all socket receive queues together
    "ARP_PENDING_PBUFS": 1,  # 5 + 1 + 2 leave two buffers to receive into
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
