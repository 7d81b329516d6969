"""Every tunable of the stack, with its default. Boards override a few keys; unknown keys and
inconsistent combinations are rejected with a clear message (lwIP's opt.h + sanity checks)."""

DEFAULTS = {
    # packet buffers (core/buf.py)
    "PBUF_COUNT": 64,          # frames in flight at once (RX + TX + queued)
    "PBUF_SIZE": 1536,         # one Ethernet frame (1514) + headroom slack
    "RX_BATCH": 32,            # frames drained per interface per poll
    # ARP (RFC 826 / RFC 1122 2.3.2)
    "ARP_ENTRIES": 16,
    "ARP_MAX_AGE_MS": 300000,  # a resolved entry is re-validated after this
    "ARP_RETRY_MS": 1000,
    "ARP_MAX_RETRIES": 3,
    "ARP_GRATUITOUS": True,
    "ARP_QUEUE": 6,            # packets waiting per unresolved neighbour (a fragmented
                               # REASS_SIZE datagram at MTU 1500); all neighbours together
                               # hold at most PBUF_COUNT // 4
    # Ethernet
    "ETH_VLAN": 0,             # 802.1Q VLAN ID of interfaces added without vlan= (0: untagged)
    # IPv4
    "IP_TTL": 64,
    "IP_FORWARD": False,
    "IP_FORWARD_DIRECTED_BCAST": False,  # RFC 2644: off unless asked for
    "ROUTE_ENTRIES": 16,
    "REASS_SLOTS": 4,          # datagrams being reassembled at once
    "REASS_SIZE": 8192,        # largest reassembled datagram
    "REASS_TIMEOUT_MS": 30000,
    "ICMP_RATE_MS": 10,        # one ICMP error per this many ms (token bucket refill)
    "ICMP_BURST": 10,
    # UDP / sockets
    "SOCKETS": 32,             # sockets of all kinds at once
    "UDP_RX_QUEUE": 16,        # datagrams queued per UDP socket
    "EPHEMERAL_LOW": 49152,    # RFC 6335 dynamic ports
    "EPHEMERAL_HIGH": 65535,
    # TCP (core/tcp)
    "TCP_MAX_CONNS": 16,
    "TCP_SND_BUF": 16384,
    "TCP_RCV_BUF": 16384,
    "TCP_BACKLOG": 8,
    "TCP_SYN_QUEUE": 16,
    "TCP_MSL_MS": 30000,       # TIME_WAIT lasts 2*MSL
    "TCP_RTO_INIT_MS": 1000,   # RFC 6298 2.1
    "TCP_RTO_MIN_MS": 200,
    "TCP_RTO_MAX_MS": 60000,
    "TCP_DELACK_MS": 200,
    "TCP_MAX_RETRIES": 12,
    "TCP_SYN_RETRIES": 6,
    "TCP_OOO_SEGMENTS": 8,
    "TCP_CC": "newreno",
    "TCP_WSCALE": True,
    "TCP_TIMESTAMPS": True,
    "TCP_SACK": True,
    "TCP_KEEPIDLE_MS": 7200000,
    "TCP_KEEPINTVL_MS": 75000,
    "TCP_KEEPCNT": 9,
    "TCP_CHALLENGE_ACK_LIMIT": 10,  # per second, RFC 5961 section 7
}


DAY_MS = 86400000

