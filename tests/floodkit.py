"""Floods from real attack tools against `ustack up` in a throwaway namespace, and what runs
alongside them: an established echo connection timing 512-byte round trips, new connections,
a ping, an HTTP transfer checked by SHA-256, and the stack's RSS. Shared by
tests/interop/test_floods.py (a few seconds each) and benchmarks/floods.py (30 s each).

Frame accounting: the kernel counts, on its side of the TAP, the frames it queued for the
stack that the stack read (tx_packets: updated when the stack's read() takes one) and the
ones it dropped because the stack's queue was full (tx_dropped). Every frame hping3 put on
the TAP is one or the other, and every frame the stack read is counted in the stack's own
`eth0.rx_packets`, then in exactly one per-reason counter further up.
"""
import json
import re
import signal
import subprocess
import sys
import time

from tests.netns import STACK_IP

# hping3 arguments per flood (all at full speed: --flood)
FLOODS = {
    "syn": ["-S", "-p", "80"],
    "syn-rand-source": ["-S", "-p", "7", "--rand-source"],
    "syn-closed-port": ["-S", "-p", "81"],
    "ack": ["-A", "-p", "80"],
    "fin": ["-F", "-p", "80"],
    "frag": ["-f", "-d", "1200", "-p", "9"],
    "frag-more": ["-x", "-d", "400", "-p", "9"],
    "udp": ["-2", "-p", "9", "-d", "64"],
}

ECHO_CLIENT = r"""
import json, socket, struct, sys, threading, time
host, secs, period, size, overlap = %r, %f, %f, %d, %r
c = socket.create_connection((host, 7), timeout=5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.settimeout(5)
print("connected", flush=True)
sys.stdin.readline()  # go
rtts = []; bad = 0; fails = []; news = []
end = time.monotonic() + secs

def new_conn():
    t1 = time.monotonic()
    try:
        n = socket.create_connection((host, 7), timeout=5)
        n.settimeout(5)
        n.sendall(b"hello")
        ok = n.recv(5) == b"hello"
        n.close()
    except OSError:
        ok = False
    news.append([ok, time.monotonic() - t1])

def new_conns():  # a new legitimate connection every 0.5 s, beside the echo stream
    started = []
    # overlapping, the last ones start 3 s before the flood ends: all their SYNs (at 0, 1
    # and 3 s) meet it
    while time.monotonic() < end - (3 if overlap else 0):
        t1 = time.monotonic()
        if overlap:  # each on its own: one that waits for SYN retransmissions delays none
            started.append(threading.Thread(target=new_conn))
            started[-1].start()
        else:
            new_conn()
        rest = 0.5 - (time.monotonic() - t1)
        if rest > 0:
            time.sleep(rest)
    for t in started:
        t.join()
th = threading.Thread(target=new_conns); th.start()
seq = 0
while time.monotonic() < end:
    t0 = time.monotonic()
    m = bytes((seq + i) & 0xFF for i in range(size))
    seq += 1
    try:
        c.sendall(m)
        got = b""
        while len(got) < size:
            d = c.recv(size - len(got))
            if not d:
                raise OSError("closed")
            got += d
        rtts.append(time.monotonic() - t0)
        if got != m:
            bad += 1
    except OSError as e:
        fails.append(repr(e)); break
    rest = period - (time.monotonic() - t0)
    if rest > 0:
        time.sleep(rest)
th.join()
# tcp_info: 8 bytes of u8 fields, then u32s; tcpi_total_retrans is the 24th u32
retrans = struct.unpack_from("I", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
c.close()
print(json.dumps({"rtts": rtts, "bad": bad, "fails": fails, "new": news,
                  "client_retrans": retrans}), flush=True)
"""


