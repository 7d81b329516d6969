"""Header prediction (core/tcp/input.py _predicted): the next in-order data segment of an
ESTABLISHED connection that acknowledges nothing new takes a short path, everything else the
full RFC 9293 3.10.7.4 one. The short path must do exactly what the full one does: two stacks
built alike, one with header prediction and one without, get the same segments (in order,
out of order, old, beyond the window, with old timestamps, new ACKs, window changes, other
flags) and must answer with the same frames and end in the same state: here the short path's
cases one by one, in tests/property/test_prediction_property.py the comparison."""
import struct

from ustack.core import socket as so
from ustack.core.tcp import input as inp
from tests import frames as F
from tests.feed import Fed

IRS = 0xFFFFF000        # the client's ISN: its sequence numbers wrap during a test
TS0 = 0x7FFFFF00        # its first TSval: wraps the sign bit during a test
WSHIFT = 7
ACK, PSH, FIN, SYN, RST, URG, ECE, CWR = 0x10, 0x08, 0x01, 0x02, 0x04, 0x20, 0x40, 0x80


def _frame(seq, ack, flags, data=b"", win=512, ts=None, sack=None):
    opts = b""
    if ts is not None:
        opts = b"\x01\x01\x08\x0a" + struct.pack("!II", ts[0] & 0xFFFFFFFF, ts[1])
    if sack is not None:
        opts += b"\x01\x01\x05\x0a" + struct.pack("!II", *sack)
    t = F.tcp(F.HOST_IP, F.STACK_IP, 40000, 80, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
              data, window=win, options=opts)
    return F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800, F.ipv4(F.HOST_IP, F.STACK_IP, 6, t))


def _ts_of(f):
    v = F.tsval(f)
    assert v is not None, "no timestamp"
    return v


class Conn:
    """A stack at 192.0.2.2 with one connection accepted on port 80 from a raw client that
    offered MSS, SACK, timestamps and window scaling (as Linux does), and 3000 bytes of its
    own queued to send."""

    def __init__(self, predict):
        self.predict = predict
        self.fed = Fed()
        st = self.fed.stack
        st.seed(7)                  # the same ISS, TSval offset and IDs in both stacks
        st.tcp.key = (1, 2, 3, 4)   # RFC 6528's secret
        ls = self.fed.stack.socket(so.AF_INET, so.SOCK_STREAM)
        ls.setblocking(False)
        ls.bind(("", 80))
        ls.listen(4)
        syn = F.tcp(F.HOST_IP, F.STACK_IP, 40000, 80, IRS, 0, SYN, window=65535,
                    options=struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02\x08\x0a" +
                    struct.pack("!II", TS0, 0) + b"\x01\x03\x03" + bytes((WSHIFT,)))
        out = self.fed.feed(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                                  F.ipv4(F.HOST_IP, F.STACK_IP, 6, syn)))
        self.synack = out[0]
        self.iss = struct.unpack_from("!I", out[0], 38)[0]
        self.tsecr = _ts_of(out[0])
        self.feed(_frame(IRS + 1, self.iss + 1, ACK, ts=(TS0, self.tsecr)))
        self.sock, _ = ls.accept()
        self.sock.setblocking(False)
        self.sock.send(bytes(range(256)) * 12)   # 3072 bytes out: ACKs have something to take
        self.fed.advance(0)
        self.tcb = self.sock.tcb

    def feed(self, frame):
        inp.HEADER_PREDICTION = self.predict
        try:
            return self.fed.feed(frame)
        finally:
            inp.HEADER_PREDICTION = True

    def state(self):
        t = self.tcb
        fields = {n: getattr(t, n) for n in dir(t) if not n.startswith("_") and
                  isinstance(getattr(t, n), int)}
        c = dict(self.fed.counters())
        c.pop("tcp.rx_predicted", None)
        r = t.rcv
        held = bytearray(r.count if r is not None else 0)
        if held:
            r.peek_into(held, 0, 0, r.count)
        return fields, c, bytes(held)


def _pair():
    a, b = Conn(True), Conn(False)
    assert a.synack == b.synack and a.state() == b.state()   # built alike
    return a, b


def _ctr(c, name):
    return dict(c.fed.counters()).get("tcp." + name, 0)


# ---- the short path is taken for the common case ------------------------------------------

def test_in_order_data_acknowledging_nothing_new_is_predicted():
    a, b = _pair()
    nxt = IRS + 1
    for i in range(5):
        f = _frame(nxt, a.iss + 1, ACK | PSH, b"x" * 1000, ts=(TS0 + i, a.tsecr))
        assert a.feed(f) == b.feed(f)
        nxt += 1000
    assert _ctr(a, "rx_predicted") == 5 and _ctr(b, "rx_predicted") == 0
    assert a.state() == b.state()
    assert a.sock.recv(10000) == b"x" * 5000


# ---- and refused for what the full path must decide (RFC 9293 3.10.7.4, RFC 7323) ---------

def _refused(mutate):
    a, _ = _pair()
    f = mutate(a)
    a.feed(f)
    return _ctr(a, "rx_predicted")


def test_paws_old_timestamp_is_not_predicted():
    # RFC 7323 5.3: a TSval below TS.Recent - the full path drops it and ACKs
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 1, ACK, b"x", ts=(TS0 - 1, a.tsecr))) == 0


def test_no_timestamp_on_a_timestamp_connection_is_not_predicted():
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 1, ACK, b"x")) == 0


def test_new_ack_window_change_fin_and_out_of_order_are_not_predicted():
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 101, ACK, b"x", ts=(TS0, a.tsecr))) == 0
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 1, ACK, b"x", win=100,
                                     ts=(TS0, a.tsecr))) == 0
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 1, ACK | FIN, b"x",
                                     ts=(TS0, a.tsecr))) == 0
    assert _refused(lambda a: _frame(IRS + 2, a.iss + 1, ACK, b"x", ts=(TS0, a.tsecr))) == 0


def test_data_beyond_the_window_is_not_predicted():
    # first check: a segment reaching past RCV.NXT + RCV.WND is trimmed by the full path
    a, _ = _pair()
    t = a.tcb
    nxt = IRS + 1
    while True:
        room = (t.rcv_adv - t.rcv_nxt) & 0xFFFFFFFF
        n = 1448 if room > 1448 else room + 1
        k = _ctr(a, "rx_predicted")
        a.feed(_frame(nxt, a.iss + 1, ACK, b"z" * n, win=t.snd_wnd >> WSHIFT,
                      ts=(TS0, a.tsecr)))
        if n <= 1448 and room <= 1448:
            assert _ctr(a, "rx_predicted") == k   # one byte past the window: the full path
            assert t.rcv_nxt == (nxt - IRS + room) & 0xFFFFFFFF   # which trimmed it
            break
        assert _ctr(a, "rx_predicted") == k + 1
        nxt += n


def test_sack_blocks_are_not_predicted():
    assert _refused(lambda a: _frame(IRS + 1, a.iss + 1, ACK, b"x", ts=(TS0, a.tsecr),
                                     sack=(a.iss + 1001, a.iss + 2001))) == 0
