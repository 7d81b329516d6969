"""The README stays honest: every `ustack up` flag, driver and board is documented there."""
import os

from ustack.boards import names
from ustack.ports.cpython import cli

README = open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "README.md")).read()


def _up_parser():
    p = cli.build_parser()
    for a in p._subparsers._group_actions:
        return a.choices["up"]


def test_every_up_flag_is_in_the_readme_and_in_help():
    up = _up_parser()
    text = up.format_help()
    for act in up._actions:
        for opt in act.option_strings:
            if opt.startswith("--") and opt != "--help":
                assert "`%s" % opt in README, opt
                assert opt in text
                assert act.help, opt


def test_every_driver_and_board_is_in_the_readme():
    for d in cli.DRIVERS:
        assert "`%s`" % d in README, d
    for b in names():
        assert "`%s`" % b in README, b


def _counter_groups():
    """Every counter group the code defines: each `*_COUNTERS` tuple in core/, hal/ and
    ports/ (found in the source, so a new group cannot be left out of this test)."""
    import importlib
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = {}
    for base in ("core", "hal", "ports"):
        for d, _, files in os.walk(os.path.join(root, base)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                p = os.path.join(d, f)
                names = re.findall(r"^([A-Z0-9_]*COUNTERS) = ", open(p).read(), re.M)
                if names:
                    mod = importlib.import_module(
                        "ustack." + os.path.relpath(p, root)[:-3].replace(os.sep, "."))
                    for n in names:
                        found[mod.__name__ + "." + n] = getattr(mod, n)
    return found


def test_every_counter_is_in_the_readme():
    groups = _counter_groups()
    for known in ("ustack.core.arp.ARP_COUNTERS", "ustack.core.tcp.proto.TCP_COUNTERS",
                  "ustack.hal.tap.TAP_COUNTERS", "ustack.ports.cpython.control.PORT_COUNTERS"):
        assert known in groups, sorted(groups)
    i = README.index("## Counters")
    section = README[i:README.index("\n## ", i + 5)]
    for name, group in groups.items():
        for n in group:
            assert "`%s`" % n in section, (name, n)