def vm_rss_kb(pid):
    """VmRSS of pid, or of its largest descendant (the micropython process behind the
    --runtime micropython bridge is a child)."""
    best = 0
    for p in [pid] + _descendants(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def _descendants(pid):
    out = []
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(_descendants(k))
    return out


def tap_counters(ns, tap="ustk0"):
    """The kernel's counters on its side of the TAP: tx = towards the stack."""
    r = ns.run(["ip", "-j", "-s", "link", "show", "dev", tap])
    s = json.loads(r.stdout)[0]["stats64"]
    return {"tx_packets": s["tx"]["packets"], "tx_dropped": s["tx"]["dropped"],
            "rx_packets": s["rx"]["packets"]}


def settled(ns, tap="ustk0", most=10.0):
    """The TAP's counters once the stack has read what its queues still held (two reads
    0.2 s apart agree)."""
    end = time.monotonic() + most
    a = tap_counters(ns, tap)
    while time.monotonic() < end:
        time.sleep(0.2)
        b = tap_counters(ns, tap)
        if b["tx_packets"] == a["tx_packets"]:
            return b
        a = b
    return a


def qdisc_drops(ns, tap="ustk0"):
    """Frames the TAP's queueing discipline dropped before the device (0 with noqueue)."""
    r = ns.run(["tc", "-s", "-j", "qdisc", "show", "dev", tap])
    try:
        return sum(q.get("drops", 0) for q in json.loads(r.stdout))
    except ValueError:
        return 0


class Hping:
    """hping3 --flood in the namespace; stop() ends it with SIGINT and returns how many
    packets it says it sent."""

    def __init__(self, ns, args, target=STACK_IP):
        self.p = subprocess.Popen(ns.cmd(["hping3", "--flood", "-q"] + list(args) + [target]),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ns.procs.append(self.p)
        self.t0 = time.monotonic()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=10)
        self.secs = time.monotonic() - self.t0
        m = re.search(r"(\d+) packets transmitted", out)
        self.sent = int(m.group(1)) if m else None
        self.out = out
        return self.sent


class Alongside:
    """What runs while a flood goes on: the echo client, a ping and an HTTP transfer."""

    def __init__(self, ns, secs, transfer=2000000, ping_interval=0.1, period=0.05,
                 overlap=False):
        self.ns = ns
        self.secs = secs
        self.echo = subprocess.Popen(ns.cmd([sys.executable, "-c", ECHO_CLIENT % (
            STACK_IP, secs, period, 512, overlap)]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        ns.procs.append(self.echo)
        line = self.echo.stdout.readline()
        if line.strip() != "connected":
            raise RuntimeError("echo client did not connect: %r %s" % (
                line, self.echo.stderr.read()))
        self.count = max(1, int(secs / ping_interval))
        self.ping_interval = ping_interval
        self.transfer = transfer

    def go(self):
        self.echo.stdin.write("go\n")
        self.echo.stdin.flush()
        self.ping = subprocess.Popen(self.ns.cmd(["ping", "-n", "-q", "-i", str(
            self.ping_interval), "-c", str(self.count), "-W", "1", STACK_IP]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ns.procs.append(self.ping)
        self.curl = None
        if self.transfer:
            self.curl = subprocess.Popen(self.ns.cmd(["sh", "-c", (
                "curl -s -m %d http://%s/bytes/%d | sha256sum") % (
                int(self.secs) + 60, STACK_IP, self.transfer)]),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.ns.procs.append(self.curl)

    def results(self):
        """{'rtts': [...s], 'bad': n, 'fails': [...], 'new': [[ok, s]...], 'ping_sent',
        'ping_got', 'sha256'}"""
        out, err = self.echo.communicate(timeout=self.secs + 60)
        lines = [x for x in out.splitlines() if x.startswith("{")]
        if not lines:
            raise AssertionError("echo client gave no result: " + out + err[-2000:])
        r = json.loads(lines[-1])
        pout, _ = self.ping.communicate(timeout=self.secs + 30)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", pout)
        r["ping_sent"], r["ping_got"] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if self.curl is not None:
            cout, _ = self.curl.communicate(timeout=self.secs + 90)
            r["sha256"] = cout.split()[0] if cout.split() else ""
        return r


def pattern_sha(n):
    """SHA-256 of the http service's /bytes/n body: byte i = i mod 251."""
    import hashlib
    block = bytes(range(251)) * 261
    h = hashlib.sha256()
    left = n
    while left:
        k = min(left, len(block))
        h.update(block[:k])
        left -= k
    return h.hexdigest()


def percentile(xs, q):
    if not xs:
        return float("nan")
    s = sorted(xs)
    i = min(len(s) - 1, int(round(q * (len(s) - 1))))
    return s[i]


PROBE = r"""
import json, os, socket, struct, subprocess, time
from ustack.hal.tap import Tap
tap, queues, want, cands = %r, %d, %d, %r
t = Tap(tap, queues=queues, steer=False)
subprocess.run(["ip", "link", "set", tap, "up"], check=True)
time.sleep(0.2)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((tap, 0))
def where(f):
    for fd in t.fds:
        try:
            while True:
                os.read(fd, 4096)
        except BlockingIOError:
            pass
    s.send(f)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        time.sleep(0.002)
        for q, fd in enumerate(t.fds):
            try:
                while True:
                    if os.read(fd, 4096) == f:
                        return q
            except BlockingIOError:
                pass
    return -1
found = None
for src in cands:
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 36, 1, 0x2000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(%r)) + bytes(16)
    if where(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip) == want:
        found = src
        break
t.close()
print(json.dumps(found))
"""


def source_on_queue(ns, want=0, queues=8):
    """An address of 192.0.2.0/24 whose IPv4 fragments to the stack the kernel puts on queue
    `want` of a TAP of `queues` queues when no steering program chooses (tun's automatic
    flow steering: a flow it never saw us send on goes by its hash, and a fragment's carries
    only the addresses and protocol; the hash's key is random per boot). Queue 0 is the one
    the stack sends on and reads first without the program: a fragment flood from there
    lands on its own flows' queue. Probed on a TAP of its own before the stack starts."""
    cands = ["192.0.2.%d" % i for i in range(10, 250)]
    r = ns.python(PROBE % ("ustkprobe", queues, want, cands, STACK_IP))
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    assert r.returncode == 0 and lines, r.stdout + r.stderr
    return json.loads(lines[-1])


def run_flood(ns, stack, kind, secs, transfer=2000000, rss_every=0.25, overlap=False,
              source=None):
    """One flood of `secs` seconds with everything alongside; returns a dict of results:
    offered/absorbed/dropped frames, RTTs, ping, SHA-256, RSS before/peak/after, counters.
    overlap: the new connections start every 0.5 s whether or not the last one is through
    (else each waits for the one before it, up to its 5 s). source: hping3's source address
    (-a), else the namespace's own."""
    pid = stack.p.pid
    side = Alongside(ns, secs, transfer, overlap=overlap)
    before = tap_counters(ns)
    q0 = qdisc_drops(ns)
    rss0 = vm_rss_kb(pid)
    side.go()
    h = Hping(ns, FLOODS[kind] + (["-a", source] if source else []))
    rss = [rss0]
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(rss_every)
        rss.append(vm_rss_kb(pid))
    sent = h.stop()
    r = side.results()
    after = settled(ns)
    r.update({
        "kind": kind, "source": source, "secs": h.secs, "hping_sent": sent,
        "tap_read": after["tx_packets"] - before["tx_packets"],
        "tap_dropped": after["tx_dropped"] - before["tx_dropped"],
        "qdisc_dropped": qdisc_drops(ns) - q0,
        "rss_start_kb": rss0, "rss_peak_kb": max(rss), "rss_end_kb": rss[-1], "rss": rss,
    })
    return r
