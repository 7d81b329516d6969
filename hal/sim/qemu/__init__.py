"""QEMU guests running Debian's own kernel, for tests that need a real Linux USB stack.

guest.py  host side: fetch the kernel (apt-get download + dpkg -x), build a busybox
          initramfs, boot it under TCG with the host root mounted read-only over 9p, run a
          host Python script inside it and return the serial console text.
gadget.py guest side: configfs USB gadgets (ECM/NCM/...) on dummy_udc, interface helpers.
"""
