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


def test_every_counter_is_in_the_readme():
    from ustack.core.iface import IFACE_COUNTERS
    from ustack.core.arp import ARP_COUNTERS
    from ustack.core.ipv4 import IP_COUNTERS
    from ustack.core.icmp import ICMP_COUNTERS
    from ustack.core.udp import UDP_COUNTERS
    from ustack.core.reass import REASS_COUNTERS
    from ustack.core.tcp.proto import TCP_COUNTERS
    from ustack.core.raw import RAW_COUNTERS
    from ustack.core.stack import STACK_COUNTERS
    from ustack.core.dns import DNS_COUNTERS
    from ustack.core.dhcp import DHCP_COUNTERS
    from ustack.core.ctl import CTL_COUNTERS
    from ustack.core.filter import FILTER_COUNTERS
    from ustack.core.ipv6 import IP6_COUNTERS
    from ustack.core.icmp6 import ICMP6_COUNTERS
    from ustack.core.nd import ND_COUNTERS, DAD_COUNTERS
    from ustack.core.mld import MLD_COUNTERS
    from ustack.core.slaac import SLAAC_COUNTERS
    from ustack.core.reass6 import REASS6_COUNTERS
    from ustack.core.net.pmtu import PMTU_COUNTERS
    from ustack.core.rip import RIP_COUNTERS
    from ustack.core.ripng import RIPNG_COUNTERS
    i = README.index("## Counters")
    section = README[i:README.index("\n## ", i + 5)]
    for group in (IFACE_COUNTERS, ARP_COUNTERS, IP_COUNTERS, ICMP_COUNTERS, UDP_COUNTERS,
                  REASS_COUNTERS, TCP_COUNTERS, RAW_COUNTERS, STACK_COUNTERS,
                  DNS_COUNTERS, DHCP_COUNTERS, CTL_COUNTERS, FILTER_COUNTERS, IP6_COUNTERS,
                  ICMP6_COUNTERS, ND_COUNTERS, DAD_COUNTERS, MLD_COUNTERS, SLAAC_COUNTERS,
                  REASS6_COUNTERS, PMTU_COUNTERS, RIP_COUNTERS, RIPNG_COUNTERS):
        for n in group:
            assert "`%s`" % n in section, n
