"""Bulk TCP over the TAP without offloads against the Linux kernel (issue 13): plain frames
each way, one write per frame. The stack as a receiver shares one ACK among a burst's
in-order segments (boards/pc_tap.py TCP_ACK_BURST 32: a Linux sender takes stretch ACKs as
from its own GRO receivers); as a sender it builds segments of many MSS and cuts them
itself (software GSO). Both ways every byte arrives, with no bad checksum."""
import json

from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]
MB = 1000 * 1000

# Linux writes n bytes to the stack's discard service, then reads n bytes of its chargen
CLIENT = r"""
import json, socket
n = %d
c = socket.create_connection((%r, 9), timeout=30)
blk = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 16))
left = n
while left:
    k = min(left, len(blk)); c.sendall(blk[:k]); left -= k
c.shutdown(socket.SHUT_WR); c.recv(10); c.close()
c = socket.create_connection((%r, 19), timeout=30)
got = 0; buf = bytearray(1 << 20)
while got < n:
    k = c.recv_into(buf, min(len(buf), n - got))
    if not k: break
    got += k
c.close()
print(json.dumps({"got": got}))
"""


def test_plain_frames_both_ways_with_burst_acks_and_software_gso():
    ns = Netns("plain")
    try:
        sp = StackProc(ns, "--serve", "discard,chargen", "--offload", "off")
        n = 8 * MB
        r = ns.python(CLIENT % (n, STACK_IP, STACK_IP), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["got"] == n
        c = sp.stop()
    finally:
        ns.close()
    # receiving: every byte of the discard upload; far fewer ACKs than segments (every
    # second segment would be one ACK for two)
    assert c["tcp.rx_data_bytes"] >= n, c
    data_segs = n // 1448
    acks = c["tcp.tx_segments"] - c.get("tcp.tx_tso_segments", 0)
    assert acks < data_segs // 4, (acks, data_segs)
    # sending: chargen's segments built many MSS at a time, cut into plain frames
    assert c["eth0.tx_gso_frames"] > 0 and c["eth0.tx_packets"] > n // 1448
    assert c["tcp.tx_tso_segments"] < n // 1448 // 4, c
    assert c.get("tcp.rx_bad_csum", 0) == 0 and c.get("eth0.tx_busy", 0) == 0
