"""The TAP's split read for a CAP_GRO link (hal/tap.py recv_split, issue 13): one readv of
[virtio-net header, packet buffer, a large buffer's tail]; a frame longer than the packet
buffer goes on in the large buffer, its whole length returned. On datagram socket pairs
standing in for the queue (each datagram a header and a frame, as the TAP reads them)."""
import socket

from ustack.core.wire import vnet
from ustack.hal.tap import Tap


class Queue:
    def __init__(self):
        self.a, self.b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.a.setblocking(False)
        self.b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.tap = Tap.__new__(Tap)
        self.tap._queues([self.a.fileno()], b"\x02\0\0\0\0\x02", 1500)
        self.tap.vnet = True

    def put(self, frame):
        self.b.send(bytes(vnet.HDR_LEN) + frame)

    def close(self):
        self.a.close()
        self.b.close()


def test_a_small_frame_is_read_into_the_packet_buffer_alone_and_a_large_one_spills():
    q = Queue()
    try:
        buf = bytearray(1600)
        big = bytearray(66000)
        small = bytes(range(60))
        q.put(small)
        assert q.tap.recv_split(buf, big, 1600) == 60
        assert bytes(buf[:60]) == small and big == bytearray(66000)  # the large one untouched
        frame = bytes((i * 7) & 0xFF for i in range(40000))
        q.put(frame)
        assert q.tap.recv_split(buf, big, 1600) == 40000
        assert bytes(buf) == frame[:1600] and bytes(big[1600:40000]) == frame[1600:]
        # the same large buffer again reuses its tail; another one gets its own
        other = bytearray(66000)
        q.put(frame)
        assert q.tap.recv_split(buf, other, 1600) == 40000
        assert bytes(other[1600:40000]) == frame[1600:]
        assert q.tap.recv_split(buf, other, 1600) == 0   # nothing waits
        # a plain read after a split one reads into its buffer alone
        q.put(small)
        assert q.tap.recv_into(buf) == 60 and q.tap.rx_truncated == 0
    finally:
        q.close()


def test_a_lone_frame_through_the_split_read_is_one_read_and_no_empty_one():
    """The echo/ping path's syscalls (test_tap_reader_syscalls) through recv_split: the frame's
    readv, then a poll() of the queue instead of a read that fails with EAGAIN."""
    q = Queue()
    try:
        reads = []
        read = q.tap._read

        def counted(fd, buf):
            n = read(fd, buf)
            reads.append(n)
            return n
        q.tap._read = counted
        buf = bytearray(1600)
        big = bytearray(66000)
        q.put(bytes(60))
        assert q.tap.recv_split(buf, big, 1600) == 60
        assert q.tap.recv_split(buf, big, 1600) == 0
        assert reads == [60]
    finally:
        q.close()
