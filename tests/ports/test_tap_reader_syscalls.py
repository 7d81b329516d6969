"""What the TAP reader asks the kernel for one request (issue 13), on datagram socket pairs
standing in for the queues: no read that can only fail with EAGAIN after a lone frame (a
poll() of that queue instead), no poll() of its own when the port's poll() just said which
queues hold frames (poll_ready), and no second look once a round read every queue dry. A
burst is still read to its end."""
from tests.ports.test_tap_queues import Queues as PlainQueues
from tests.ports.test_tap_steered_reader import Queues as SteeredQueues


class Counted:
    """Counts the reader's reads (and those that found nothing) and its own looks."""

    def __init__(self, q):
        self.q = q
        tap = q.tap
        self.reads = self.empty = self.looks = 0
        read = tap._read

        def counted_read(fd, buf):
            self.reads += 1
            n = read(fd, buf)
            if not n:
                self.empty += 1
            return n
        tap._read = counted_read
        if getattr(tap, "poller", None) is not None:
            counter = self

            # the reader's look at every queue is its poller's wait (hal/tapio.Waiter: a C
            # class in the compiled build, whose wait a subclass may override)
            class Look(type(tap.poller)):
                def wait(self, timeout_s, out):
                    counter.looks += 1
                    return super().wait(timeout_s, out)
            old = tap.poller
            tap.poller = Look(tap.fds)
            old.close()

    def burst(self):
        """One poll of the stack: frames read until the reader says none (queue numbers)."""
        got = []
        while True:
            n = self.q.tap.recv_into(self.q.buf)
            if not n:
                return got
            got.append(int(bytes(self.q.buf[:n])))


def test_one_frame_on_a_single_queue_is_one_read():
    q = PlainQueues(1)
    c = Counted(q)
    try:
        q.put(0, 1)
        assert c.burst() == [0]
        assert (c.reads, c.empty) == (1, 0)
        q.put(0, 5)   # a burst is read to its end: the last read finds nothing
        assert c.burst() == [0] * 5
        assert (c.reads, c.empty) == (1 + 6, 1)
        assert c.burst() == [] and q.tap.recv_into(q.buf) == 0
    finally:
        q.close()


def test_a_steered_tap_told_by_the_port_reads_one_frame_with_one_read_and_no_look():
    q = SteeredQueues()
    c = Counted(q)
    try:
        q.put(0, 1)
        q.tap.poll_ready(q.tap.fds[0])   # the runner's poll() found queue 0 readable
        assert c.burst() == [0]
        assert (c.reads, c.empty, c.looks) == (1, 0, 0)
        # not told: one look of its own, then the same
        q.put(3, 1)
        assert c.burst() == [3]
        assert (c.reads, c.empty, c.looks) == (2, 0, 1)
    finally:
        q.close()


def test_a_steered_burst_is_read_whole_and_what_came_meanwhile_is_found_next_poll():
    q = SteeredQueues()
    c = Counted(q)
    try:
        q.put(0, 5)
        q.put(2, 2)
        assert c.burst() == [0] * 5 + [2] * 2
        q.put(1, 1)        # after the round read dry: the next poll of the stack finds it
        assert c.burst() == [1]
        assert c.burst() == []
    finally:
        q.close()
