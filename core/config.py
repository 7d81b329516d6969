"""Every tunable of the stack, with its default. Boards override a few keys; unknown keys and
inconsistent combinations are rejected with a clear message (lwIP's opt.h + sanity checks).

The ranges and checks are core/config_check.py: make_config runs them once, then on MicroPython
forgets that module, so its bytecode (about 5 KB of a 32-bit board's heap) goes back to the
heap (benchmarks/memory.md)."""
from ustack.core.compat import forget

DEFAULTS = {
    # packet buffers (core/buf.py)
    "PBUF_COUNT": 64,          # frames in flight at once (RX + TX + queued)
    "PBUF_SIZE": 1536,         # one Ethernet frame (1514) + headroom slack
    "RX_BATCH": 32,            # frames drained per interface per poll
    # large (64 KB) buffers for drivers with offloads (issue 13: TSO out, GRO in), added to
    # the pool only when such a driver is attached (never on an MCU)
    "OFFLOAD_BUFS": 8,
    # issue 13: every TCP connection's send and receive buffer (at least; a larger
    # TCP_SND_BUF/TCP_RCV_BUF stays) once such a driver is attached. A 64 KB ring holds one
    # TSO segment: the sender then waits a round trip per segment, and each GRO frame shuts
    # the receiver's window (600 MB/s each way over a TAP; 1 MB: 1.2-1.7 GB/s sending).
    # Rings take their storage only while they hold data: idle connections cost no more
    "OFFLOAD_TCP_BUF": 1048576,
    # All TCP rings' storage beyond each ring's first TCP_SND_BUF/TCP_RCV_BUF-sized piece,
    # together (core/tcp/ring.py; 0: no limit). Storage grows as data needs it, so a
    # 1 MB window costs 1 MB only while the bytes are there; this bounds what peers that
    # park data at the window's edge, or never read, can make the stack hold (Linux tcp_mem).
    "TCP_MEM": 67108864,
    # Derived when not given (None): see derive(). Receive may never take the last
    # PBUF_RESERVE_TX buffers (transmit, ARP and ICMP replies keep working); all socket
    # receive queues together hold at most SOCK_QUEUE_PBUFS buffers.
    "PBUF_RESERVE_TX": None,   # max(1, PBUF_COUNT // 8)
    "SOCK_QUEUE_PBUFS": None,  # PBUF_COUNT // 2, less when the pool is tiny
    # ARP (RFC 826 / RFC 1122 2.3.2)
    "ARP_ENTRIES": 16,
    "ARP_MAX_AGE_MS": 300000,  # a resolved entry is re-validated after this
    "ARP_RETRY_MS": 1000,
    "ARP_MAX_RETRIES": 3,
    "ARP_GRATUITOUS": True,
    "ARP_QUEUE": 6,            # packets waiting per unresolved neighbour (a fragmented
                               # 8 KB datagram at MTU 1500), the oldest dropped first
    "ARP_PENDING_PBUFS": None,  # packets waiting for resolution, all neighbours of one
                                # interface together; None: max(1, PBUF_RESERVE_TX // 2)
    # Ethernet
    "ETH_VLAN": 0,             # 802.1Q VLAN ID of interfaces added without vlan= (0: untagged)
    # IPv4
    "IP_TTL": 64,
    "IP_FORWARD": False,
    "IP_FORWARD_DIRECTED_BCAST": False,  # RFC 2644: off unless asked for
    "ROUTE_ENTRIES": 16,
    # IPv6 (core/ipv6.py, issue 9): off unless asked for (ustack up turns it on)
    "IPV6": False,
    "IPV6_ADDRS": 8,           # IPv6 addresses of all interfaces together (link-locals too)
    "IPV6_HOP_LIMIT": 64,      # RFC 8200 3 / RFC 4861 6.3.2 CurHopLimit
    "ND_CACHE_SIZE": 16,       # neighbours per interface (RFC 4861 7.3)
    "ND_DAD_TRANSMITS": 1,     # RFC 4862 5.1 DupAddrDetectTransmits; 0: no DAD
    "SLAAC_RTR_SOLICITS": 3,   # RFC 4861 6.3.7 Router Solicitations at bring-up; 0: none
    # Loopback (core/loop.py): 127.0.0.0/8 and our own addresses delivered inside the stack
    "LOOPBACK": True,          # False: no "lo" (a board that never talks to itself)
    "LOOPBACK_QUEUE": 16,      # packets waiting on lo for the next poll; more are dropped
                               # (lo.tx_busy)
    "REASS_SLOTS": 4,          # datagrams being reassembled at once
    "REASS_SIZE": 8192,        # largest reassembled datagram
    "REASS_TIMEOUT_MS": 30000,
    "REASS6_SLOTS": 2,         # IPv6 datagrams being reassembled at once (core/reass6.py);
                               # their buffers (REASS_SIZE each) are made on the first fragment
    "REASS6_TIMEOUT_MS": 60000,  # RFC 8200 4.5: 60 s
    "PMTU_ENTRIES": 16,        # destinations whose path MTU is known (core/net/pmtu.py)
    "PMTU_AGE_MS": 600000,     # RFC 1191 6.3 / RFC 8201 4: a learnt PMTU is forgotten after
                               # 10 minutes (the path may have grown back)
    "ICMP_RATE_MS": 10,        # one ICMP error per this many ms (token bucket refill)
    "ICMP_BURST": 10,
    # UDP / sockets
    "SOCKETS": 32,             # sockets of all kinds at once
    "UDP_RX_QUEUE": 16,        # datagrams queued per UDP (or raw) socket
    # Default SO_RCVBUF of UDP and raw sockets, in bytes; every queued datagram is charged
    # its buffer's whole size (Linux's truesize). None: PBUF_SIZE * min(UDP_RX_QUEUE,
    # SOCK_QUEUE_PBUFS // 4), at least one buffer.
    "UDP_RCVBUF": None,
    "EPHEMERAL_LOW": 49152,    # RFC 6335 dynamic ports
    "EPHEMERAL_HIGH": 65535,
    # TCP (core/tcp)
    "TCP_MAX_CONNS": 16,
    "TCP_SND_BUF": 16384,
    "TCP_RCV_BUF": 16384,
    "TCP_BACKLOG": 8,
    "TCP_SYN_QUEUE": 0,        # half-open connections, all listeners; 0: TCP_MAX_CONNS // 2
    "TCP_SYNCOOKIES": True,    # RFC 4987 SYN cookies once the SYN queue is full
    "TCP_SYNCOOKIE_BUDGET": 6,  # cookies answered per poll; further SYNs to a full SYN queue
                                # are dropped (syncookies_over_budget); 0: no limit. 6 of an
                                # RX_BATCH of 32: under hping3 on 2 cores, 4 starved new
                                # connections, 8 and more lost pings (tests/interop/test_floods)
    "TCP_SYNACK_RETRIES": 5,   # SYN-ACK retransmissions before a half-open one is forgotten
    "TCP_MSL_MS": 30000,       # TIME_WAIT lasts 2*MSL
    "TCP_RTO_INIT_MS": 1000,   # RFC 6298 2.1
    "TCP_RTO_MIN_MS": 200,     # Linux's; RFC 6298 2.4's 1 s SHOULD is left for speed
    "TCP_RTO_MAX_MS": 60000,   # RFC 6298 2.5: an upper bound is at least 60 s
    "TCP_DELACK_MS": 40,       # Linux's TCP_DELACK_MIN: an ACK we hold back must reach the
                               # peer well before its 200 ms minimum RTO (RFC 6298 2.4)
    "TCP_ACK_BURST": 2,        # in-order full-sized segments read in one poll are ACKed once
                               # at the end of the poll's burst, or at once when this many
                               # are unacknowledged (RFC 9293 3.8.6.3 / RFC 5681 4.2's every
                               # second segment, per burst as Linux's GRO). 2: every second at
                               # once. More saves ACKs to a Linux sender (which counts acked
                               # segments: 8 took Linux->ustack from 17 to 41 MB/s over a TAP
                               # without offloads) but slows a ustack sender's slow start even
                               # with byte counting (RFC 3465 caps an ACK's growth at 2 SMSS):
                               # with 8, 71 of the 116 cells of benchmarks/loss.md fell more
                               # than 5 % (python -m benchmarks.loss_table --compare)
    "TCP_MAX_RETRIES": 12,
    "TCP_SYN_RETRIES": 6,
    "TCP_MAX_ORPHANS": 0,      # closed but still closing; oldest reset beyond; 0: MAX_CONNS // 2
    "TCP_ORPHAN_RETRIES": 8,   # an orphan's retransmissions/zero-window probes (never reset)
    "TCP_FIN_TIMEOUT_MS": 60000,  # an orphan waits this long in FIN-WAIT-2 (Linux default)
    "TCP_OOO_SEGMENTS": 8,
    "TCP_CC": "newreno",       # congestion control: newreno (RFC 5681/6582), cubic (RFC 9438
                               # with HyStart++, RFC 9406) or none (a fixed window); a socket
                               # picks its own with setsockopt TCP_CONGESTION
    "TCP_CC_NONE_SEGMENTS": 4,  # "none": the fixed window in segments (never above RFC 6928's
                                # initial window)
    "TCP_SACK_SLOTS": 8,       # SACK scoreboard ranges per connection (RFC 6675); 0: SACK ignored
    "TCP_WSCALE": True,
    "TCP_TIMESTAMPS": True,
    "TCP_SACK": True,
    "TCP_ECN": 0,              # RFC 3168 ECN, Linux's tcp_ecn: 0 off, 1 ask on connect() and
                               # accept on listeners, 2 accept only (when the peer's SYN asks)
    "TCP_TLP": True,           # RFC 8985 tail loss probes (with SACK): a lost tail costs 2*SRTT
    "TCP_RACK": True,          # RFC 8985 RACK (with SACK): loss by send time and a reordering
                               # window instead of RFC 6675's DupThresh
    "TCP_RACK_SLOTS": 16,      # RACK's transmit-time runs per connection (core/tcp/rack.py)
    "TCP_KEEPIDLE_MS": 7200000,
    "TCP_KEEPINTVL_MS": 75000,
    "TCP_KEEPCNT": 9,
    "TCP_CHALLENGE_ACK_LIMIT": 10,  # per second and connection, RFC 5961 section 7
    "TCP_CHALLENGE_ACK_GLOBAL": 100,  # all connections: a random budget in [G/2, 3G/2) a second
    "TCP_RST_RATE_MS": 5,      # RSTs for segments to no connection: one per this many ms
    "TCP_RST_BURST": 50,       # after a burst of this many (token bucket; RATE_MS 0: no limit)
    # DNS stub resolver (core/dns.py); servers come from stack.dns.set_servers (DHCP, --dns)
    "DNS_SEARCH": "",          # the search domain tried for names without a dot ('' none)
    "DNS_TIMEOUT_MS": 2000,    # one query to one server
    "DNS_ATTEMPTS": 2,         # rounds over all servers (resolv.conf's attempts)
    "DNS_MSG_SIZE": 1232,      # largest answer taken (over TCP; UDP ones are <= 512)
    "DNS_CACHE_ENTRIES": 8,    # names cached (0: no cache)
    "DNS_CACHE_ADDRS": 8,      # addresses kept per name; more in an answer are dropped
    "DNS_MAX_TTL_S": 3600,     # a cached answer is used at most this long, whatever its TTL
    "DNS_CNAME_DEPTH": 8,      # CNAME links followed for one name
    # DHCP client (core/dhcp.py, RFC 2131)
    "DHCP_RETRY_MS": 4000,     # RFC 2131 4.1: first retransmission, doubling each time
    "DHCP_RETRY_MAX_MS": 64000,  # ... up to this (each +-1 s at random)
    "DHCP_RENEW_MIN_MS": 60000,  # RFC 2131 4.4.5: RENEWING/REBINDING retransmit no sooner
    "DHCP_ARP_PROBES": 3,      # RFC 5227 PROBE_NUM: ARP probes of an offered address (0: none)
    # Packet filter (core/filter.py, the "filter" feature): rule and policy lines loaded at
    # start, e.g. ("policy input drop", "input accept ct established,related",
    # "input accept tcp dport 22"); () loads nothing (the stack's hooks stay None)
    "FILTER": (),
    "FILTER_RULES": 32,        # rules of all hooks together
    "FILTER_CONNTRACK": 64,    # tracked flows (both directions are one entry)
    "FILTER_CT_TCP_SYN_MS": 60000,     # a TCP flow until its handshake completes
    "FILTER_CT_TCP_EST_MS": 7500000,   # an idle established one: above TCP_KEEPIDLE_MS (2 h)
                                       # so keepalive probes keep it
    "FILTER_CT_TCP_CLOSE_MS": 120000,  # after a FIN (a RST: 10 s at most)
    "FILTER_CT_UDP_MS": 30000,         # an idle UDP flow
    "FILTER_CT_ICMP_MS": 30000,        # an ICMP echo pseudo-connection
    "FILTER_LOG_RATE_MS": 1000,        # log rules: one line per this many ms after a burst
    "FILTER_LOG_BURST": 5,             # of this many (0 rate: every match logged)
    # RIPv2 speaker (core/rip.py, the "rip" feature, RFC 2453): learns routes from the
    # routers on the links and announces the stack's; its timers are RFC 2453 3.8's
    "RIP": False,
    "RIP_ROUTES": 32,          # learned routes at most (more are counted in rip.table_full)
    "RIP_UPDATE_MS": 30000,    # a full update every this (+-1/6 at random)
    "RIP_TIMEOUT_MS": 180000,  # a learned route not heard of for this long times out
    "RIP_GC_MS": 120000,       # then is announced unreachable for this long, and deleted
    # RIPng speaker (core/ripng.py, the "ripng" feature, RFC 2080; needs IPV6): the RIP_*
    # timers above are its own too (RFC 2080 2.3)
    "RIPNG": False,
    "RIPNG_ROUTES": 32,        # its routes at most (more are counted in ripng.table_full)
}


def make_config(overrides=None):
    """DEFAULTS with the overrides, derived keys filled, every key and combination checked:
    ValueError naming the key."""
    from ustack.core import config_check
    try:
        return config_check.make(DEFAULTS, overrides)
    finally:
        forget("ustack.core.config_check")  # run once at start: not kept in the heap


def is_int(v):
    """An int that is not a bool (bool is an int subclass on both Pythons)."""
    return isinstance(v, int) and v is not True and v is not False



def check_key(k, v):
    """One key's type and range (config_check.check_key): ValueError naming the key."""
    from ustack.core import config_check
    try:
        config_check.check_key(k, v)
    finally:
        forget("ustack.core.config_check")
