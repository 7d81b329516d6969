"""A PC driving an W5500 Ethernet module over an FT232H USB-SPI bridge (pyftdi).

Wiring (FT232H ADBUS): AD0 SCK, AD1 MOSI, AD2 MISO, AD3 CS, AD4 INT (input), AD5 RST (output);
3.3 V logic, module powered from 3.3 V (the W5500 draws up to ~180 mA while transmitting).
Run: ustack up --board pc_ft232h_w5500 --serve echo   (needs `pip install 'ustack[ftdi]'` and a udev rule or root)
"""
NAME = "pc_ft232h_w5500"
DESCRIPTION = "PC + FT232H + W5500"
MCU = "x86_64 (CPython)"
DRIVER = "w5500"
BUS = {"kind": "ftdi", "url": "ftdi://ftdi:232h/1", "cs": 0, "freq": 12_000_000, "mode": 0}
PINS = {"int": 4, "rst": 5}
MAC = "02:00:00:00:00:12"
IP = "192.0.2.2/24"
GATEWAY = None
FEATURES = ("ipv4", "icmp", "udp", "tcp", "raw")
CONFIG = {"PBUF_COUNT": 64, "TCP_SND_BUF": 16384, "TCP_RCV_BUF": 16384}
