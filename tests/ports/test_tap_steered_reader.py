"""The reading order of a TAP with a steering program (hal/tap.py `_recv_steered`), on
datagram socket pairs standing in for its queues (0 OURS, 1..n-4 REST, AGAIN, SYN, FRAG):
OURS first, then REST, AGAIN, SYN, FRAG, each for at most its share of a round (ROUND) while
another holds frames, and all that is left otherwise."""
import socket

from ustack.hal.tap import ROUND
from ustack.hal.tapsteer import GEN_SHIFT
from tests.ports.test_tap_queues import Queues as PlainQueues

OURS, AGAIN, SYN, FRAG = 0, 5, 6, 7


class FakeSteering:
    """What the reader and send use of hal/tapsteer.py's Steering."""

    def __init__(self):
        self.rotated = 0
        self.marked = []
        self.gen = -1

    def rotate(self, now_ns):
        self.gen = now_ns >> GEN_SHIFT
        self.rotated += 1

    def mark(self, b, n, now_ns):
        self.marked.append(bytes(b[:n]))

    def detach(self, fd):
        pass

    def close(self):
        pass


class Queues(PlainQueues):
    """tests/ports/test_tap_queues.py's socket-pair queues, 8 of them, read as steered."""

    def __init__(self, n=8):
        PlainQueues.__init__(self, n)
        for a, b in self.pairs:
            b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.steer = FakeSteering()
        self.tap._steered(self.steer)


def test_ours_then_rest_then_again_then_syn_then_frag():
    q = Queues()
    try:
        for i in (FRAG, SYN, AGAIN, 4, 3, 2, 1, OURS):
            q.put(i, 3)
        got = q.read(24)
        assert got == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3 + [6] * 3 + \
            [7] * 3, got
        assert q.read(2) == [None, None]
        assert q.tap.qreads == [3] * 8
    finally:
        q.close()


def test_a_syn_flood_gets_all_that_is_left_and_a_frame_of_ours_waits_at_most_a_round():
    q = Queues()
    try:
        q.put(SYN, 500)
        assert q.read(100) == [SYN] * 100   # nothing else to read: all of it
        q.put(OURS, 1)
        q.put(2, 1)
        got = q.read(ROUND[3] + 2)
        # within the SYN queue's share of the round, then OURS and REST come first
        assert got.index(OURS) <= ROUND[3] and got.index(2) == got.index(OURS) + 1, got
    finally:
        q.close()


def test_the_syn_and_fragment_queues_get_their_share_beside_a_busy_rest():
    """A flood in REST (an ACK or UDP flood spread over its queues) leaves the SYN queues
    and FRAG their share of each round: a client's SYN is read within a round."""
    q = Queues()
    try:
        for i in (1, 2, 3, 4):
            q.put(i, 200)
        q.put(SYN, 1)
        q.put(AGAIN, 1)
        q.put(FRAG, 1)
        got = q.read(4 * ROUND[1] + 3)
        assert sorted(got[-3:]) == [AGAIN, SYN, FRAG], got
        assert got.count(1) == got.count(4) == ROUND[1], got
    finally:
        q.close()


def test_ours_takes_at_most_its_share_before_the_others_get_theirs():
    q = Queues()
    try:
        q.put(OURS, 3 * ROUND[0])
        q.put(SYN, 3)
        got = q.read(ROUND[0] + 3)
        assert got == [OURS] * ROUND[0] + [SYN] * 3, got
        assert q.steer.rotated >= 1   # a round lets SEEN's next generation be cleared
    finally:
        q.close()


def test_seen_is_rotated_once_a_generation_not_every_round():
    """The reader clears SEEN's next generation when a round starts in a new one (1 s), not
    with a call at every round (issue 13: a Python call on every request's path)."""
    q = Queues()
    try:
        for _ in range(50):
            q.put(OURS, 1)
            assert q.read(2) == [OURS, None]   # the frame, then a round read dry
        assert 1 <= q.steer.rotated <= 3   # 50 rounds and more within a second or so
    finally:
        q.close()


def test_sending_notes_the_flow_unless_the_reply_keeps_no_state():
    q = Queues()
    try:
        f = bytearray(b"x" * 60)
        assert q.tap.send(f, 60)
        q.tap.stateless = True   # a SYN cookie's SYN-ACK (core/tcp/output.py)
        assert q.tap.send(f, 60)
        q.tap.stateless = False
        assert q.steer.marked == [bytes(f)]
        # every frame goes out on the first queue's fd (the program, not the queue we send
        # on, decides where a flow's frames come back)
        assert q.pairs[0][1].recv(100) == bytes(f) and q.pairs[0][1].recv(100) == bytes(f)
    finally:
        q.close()


def test_a_frame_read_from_again_is_said_to_be_a_syn_seen_before():
    """rx_syn_again: the core answers such a SYN (a client's retransmission) with a cookie
    past the poll's budget (core/tcp/input.py _cookie); every other frame is not one."""
    q = Queues()
    try:
        q.put(AGAIN, 1)
        q.put(SYN, 1)
        q.put(OURS, 1)
        seen = []
        for _ in range(3):
            assert q.tap.recv_into(q.buf)
            seen.append((int(bytes(q.buf[:1])), q.tap.rx_syn_again))
        assert seen == [(OURS, False), (AGAIN, True), (SYN, False)], seen
        assert q.tap.recv_into(q.buf) == 0
    finally:
        q.close()


def test_a_cookie_sent_with_offloads_is_not_noted_either():
    """With the virtio-net header (`--offload auto`, the default), a SYN cookie's SYN-ACK goes
    out through send_offload (its checksum left to the kernel): it keeps no state, so its
    flow must not come to OURS - the RSTs a one-source flood's host answers cookies with
    stay off the queue read first, as through send."""
    from ustack.core.buf import OFL_CSUM
    q = Queues()
    try:
        t = q.tap
        t.vnet = True
        t._txv = [t._txhdr, None]
        f = bytearray(bytes(12) + b"\x08\x00" + bytes(40))
        f[14] = 0x45
        f[23] = 6
        t.stateless = True
        assert t.send_offload(f, len(f), OFL_CSUM)
        t.stateless = False
        assert q.steer.marked == []
        assert t.send_offload(f, len(f), OFL_CSUM)
        assert q.steer.marked == [bytes(f)]
    finally:
        q.close()


def test_every_tap_counter_is_in_the_readme():
    import os
    from ustack.hal.tap import TAP_COUNTERS
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    i = readme.index("## Counters")
    section = readme[i:readme.index("\n## ", i + 5)]
    row = [x for x in section.splitlines() if x.startswith("| `link.` |")][0]
    for n in TAP_COUNTERS:
        assert "`%s`" % n in row, n


def test_the_sender_notes_flows_by_the_cores_compiled_bucket():
    """hal/tapsteer.py's bucket is core/wire/vnet.py's flow_bucket (compiled with the core;
    tests/unit/test_flow_bucket.py checks it frame kind by frame kind), and its constants are
    the ones the program is built with."""
    from ustack.core.wire import vnet
    from ustack.hal import tapsteer
    assert tapsteer.bucket is vnet.flow_bucket
    assert (tapsteer.GOLDEN, tapsteer.BUCKET_SHIFT) == (vnet.FLOW_GOLDEN, vnet.FLOW_SHIFT)
    assert tapsteer.STAMPS == 1 << (32 - vnet.FLOW_SHIFT)
