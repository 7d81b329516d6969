"""The multi-queue TAP's reading order (hal/tap.py), on datagram socket pairs standing in for
its queues: the queue we send on is read first, the others get a share of every run, and a
queue that a one-flow flood keeps full while another runs dry stops being the first."""
import socket

from ustack.hal.tap import Tap, PQ_RUN, SWITCH


class Queues:
    def __init__(self, n):
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(n)]
        for a, b in self.pairs:
            a.setblocking(False)
            b.setblocking(False)
        self.tap = Tap.__new__(Tap)
        self.tap._queues([a.fileno() for a, _ in self.pairs], b"\x02\0\0\0\0\x02", 1500)
        self.buf = bytearray(64)

    def put(self, q, count):
        """count frames onto queue q; a full queue drops the rest, as a TAP's ring does."""
        for _ in range(count):
            try:
                self.pairs[q][1].send(b"%d" % q)
            except BlockingIOError:
                return

    def read(self, count):
        """Which queue each of count reads came from (None: nothing read)."""
        out = []
        for _ in range(count):
            n = self.tap.recv_into(self.buf)
            out.append(int(bytes(self.buf[:n])) if n else None)
        return out

    def close(self):
        for a, b in self.pairs:
            a.close()
            b.close()


def test_the_first_queue_is_drained_first_and_the_others_share_what_is_left():
    q = Queues(4)
    try:
        q.put(0, 10)
        for i in (1, 2, 3):
            q.put(i, 10)
        got = q.read(40)
        assert got[:10] == [0] * 10
        assert sorted(got[10:]) == [1] * 10 + [2] * 10 + [3] * 10
        assert q.read(2) == [None, None]
    finally:
        q.close()


def test_the_first_queue_is_looked_at_again_within_a_few_of_the_others_frames():
    q = Queues(3)
    try:
        q.put(1, 50)
        q.put(2, 50)
        q.read(3)
        q.put(0, 1)  # a frame of a connection we talk to arrives behind the flood
        assert 0 in q.read(5)
    finally:
        q.close()


def test_a_busy_first_queue_still_leaves_one_frame_in_pq_run_to_the_others():
    q = Queues(2)
    try:
        q.put(0, 4 * PQ_RUN)
        q.put(1, 4)
        got = q.read(4 * PQ_RUN + 4)
        assert got.count(1) == 4 and got.index(1) == PQ_RUN
    finally:
        q.close()


def test_a_first_queue_kept_full_by_one_flow_moves_to_a_queue_that_ran_dry():
    q = Queues(3)
    try:
        first = q.tap.fd
        for _ in range(SWITCH + 1):
            q.put(0, PQ_RUN)     # the flood refills queue 0 faster than we read it
            q.read(PQ_RUN + 1)   # queues 1 and 2 are looked at, and are empty
        assert q.tap.moves == 1 and q.tap.fd != first
        assert q.tap.fd in (q.pairs[1][0].fileno(), q.pairs[2][0].fileno())
        # what we send now goes out on the new first queue: the kernel steers our flows there
        assert q.tap.send(bytearray(b"hello"), 5)
        peer = [b for a, b in q.pairs if a.fileno() == q.tap.fd][0]
        assert peer.recv(64) == b"hello"
    finally:
        q.close()


def test_a_flood_over_every_queue_moves_nothing():
    q = Queues(3)
    try:
        for _ in range(SWITCH + 1):
            for i in range(3):
                q.put(i, PQ_RUN)
            q.read(PQ_RUN + 1)
        assert q.tap.moves == 0
    finally:
        q.close()


def _tcp_frame(flags):
    """A minimal Ethernet/IPv4/TCP frame with the given TCP flags byte."""
    eth = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00"
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1])
    tcp = bytes(13) + bytes([flags]) + bytes(6)
    return bytearray(eth + ip + tcp)


def test_stateless_replies_leave_on_another_queue_than_the_flows_we_talk_to():
    """A RST, or a SYN-ACK the core marks as keeping no state (a SYN cookie), would steer the
    flood flow it answers onto the queue we read first: they go out on the last queue. A SYN-
    ACK for a half-open connection we hold, data and ACKs leave on the first, so a real
    connection's segments are never split over two queues (reordered)."""
    q = Queues(4)
    try:
        sent = []
        for flags, cookie in ((0x12, False), (0x12, True), (0x04, False), (0x14, False),
                              (0x10, False), (0x18, False)):
            f = _tcp_frame(flags)
            q.tap.stateless = cookie
            assert q.tap.send(f, len(f))
            q.tap.stateless = False
            for i, (_, b) in enumerate(q.pairs):
                try:
                    b.recv(100)
                    sent.append(i)
                except BlockingIOError:
                    pass
        assert sent == [0, 3, 3, 3, 0, 0]
    finally:
        q.close()