# The range of every int key (inclusive). An int key not listed (a new one) must still be an
# int >= 0; a bool key must be True or False; a string key one of CHOICES.
RANGES = {
    "PBUF_COUNT": (4, 65535),
    "PBUF_SIZE": (600, 65535),         # a 576-byte IPv4 datagram plus headers
    "RX_BATCH": (1, 65535),
    "ARP_ENTRIES": (1, 65535),
    "ARP_MAX_AGE_MS": (1, DAY_MS),
    "ARP_RETRY_MS": (1, DAY_MS),
    "ARP_MAX_RETRIES": (0, 255),
    "ARP_QUEUE": (1, 64),
    "ETH_VLAN": (0, 4094),
    "IP_TTL": (1, 255),                # RFC 791: 8 bits; 0 would be dropped by the next hop
    "ROUTE_ENTRIES": (1, 65535),
    "REASS_SLOTS": (0, 255),
    # RFC 791 / RFC 1122 3.3.2: every host reassembles 576-byte datagrams (556 bytes after
    # the header); total length is 16 bits, so no payload exceeds 65535 - 20 = 65515
    "REASS_SIZE": (556, 65515),
    "REASS_TIMEOUT_MS": (1, 255000),   # RFC 791: at most the 255 s a TTL can last
    "ICMP_RATE_MS": (0, 60000),
    "ICMP_BURST": (0, 65535),
    "SOCKETS": (1, 65535),
    "UDP_RX_QUEUE": (1, 65535),
    "EPHEMERAL_LOW": (1, 65535),
    "EPHEMERAL_HIGH": (1, 65535),
    "TCP_MAX_CONNS": (1, 65535),
    "TCP_SND_BUF": (536, 1 << 30),     # one RFC 9293 default-MSS segment; RFC 7323 limit
    "TCP_RCV_BUF": (536, 1 << 30),
    "TCP_BACKLOG": (1, 65535),
    "TCP_SYN_QUEUE": (1, 65535),
    "TCP_MSL_MS": (1, 600000),
    "TCP_RTO_INIT_MS": (1, DAY_MS),
    "TCP_RTO_MIN_MS": (1, DAY_MS),
    "TCP_RTO_MAX_MS": (1, DAY_MS),
    "TCP_DELACK_MS": (0, 500),         # RFC 1122 4.2.3.2: the delay MUST be under 0.5 s
    "TCP_MAX_RETRIES": (1, 255),
    "TCP_SYN_RETRIES": (1, 255),
    "TCP_OOO_SEGMENTS": (0, 255),
    "TCP_KEEPIDLE_MS": (1, DAY_MS),
    "TCP_KEEPINTVL_MS": (1, DAY_MS),
    "TCP_KEEPCNT": (1, 255),
    "TCP_CHALLENGE_ACK_LIMIT": (0, 65535),
}
CHOICES = {"TCP_CC": ("newreno",)}


def make_config(overrides=None):
    cfg = dict(DEFAULTS)
    if overrides:
        if not isinstance(overrides, dict):
            raise ValueError("config: overrides must be a dict of KEY: value")
        for k in overrides:
            if k not in DEFAULTS:
                raise ValueError("unknown config key %r" % (k,))
            cfg[k] = overrides[k]
    validate(cfg)
    return cfg


def is_int(v):
    """An int that is not a bool (bool is an int subclass on both Pythons)."""
    return isinstance(v, int) and v is not True and v is not False


def check_key(k, v):
    """One key's type and range; ValueError naming the key."""
    d = DEFAULTS[k]
    if d is True or d is False:
        if v is not True and v is not False:
            raise ValueError("config: %s must be True or False, got %r" % (k, v))
    elif isinstance(d, int):
        lo, hi = RANGES.get(k, (0, None))
        if not is_int(v) or v < lo or (hi is not None and v > hi):
            raise ValueError("config: %s must be an int in %d..%s, got %r" % (
                k, lo, "" if hi is None else hi, v))
    elif isinstance(d, str):
        c = CHOICES.get(k)
        if not isinstance(v, str) or (c is not None and v not in c):
            raise ValueError("config: %s must be one of %s, got %r" % (
                k, ", ".join(c) if c else "a string", v))


def validate(cfg):
    def need(cond, msg):
        if not cond:
            raise ValueError("config: " + msg)
    for k in cfg:
        check_key(k, cfg[k])
    need(cfg["PBUF_COUNT"] >= 4, "PBUF_COUNT must be at least 4")
    need(cfg["PBUF_SIZE"] >= 600, "PBUF_SIZE must hold a 576-byte IPv4 datagram plus headers")
    need(cfg["ARP_ENTRIES"] >= 1, "ARP_ENTRIES must be at least 1")
    need(cfg["ARP_QUEUE"] >= 1, "ARP_QUEUE must be at least 1")
    need(0 <= cfg["ETH_VLAN"] <= 4094, "ETH_VLAN must be a VLAN ID 1..4094 (0: untagged)")
    need(cfg["SOCKETS"] >= 1, "SOCKETS must be at least 1")
    need(1 <= cfg["EPHEMERAL_LOW"] <= cfg["EPHEMERAL_HIGH"] <= 65535,
         "bad ephemeral port range: need EPHEMERAL_LOW <= EPHEMERAL_HIGH")
    need(cfg["TCP_RTO_MIN_MS"] <= cfg["TCP_RTO_INIT_MS"] <= cfg["TCP_RTO_MAX_MS"],
         "need TCP_RTO_MIN_MS <= TCP_RTO_INIT_MS <= TCP_RTO_MAX_MS")
    need(cfg["TCP_SND_BUF"] >= 536 and cfg["TCP_RCV_BUF"] >= 536,
         "TCP buffers must hold at least one 536-byte segment")
    need(cfg["UDP_RX_QUEUE"] >= 1, "UDP_RX_QUEUE must be at least 1")
