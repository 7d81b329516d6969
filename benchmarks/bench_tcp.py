"""TCP rows of the benchmark: bulk each way, 64-byte request/response latency, connections/s.
The same Python client (in the Linux namespace) measures ustack and the Linux baseline."""
import json

STACK_IP = "192.0.2.2"

CLIENT = r"""
import json, socket, statistics, time
ip = "%s"; quick = %r
out = {}
n = (20 if quick else 100) * 1000 * 1000
c = socket.create_connection((ip, 19), timeout=10)
got = 0; t = time.perf_counter(); buf = bytearray(1 << 20)
while got < n:
    k = c.recv_into(buf)
    if not k: break
    got += k
out["rx"] = got / (time.perf_counter() - t) / 1e6
c.close()
c = socket.create_connection((ip, 9), timeout=10)
blk = b"x" * (1 << 20); t = time.perf_counter(); left = n
while left > 0:
    c.sendall(blk); left -= len(blk)
c.shutdown(socket.SHUT_WR); c.recv(10)
out["tx"] = n / (time.perf_counter() - t) / 1e6
c.close()
c = socket.create_connection((ip, 7), timeout=10)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
m = b"r" * 64; lat = []
for i in range(300 if quick else 2000):
    t = time.perf_counter(); c.sendall(m); got = 0
    while got < 64: got += len(c.recv(64))
    lat.append(time.perf_counter() - t)
out["rr"] = statistics.median(lat) * 1e6
c.close()
k = 0; end = time.perf_counter() + (1.0 if quick else 3.0); t = time.perf_counter()
while time.perf_counter() < end:
    c = socket.create_connection((ip, 7), timeout=5)
    c.sendall(b"1"); c.recv(1); c.close(); k += 1
out["cps"] = k / (time.perf_counter() - t)
print(json.dumps(out))
"""


def rows(ns, quick):
    r = ns.python(CLIENT % (STACK_IP, quick), timeout=600)
    try:
        v = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("TCP bench client failed: " + r.stdout + r.stderr[-2000:])
    return [
        ("TCP bulk, peer -> Linux (MB/s)", v["rx"]),
        ("TCP bulk, Linux -> peer (MB/s)", v["tx"]),
        ("TCP 64 B request/response, median (us)", v["rr"]),
        ("TCP connections per second (connect, 1 B echo, close)", v["cps"]),
    ]
