"""The packet filter over the control channel (core/ctl.py filter ops): list, add, del, zero,
policy, flush, set, ct; every refusal an error naming the word."""
import json

from ustack.core import ctl
from tests import frames as F
from tests.feed import Fed


def ask(srv, op, **args):
    return json.loads(srv.handle_line(ctl.request(op, **args)))


def data(srv, op, **args):
    r = ask(srv, op, **args)
    assert r["ok"], r
    return r["data"]


def error(srv, op, **args):
    r = ask(srv, op, **args)
    assert not r["ok"], r
    return r["error"]


def test_filter_ops_are_listed_by_hello():
    srv = ctl.Server(Fed().stack)
    ops = data(srv, "hello")["ops"]
    for op in ("filter", "filter.add", "filter.del", "filter.zero", "filter.policy",
               "filter.flush", "filter.set", "filter.ct"):
        assert op in ops


def test_added_rules_apply_at_once_and_are_listed_with_their_counters():
    fed = Fed()
    srv = ctl.Server(fed.stack)
    d = data(srv, "filter")
    assert d["rules"] == [] and d["policy"]["input"] == "accept"
    assert fed.stack.filter_in is None
    d = data(srv, "filter.add", rule="input   drop icmp")
    assert d["rules"][0]["rule"] == "input drop icmp" and d["rules"][0]["hook"] == "input"
    assert fed.feed(F.echo_request_frame()) == []
    d = data(srv, "filter")
    assert d["rules"][0]["packets"] == 1 and d["rules"][0]["bytes"] == 84
    assert d["counters"]["drop_rule"] == 1
    assert data(srv, "stats")["filter.drop_rule"] == 1
    d = data(srv, "filter.add", rule="input accept icmp", pos=0)
    assert [r["rule"] for r in d["rules"]] == ["input accept icmp", "input drop icmp"]
    assert len(fed.feed(F.echo_request_frame())) == 1
    d = data(srv, "filter.zero")
    assert [r["packets"] for r in d["rules"]] == [0, 0]
    d = data(srv, "filter.del", n=0)
    assert [r["rule"] for r in d["rules"]] == ["input drop icmp"]
    data(srv, "filter.flush")
    assert fed.stack.filter_in is None
    assert len(fed.feed(F.echo_request_frame())) == 1


def test_policy_and_whole_set_replacement():
    fed = Fed()
    srv = ctl.Server(fed.stack)
    d = data(srv, "filter.policy", hook="input", action="drop")
    assert d["policy"]["input"] == "drop"
    assert fed.feed(F.echo_request_frame()) == []
    d = data(srv, "filter.set", rules=["policy input accept", "input drop udp"])
    assert d["policy"]["input"] == "accept" and len(d["rules"]) == 1
    assert len(fed.feed(F.echo_request_frame())) == 1
    assert data(srv, "filter.ct") == []


def test_every_filter_mistake_is_an_error_naming_it():
    fed = Fed({"FILTER_RULES": 1})
    srv = ctl.Server(fed.stack)
    assert "dport telnet" in error(srv, "filter.add", rule="input drop tcp dport telnet")
    assert "missing 'rule'" in error(srv, "filter.add")
    assert "no rule 3" in error(srv, "filter.del", n=3)
    assert "sideways" in error(srv, "filter.policy", hook="sideways", action="drop")
    assert "reject" in error(srv, "filter.policy", hook="input", action="reject")
    assert "line 1" in error(srv, "filter.set", rules=["input drop tcp flags fun"])
    data(srv, "filter.add", rule="input drop udp")
    assert "FILTER_RULES 1" in error(srv, "filter.add", rule="input drop tcp")
    assert [r["rule"] for r in data(srv, "filter")["rules"]] == ["input drop udp"]
