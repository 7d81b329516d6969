"""Boards ship only the TCP modules their FEATURES name (ports/micropython/build.py): without
"undo" the core takes undo_off.py's interface (nothing is ever undone, RFC 3522 and RFC 3708
are optional), without "sack" it makes no scoreboard (RFC 2018: a sender may ignore SACK
blocks; NewReno recovers). Here the absent module is stood in for the way the guarded
imports would find it."""
from ustack.core.tcp import undo, undo_off, input as inp, timers, proto
from tests.unit.test_tcp_segments import Peer, ACK
from tests.unit.test_tcp_behaviour import BIG
from tests.unit.test_tcp_undo import recovery_on_reordering
from tests.unit.test_tcp_sack import sack_opts, seg
from tests.unit.test_tcp_behaviour import filled, sq, MSS

API = ("start", "reduced", "end", "dsack", "eifel", "tlp_spurious", "check_dsack")


def test_undo_off_has_undo_s_interface_and_episode_kinds():
    for name in API:
        assert callable(getattr(undo, name)) and callable(getattr(undo_off, name)), name
    for kind in ("NONE", "FAST", "TLP", "RTO"):
        assert getattr(undo_off, kind) == getattr(undo, kind), kind


def test_without_undo_a_spurious_fast_retransmit_keeps_its_reduction():
    """The Eifel case of test_tcp_undo (RFC 3522 3.2), on a build without undo.py: the ACK
    echoing the original transmission takes nothing back and counts nothing."""
    saved = inp.undo, timers.undo
    inp.undo = timers.undo = undo_off
    try:
        p = Peer(BIG)
        una, last, rtx, ss0, w0 = recovery_on_reordering(p)
        p.send(p.seq, una + 4 * MSS, ACK, opts=p.tsopt(last))
    finally:
        inp.undo, timers.undo = saved
    st = p.tcp.stats
    assert st.spurious_recoveries == 0 and st.cc_undos == 0
    assert p.tcb().cc.ssthresh < ss0


def test_without_the_scoreboard_sack_blocks_are_ignored_and_newreno_recovers():
    """RFC 2018 (sender behaviour is optional): with scoreboard.py absent the stack still
    negotiates SACK (its receive side needs no scoreboard) but makes no scoreboard; three
    duplicate ACKs carrying SACK blocks start NewReno's fast retransmit (RFC 5681 3.2)."""
    saved = proto.Scoreboard
    proto.Scoreboard = None
    try:
        p = Peer(BIG)
    finally:
        proto.Scoreboard = saved
    assert p.tcp.sack_slots == 0
    una, d, last = filled(p)
    rtx = None
    for k in (1, 2, 3):
        for s in p.send(p.seq, una, ACK, opts=sack_opts(p, last, [seg(una, 1, k)])):
            if s.data and s.seq == sq(una):
                rtx = s
    st = p.tcp.stats
    assert p.tcb().sb is None
    assert st.sack_recoveries == 0 and st.fast_retransmits == 1 and rtx is not None
