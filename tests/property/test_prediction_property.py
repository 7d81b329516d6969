"""Header prediction (core/tcp/input.py _predicted) against the full path: two stacks built
alike (tests/unit/test_header_prediction.py Conn), one with header prediction and one without,
get the same segments - each one the short path would take, with at most one thing changed (its
sequence number, ACK, flags, window, timestamp, length) - and must answer with the same frames
and end in the same state (every integer TCB field, every counter but rx_predicted, the
receive ring's bytes)."""
from hypothesis import given, settings, HealthCheck, strategies as s

from ustack.core.tcp import tcb as T
from tests.unit.test_header_prediction import (
    _pair, _frame, IRS, TS0, WSHIFT, ACK, PSH, FIN, SYN, RST, URG, ECE, CWR)


# each segment the one header prediction would take, with at most one thing changed
TWISTS = {
    "seq": [1, -1, 1448, -1000, 70000, 1 << 31, -1448, 2, -2, 5],           # SEG.SEQ - RCV.NXT
    "ack": [1, 1000, 3072, 3073, -1, -70000, 100, 2, 1448, 3071],          # SEG.ACK - SND.UNA
    "flags": [ACK, ACK | FIN, ACK | URG, ACK | ECE, ACK | CWR, ACK | RST, ACK | SYN, PSH, 0,
              ACK | PSH | FIN],
    "win": [0, 1, 100, 511, 513, 65535, 2, 3, 4, 5],
    "ts_old": [-1, -2, -100, -(1 << 31) + 1, -5, -1, -1, -1, -1, -1],     # TSval - the last
    "ts_none": [0] * 10,
    "len": [0, 0, 0, 1, 2, 3, 4, 5, 6, 7],       # 0: a pure ACK; else window + this
}
SEG = s.tuples(s.sampled_from(["none", "none", "none"] + sorted(TWISTS)), s.integers(0, 9),
               s.sampled_from([1, 100, 1448]), s.sampled_from([0, 0, 1, 200]), s.booleans())


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(s.lists(SEG, min_size=1, max_size=30))
def test_predicted_and_full_path_answer_and_end_alike(segs):
    a, b = _pair()
    ts = TS0
    for twist, i, n, ms, read in segs:
        for c in (a, b):
            if read:
                try:
                    c.sock.recv(4096)
                except OSError:
                    pass
            c.fed.t += ms
        t = a.tcb
        v = TWISTS[twist][i] if twist != "none" else 0
        seq = IRS + t.rcv_nxt + (v if twist == "seq" else 0)
        ack = a.iss + t.snd_una + (v if twist == "ack" else 0)
        fl = v if twist == "flags" else ACK | PSH
        w = v if twist == "win" else t.snd_wnd >> WSHIFT
        if twist == "len":   # a pure ACK, or past the window's edge (else a full segment)
            room = (t.rcv_adv - t.rcv_nxt) & 0xFFFFFFFF
            n = 0 if not v else room + v if room + v <= 1448 else 1448
        opt = None
        if twist == "ts_old":
            opt = ((ts + v) & 0xFFFFFFFF, a.tsecr)
        elif twist != "ts_none":
            ts = (ts + (ms > 0)) & 0xFFFFFFFF
            opt = (ts, a.tsecr)
        f = _frame(seq, ack, fl, b"y" * n, win=w, ts=opt)
        assert a.feed(f) == b.feed(f)
        assert a.state() == b.state()
        if a.tcb.state != T.ESTABLISHED:
            break
