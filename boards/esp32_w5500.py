"""ESP32 (ESP32-WROOM-32 DevKitC: Xtensa LX6, 520 KB SRAM, 4 MB flash) with a W5500 module
(e.g. WIZ850io) on VSPI (machine.SPI(2)), MACRAW mode.

Wiring (module -> ESP32 GPIO): SCLK -> 18, MOSI -> 23, MISO -> 19, SCSn -> 5, INTn -> 4,
RSTn -> 33. The W5500 takes up to 80 MHz SPI; the ESP32's GPIO-matrix routing caps it near
26 MHz, so 20 MHz is used.
Driver: hal/w5500.py (W5500(bus, int_pin, reset_pin, mac=...)), built by appinit.make_driver.
"""
NAME = "esp32_w5500"
DESCRIPTION = "ESP32-DevKitC + W5500 module (MACRAW) on VSPI"
URL = "https://docs.micropython.org/en/latest/esp32/quickref.html"
MCU = "esp32"
ARCH = "xtensawin"           # ESP32 (windowed Xtensa ABI)
MPY_PORT = "esp32"            # MicroPython's port and board: invoke freeze builds ports/esp32
MPY_BOARD = "ESP32_GENERIC"
RAM = 520 * 1024
HEAP = 110 * 1024            # gc.mem_free() after boot, ESP32 without PSRAM
FLASH = 4 * 1024 * 1024
DRIVER = "w5500"
BUS = {"id": 2, "baudrate": 20_000_000, "sck": 18, "mosi": 23, "miso": 19, "cs": 5}
PINS = {"int": 4, "rst": 33}
IP = "192.0.2.2/24"
GATEWAY = None
MAC = "02:08:dc:00:32:02"
MPY_OPT = 3                 # mpy-cross -O3: no line numbers in tracebacks, 5 % less heap
FEATURES = ("tcp", "sack")  # ports/micropython/build.py FEATURE_MODULES
TCP_PREALLOC = 2            # rings for the two connections a board serves, made at start
SERVE = "echo"
CONFIG = {
    "PBUF_COUNT": 8,
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
