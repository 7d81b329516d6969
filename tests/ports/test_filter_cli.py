"""`ustack filter` and `ustack up --filter`: every mistake in a rule is one line naming the
word, exit status 1, refused before any stack is asked (none runs here) and before `up` makes
anything (the throwaway namespace keeps only lo)."""
import subprocess
import sys

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns

pytestmark = [needs_netns]
CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]


@pytest.fixture(scope="module")
def ns():
    n = Netns("fcli")
    yield n
    n.close()


def one_line(r, *words):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for w in words:
        assert w in lines[0], (w, lines[0])


def only_lo(ns):
    links = ns.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
    return len(links) == 1 and ": lo:" in links[0]


@pytest.mark.parametrize("words,named", [
    (["add", "input", "drop", "tcp", "dport", "telnet"], ("ustack filter:", "dport telnet")),
    (["add", "input", "drop", "dport", "22"], ("dport", "tcp or udp")),
    (["add", "inptu", "drop"], ("inptu", "not a hook")),
    (["add", "input", "tcp", "dport", "22"], ("no action",)),
    (["add", "input", "drop", "tcp", "flags", "syn,fun"], ("fun", "unknown TCP flag")),
    (["add", "input", "drop", "saddr", "192.0.2.1/24"], ("saddr 192.0.2.1/24", "host bits")),
    (["add", "input", "limit", "3/week", "accept"], ("week",)),
    (["add", "at", "x", "input", "drop"], ("at x",)),
    (["add"], ("add needs a rule",)),
    (["del", "first"], ("del first", "rule number")),
    (["del"], ("del needs one rule number",)),
    (["policy", "input", "reject"], ("reject", "accept or drop")),
    (["policy", "sideways", "drop"], ("sideways", "not a hook")),
    (["flush", "now"], ("flush takes no more words",)),
    (["frob"], ("frob", "unknown action")),
    (["add", "input", "family", "6", "saddr", "192.0.2.0/24", "drop"],
     ("saddr 192.0.2.0/24", "IPv4 word in an IPv6 rule")),
    (["add", "input", "drop", "saddr", "2001:db8::1/32"], ("2001:db8::1/32", "host bits")),
    (["add", "input", "drop", "daddr", "2001:db8::/200"], ("2001:db8::/200", "0..128")),
    (["add", "input", "drop", "icmpv6", "type", "nd-gossip"], ("nd-gossip", "ICMPv6 type")),
])
def test_every_filter_mistake_is_one_line_before_any_stack_is_asked(ns, words, named):
    one_line(ns.run(CLI + ["filter"] + words), *named)


def test_up_refuses_a_bad_filter_rule_in_one_line_and_makes_nothing(ns):
    r = ns.run(CLI + ["up", "--tap", "ustkf0", "--duration", "1", "--filter", "policy input drop",
                      "--filter", "input accept tcp dport ssh"])
    one_line(r, "--filter 'input accept tcp dport ssh'", "dport ssh")
    assert only_lo(ns)
    r = ns.run(CLI + ["up", "--tap", "ustkf0", "--duration", "1", "--config", "FILTER_RULES=1",
                      "--filter", "input drop udp", "--filter", "input drop tcp"])
    one_line(r, "--filter", "FILTER_RULES is 1")
    assert only_lo(ns)
    r = ns.run(CLI + ["up", "--tap", "ustkf0", "--duration", "1", "--filter",
                      "input ip6 saddr 198.51.100.0/24 drop"])
    one_line(r, "--filter 'input ip6 saddr 198.51.100.0/24 drop'", "saddr 198.51.100.0/24")
    assert only_lo(ns)


def test_up_help_documents_filter():
    r = subprocess.run(CLI + ["up", "--help"], capture_output=True, text=True)
    assert "--filter RULE" in r.stdout and "ustack filter --help" in r.stdout
    r = subprocess.run(CLI + ["filter", "--help"], capture_output=True, text=True)
    for w in ("prerouting", "ct new,established,related,invalid", "limit", "reject", "icmpv6",
              "2001:db8::/32"):
        assert w in r.stdout


def test_list_and_ct_tables_read_like_nft():
    from ustack.ports.cpython import ctlcli
    d = {"policy": {"prerouting": "accept", "input": "drop", "forward": "accept",
                    "output": "accept", "postrouting": "accept"},
         "conntrack": {"used": 1, "size": 64},
         "rules": [{"n": 0, "hook": "input", "rule": "input accept ct established", "packets": 7,
                    "bytes": 420}]}
    lines = ctlcli.fmt_filter(d)
    assert "input drop" in lines[0] and lines[1] == "conntrack 1/64"
    assert lines[3].split() == ["0", "7", "420", "input", "accept", "ct", "established"]
    rows = [{"proto": 6, "src": "192.0.2.2", "dst": "192.0.2.1", "sport": 40000, "dport": 80,
             "state": "established", "replied": True, "expires_ms": 7499000}]
    ln = ctlcli.fmt_ct(rows)[1]
    assert ln.split()[:4] == ["tcp", "established", "192.0.2.2:40000", "192.0.2.1:80"]
    rows = [{"proto": 58, "src": "2001:db8::2", "dst": "2001:db8::1", "sport": 7, "dport": 7,
             "state": "", "replied": False, "expires_ms": 29000}]
    ln = ctlcli.fmt_ct(rows)[1]
    assert ln.split() == ["icmpv6", "-", "[2001:db8::2]:7", "[2001:db8::1]:7", "29.0s",
                          "[unreplied]"]
