"""Unmodified third-party MicroPython libraries from PyPI, on the MicroPython unix port, with
ustack as their network (`import network` / `socket` / `usocket` resolve to ustack's
facades, ports/micropython/netif.py and usock.py) and real Linux servers as the peers:

- micropython-urequests 0.9.1: GET from `python3 -m http.server`, POST to an echo server;
- micropython-umqtt.simple 1.3.4: publish and subscribe through Debian's mosquitto;
- microdot 2.7.0 (MicroPython's asyncio streams over the facade): a page Linux curl fetches.

Each program prints micropython.mem_peak() ("mem_peak N", shown in the test's output).
These libraries allocate per call (strings, bytes, exceptions), so none of them runs with the
heap locked; the heap-locked paths are app.py's services (test_interop_mpy.py).
"""
import os
import re
import shutil
import sys

import pytest

from tests.conftest import needs_netns
from tests.micropython.mpyhelp import needs_micropython
from tests.micropython.mpnet import MpNet, mem_peak
from tests.netns import HOST_IP, STACK_IP

pytestmark = [needs_netns, needs_micropython]

NIC_UP = """
import network
nic = network.LAN()
nic.active(True)
"""

MEM = """
import micropython
print("mem_peak", micropython.mem_peak())
"""

ECHO_POST = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        b = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def libs():
    """urequests, umqtt.simple and microdot as published (ports/micropython/thirdparty.py)."""
    from ustack.ports.micropython import thirdparty
    return thirdparty.ensure()


@pytest.fixture
def net():
    n = MpNet("libs")
    yield n
    n.close()


def report(name, out):
    peak = mem_peak(out)
    print("mem_peak %s: %d bytes" % (name, peak))
    return peak


def test_urequests_get_and_post_against_linux_http_servers(net, libs):
    www = os.path.join(net.work, "www")
    os.makedirs(www)
    page = bytes(range(256)) * 1024       # 256 KB, checked by SHA-256
    with open(os.path.join(www, "page.txt"), "wb") as f:
        f.write(page)
    web = net.serve([sys.executable, "-m", "http.server", "--bind", HOST_IP, "--directory",
                     www, "8000"], wait_port=8000)
    net.serve([sys.executable, net.write("echo_post.py", ECHO_POST), HOST_IP, "8001"],
              wait_port=8001)
    rc, out = net.run_mpy(NIC_UP + """
import urequests, hashlib, binascii, time
t0 = time.ticks_ms()
r = urequests.get("http://192.0.2.1:8000/page.txt")
print("GET", r.status_code, len(r.content), binascii.hexlify(hashlib.sha256(r.content).digest()))
print("get_ms", time.ticks_diff(time.ticks_ms(), t0))
r.close()
body = bytes(range(256)) * 40
r = urequests.post("http://192.0.2.1:8001/echo", data=body)
print("POST", r.status_code, r.content == body)
r.close()
r = urequests.get("http://192.0.2.1:8000/missing")
print("404", r.status_code)
r.close()
""" + MEM, libs=[libs])
    import hashlib
    assert rc == 0, out
    assert "GET 200 %d b'%s'" % (len(page), hashlib.sha256(page).hexdigest()) in out, out
    assert "POST 200 True" in out, out
    assert "404 404" in out, out
    web.kill()
    log = web.communicate(timeout=10)[0]
    # the server saw the stack's address: the requests really came over the TAP
    assert '%s - - ' % STACK_IP in log and '"GET /page.txt HTTP/1.0" 200' in log, log
    ms = int(re.search(r"^get_ms (\d+)$", out, re.M).group(1))
    print("urequests GET of %d bytes: %d ms" % (len(page), ms))
    report("urequests", out)


MOSQUITTO_CONF = """listener 1883 %s
allow_anonymous true
persistence false
connection_messages true
log_type all
""" % HOST_IP


@pytest.mark.skipif(shutil.which("mosquitto") is None and not os.path.exists(
    "/usr/sbin/mosquitto"), reason="no mosquitto (apt-get install mosquitto: .ci/setup)")
def test_umqtt_publish_and_subscribe_through_mosquitto(net, libs):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = net.serve([exe, "-c", net.write("mq.conf", MOSQUITTO_CONF)], wait_port=1883)
    rc, out = net.run_mpy(NIC_UP + """
from umqtt.simple import MQTTClient
got = []
c = MQTTClient("ustack-mpy", "192.0.2.1", keepalive=30)
c.set_callback(lambda t, m: got.append((t, m)))
c.connect()
c.subscribe(b"ustack/t")
for i in range(5):
    c.publish(b"ustack/t", b"message %d over ustack" % i)
    c.wait_msg()
c.ping()
c.wait_msg()                       # PINGRESP: the callback is not called
c.publish(b"ustack/t", b"x" * 3000)  # a message larger than a segment
c.wait_msg()
print("MQTT", got[:5] == [(b"ustack/t", b"message %d over ustack" % i) for i in range(5)],
      got[5] == (b"ustack/t", b"x" * 3000), len(got))
c.check_msg()                      # non-blocking: nothing waits
print("idle ok")
c.disconnect()
""" + MEM, libs=[libs])
    assert rc == 0, out
    assert "MQTT True True 6" in out, out
    assert "idle ok" in out, out
    broker.kill()
    log = broker.communicate(timeout=10)[0]
    # the broker saw the stack's address: the client really came over the TAP
    assert "New client connected from %s" % STACK_IP in log, log
    report("umqtt.simple", out)


def test_microdot_serves_a_page_linux_curl_fetches(net, libs):
    p = net.start_mpy(NIC_UP + """
from microdot import Microdot
app = Microdot()

@app.route("/")
async def index(request):
    return "<h1>microdot over ustack</h1>", 200, {"Content-Type": "text/html"}

@app.route("/n/<int:n>")
async def n_bytes(request, n):
    return "z" * n

@app.route("/echo", methods=["POST"])
async def echo(request):
    return request.body

@app.route("/shutdown")
async def shutdown(request):
    request.app.shutdown()
    return "bye"

print("serving")
app.run(host="0.0.0.0", port=5000)
print("stopped")
""" + MEM, libs=[libs])
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, "the program ended:\n" + "".join(lines)
        lines.append(line)
        if line.startswith("serving"):
            break
    url = "http://%s:5000" % STACK_IP

    def curl(*args):
        r = net.ns.run(["curl", "-sS", "-m", "20"] + list(args), timeout=40)
        return r.returncode, r.stdout, r.stderr
    rc, body, err = curl(url + "/")
    assert rc == 0 and body == "<h1>microdot over ustack</h1>", (rc, body, err)
    rc, body, err = curl("-i", url + "/")
    assert "Content-Type: text/html" in body, body
    for _ in range(3):  # keep-alive and fresh connections alike
        rc, body, err = curl(url + "/n/20000")
        assert rc == 0 and body == "z" * 20000, (rc, len(body), err)
    rc, body, err = curl("-d", "posted by curl", url + "/echo")
    assert rc == 0 and body == "posted by curl", (rc, body, err)
    rc, body, err = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/nowhere")
    assert rc == 0 and body == "404", (rc, body, err)
    # /shutdown ends app.run(); its reply may not be written before the loop stops
    curl("-m", "3", url + "/shutdown")
    out, _ = p.communicate(timeout=60)
    out = "".join(lines) + out
    assert p.returncode == 0 and "stopped" in out, out
    report("microdot", out)
