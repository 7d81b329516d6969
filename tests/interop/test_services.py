"""`ustack up --serve` services against the Linux kernel in a throwaway netns over TAP:
the HTTP server on a directory (--http-root) fetched with curl and http.client, and discard
(RFC 863) over TCP and UDP."""
import hashlib
import json
import os
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]

SECRET = b"ustack-secret-outside-the-root\n"


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ns():
    n = Netns("svc")
    yield n
    n.close()


@pytest.fixture
def www(tmp_path):
    """The served root, and files beside it that must never be served."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    files = {
        "index.html": b"<!doctype html><html><body><h1>ustack test root</h1></body></html>\n",
        "big.bin": os.urandom(300 * 1024),
        "sub/file.txt": b"a file in a subdirectory\n" * 40,
        "my file+%.txt": b"a name with spaces and escapes\n",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(SECRET)               # beside the root
    (tmp_path / "www2").mkdir()                                 # shares the root's name prefix
    (tmp_path / "www2" / "secret.txt").write_bytes(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")     # symlinks leading out
    (root / "out").mkdir()
    (root / "out" / "index.html").symlink_to(tmp_path / "secret.txt")
    return root, files


@pytest.fixture
def http_stack(ns, www):
    root, files = www
    s = StackProc(ns, "--serve", "http", "--http-root", str(root), runtime="cpython")
    assert "tcp/http" in s.ready, "no tcp/http in the ready line: " + s.ready
    yield s, root, files
    if s.p.poll() is None:
        c = s.stop()
        assert c["pbuf.free"] == c["pbuf.count"]


# Raw HTTP from the Linux side: each request on its own connection, read to EOF.
RAW = r"""
import json, socket, sys
out = []
for req in json.loads(sys.argv[1]):
    c = socket.create_connection((%r, 80), timeout=10)
    c.sendall(req.encode("latin-1"))
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    c.close()
    head, _, body = data.partition(b"\r\n\r\n")
    out.append([head.decode("latin-1"), body.decode("latin-1")])
print(json.dumps(out))
""" % STACK_IP


def raw_requests(ns, reqs):
    """[(status, {header: value}, body bytes)] for each raw request string."""
    r = ns.run([sys.executable, "-c", RAW, json.dumps(reqs)], timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    out = []
    for head, body in json.loads(r.stdout):
        lines = head.split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, v in
                       (h.split(":", 1) for h in lines[1:] if ":" in h))
        status = int(lines[0].split()[1]) if head else None       # None: closed without a word
        out.append((status, headers, body.encode("latin-1")))
    return out


def test_curl_fetches_files_byte_identical_over_one_connection(ns, http_stack, tmp_path):
    s, root, files = http_stack
    paths = [("/", "index.html"), ("/index.html", "index.html"), ("/big.bin", "big.bin"),
             ("/sub/file.txt", "sub/file.txt"), ("/my%20file%2B%25.txt", "my file+%.txt"),
             ("/sub/missing.txt", None)]
    argv = ["curl", "-s", "-m", "20",
            "-w", "%{http_code} %{size_download} %{num_connects} %header{content-length}\\n"]
    for i, (p, _) in enumerate(paths):
        argv += ["-o", str(tmp_path / ("got%d" % i)), "http://%s%s" % (STACK_IP, p)]
    r = ns.run(argv, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l.split() for l in r.stdout.splitlines()]
    assert len(rows) == len(paths), r.stdout
    for i, ((p, rel), (code, size, connects, clen)) in enumerate(zip(paths, rows)):
        got = (tmp_path / ("got%d" % i)).read_bytes()
        if rel is None:
            assert code == "404", (p, rows[i])
            continue
        want = files[rel]
        assert code == "200", (p, rows[i])
        assert int(clen) == len(want) == int(size), (p, rows[i])
        assert sha(got) == sha(want), p
    # keep-alive: one TCP connection carried every request
    assert [r[2] for r in rows] == ["1"] + ["0"] * (len(paths) - 1), rows
    c = s.stop()
    assert c["tcp.conn_passive"] == 1


def test_http_client_get_head_and_404_on_one_keep_alive_connection(ns, http_stack):
    s, root, files = http_stack
    code = r"""
import hashlib, http.client, json
c = http.client.HTTPConnection(%r, 80, timeout=10)
out = []
for method, path in [("GET", "/"), ("GET", "/big.bin"), ("HEAD", "/big.bin"),
                     ("GET", "/sub/file.txt"), ("GET", "/nope.html"), ("GET", "/sub/"),
                     ("HEAD", "/index.html"), ("GET", "/index.html?x=1")]:
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    out.append([method, path, r.status, r.getheader("Content-Length"), r.getheader("Connection"),
                hashlib.sha256(body).hexdigest(), len(body), c.sock.getsockname()[1]])
c.close()
print(json.dumps(out))
""" % STACK_IP
    r = ns.python(code)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout)
    by = {(m, p): rest for m, p, *rest in rows}    # [status, length, connection, sha, n, port]
    idx = files["index.html"]
    big = files["big.bin"]
    sub = files["sub/file.txt"]
    assert by[("GET", "/")][:5] == [200, str(len(idx)), "keep-alive", sha(idx), len(idx)]
    assert by[("GET", "/big.bin")][:5] == [200, str(len(big)), "keep-alive", sha(big), len(big)]
    assert by[("HEAD", "/big.bin")][:5] == [200, str(len(big)), "keep-alive", sha(b""), 0]
    assert by[("GET", "/sub/file.txt")][:5] == [200, str(len(sub)), "keep-alive", sha(sub), len(sub)]
    assert by[("GET", "/nope.html")][0] == 404
    assert by[("GET", "/sub/")][0] == 404                     # a directory without index.html
    assert by[("HEAD", "/index.html")][:2] == [200, str(len(idx))]
    assert by[("GET", "/index.html?x=1")][3] == sha(idx)
    assert len({row[-1] for row in rows}) == 1, rows           # one local port: one connection
    c = s.stop()
    assert c["tcp.conn_passive"] == 1


def test_keep_alive_responses_are_not_held_back_by_nagle_and_delayed_ack(ns, http_stack):
    """A small response written as head then body must not wait for the client's delayed
    ACK (RFC 1122 4.2.3.4 Nagle vs 4.2.3.2 delayed ACK: about 40 ms on Linux per request):
    the service sends the head with the body and sets TCP_NODELAY, as servers do."""
    code = r"""
