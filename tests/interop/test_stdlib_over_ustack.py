"""Unmodified stdlib programs over ustack (`ustack run -- python ...`), the Linux kernel in a
throwaway namespace on the other side of the TAP: code no one here wrote, on both ends."""
import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, ProgramRun as Run, HOST_IP, STACK_IP

pytestmark = [needs_netns]


@pytest.fixture
def ns():
    n = Netns("std")
    yield n
    n.close()


def write(tmp_path, name, code):
    p = tmp_path / name
    p.write_text(textwrap.dedent(code))
    return str(p)


def test_http_server_serves_a_directory_that_linux_curl_fetches(ns, tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    blob = os.urandom(8 << 20)
    (d / "blob.bin").write_bytes(blob)
    (d / "index.html").write_text("<h1>served by http.server over ustack</h1>\n")
    srv = Run(ns, ["-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", str(d)],
              "Serving HTTP")
    try:
        r = subprocess.run(ns.cmd(["curl", "-sS", "--max-time", "60",
                                   "http://%s:8000/blob.bin" % STACK_IP]),
                           capture_output=True, timeout=90)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(blob).hexdigest()
        r = ns.run(["curl", "-sS", "http://%s:8000/" % STACK_IP])
        assert "index.html" in r.stdout or "served by http.server" in r.stdout
    finally:
        out = srv.interrupt()
    assert '"GET /blob.bin HTTP/1.1" 200' in out, out[-3000:]


def test_threading_tcp_server_echoes_to_many_parallel_linux_clients(ns, tmp_path):
    prog = write(tmp_path, "echo.py", """
        import socketserver

        class Echo(socketserver.BaseRequestHandler):
            def handle(self):
                while True:
                    d = self.request.recv(65536)
                    if not d:
                        break
                    self.request.sendall(d)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        with socketserver.ThreadingTCPServer(("", 7007), Echo) as s:
            print("serving", flush=True)
            s.serve_forever()
    """)
    srv = Run(ns, [prog], "serving")
    try:
        r = ns.python(textwrap.dedent("""
            import os, socket, threading
            ok = []
            def client(i):
                m = os.urandom(20000 + i * 100)
                with socket.create_connection(("%s", 7007), timeout=30) as s:
                    s.sendall(m)
                    s.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        d = s.recv(65536)
                        if not d:
                            break
                        got += d
                ok.append(got == m)
            ts = [threading.Thread(target=client, args=(i,)) for i in range(100)]
            for t in ts: t.start()
            for t in ts: t.join()
            print(sum(ok), len(ok))
        """ % STACK_IP), timeout=120)
        assert r.stdout.split() == ["100", "100"], r.stdout + r.stderr
    finally:
        srv.interrupt()


def test_urllib_and_http_client_download_from_linux_http_server(ns, tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    blob = os.urandom(2 << 20)
    (d / "blob.bin").write_bytes(blob)
    linux = ns.popen([sys.executable, "-m", "http.server", "8001", "--bind", "0.0.0.0",
                      "--directory", str(d)])
    prog = write(tmp_path, "fetch.py", """
        import hashlib, http.client, sys, time, urllib.request
        url = "http://%s:8001/blob.bin"
        for _ in range(50):  # until the Linux server listens
            try:
                data = urllib.request.urlopen(url, timeout=10).read()
                break
            except OSError:
                time.sleep(0.2)
        print("urllib", hashlib.sha256(data).hexdigest())
        c = http.client.HTTPConnection("%s", 8001, timeout=10)
        c.request("GET", "/blob.bin")
        print("http.client", hashlib.sha256(c.getresponse().read()).hexdigest())
    """ % (HOST_IP, HOST_IP))
    try:
        out = Run(ns, [prog], "ready ").output(120)
    finally:
        linux.kill()
        linux.wait(5)
    want = hashlib.sha256(blob).hexdigest()
    assert "urllib " + want in out and "http.client " + want in out, out[-3000:]


def test_asyncio_streams_echo_with_the_stdlib_event_loop(ns, tmp_path):
    prog = write(tmp_path, "aecho.py", """
        import asyncio

        async def handle(r, w):
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
            w.close()
            await w.wait_closed()

        async def main():
            server = await asyncio.start_server(handle, "0.0.0.0", 7008)
            print("serving", flush=True)
            async with server:
                await server.serve_forever()

        asyncio.run(main())
    """)
    srv = Run(ns, [prog], "serving")
    try:
        r = ns.python(textwrap.dedent("""
            import asyncio, os

            async def one(i):
                r, w = await asyncio.open_connection("%s", 7008)
                m = os.urandom(100000 + i)
                w.write(m)
                w.write_eof()
                got = await r.read()
                w.close()
                return got == m

            async def main():
                print(sum(await asyncio.gather(*[one(i) for i in range(20)])))

            asyncio.run(asyncio.wait_for(main(), 60))
        """ % STACK_IP), timeout=90)
        assert r.stdout.strip() == "20", r.stdout + r.stderr
    finally:
        srv.interrupt()


def test_xmlrpc_server_on_ustack_answers_a_linux_client(ns, tmp_path):
    prog = write(tmp_path, "rpc.py", """
        from xmlrpc.server import SimpleXMLRPCServer
        with SimpleXMLRPCServer(("0.0.0.0", 8002), logRequests=False) as s:
            s.register_function(lambda a, b: a + b, "add")
            s.register_function(lambda x: x[::-1], "reverse")
            print("serving", flush=True)
            s.serve_forever()
    """)
    srv = Run(ns, [prog], "serving")
    try:
        r = ns.python(textwrap.dedent("""
            import xmlrpc.client
            p = xmlrpc.client.ServerProxy("http://%s:8002/")
            print(p.add(2, 40), p.reverse("ustack"), p.add("a" * 100000, "b")[-3:])
        """ % STACK_IP), timeout=60)
        assert r.stdout.split() == ["42", "kcatsu", "aab"], r.stdout + r.stderr
    finally:
        srv.interrupt()


def test_xmlrpc_client_on_ustack_calls_a_linux_server(ns, tmp_path):
    linux = ns.popen([sys.executable, "-c", textwrap.dedent("""
        from xmlrpc.server import SimpleXMLRPCServer
        s = SimpleXMLRPCServer(("0.0.0.0", 8003), logRequests=False)
        s.register_function(pow)
        s.serve_forever()
    """)])
    prog = write(tmp_path, "rpcc.py", """
        import time, xmlrpc.client
        p = xmlrpc.client.ServerProxy("http://%s:8003/")
        for _ in range(50):
            try:
                print("pow", p.pow(3, 13))
                break
            except OSError:
                time.sleep(0.2)
    """ % HOST_IP)
    try:
        out = Run(ns, [prog], "ready ").output(60)
    finally:
        linux.kill()
        linux.wait(5)
    assert "pow %d" % 3 ** 13 in out, out[-3000:]
