"""Resource-exhaustion scenarios on the two-stack bench: fill what a careless application or a
stranger can fill, then prove the stack still does its job (issue 8). Portable (MicroPython's
unit runner imports it too)."""
from ustack.core import socket as so
from ustack.core.arp import FREE
from tests.twostack import Bench, IP_A, IP_B


def forget_neighbours(stack):
    """Empty every ARP cache of stack, so the next packet must resolve afresh."""
    for i in stack.ifaces:
        arp = i.arp
        for k in range(arp.size):
            if arp.pending[k] is not None:
                stack.free(arp.pending[k])
                arp.pending[k] = None
            arp.state[k] = FREE


def flood_unread_udp(b, nsock, per_sock, size=32):
    """nsock UDP sockets on B that nobody reads, each sent per_sock datagrams by A. Returns
    (B's sockets, A's sender)."""
    socks = []
    for i in range(nsock):
        s = b.b.socket(so.AF_INET, so.SOCK_DGRAM)
        s.bind(("", 1000 + i))
        s.setblocking(False)
        socks.append(s)
    cli = b.a.socket(so.AF_INET, so.SOCK_DGRAM)
    cli.setblocking(False)
    payload = b"u" * size
    for k in range(per_sock):
        for i in range(nsock):
            cli.sendto(payload, (IP_B, 1000 + i))
        b.pump(2)
    return socks, cli


def tcp_round_trip(b, port=7007, data=b"still here"):
    """A connects to a listener on B, sends data, B echoes it: True when it all worked."""
    ls = b.b.socket(so.AF_INET, so.SOCK_STREAM)
    ls.bind(("", port))
    ls.listen(1)
    ls.setblocking(False)
    c = b.a.socket(so.AF_INET, so.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((IP_B, port))
    got = [None, b""]

    def accepted():
        try:
            got[0] = ls.accept()[0]
            got[0].setblocking(False)
            return True
        except OSError:
            return False
    ok = b.until(accepted, 5000)
    if ok:
        c.send(data)
        srv = got[0]

        def echoed():
            try:
                d = srv.recv(100)
                if d:
                    srv.send(d)
            except OSError:
                pass
            try:
                got[1] += c.recv(100)
            except OSError:
                pass
            return got[1] == data
        ok = b.until(echoed, 5000)
        srv.close()
    c.close()
    ls.close()
    b.run(200)
    return ok


def unread_sockets_leave_the_stack_working(config, nsock=4, per_sock=None):
    """Issue 8 hole 3: nsock unread UDP sockets flooded with more than they may queue; B must
    still answer ARP and ping, resolve and ping itself, and carry a TCP round trip. Returns
    the bench (sockets still open) for further checks."""
    b = Bench(config)
    cfg = b.b.config
    b.a.ping(IP_B, count=1)
    if per_sock is None:
        per_sock = cfg["UDP_RX_QUEUE"] + 4
    socks, cli = flood_unread_udp(b, nsock, per_sock)
    # ARP both ways from scratch, then ping each way
    forget_neighbours(b.a)
    forget_neighbours(b.b)
    assert b.a.ping(IP_B, count=2, interval_ms=10, timeout_ms=500).received == 2
    forget_neighbours(b.a)
    forget_neighbours(b.b)
    assert b.b.ping(IP_A, count=2, interval_ms=10, timeout_ms=500).received == 2
    assert tcp_round_trip(b)
    pool = b.b.pool
    queued = sum(s.qlen for s in socks)
    assert queued > 0 and pool.queued <= cfg["SOCK_QUEUE_PBUFS"]
    assert pool.nfree > cfg["PBUF_RESERVE_TX"], "receive must keep at least one buffer"
    c = b.b.counters()
    dropped = c.get("udp.rx_queue_full", 0) + c.get("udp.rx_rcvbuf", 0) + \
        c.get("udp.rx_pool_share", 0)
    assert queued + dropped == nsock * per_sock, c  # every datagram queued or counted
    assert all(s.qlen for s in socks[:1])  # the unread data is still there
    return b, socks + [cli]


def spoofed_datagrams(b, n, first=100):
    """A sends B n UDP datagrams to a closed port from on-link addresses nobody owns
    (192.0.2.<first>...): each port-unreachable answer waits in B's ARP cache for a
    neighbour that never answers. (Echo replies go back to the request's MAC: no ARP.)"""
    from tests import frames
    r = b.a.socket(so.AF_INET, so.SOCK_RAW, so.IPPROTO_UDP)
    r.setsockopt(so.IPPROTO_IP, so.IP_HDRINCL, 1)
    dst = bytes([192, 0, 2, 11])
    for i in range(n):
        src = bytes([192, 0, 2, first + i])
        r.sendto(frames.ipv4(src, dst, 17, frames.udp(src, dst, 4000, 9999, b"spoof" * 8),
                             ident=i + 1), (IP_B, 0))
        b.pump(2)
    r.close()


def arp_strangers_leave_the_stack_working(config, n=None):
    """Answers to spoofed on-link sources hold at most ARP_PENDING_PBUFS of B's buffers;
    B keeps answering ping and carrying TCP meanwhile."""
    b = Bench(config)
    cfg = b.b.config
    b.a.ping(IP_B, count=1)
    if n is None:
        n = min(cfg["ARP_ENTRIES"] + 2, cfg["ICMP_BURST"])
    spoofed_datagrams(b, n)
    assert b.b.pool.count - b.b.pool.nfree <= cfg["ARP_PENDING_PBUFS"]
    arp = b.b.ifaces[0].arp
    assert 0 < arp.npending <= cfg["ARP_PENDING_PBUFS"]
    assert b.b.counters()["b0.arp.pending_dropped"] >= n - cfg["ARP_PENDING_PBUFS"]
    assert b.a.ping(IP_B, count=2, interval_ms=10, timeout_ms=500).received == 2
    assert tcp_round_trip(b)
    b.run(cfg["ARP_RETRY_MS"] * (cfg["ARP_MAX_RETRIES"] + 2), step=50)
    assert arp.npending == 0 and b.pools_full()
    return b