import http.client, json, time
c = http.client.HTTPConnection(%r, 80, timeout=10)
took = []
for i in range(20):
    t = time.perf_counter()
    c.request("GET", "/index.html")
    r = c.getresponse()
    r.read()
    took.append(time.perf_counter() - t)
print(json.dumps(sorted(took)))
""" % STACK_IP
    r = ns.python(code)
    assert r.returncode == 0, r.stderr[-3000:]
    took = json.loads(r.stdout)
    assert took[len(took) // 2] < 0.025, "median %.1f ms per request: %r" % (
        took[len(took) // 2] * 1000, took)


def test_head_sends_headers_only(ns, http_stack):
    s, root, files = http_stack
    (status, headers, body), = raw_requests(
        ns, ["HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    assert status == 200
    assert int(headers["content-length"]) == len(files["big.bin"])
    assert body == b""
    c = s.stop()
    assert c.get("tcp.tx_data_bytes", 0) < 1000        # a head, not 300 KB of body


@pytest.mark.parametrize("path", [
    "/../etc/passwd", "/../../../../../../etc/passwd", "/sub/../../etc/passwd",
    "/%2e%2e/etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E%2Fetc%2Fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd", "/../secret.txt", "/%2e%2e/secret.txt", "/../www2/secret.txt",
    "/link.txt", "/out/", "/out", "//etc/passwd", "/./../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
])
def test_paths_escaping_the_root_are_refused(ns, http_stack, path):
    s, root, files = http_stack
    reqs = ["GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path,
            "HEAD %s HTTP/1.0\r\n\r\n" % path]
    for status, headers, body in raw_requests(ns, reqs):
        assert status in (403, 404), (path, status, body[:200])
        assert SECRET not in body and b"root:" not in body, (path, body[:200])
    # curl, asked not to normalise the path, gets the same answer
    r = ns.run(["curl", "-s", "--path-as-is", "-m", "10", "-w", "\\n%{http_code}",
                "http://%s%s" % (STACK_IP, path)])
    body, _, code = r.stdout.rpartition("\n")
    assert code in ("403", "404"), (path, r.stdout[-300:], r.stderr)
    assert SECRET.decode() not in body and "root:" not in body


def test_malformed_requests_get_400_and_the_server_carries_on(ns, http_stack):
    s, root, files = http_stack
    got = raw_requests(ns, [
        "GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
        "GET /a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ])
    assert [g[0] for g in got] == [400, 400, 400, 400, 400, 200], got
    assert got[-1][2] == files["index.html"]
    s.stop()
    assert "Traceback" not in "".join(s.lines), "".join(s.lines)[-3000:]


# ---- discard (RFC 863) ----------------------------------------------------------------------

@pytest.fixture
def discard_stack(ns):
    s = StackProc(ns, "--serve", "discard")
    assert "tcp/discard" in s.ready and "udp/discard" in s.ready, \
        "discard over TCP and UDP missing from the ready line: " + s.ready
    yield s
    if s.p.poll() is None:
        s.stop()


def test_tcp_discard_swallows_1mb_and_closes_cleanly(ns, discard_stack):
    n = 1 << 20
    r = ns.python(
        "import os, socket\n"
        "c = socket.create_connection(('%s', 9), timeout=20)\n"
        "c.sendall(os.urandom(%d))\n"
        "c.shutdown(socket.SHUT_WR)\n"
        "back = 0\n"
        "while True:\n"
        "    d = c.recv(65536)\n"     # a reset would raise here
        "    if not d: break\n"
        "    back += len(d)\n"
        "c.close()\nprint('back', back)\n" % (STACK_IP, n), timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["back", "0"], r.stdout
    ss = ns.run(["ss", "-tan", "state", "time-wait"]).stdout
    assert "%s:9" % STACK_IP in ss, ss                          # Linux saw our FIN and acked it
    c = discard_stack.stop()
    assert c["tcp.rx_data_bytes"] >= n
    assert c.get("tcp.tx_data_bytes", 0) == 0, c
    assert c.get("tcp.tx_rst", 0) == 0 and c.get("tcp.rx_rst", 0) == 0, c
    assert c["tcp.conn_passive"] == 1
    assert c["pbuf.free"] == c["pbuf.count"]


def test_udp_discard_gets_datagrams_and_never_replies(ns, discard_stack):
    count = 200
    r = ns.python(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.connect(('%s', 9)); s.settimeout(1)\n"     # connected: an ICMP error would show too
        "for i in range(%d):\n"
        "    s.send(bytes([i %% 256]) * (1 + i * 7))\n"
        "try:\n"
        "    print('reply', len(s.recv(2000)))\n"
        "except socket.timeout:\n"
        "    print('silence')\n" % (STACK_IP, count), timeout=30)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "silence", r.stdout
    c = discard_stack.stop()
    assert c["udp.rx_delivered"] >= count, c
    assert c.get("udp.tx_datagrams", 0) == 0, c
    assert not any(k.startswith("icmp.tx") for k in c), c
