"""A Raspberry Pi driving a W5500 module on /dev/spidev0.0 (Linux spidev).

Wiring (40-pin header): 19 MOSI, 21 MISO, 23 SCLK, 24 CE0 -> CS, 3.3 V and GND; INT and RST
optional (polling is used). Enable SPI with dtparam=spi=on; needs `pip install 'ustack[spidev]'`.
Run: ustack up --board rpi_spidev_w5500
"""
NAME = "rpi_spidev_w5500"
DESCRIPTION = "Raspberry Pi (Linux spidev) + W5500"
MCU = "aarch64 (CPython)"
DRIVER = "w5500"
BUS = {"kind": "spidev", "bus": 0, "dev": 0, "freq": 20_000_000, "mode": 0}
PINS = {"int": None, "rst": None}
MAC = "02:00:00:00:00:13"
IP = "192.0.2.2/24"
GATEWAY = None
FEATURES = ("ipv4", "icmp", "udp", "tcp", "raw")
CONFIG = {"PBUF_COUNT": 64}
