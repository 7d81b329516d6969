"""The asyncio facade on both runtimes: two stacks on a memory link, each driven by its
AioStack task; a UDP echo server and client, a TCP echo server and client (64 KB). Prints a
transcript that must be identical under CPython and MicroPython.

    python|micropython aio_demo.py LIB_OR_EMPTY
"""
import sys
if len(sys.argv) > 1 and sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rpartition("/")[0] if "/" in __file__ else ".")
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio
from memlink import pair
from ustack.core.stack import Stack
from ustack.core import socket as so
from ustack.ports.micropython.aio import AioStack

la, lb = pair(b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b")
a = Stack()
b = Stack()
a.add_interface("a0", la, ip="192.0.2.10/24")
b.add_interface("b0", lb, ip="192.0.2.11/24")
log = []


async def udp_server(net):
    s = net.socket(so.AF_INET, so.SOCK_DGRAM)
    s.bind(("", 7))
    for _ in range(5):
        d, addr = await s.recvfrom(2048)
        await s.sendto(d.upper(), addr)
    s.close()


async def udp_client(net):
    s = net.socket(so.AF_INET, so.SOCK_DGRAM)
    for i in range(5):
        await s.sendto(b"hello %d" % i, ("192.0.2.11", 7))
        d, addr = await s.recvfrom(2048, timeout_ms=5000)
        log.append("udp %s from %s:%d" % (d.decode(), addr[0], addr[1]))
    s.close()


async def tcp_server(net):
    ls = net.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", 7))
    ls.listen(2)
    c, addr = await ls.accept(timeout_ms=5000)
    log.append("tcp accepted from %s" % addr[0])
    total = 0
    while True:
        d = await c.recv(4096, timeout_ms=5000)
        if not d:
            break
        total += len(d)
        await c.sendall(d)
    log.append("tcp server echoed %d" % total)
    c.close()
    ls.close()


async def tcp_client(net):
    s = net.socket(so.AF_INET, so.SOCK_STREAM)
    await s.connect(("192.0.2.11", 7), timeout_ms=5000)
    data = bytes((i * 13) & 0xFF for i in range(65536))
    got = bytearray()

    async def reader():
        while len(got) < len(data):
            d = await s.recv(8192, timeout_ms=5000)
            if not d:
                break
            got.extend(d)
    r = asyncio.create_task(reader())
    await s.sendall(data)
    await r
    log.append("tcp client got %d back, same: %s" % (len(got), bytes(got) == data))
    s.shutdown(so.SHUT_WR)
    s.close()


async def main():
    na = AioStack(a)
    nb = AioStack(b)
    asyncio.create_task(na.run())
    asyncio.create_task(nb.run())
    await asyncio.gather(udp_server(nb), udp_client(na))
    await asyncio.gather(tcp_server(nb), tcp_client(na))
    na.stop()
    nb.stop()
    await asyncio.sleep(0.05)
    for line in log:
        print(line)
    print("done")

asyncio.run(main())
