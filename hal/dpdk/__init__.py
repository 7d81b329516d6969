"""DPDK link: hal/dpdk/driver.py (the driver), _rte.pyx (the Cython binding, built where
libdpdk-dev is installed). See README.md here for a real NIC."""
