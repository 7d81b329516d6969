"""The StreamLink framing on the bridge's side (ports/cpython/bridge.py FrameStream): frames
come out whole and in order however the stream cuts them, and reading them allocates nothing
per read but the frame handed out (issue 13: a recv(262144) per read was an mmap, mremap and
munmap per frame under `ustack up --runtime micropython`)."""
import random
import socket
import threading
import tracemalloc

from ustack.ports.cpython.bridge import FrameStream, MAX_FRAME, STREAM_READ


def _pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return FrameStream(a), b


def _wire(frames):
    return b"".join(len(f).to_bytes(2, "big") + f for f in frames)


def test_frames_come_out_whole_however_the_stream_cuts_them():
    rnd = random.Random(13)
    frames = [bytes(rnd.getrandbits(8) for _ in range(n))
              for n in [0, 1, 60, 1514, MAX_FRAME, 2, 9000] + [rnd.randrange(1, 1600)
                                                            for _ in range(300)]]
    data = _wire(frames)
    fs, peer = _pair()

    def writer():  # cut at random places, a byte at a time now and then
        i = 0
        while i < len(data):
            k = rnd.choice((1, 2, 3, 700, 5000, 70000))
            peer.sendall(data[i:i + k])
            i += k
        peer.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=writer)
    t.start()
    got = []
    while True:
        f = fs.recv(5)
        if f is None:
            break
        got.append(f)
    t.join()
    assert fs.eof
    assert got == frames


def test_a_burst_larger_than_one_read_keeps_its_frames_in_order():
    """More bytes queued than one read takes (STREAM_READ): the partial frame at the end of
    a read is moved up and completed by the next."""
    frames = [bytes([i & 0xFF]) * (1000 + i % 517) for i in range(3 * STREAM_READ // 1000)]
    fs, peer = _pair()
    t = threading.Thread(target=lambda: (peer.sendall(_wire(frames)),
                                         peer.shutdown(socket.SHUT_WR)))
    t.start()
    got = []
    while True:
        f = fs.recv(5)
        if f is None:
            break
        got.append(f)
    t.join()
    assert got == frames


def test_reading_frames_allocates_only_the_frames():
    """2000 small frames read one by one (each read finds one frame, as a request/response
    does): the peak of what Python allocated stays far below one read's size. The old
    FrameStream made a STREAM_READ-byte object for every read."""
    fs, peer = _pair()
    frame = b"\x5a" * 98
    one = _wire([frame])
    fs.recv(0)   # warm-up: the first call's own objects
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            peer.sendall(one)
            assert fs.recv(5) == frame
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 16384, "reading a 98-byte frame peaked at %d bytes" % peak


def test_send_writes_a_prefix_of_a_buffer_as_one_frame():
    fs, peer = _pair()
    buf = bytearray(b"abcdefgh" * 100)
    fs.send(buf, 5)
    fs.send(b"xyz")
    peer.settimeout(5)
    want = b"\x00\x05abcde\x00\x03xyz"
    got = b""
    while len(got) < len(want):
        got += peer.recv(100)
    assert got == want
