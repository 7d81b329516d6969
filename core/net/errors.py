"""Neutral network error kinds: what an ICMP (or, later, ICMPv6) error means to a transport,
whatever the family that carried it. ICMP maps its type/code here (core/icmp.py kind_of);
TCP, UDP and raw sockets act on the kind only (core/tcp/proto.py, core/udp.py), so one
transport serves both families. Each kind is a small int; ERR_PKT_TOO_BIG comes with the
next hop's MTU as its argument."""
from ustack.core.compat import const

ERR_NET_UNREACH = const(1)       # no route to the network (ICMP 3/0; ICMPv6 1/0)
ERR_HOST_UNREACH = const(2)      # the host did not answer, or any other unreachable code
ERR_PROTO_UNREACH = const(3)     # nobody speaks the protocol there (ICMP 3/2): a hard error
ERR_PORT_UNREACH = const(4)      # nobody listens on the port (ICMP 3/3; ICMPv6 1/4): hard
ERR_PKT_TOO_BIG = const(5)       # fragmentation needed and DF set (ICMP 3/4; ICMPv6 2), + MTU
ERR_ADMIN_PROHIBITED = const(6)  # a filter refused it (ICMP 3/9, 3/10, 3/13; ICMPv6 1/1)
ERR_TIME_EXCEEDED = const(7)     # TTL or hop limit ran out in transit (ICMP 11/0; ICMPv6 3/0)
ERR_REASS_TIMEOUT = const(8)     # the peer's reassembly timed out (ICMP 11/1; ICMPv6 3/1)
ERR_PARAM_PROBLEM = const(9)     # a header field was bad (ICMP 12; ICMPv6 4)
ERR_SOURCE_QUENCH = const(10)    # RFC 6633: deprecated, counted and ignored


def is_unreachable(kind):
    """A destination unreachable of any code (what RFC 1122 4.1.3.3 has UDP report)."""
    return ERR_NET_UNREACH <= kind <= ERR_ADMIN_PROHIBITED


def is_hard(kind):
    """RFC 1122 4.2.3.9: protocol and port unreachable are hard errors (refusals)."""
    return kind == ERR_PROTO_UNREACH or kind == ERR_PORT_UNREACH
