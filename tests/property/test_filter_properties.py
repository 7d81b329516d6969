"""The packet filter under arbitrary and mutated input: a stateful rule set with every action
(drop, reject, rate limit, log) on a stack that receives anything; no exception escapes,
every frame still ends in one counted outcome (tests/rig.py's balances, ip.rx_filtered and
ip.fwd_filtered included) and no packet buffer leaks."""
from hypothesis import given, settings, strategies as st

from tests import rig as R
from tests.property.budget import examples
from tests.property.test_receive_path_properties import VALID, mutated, _finish

RULES = ("input drop ct invalid", "input reject udp dport 9", "input reject tcp dport 23",
         "input drop tcp flags syn,fin/syn,fin", "input icmp limit 5/second burst 3 accept",
         "input drop icmp", "input log udp dport 53", "forward drop ct new",
         "output drop udp dport 9999")


def _rig(**config):
    rig = R.Rig(dict(config, FILTER=RULES, FILTER_CONNTRACK=4))
    rig.stack.log = lambda line: None
    return rig


@settings(max_examples=examples(150))
@given(st.lists(st.binary(max_size=120), max_size=12))
def test_arbitrary_bytes_through_the_filter_are_counted(frames):
    rig = _rig()
    for f in frames:
        rig.feed(f)
    assert rig.stack.stats.exceptions == 0
    _finish(rig)


@settings(max_examples=examples(200))
@given(st.lists(mutated(), min_size=1, max_size=12), st.booleans(), st.integers(0, 3000))
def test_mutated_frames_through_a_stateful_filter_are_counted(frames, forward, ms):
    rig = _rig(IP_FORWARD=forward)
    for f in frames:
        rig.feed(f)
        rig.advance(ms)
    assert rig.stack.stats.exceptions == 0
    _finish(rig)


@settings(max_examples=examples(100))
@given(st.lists(st.sampled_from(VALID), max_size=30))
def test_valid_frames_through_the_filter_are_counted(frames):
    rig = _rig()
    rig.feed_many(frames)
    rig.read_all()
    assert rig.stack.stats.exceptions == 0
    _finish(rig)
