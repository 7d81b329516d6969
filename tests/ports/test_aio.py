"""The asyncio facade: the event loop drives two stacks; streams in asyncio's shape."""
import asyncio

import pytest

from tests.twostack import two_stacks

pytest.importorskip("ustack.core.tcp.proto")


def test_open_connection_and_start_server_echo():
    from ustack.ports.cpython.aio import AsyncStack

    async def main():
        a, b = two_stacks()
        na, nb = AsyncStack(a), AsyncStack(b)

        async def handle(reader, writer):
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line.upper())
                await writer.drain()
            writer.close()

        server = await nb.start_server(handle, "", 7)
        reader, writer = await na.open_connection("192.0.2.11", 7)
        payload = b"".join(b"line %d of the test\n" % i for i in range(2000))
        writer.write(payload)
        await writer.drain()
        got = await reader.readexactly(len(payload))
        assert got == payload.upper()
        assert writer.get_extra_info("peername") == ("192.0.2.11", 7)
        writer.close()
        server.close()
        await server.wait_closed()
        for _ in range(50):
            await asyncio.sleep(0.01)
        na.close()
        nb.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_close_after_a_large_write_delivers_every_byte_then_wait_closed_returns():
    """asyncio's transports flush buffered data on close(); wait_closed() waits for that."""
    from ustack.ports.cpython.aio import AsyncStack

    async def main():
        a, b = two_stacks()
        na, nb = AsyncStack(a), AsyncStack(b)
        got = []
        done = asyncio.Event()

        async def handle(reader, writer):
            got.append(await reader.read())
            writer.close()
            done.set()

        server = await nb.start_server(handle, "", 7)
        reader, writer = await na.open_connection("192.0.2.11", 7)
        payload = bytes(range(256)) * (4 * 4096)  # 4 MB
        writer.write(payload)
        writer.close()
        assert writer.is_closing()
        await writer.wait_closed()
        await done.wait()
        assert len(got[0]) == len(payload) and got[0] == payload
        server.close()
        await server.wait_closed()
        na.close()
        nb.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_event_loop_keeps_driving_after_poll_raised():
    """A driver whose recv raises once (out of poll itself): the facade counts and logs it
    (stack.exceptions) and keeps polling, so a TCP echo still works."""
    from ustack.ports.cpython.aio import AsyncStack
    from tests.ports.test_runner import FlakyDriver

    async def main():
        a, b = two_stacks(wrap_b=FlakyDriver)
        flaky = b.ifaces[0].driver
        lines = []
        b.log = lines.append
        flaky.fail = 1
        na, nb = AsyncStack(a), AsyncStack(b)

        async def handle(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await nb.start_server(handle, "", 7)
        reader, writer = await na.open_connection("192.0.2.11", 7)
        writer.write(b"still here\n")
        await writer.drain()
        assert await reader.readline() == b"still here\n"
        assert b.counters()["stack.exceptions"] == 1
        assert len(lines) == 1 and "device hiccup" in lines[0]
        writer.close()
        server.close()
        await server.wait_closed()
        na.close()
        nb.close()

    asyncio.run(asyncio.wait_for(main(), 30))
