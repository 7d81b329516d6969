"""A PC with a USB-Ethernet dongle speaking CDC-ECM, driven from user space with pyusb
(the kernel's driver is detached). Select the dongle by VID:PID or by bus/address below.
Non-root use needs a udev rule giving access to the device. Run: ustack up --board pc_usb_ecm
"""
NAME = "pc_usb_ecm"
DESCRIPTION = "PC + USB CDC-ECM dongle (pyusb/libusb)"
MCU = "x86_64 (CPython)"
DRIVER = "usb-ecm"
USB = {"vid": None, "pid": None, "bus": None, "address": None}  # None = first CDC device
MAC = None                  # the dongle's own (iMACAddress string)
IP = "192.0.2.2/24"
GATEWAY = None
FEATURES = ("ipv4", "icmp", "udp", "tcp", "raw")
CONFIG = {"PBUF_COUNT": 128}
