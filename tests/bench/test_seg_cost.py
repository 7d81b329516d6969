"""benchmarks/seg_cost.py (issue 13) with a tiny budget: `ustack up --serve discard,chargen`'s
runner and services take every segment a raw client sends within the offered window and ACK
all of it (the tool stops on an ACK that goes back or beyond what was sent, or on bytes
missing at the end), and send a gapless stream the client ACKs; each row gets a figure."""


def test_seg_cost_takes_and_sends_every_segment():
    from benchmarks import seg_cost
    r = seg_cost.main(["--segments", "400", "--rounds", "1"])
    assert set(r) == {"recv", "send"}, r
    assert all(0 < v < 10000 for v in r.values()), r
